"""OGC API Features Part 4: writes, If-Match, history, restore, refusals that leave the database unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import auth_headers, settings_for
from tests.helpers import INSIDE, feature, point, square


@pytest.fixture
def edit(db_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c, auth_headers(db_url, "planner"), db_url


def _snapshot(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM feature_history),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM street_lights t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM zones t)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def _light(code: str = "NEW-1", lon: float = INSIDE[0], lat: float = INSIDE[1], **props: Any) -> dict[str, Any]:
    return feature(point(lon, lat), **{"code": code, "condition": "normal", "power_w": 60, **props})


def test_create_replace_patch_delete_with_history(edit):
    client, planner, url = edit
    r = client.post("/collections/street_lights/items", json=_light(), headers=planner)
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith("/collections/street_lights/items/NEW-1")
    assert r.headers["etag"] == '"1"'
    assert r.json()["geometry"]["coordinates"] == [INSIDE[0], INSIDE[1]]

    put = _light(power_w=100)
    r = client.put("/collections/street_lights/items/NEW-1", json=put, headers={**planner, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"' and r.json()["properties"]["power_w"] == 100

    r = client.patch(
        "/collections/street_lights/items/NEW-1",
        content=json.dumps({"properties": {"installed_on": "2020-05-01", "power_w": None}}),
        headers={**planner, "If-Match": '"2"', "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["installed_on"] == "2020-05-01" and props["power_w"] is None and props["version"] == 3
    assert props["condition"] == "normal"  # inspections own it (see the test below)

    r = client.delete("/collections/street_lights/items/NEW-1", headers={**planner, "If-Match": '"3"'})
    assert r.status_code == 204
    assert client.get("/collections/street_lights/items/NEW-1").status_code == 404
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT version, operation, actor, old_properties->>'power_w',"
            " new_properties->>'power_w', new_geom IS NULL FROM feature_history"
            " WHERE feature_code = 'NEW-1' ORDER BY id"
        ).fetchall()
    assert [r[:2] for r in rows] == [(1, "insert"), (2, "update"), (3, "update"), (4, "delete")]
    assert all(r[2].startswith("planner-") for r in rows)
    assert rows[1][3:5] == ("60", "100") and rows[3][5] is True


def test_history_and_restore_make_a_new_version(edit):
    client, planner, _ = edit
    before = client.get("/collections/zones/items/jinling").json()
    r = client.patch(
        "/collections/zones/items/jinling",
        json={"properties": {"households": 2000}},
        headers={**planner, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    history = client.get("/collections/zones/items/jinling/history", headers=planner).json()
    assert [h["version"] for h in history] == [2]
    assert history[0]["old_properties"]["households"] == before["properties"]["households"]
    r = client.post("/collections/zones/items/jinling/history/1/restore", headers=planner)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"3"'
    assert r.json()["properties"]["households"] == before["properties"]["households"]
    ops = [h["operation"] for h in client.get("/collections/zones/items/jinling/history", headers=planner).json()]
    assert ops == ["update", "restore"]
    assert client.post("/collections/zones/items/jinling/history/9/restore", headers=planner).status_code == 404


def test_only_planners_and_admins_write(edit):
    client, _, url = edit
    anonymous = client.post("/collections/street_lights/items", json=_light())
    assert anonymous.status_code == 401
    resident = client.post("/collections/street_lights/items", json=_light(), headers=auth_headers(url, "resident"))
    assert resident.status_code == 403
    admin = client.post("/collections/street_lights/items", json=_light(), headers=auth_headers(url, "admin"))
    assert admin.status_code == 201


def test_read_only_layer_refuses_with_405_and_says_where(edit):
    client, planner, url = edit
    before = _snapshot(url)
    r = client.post("/collections/districts/items", json=feature(square(*INSIDE), code="X", name="x"), headers=planner)
    assert r.status_code == 405 and "wuye import" in r.json()["reason"]
    r = client.delete("/collections/districts/items/430104", headers={**planner, "If-Match": '"1"'})
    assert r.status_code == 405
    assert _snapshot(url) == before


def test_zone_edit_breaking_integrity_names_ids_and_area(edit):
    client, planner, url = edit
    before = _snapshot(url)
    other = client.get("/collections/zones/items/huangnitang").json()
    r = client.patch(
        "/collections/zones/items/jinling", json={"geometry": other["geometry"]}, headers={**planner, "If-Match": '"1"'}
    )
    assert r.status_code == 409, r.text
    body = r.json()
    overlap = [v for v in body["violations"] if v["kind"] == "overlap"]
    assert overlap and overlap[0]["other_code"] == "huangnitang" and overlap[0]["area_m2"] > 1000
    assert _snapshot(url) == before


_BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[112.952, 28.232], [112.953, 28.233], [112.953, 28.232], [112.952, 28.233], [112.952, 28.232]]],
}
_UNCLOSED = {
    "type": "Polygon",
    "coordinates": [[[112.952, 28.232], [112.953, 28.232], [112.953, 28.233], [112.952, 28.233]]],
}


@pytest.mark.parametrize(
    ("layer", "body", "headers", "status", "field"),
    [
        ("green_plots", feature(_BOWTIE, code="G-BAD", condition="normal"), {}, 400, "geometry"),
        ("green_plots", feature(_UNCLOSED, code="G-BAD", condition="normal"), {}, 400, "geometry"),
        ("street_lights", feature(square(*INSIDE), code="L-BAD", condition="normal"), {}, 400, "geometry"),
        ("street_lights", _light(lon=116.4, lat=39.9), {}, 400, "geometry"),
        ("street_lights", _light(lon=INSIDE[1], lat=INSIDE[0]), {}, 400, "geometry"),
        ("street_lights", _light(condition="broken"), {}, 400, "condition"),
        ("street_lights", _light(power_w=-5), {}, 400, "power_w"),
        ("street_lights", _light(nosuch=1), {}, 400, "properties"),
        ("street_lights", _light(code="bad code!"), {}, 400, "code"),
        ("street_lights", _light(code="SL-jinling-000001"), {}, 409, "code"),
        ("street_lights", {"type": "FeatureCollection", "features": []}, {}, 400, "body"),
        (
            "street_lights",
            _light(),
            {"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/9999>"},
            400,
            "Content-Crs",
        ),
    ],
)
def test_bad_creates_leave_the_database_unchanged(edit, layer, body, headers, status, field):
    client, planner, url = edit
    before = _snapshot(url)
    r = client.post(f"/collections/{layer}/items", json=body, headers={**planner, **headers})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert _snapshot(url) == before


def test_swapped_coordinates_are_named_and_lat_first_crs_is_honoured(edit):
    client, planner, _ = edit
    r = client.post("/collections/street_lights/items", json=_light(lon=INSIDE[1], lat=INSIDE[0]), headers=planner)
    assert "swapped" in r.json()["reason"]
    r = client.post(
        "/collections/street_lights/items",
        json=_light(lon=INSIDE[1], lat=INSIDE[0]),
        headers={**planner, "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4490>"},
    )
    assert r.status_code == 201 and r.json()["geometry"]["coordinates"] == [INSIDE[0], INSIDE[1]]


def test_self_intersection_reason_is_the_geos_one(edit):
    client, planner, _ = edit
    bowtie = feature(_BOWTIE, code="G-BAD", condition="normal")
    r = client.post("/collections/green_plots/items", json=bowtie, headers=planner)
    assert "Self-intersection" in r.json()["reason"]


def test_if_match_missing_stale_and_bodies_over_the_limit(edit):
    client, planner, url = edit
    before = _snapshot(url)
    light = client.get("/collections/street_lights/items?limit=1").json()["features"][0]
    code = light["id"]
    path = f"/collections/street_lights/items/{code}"
    body = _light(code=code)
    assert client.put(path, json=body, headers=planner).status_code == 428
    assert client.patch(path, json={"properties": {}}, headers=planner).status_code == 428
    assert client.delete(path, headers=planner).status_code == 428
    stale = client.put(path, json=body, headers={**planner, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    assert client.delete(path, headers={**planner, "If-Match": '"0"'}).status_code == 412
    assert client.put(path, json=body, headers={**planner, "If-Match": "garbage"}).status_code == 400
    huge = {**body, "properties": {**body["properties"], "pad": "x" * (5 * 1024 * 1024 + 10)}}
    assert client.put(path, json=huge, headers={**planner, "If-Match": '"1"'}).status_code == 413
    assert (
        client.post(
            "/collections/street_lights/items",
            content=b"{not json",
            headers={**planner, "Content-Type": "application/geo+json"},
        ).status_code
        == 400
    )
    assert (
        client.put(
            "/collections/street_lights/items/nosuch",
            json=_light(code="nosuch"),
            headers={**planner, "If-Match": '"1"'},
        ).status_code
        == 404
    )
    assert _snapshot(url) == before


def test_part4_cannot_set_a_facility_condition_it_follows_inspections(db_url):
    """Issue 6: a facility's condition is its latest inspection's; Part 4 edits keep it."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import auth_headers, settings_for

    planner = auth_headers(db_url, "planner")
    with TestClient(create_app(settings_for(db_url))) as client:
        item = client.get("/collections/street_lights/items", params={"limit": 1, "condition": "faulty"}).json()
        feature = item["features"][0]
        fid = feature["id"]
        etag = client.get(f"/collections/street_lights/items/{fid}").headers["etag"]
        refused = client.patch(
            f"/collections/street_lights/items/{fid}",
            json={"properties": {"condition": "normal"}},
            headers={**planner, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        assert refused.status_code == 400 and refused.json()["field"] == "condition"
        moved = client.patch(
            f"/collections/street_lights/items/{fid}",
            json={"properties": {"power_w": 100}},
            headers={**planner, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["properties"]["condition"] == "faulty"
        body = {
            "type": "Feature",
            "geometry": feature["geometry"],
            "properties": {
                k: v for k, v in feature["properties"].items() if k not in ("condition", "version", "updated_at")
            },
        }
        put = client.put(
            f"/collections/street_lights/items/{fid}", json=body, headers={**planner, "If-Match": moved.headers["etag"]}
        )
        assert put.status_code == 200, put.text
        assert put.json()["properties"]["condition"] == "faulty"  # absent from the body: kept, not reset


def test_part4_cannot_set_a_road_defect_it_follows_inspections(db_url):
    """Issue 18: a road's or manhole's defect is set by an inspection with its condition; a planner's
    Part 4 edit can neither set it nor clear it, and a POSTed road starts without one."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import auth_headers, settings_for

    planner = auth_headers(db_url, "planner")
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("UPDATE roads SET defect = 'potholes', condition = 'faulty' WHERE id = "
                           "(SELECT min(id) FROM roads) RETURNING code").fetchone()  # fmt: skip
    assert row is not None
    with TestClient(create_app(settings_for(db_url))) as client:
        fid = row[0]
        got = client.get(f"/collections/roads/items/{fid}")
        assert got.json()["properties"]["defect"] == "potholes"
        patch = {"Content-Type": "application/merge-patch+json", "If-Match": got.headers["etag"]}
        for value in ("ponding", None):
            refused = client.patch(
                f"/collections/roads/items/{fid}", json={"properties": {"defect": value}}, headers={**planner, **patch}
            )
            assert refused.status_code == 400 and refused.json()["field"] == "defect", (value, refused.text)
        feature = got.json()
        body = {
            "type": "Feature",
            "geometry": feature["geometry"],
            "properties": {
                k: v for k, v in feature["properties"].items() if k not in ("defect", "version", "updated_at")
            },
        }
        put = client.put(
            f"/collections/roads/items/{fid}", json=body, headers={**planner, "If-Match": patch["If-Match"]}
        )
        assert put.status_code == 200, put.text
        assert put.json()["properties"]["defect"] == "potholes"  # absent from the body: kept, not cleared
        new = {**body, "properties": {**body["properties"], "code": "road-new-1", "defect": "potholes",
                                      "condition": "normal"}}  # fmt: skip
        posted = client.post("/collections/roads/items", json=new, headers=planner)
        assert posted.status_code == 400 and posted.json()["field"] == "defect", posted.text
