"""OGC API Features Parts 1-3 and tiles through the app (TestClient) against the demo district."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from api.app import create_app
from tests.conftest import settings_for


@pytest.fixture(scope="module")
def client(shared_db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(shared_db_url))) as c:
        yield c


def _count(url: str, table: str, where: str = "true") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()  # noqa: S608 (test)
    assert row is not None
    return int(row[0])


def test_landing_conformance_and_api_document(client: TestClient):
    landing = client.get("/").json()
    rels = {lk["rel"] for lk in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    api = client.get("/api")
    assert api.status_code == 200 and api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = api.json()
    assert doc["openapi"] == "3.0.3"
    assert "/collections/{collection_id}/items" in doc["paths"]
    assert '"type": "null"' not in json.dumps(doc) and '"type":"null"' not in json.dumps(doc)
    validate(doc)  # the OpenAPI 3.0 schema itself, as client generators check it
    assert client.get("/?f=html").headers["content-type"].startswith("text/html")


def test_collections_list_every_layer_with_same_description(client: TestClient, catalogue):
    body = client.get("/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == list(catalogue)
    for listed in body["collections"]:
        one = client.get(f"/collections/{listed['id']}").json()
        assert one == listed
        assert one["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
        assert "http://www.opengis.net/def/crs/EPSG/0/4547" in one["crs"]


def test_items_page_counts_links_and_media_type(client: TestClient, shared_db_url: str):
    r = client.get("/collections/zones/items", params={"limit": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = r.json()
    assert body["numberReturned"] == 3 and body["numberMatched"] == _count(shared_db_url, "zones")
    assert body["timeStamp"].endswith("Z")
    rels = [lk["rel"] for lk in body["links"]]
    assert {"self", "next", "collection", "alternate"} <= set(rels) and "prev" not in rels


def test_keyset_paging_walks_every_feature_once_and_back(client: TestClient, shared_db_url: str):
    seen: list[str] = []
    url: str | None = "/collections/street_lights/items?limit=500&sortby=-power_w,installed_on"
    pages = []
    while url:
        body = client.get(url).json()
        pages.append(body)
        seen += [f["id"] for f in body["features"]]
        url = next((lk["href"] for lk in body["links"] if lk["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == _count(shared_db_url, "street_lights")
    powers = [f["properties"]["power_w"] for p in pages for f in p["features"]]
    assert powers == sorted(powers, key=lambda v: -(v or -1))
    prev = next(lk["href"] for lk in pages[1]["links"] if lk["rel"] == "prev")
    assert [f["id"] for f in client.get(prev).json()["features"]] == [f["id"] for f in pages[0]["features"]]


def test_paging_is_stable_under_concurrent_inserts(client: TestClient, db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        first = c.get("/collections/street_lights/items?limit=100").json()
        nxt = next(lk["href"] for lk in first["links"] if lk["rel"] == "next")
        with psycopg.connect(db_url) as conn:  # a new feature sorts first (smallest code), id is largest
            conn.execute(
                "INSERT INTO street_lights (code, district_code, condition, geom) VALUES "
                "('A-0000', '430104', 'normal', ST_SetSRID(ST_MakePoint(112.952, 28.232), 4490))"
            )
        second = c.get(nxt).json()
    ids1 = {f["id"] for f in first["features"]}
    assert not ids1 & {f["id"] for f in second["features"]}


def test_bbox_crs_and_axis_order(client: TestClient, shared_db_url: str):
    box = "112.94,28.22,112.97,28.24"
    expected = _count(
        shared_db_url, "street_lights", "ST_Intersects(geom, ST_MakeEnvelope(112.94, 28.22, 112.97, 28.24, 4490))"
    )
    crs84 = client.get("/collections/street_lights/items", params={"bbox": box, "limit": 10000}).json()
    assert crs84["numberMatched"] == crs84["numberReturned"] == expected > 0
    latlon = client.get(
        "/collections/street_lights/items",
        params={
            "bbox": "28.22,112.94,28.24,112.97",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
            "limit": 10000,
            "crs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        },
    )
    assert latlon.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
    body = latlon.json()
    assert body["numberMatched"] == expected
    lon, lat = crs84["features"][0]["geometry"]["coordinates"]
    same = next(f for f in body["features"] if f["id"] == crs84["features"][0]["id"])
    assert same["geometry"]["coordinates"] == [lat, lon]  # EPSG:4490 by URI is lat/lon
    metric = client.get("/collections/zones/items/jinling", params={"crs": "EPSG:4547"}).json()
    assert metric["geometry"]["coordinates"][0][0][0][0] > 300_000
    merc = client.get("/collections/zones/items/jinling", params={"crs": "EPSG:3857"}).json()
    assert merc["geometry"]["coordinates"][0][0][0][0] > 12_000_000


def test_attribute_filters_properties_sortby_datetime(client: TestClient, shared_db_url: str):
    faulty = _count(shared_db_url, "street_lights", "condition = 'faulty'")
    body = client.get("/collections/street_lights/items?condition=faulty&limit=10000").json()
    assert body["numberMatched"] == faulty == len(body["features"])
    body = client.get("/collections/zones/items?properties=name,phase&sortby=-name").json()
    assert all(set(f["properties"]) == {"code", "name", "phase"} for f in body["features"])
    names = [f["properties"]["name"] for f in body["features"]]
    assert names == sorted(names, reverse=True)
    assert client.get("/collections/zones/items?datetime=2000-01-01/2001-01-01").json()["numberMatched"] == 0
    assert client.get("/collections/zones/items?datetime=../2999-01-01").json()["numberMatched"] == 10
    sections = client.get("/collections/contract_sections/items?service_kinds=cleaning").json()
    assert sections["numberMatched"] == _count(shared_db_url, "contract_sections", "'cleaning' = ANY(service_kinds)")


@pytest.mark.parametrize(
    ("cql", "where"),
    [
        ("condition = 'faulty' AND power_w >= 60", "condition = 'faulty' AND power_w >= 60"),
        ("condition IN ('faulty', 'repairing')", "condition IN ('faulty', 'repairing')"),
        ("power_w BETWEEN 40 AND 80", "power_w BETWEEN 40 AND 80"),
        ("last_maintained IS NULL OR NOT (power_w < 50)", "last_maintained IS NULL OR NOT (power_w < 50)"),
        ("code LIKE 'SL-jin%'", "code LIKE 'SL-jin%'"),
        ("installed_on > DATE('2015-01-01')", "installed_on > '2015-01-01'"),
        (
            "S_INTERSECTS(geometry, POLYGON((112.94 28.22, 112.97 28.22, 112.97 28.24, 112.94 28.24, 112.94 28.22)))",
            "ST_Intersects(geom, ST_MakeEnvelope(112.94, 28.22, 112.97, 28.24, 4490))",
        ),
        (
            "S_WITHIN(geometry, BBOX(112.94, 28.22, 112.97, 28.24))",
            "ST_Within(geom, ST_MakeEnvelope(112.94, 28.22, 112.97, 28.24, 4490))",
        ),
        (
            "distance_m(geometry, POINT(112.952 28.232)) < 300",
            "ST_Distance(ST_Transform(geom, 4547), ST_Transform(ST_SetSRID(ST_MakePoint(112.952, 28.232), 4490), 4547))"
            " < 300",
        ),
    ],
)
def test_cql2_text_filters_match_sql(client: TestClient, shared_db_url: str, cql: str, where: str):
    body = client.get("/collections/street_lights/items", params={"filter": cql, "limit": 10000}).json()
    assert body["numberMatched"] == _count(shared_db_url, "street_lights", where)


def test_cql2_json_filter_and_functions(client: TestClient, shared_db_url: str):
    flt = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "condition"}, "faulty"]},
            {
                "op": "s_intersects",
                "args": [
                    {"property": "geometry"},
                    {
                        "type": "Polygon",
                        "coordinates": [[[112.9, 28.2], [113.0, 28.2], [113.0, 28.3], [112.9, 28.3], [112.9, 28.2]]],
                    },
                ],
            },
        ],
    }
    body = client.get(
        "/collections/street_lights/items",
        params={"filter": json.dumps(flt), "filter-lang": "cql2-json", "limit": 10000},
    ).json()
    assert body["numberMatched"] == _count(
        shared_db_url,
        "street_lights",
        "condition = 'faulty' AND ST_Intersects(geom, ST_MakeEnvelope(112.9, 28.2, 113.0, 28.3, 4490))",
    )
    near = {
        "op": "<",
        "args": [
            {
                "op": "distance_m",
                "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [112.952, 28.232]}],
            },
            300,
        ],
    }
    assert (
        client.get(
            "/collections/street_lights/items", params={"filter": json.dumps(near), "filter-lang": "cql2-json"}
        ).status_code
        == 200
    )
    names = [f["name"] for f in client.get("/functions").json()["functions"]]
    assert names == ["distance_m"]
    q = client.get("/collections/zones/queryables")
    assert q.headers["content-type"] == "application/schema+json"
    props = q.json()["properties"]
    assert props["phase"]["enum"][0] == "survey" and props["geometry"]["format"] == "geometry-multipolygon"


INJECTION = "1'; DROP TABLE zones; --"


@pytest.mark.parametrize(
    "query",
    [
        "bbox=1,2,3",
        "bbox=a,b,c,d",
        "bbox=113,28,112,29",
        "bbox=0,95,1,96",
        "bbox=-200,0,0,1",
        "bbox=1,2,3,4,5",
        "bbox=nan,1,2,3",
        "bbox-crs=EPSG:4326",
        "bbox=1,2,3,4&bbox-crs=EPSG:9999999",
        "crs=EPSG:2000",
        "crs=foo",
        "crs=EPSG:32650",
        "limit=0",
        "limit=-1",
        "limit=unlimited",
        "limit=10001",
        "limit=99999999999999",
        "limit=1.5",
        "filter=name%20LIKE",
        "filter=name%20%3D",
        "filter=nosuch%20%3D%201",
        "filter=households%20%3D%20'x'",
        "filter=S_INTERSECTS(geometry,%20POINT(1))",
        "filter-lang=cql2-json&filter=%7B%22op%22",
        "filter-lang=xml&filter=a",
        "filter=distance_m(geometry)%20<%201",
        "sortby=nosuch",
        "sortby=-nosuch",
        "properties=nosuch",
        "foo=bar",
        "limit=1&limit=2",
        "datetime=yesterday",
        "datetime=2020-01-02/2020-01-01",
        "cursor=garbage",
        "cursor=nAAAA",
        "households=many",
        "f=xml",
        *(
            f"{p}={INJECTION}"
            for p in (
                "bbox",
                "crs",
                "limit",
                "filter",
                "sortby",
                "properties",
                "datetime",
                "cursor",
                "households",
                "bbox-crs",
                "f",
            )
        ),
    ],
)
def test_bad_parameters_answer_400_with_the_parameter(client: TestClient, shared_db_url: str, query: str):
    r = client.get(f"/collections/zones/items?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and body["field"] and body["reason"]
    assert _count(shared_db_url, "zones") == 10


@pytest.mark.parametrize(
    ("name", "longest"), [("cursor", 200), ("datetime", 100), ("sortby", 2000), ("filter", 10_000)]
)
def test_items_parameters_longer_than_declared_answer_400_naming_them(client: TestClient, name: str, longest: int):
    """The items route parses its own parameters (api/ogc.py ITEMS_PARAMS): each declared maxLength
    in /api still holds, as a 400 naming the parameter."""
    doc = client.get("/api").json()
    op = doc["paths"]["/collections/{collection_id}/items"]["get"]
    declared = next(p for p in op["parameters"] if p.get("name") == name)
    assert declared["schema"]["maxLength"] == longest
    r = client.get("/collections/zones/items", params={name: "x" * (longest + 1)})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == name and f"at most {longest} characters" in r.json()["reason"]
    r = client.get("/collections/zones/items", params={name: "x" * longest})
    assert "characters" not in r.json().get("reason", "")


def test_injection_in_equality_filter_is_only_a_value(client: TestClient, shared_db_url: str):
    r = client.get("/collections/zones/items", params={"name": INJECTION})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    r = client.get("/collections/zones/items", params={"filter": "name = 'x; DROP TABLE zones; --'"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    assert _count(shared_db_url, "zones") == 10


def test_not_found(client: TestClient):
    assert client.get("/collections/nosuch/items").status_code == 404
    r = client.get("/collections/zones/items/nosuch")
    assert r.status_code == 404 and r.json()["field"] == "featureId"
    assert client.get("/collections/nosuch").status_code == 404


def test_single_item_etag_and_html(client: TestClient):
    r = client.get("/collections/zones/items/jinling")
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert r.json()["id"] == "jinling"
    assert client.get("/collections/zones/items/jinling", headers={"If-None-Match": '"1"'}).status_code == 304
    page = client.get("/collections/zones/items", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "金岭" in page.text


def test_tiles_per_layer_and_combined(client: TestClient):
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 23
    tileset = client.get("/collections/street_lights/tiles/WebMercatorQuad").json()
    limits = {m["tileMatrix"]: m for m in tileset["tileMatrixSetLimits"]}[15]
    x, y = limits["minTileCol"], limits["minTileRow"]
    found = None
    for xx in range(limits["minTileCol"], limits["maxTileCol"] + 1):
        for yy in range(limits["minTileRow"], limits["maxTileRow"] + 1):
            r = client.get(f"/collections/street_lights/tiles/WebMercatorQuad/15/{xx}/{yy}")
            if r.status_code == 200:
                found = (xx, yy, r)
                break
        if found:
            break
    assert found is not None
    x, y, r = found
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
    assert (
        client.get(
            f"/collections/street_lights/tiles/WebMercatorQuad/15/{x}/{y}", headers={"If-None-Match": r.headers["etag"]}
        ).status_code
        == 304
    )
    combined = client.get(f"/tiles/WebMercatorQuad/15/{x}/{y}")
    assert combined.status_code == 200 and len(combined.content) >= len(r.content)
    assert client.get("/collections/street_lights/tiles/WebMercatorQuad/15/0/0").status_code == 204
    assert client.get("/collections/street_lights/tiles/WebMercatorQuad/3/9/0").status_code == 400
    assert client.get("/collections/street_lights/tiles/WebMercatorQuad/23/0/0").status_code == 400
    assert client.get("/collections/street_lights/tiles/Nope/1/0/0").status_code == 404
