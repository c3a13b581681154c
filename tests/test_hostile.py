"""Hostile input never answers 5xx (issue 13 point 1): a control character in any text field of
any route is a 400 naming the field; nothing is written.

Two sweeps: the inputs the issue found answering 500 (complete, authorised requests, so only the
NUL is wrong), then every string parameter, form field and JSON body member the OpenAPI document
declares, on every route. :data:`TALLY` counts what was sent by kind, for bench/results/security.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import auth_headers, settings_for
from tests.helpers import INSIDE, count, feature, point, square

TALLY: Counter[str] = Counter()  # kind of input -> how many were sent
FIVE_XX: Counter[str] = Counter()
NUL = "a\x00b"


def write_tally(module: str, tally: Counter[str], five_xx: Counter[str]) -> None:
    """Leave the counts for bench/security.py (which sets WUYE_HOSTILE_TALLY to a folder)."""
    folder = os.environ.get("WUYE_HOSTILE_TALLY")
    if folder:
        Path(folder, f"{module}.json").write_text(json.dumps({"sent": tally, "five_xx": five_xx}))


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    yield
    write_tally("test_hostile", TALLY, FIVE_XX)


@pytest.fixture(scope="module")
def client(shared_db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(shared_db_url)), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def admin(shared_db_url: str) -> dict[str, str]:
    return auth_headers(shared_db_url, "admin")


def refused(response: Any, field: str, kind: str) -> None:
    """400 naming ``field`` (Open311: its error array naming it)."""
    TALLY[kind] += 1
    if response.status_code >= 500:
        FIVE_XX[kind] += 1
    assert response.status_code == 400, (field, response.status_code, response.text[:300])
    if response.headers.get("content-type", "").startswith("text/html"):  # a page: the error page
        assert f"“{field}”" in response.text and "控制字符" in response.text, response.text[-600:]
        return
    body = response.json()
    if isinstance(body, list):  # Open311
        assert field in body[0]["description"], body
    else:
        assert body["field"] == field, body
        assert "控制字符" in body["reason_zh"], body


def test_the_inputs_that_answered_500_are_400_naming_the_field(client, admin, shared_db_url):
    lon, lat = INSIDE
    with psycopg_connect(shared_db_url) as conn:
        cases_before = count(conn, "cases")
    case = {"category": "light_out", "lon": lon, "lat": lat}
    refused(client.post("/cases", json={**case, "description": NUL}), "description", "json")
    refused(client.post("/cases", json={**case, "reporter_name": NUL}), "reporter_name", "json")
    refused(client.post("/auth/token", data={"username": NUL, "password": "x"}), "username", "form")
    user = {"username": NUL, "password": "secret-pass", "role": "planner"}
    refused(client.post("/admin/users", json=user, headers=admin), "username", "json")
    zone = feature(
        square(lon, lat, 0.0005), code="Z-HOSTILE", name=NUL, kind="resettlement", subdistrict_code="guanshaling"
    )
    refused(client.post("/collections/zones/items", json=zone, headers=admin), "properties.name", "json")
    light = feature(point(lon, lat), code="L-HOSTILE", condition="normal", note=NUL)
    refused(client.post("/collections/street_lights/items", json=light, headers=admin), "properties.note", "json")
    form = {"api_key": "k", "service_code": "light_out", "lat": str(lat), "long": str(lon)}
    refused(client.post("/open311/v2/requests.json", data={**form, "description": NUL}), "description", "form")
    refused(client.post("/open311/v2/requests.json", data={**form, "first_name": NUL}), "first_name", "form")
    answer = {"household": NUL, "answered_on": "2026-05-01", "satisfied": True}
    refused(client.post("/zones/jinling/survey", json=answer, headers=admin), "household", "json")
    task = {"item": "路灯", "title": NUL}
    refused(client.post("/zones/jinling/remediation", json=task, headers=admin), "title", "json")
    refused(client.get("/cases", params={"zone": NUL}, headers=admin), "zone", "query")
    refused(client.get(f"/collections/zones/items/{quote(NUL)}"), "feature_id", "path")
    for char in ("\x01", "\x1b", "\x7f", "\x85", "\ud800"):
        body = json.dumps({**case, "description": f"x{char}y"})  # ASCII-escaped: the surrogate travels
        refused(
            client.post("/cases", content=body, headers={"Content-Type": "application/json"}), "description", "json"
        )
    with psycopg_connect(shared_db_url) as conn:
        assert count(conn, "cases") == cases_before  # nothing half-written
        assert conn.execute("SELECT count(*) FROM zones WHERE code = 'Z-HOSTILE'").fetchone() == (0,)


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_tab_and_newline_stay_allowed_in_notes(client, shared_db_url):
    lon, lat = INSIDE
    body = {"category": "light_out", "lon": lon, "lat": lat, "description": "第一行\n\t第二行\r\n"}
    r = client.post("/cases", json=body)
    assert r.status_code == 201, r.text


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _is_text(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _schema(doc, schema)
    options = schema.get("anyOf", [schema])
    return any(_schema(doc, o).get("type") == "string" and "enum" not in o and "format" not in o for o in options)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def test_every_declared_text_input_refuses_a_nul(client, admin):
    doc = client.get("/openapi.json").json()
    sent = Counter[str]()
    for path, method, op in _operations(doc):
        params = op.get("parameters", [])
        filled = {p["name"]: "x" for p in params if p["in"] == "path"}
        url = path.format(**filled)
        for p in params:
            if p["in"] == "path":
                r = client.request(method, path.format(**{**filled, p["name"]: quote(NUL)}), headers=admin)
                refused(r, p["name"], "path")
                sent["path"] += 1
            elif p["in"] == "query" and _is_text(doc, p.get("schema", {})):
                refused(client.request(method, url, params={p["name"]: NUL}, headers=admin), p["name"], "query")
                sent["query"] += 1
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            schema = _schema(doc, content.get("schema", {}))
            names = [n for n, s in schema.get("properties", {}).items() if _is_text(doc, s)]
            for name in names:
                if media.endswith("json"):
                    r = client.request(method, url, json={name: NUL}, headers=admin)
                    kind = "json"
                else:
                    r = client.request(method, url, data={name: NUL}, headers=admin)
                    kind = "form"
                refused(r, name, kind)
                sent[kind] += 1
            if media.endswith("json") and not names:  # a free-form body (GeoJSON Feature, patch)
                r = client.request(method, url, json={"properties": {"name": NUL}}, headers=admin)
                refused(r, "properties.name", "json")
                sent["json"] += 1
    # the document declares enough for the sweep to mean something
    assert sent["query"] >= 20 and sent["json"] >= 40 and sent["form"] >= 10 and sent["path"] >= 20, sent


def _text_without_limit(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _schema(doc, schema)
    if schema.get("type") == "array":
        return _text_without_limit(doc, schema.get("items", {}))
    options = [_schema(doc, o) for o in schema.get("anyOf", [schema])]
    return any(
        o.get("type") == "string" and not {"enum", "format", "contentMediaType", "maxLength"} & set(o) for o in options
    ) or any(o.get("type") == "array" and _text_without_limit(doc, o.get("items", {})) for o in options)


def test_every_text_input_declares_its_maximum_length(client):
    """Issue 13 point 8: names, notes, codes, query parameters: each has a maxLength in /api (path
    parameters are codes looked up, bounded by the URL)."""
    doc = client.get("/openapi.json").json()
    unlimited = []
    for path, method, op in _operations(doc):
        for p in op.get("parameters", []):
            if p["in"] == "query" and _text_without_limit(doc, p.get("schema", {})):
                unlimited.append(f"{method} {path} {p['in']} {p['name']}")
        for content in op.get("requestBody", {}).get("content", {}).values():
            schema = _schema(doc, content.get("schema", {}))
            for name, prop in schema.get("properties", {}).items():
                if _text_without_limit(doc, prop):
                    unlimited.append(f"{method} {path} body {name}")
    assert not unlimited, unlimited


@pytest.mark.parametrize(
    "text",
    [
        "households > 99999999999999999999",
        "households > 1e400",
        "households < -1e400",
        "distance_m(geometry, POINT(200 100)) < 100",
        "S_INTERSECTS(geometry, POINT(112.95 95))",
        "S_INTERSECTS(geometry, BBOX(0, 0, 500, 10))",
        " OR ".join(f"households = {i}" for i in range(101)),
        " OR ".join(f"households = {i}" for i in range(250)),
        "NOT (" * 25 + "households = 1" + ")" * 25,
        "(" * 500 + "households = 1" + ")" * 500,
    ],
)
def test_cql2_out_of_range_or_too_big_is_400_naming_filter(client, text):
    r = client.get("/collections/zones/items", params={"filter": text})
    TALLY["cql2"] += 1
    FIVE_XX["cql2"] += r.status_code >= 500
    assert r.status_code == 400, r.text[:300]
    assert r.json()["field"] == "filter", r.json()


@pytest.mark.parametrize(
    "text",
    [
        " OR ".join(f"households = {i}" for i in range(100)),  # the documented limit holds
        "households > 2.5",
        "distance_m(geometry, POINT(-66 0)) < 100",
        "distance_m(geometry, POINT(112.95 28.23)) < 1e300",
    ],
)
def test_cql2_within_the_limits_answers(client, text):
    r = client.get("/collections/zones/items", params={"filter": text})
    TALLY["cql2"] += 1
    FIVE_XX["cql2"] += r.status_code >= 500
    assert r.status_code in (200, 400), r.text[:300]
    if "households = 99" in text or "2.5" in text:
        assert r.status_code == 200, r.text[:300]


# -- strict input (issue 13 point 8) -------------------------------------------------------------------
def test_coordinates_must_be_numbers(client, admin):
    lon, lat = INSIDE
    case = {"category": "light_out", "geometry": {"type": "Point", "coordinates": [str(lon), str(lat)]}}
    r = client.post("/cases", json=case)
    assert r.status_code == 400 and r.json()["field"].startswith("geometry.coordinates"), r.text
    r = client.post("/cases", json={"category": "light_out", "lon": str(lon), "lat": lat})
    assert r.status_code == 400 and r.json()["field"] == "lon", r.text
    light = feature({"type": "Point", "coordinates": [str(lon), lat]}, code="L-STR", condition="normal")
    r = client.post("/collections/street_lights/items", json=light, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "geometry" and "coordinates" in r.json()["reason"], r.text
    light = feature({"type": "Point", "coordinates": [lon, True]}, code="L-STR", condition="normal")
    r = client.post("/collections/street_lights/items", json=light, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "geometry" and "coordinates" in r.json()["reason"], r.text


CRS_4490 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}


def test_a_geojson_crs_member_is_refused_pointing_at_content_crs(client, admin):
    lon, lat = INSIDE
    light = {**feature(point(lon, lat), code="L-CRS", condition="normal"), "crs": CRS_4490}
    r = client.post("/collections/street_lights/items", json=light, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "body.crs" and "Content-Crs" in r.json()["reason"], r.text
    light = feature({**point(lon, lat), "crs": CRS_4490}, code="L-CRS", condition="normal")
    r = client.post("/collections/street_lights/items", json=light, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "geometry.crs", r.text
    case = {"category": "light_out", "geometry": {**point(lon, lat), "crs": CRS_4490}}
    r = client.post("/cases", json=case)
    assert r.status_code == 400 and r.json()["field"] == "geometry.crs", r.text
    assert "Content-Crs" in r.json()["reason_zh"]


def test_if_match_compares_strongly(client, admin):
    lon, lat = INSIDE
    light = feature(point(lon + 0.0003, lat), code="L-WEAK", condition="normal")
    r = client.post("/collections/street_lights/items", json=light, headers=admin)
    assert r.status_code == 201, r.text
    etag = r.headers["ETag"]
    patch = {"properties": {"power_w": 100}}
    headers = {**admin, "Content-Type": "application/merge-patch+json"}
    r = client.patch(
        "/collections/street_lights/items/L-WEAK",
        content=json.dumps(patch),
        headers={**headers, "If-Match": f"W/{etag}"},
    )
    assert r.status_code == 412 and r.json()["field"] == "If-Match", r.text
    r = client.patch(
        "/collections/street_lights/items/L-WEAK", content=json.dumps(patch), headers={**headers, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    assert (
        client.delete(
            "/collections/street_lights/items/L-WEAK", headers={**admin, "If-Match": r.headers["ETag"]}
        ).status_code
        == 204
    )


def test_text_longer_than_its_limit_is_400_and_the_database_holds_the_limit_too(client, admin, shared_db_url):
    lon, lat = INSIDE
    zone = feature(
        square(lon, lat, 0.0005), code="Z-LONG", name="长" * 10_000, kind="resettlement", subdistrict_code="guanshaling"
    )
    r = client.post("/collections/zones/items", json=zone, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "name", r.text
    r = client.post("/cases", json={"category": "light_out", "lon": lon, "lat": lat, "description": "x" * 2001})
    assert r.status_code == 400 and r.json()["field"] == "description", r.text
    import psycopg

    with psycopg.connect(shared_db_url) as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="name_len"):
            conn.execute("UPDATE zones SET name = repeat('长', 201) WHERE code = 'jinling'")
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="due_on_range"):
            conn.execute(
                "INSERT INTO zone_phase_deadlines (zone_code, phase, due_on, set_by)"
                " VALUES ('jinling', 'survey', DATE '0001-01-01', 'tests')"
            )


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "2999-01-01"])
def test_dates_out_of_the_sane_range_are_400(client, admin, day):
    answer = {"household": "1-101", "answered_on": day, "satisfied": True}
    r = client.post("/zones/jinling/survey", json=answer, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "answered_on", r.text
    r = client.post("/zones/jinling/remediation", json={"item": "路灯", "planned_start": "0001-01-01"}, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "planned_start", r.text


def _survey_csv(*rows: str) -> bytes:
    return ("小区,楼栋,户号,调查日期,调查员,是否满意\n" + "\n".join(rows) + "\n").encode("utf-8")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("jinling,1栋,1-\x0001,2023-10-10,复查组,是", "household"),
        ("jinling,1栋,1-\x0b01,2023-10-10,复查组,是", "household"),
        ("jinling,1栋," + "户" * 100 + ",2023-10-10,复查组,是", "household"),
        ("jinling,1栋,1-001,1999-10-10,复查组,是", "answered_on"),
        ("jinling,1栋,1-001,2023-10-10,复" + "\x1f" + ",是", "surveyor"),
    ],
)
def test_survey_imports_refuse_control_characters_long_text_and_old_dates(client, admin, shared_db_url, row, field):
    with psycopg_connect(shared_db_url) as conn:
        before = count(conn, "survey_answers")
    files = {"file": ("调查.csv", _survey_csv(row), "text/csv")}
    r = client.post("/surveys/import", files=files, headers=admin)
    TALLY["import"] += 1
    FIVE_XX["import"] += r.status_code >= 500
    assert r.status_code == 400, r.text[:300]
    assert field in r.text, r.text[:300]
    with psycopg_connect(shared_db_url) as conn:
        assert count(conn, "survey_answers") == before


def test_layer_imports_refuse_control_characters_and_long_names(shared_db_url, tmp_path):
    from geo.errors import ImportRejected
    from geo.io.importer import import_file
    from layers.catalogue import load_catalogue
    from tests.conftest import DISTRICT
    from tests.helpers import write_geojson

    lon, lat = INSIDE
    features = [
        feature(
            square(lon, lat, 0.0002),
            code="Z-IMP-1",
            name="名\x00称",
            kind="resettlement",
            subdistrict_code="guanshaling",
        ),
        feature(
            square(lon + 0.001, lat, 0.0002),
            code="Z-IMP-2",
            name="长" * 201,
            kind="resettlement",
            subdistrict_code="guanshaling",
        ),
    ]
    path = write_geojson(tmp_path / "zones.geojson", features)
    with psycopg_connect(shared_db_url) as conn, pytest.raises(ImportRejected) as caught:
        import_file(conn, load_catalogue(), path, layer="zones", district_code=DISTRICT, actor="tests")
    problems = {(p["row"], p["field"]) for p in caught.value.details["problems"]}
    assert {(1, "name"), (2, "name")} <= problems, problems
    TALLY["import"] += 2


@pytest.mark.parametrize("field", ["unit_code", "subdistrict_code", "zone_codes"])
def test_an_empty_scope_code_is_400_not_a_foreign_key_500(client, admin, shared_db_url, field):
    """Found by schemathesis (bench/security.py): unit_code "" reached the foreign key."""
    from geo.access import users
    from tests.conftest import DISTRICT

    name = f"scope-{field}-{os.getpid()}"
    with psycopg_connect(shared_db_url) as conn:
        users.create_user(
            conn, username=name, password="secret-pass", role="planner", district_code=DISTRICT, actor="tests"
        )
    change = {field: [""] if field == "zone_codes" else ""}
    r = client.patch(f"/admin/users/{name}", json=change, headers=admin)
    TALLY["json"] += 1
    FIVE_XX["json"] += r.status_code >= 500
    assert r.status_code == 400 and r.json()["field"] == field, r.text
