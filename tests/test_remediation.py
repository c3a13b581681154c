"""Remediation tasks (整治): workflow and illegal moves, scope, GeoJSON, progress (phases: tests/test_phases.py);
maintenance records (巡查): latest inspection sets the condition, imports, closing a case records one."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from api.cli import main
from geo.access.scope import Principal
from geo.cases import workflow as cases
from geo.cases.shapes import CaseAction, Report
from geo.programme import inspections, remediation
from geo.steps import run
from tests.conftest import DISTRICT, auth_headers, settings_for

ADMIN = Principal(username="admin-t", role="admin")


@pytest.fixture
def client(db_url: str, tmp_path):
    settings = settings_for(db_url)
    settings.db.home = tmp_path  # photos land here, one folder per test
    with TestClient(create_app(settings)) as c:
        yield c


def _new_task(client, headers, zone="yumin-south", **extra):
    body = {"item": "路灯", "planned_start": "2023-04-01", "planned_end": "2023-04-30", **extra}
    return client.post(f"/zones/{zone}/remediation", json=body, headers=headers)


def _act(client, code, headers, action, **extra):
    return client.post(f"/remediation/{code}/actions", json={"action": action, **extra}, headers=headers)


def test_task_moves_through_its_states_with_events(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",))
    created = _new_task(client, staff, geometry={"type": "Point", "coordinates": _inside(db_url, "yumin-south")})
    assert created.status_code == 201, created.text
    props = created.json()["properties"]
    code = props["code"]
    assert (props["item"], props["item_zh"], props["state"]) == ("street_lights", "路灯", "planned")
    assert code.startswith("yumin-south-R")
    assert _act(client, code, team, "start", date="2023-04-03").json()["properties"]["actual_start"] == "2023-04-03"
    done = _act(client, code, team, "finish").json()["properties"]
    assert done["state"] == "done" and done["actual_end"]
    assert _act(client, code, team, "verify").status_code == 403  # a property team cannot accept its own work
    verified = _act(client, code, staff, "verify").json()["properties"]
    assert verified["state"] == "verified" and verified["verified_on"]
    redo = _act(client, code, staff, "redo", note="灯具仍不亮").json()["properties"]
    assert redo["state"] == "in_progress" and redo["verified_on"] is None and redo["actual_end"] is None
    assert [e["action"] for e in redo["events"]] == ["create", "start", "finish", "verify", "redo"]
    assert redo["events"][-1]["note"] == "灯具仍不亮"


def _inside(db_url: str, zone: str, srid: int = 4490) -> list[float]:
    """A point inside ``zone`` (in ``srid``, x/y order)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), %s) p "
            "FROM zones WHERE code = %s) q",
            [srid, zone],
        ).fetchone()
    assert row is not None
    return [float(row[0]), float(row[1])]


def _tasks(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM remediation_tasks").fetchone()
    assert row is not None
    return int(row[0])


def test_task_geometry_is_checked_like_an_edit(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    lon, lat = _inside(db_url, "yumin-south")
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + 1e-3, lat + 1e-3], [lon + 1e-3, lat], [lon, lat + 1e-3], [lon, lat]]],
    }
    open_ring = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 1e-3, lat], [lon, lat + 1e-3]]]}
    x, y = _inside(db_url, "yumin-south", srid=4547)
    refused = [
        ({"geometry": bowtie}, {}, "geometry", "invalid geometry: Self-intersection"),
        ({"geometry": open_ring}, {}, "geometry", "closed"),
        ({"geometry": {"type": "Point", "coordinates": [lat, lon]}}, {}, "geometry", "look swapped (lat, lon)"),
        ({"geometry": {"type": "Point", "coordinates": [116.397, 39.909]}}, {}, "geometry", "outside the district"),
        ({"geometry": {"type": "Point", "coordinates": [x, y]}}, {}, "geometry", "projected metres"),
        (
            {
                "geometry": {
                    "type": "Point",
                    "coordinates": [x, y],
                    "crs": {"type": "name", "properties": {"name": "EPSG:4547"}},
                }
            },
            {},
            "geometry",
            "'crs' member is not read",
        ),
        (
            {"geometry": {"type": "Point", "coordinates": [lon, lat]}},
            {"Content-Crs": "EPSG:32650"},
            "Content-Crs",
            "is not offered",
        ),
        ({"geometry": {"type": "Point", "coordinates": [lon, lat]}}, {"Content-Crs": "EPSG:0"}, "Content-Crs", ""),
        (
            {"geometry": {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [lon, lat]}]}},
            {},
            "geometry",
            "GeometryCollection is not accepted",
        ),
        ({"geometry": {"type": "Point", "coordinates": "here"}}, {}, "geometry", "not valid GeoJSON"),
    ]
    for extra, headers, field, reason in refused:
        response = _new_task(client, {**staff, **headers}, **extra)
        assert response.status_code == 400, (extra, response.text)
        assert response.json()["field"] == field and reason in response.json()["reason"], response.json()
    assert _tasks(db_url) == 0  # nothing written
    # the same spot sent in EPSG:4547 metres, said so, is stored as CGCS2000 lon/lat
    metric = _new_task(
        client,
        {**staff, "Content-Crs": "http://www.opengis.net/def/crs/EPSG/0/4547"},
        geometry={"type": "Point", "coordinates": [x, y]},
    )
    assert metric.status_code == 201, metric.text
    assert metric.json()["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-6)
    polygon = _new_task(
        client,
        staff,
        geometry={
            "type": "Polygon",
            "coordinates": [[[lon, lat], [lon + 1e-4, lat], [lon + 1e-4, lat + 1e-4], [lon, lat + 1e-4], [lon, lat]]],
        },
    )
    assert polygon.status_code == 201 and polygon.json()["geometry"]["type"] == "MultiPolygon"
    assert _tasks(db_url) == 2


def test_task_geometry_must_touch_its_own_zone(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    lon, lat = _inside(db_url, "yumin-south")
    elsewhere = _inside(db_url, "daopo")
    point = _new_task(client, staff, geometry={"type": "Point", "coordinates": elsewhere})
    assert point.status_code == 400 and point.json()["field"] == "geometry"
    assert "outside zone 'yumin-south' (it lies in zone(s) daopo)" in point.json()["reason"]
    line = _new_task(
        client, staff, geometry={"type": "LineString", "coordinates": [elsewhere, [elsewhere[0] + 1e-3, elsewhere[1]]]}
    )
    assert line.status_code == 400 and "outside zone 'yumin-south'" in line.json()["reason"]
    assert _tasks(db_url) == 0
    # a drain from inside the zone out to the street main belongs to the zone
    drain = _new_task(
        client, staff, item="供排水", geometry={"type": "LineString", "coordinates": [[lon, lat], [lon, lat - 0.02]]}
    )
    assert drain.status_code == 201, drain.text
    assert _tasks(db_url) == 1


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def _photo(client, code, headers, stage="before", name="p.jpg", data=JPEG, mime="image/jpeg"):
    return client.post(
        f"/remediation/{code}/photos", data={"stage": stage}, files={"photo": (name, data, mime)}, headers=headers
    )


def test_before_and_after_photos_are_uploaded_listed_and_served_in_scope(client, db_url):
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",))
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    code = _new_task(client, staff).json()["id"]
    before = _photo(client, code, team, "before", name="../../etc/passwd.jpg")
    assert before.status_code == 201, before.text
    assert before.json()["content_type"] == "image/jpeg" and before.json()["stage"] == "before"
    after = _photo(client, code, team, "after", name="after.png", data=PNG, mime="image/png")
    assert after.status_code == 201 and after.json()["content_type"] == "image/png"
    before_url, after_url = before.json()["url"], after.json()["url"]
    assert before_url == f"/remediation/{code}/photos/{before.json()['id']}"
    # listed as URLs in the task's JSON (with their events) and in the collection's properties
    props = client.get(f"/remediation/{code}").json()["properties"]
    assert (props["before_photos"], props["after_photos"]) == ([before_url], [after_url])
    assert [(p["stage"], p["url"]) for p in props["photos"]] == [("before", before_url), ("after", after_url)]
    assert [e["action"] for e in props["events"]] == ["create", "photo", "photo"]
    assert props["events"][1]["actor"].startswith("property_team-") and props["version"] == 3
    listed = client.get("/remediation", params={"zone": "yumin-south"}).json()["features"]
    assert next(f for f in listed if f["id"] == code)["properties"]["after_photos"] == [after_url]
    # stored under ./var with a name of ours, nothing of the client's file name
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT path FROM remediation_photos ORDER BY id")]
    home = client.app.state.settings.db.home
    assert all(p.startswith("photos/remediation/") and ".." not in p and "passwd" not in p for p in stored)
    assert (home / stored[0]).read_bytes() == JPEG
    # served back to staff whose zones cover the task: bytes and type
    got = client.get(before_url, headers=team)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert client.get(after_url, headers=staff).content == PNG
    assert client.get(after_url, headers=auth_headers(db_url, "planner")).status_code == 200
    assert client.get(f"/remediation/{code}/photos/999999", headers=team).status_code == 404
    # outside the caller's zones: 404 for reading and writing; a wrong role 403; anonymous 401
    for outsider in (
        auth_headers(db_url, "property_team", zone_codes=("daopo",)),
        auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling"),
        auth_headers(db_url, "contractor", unit_code="contractor-xiangjiang"),
    ):
        assert client.get(before_url, headers=outsider).status_code == 404
    for outsider in (
        auth_headers(db_url, "property_team", zone_codes=("daopo",)),
        auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling"),
    ):
        refused = _photo(client, code, outsider)
        assert refused.status_code == 404 and refused.json()["field"] == "code"
    assert client.get(before_url, headers=auth_headers(db_url, "resident")).status_code == 403
    assert (
        client.get(before_url, headers=auth_headers(db_url, "survey_team", zone_codes=("yumin-south",))).status_code
        == 403
    )
    assert (
        _photo(client, code, auth_headers(db_url, "contractor", unit_code="contractor-xiangjiang")).status_code == 403
    )
    assert client.get(before_url).status_code == 401
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM remediation_photos").fetchone() == (2,)


def test_bad_photos_are_refused_and_write_nothing(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    code = _new_task(client, staff).json()["id"]
    script = _photo(client, code, staff, name="x.jpg", data=b"#!/bin/sh\nrm -rf /")
    assert script.status_code == 400 and script.json()["field"] == "photo"
    assert "JPEG, PNG or WebP" in script.json()["reason"]
    empty = _photo(client, code, staff, data=b"")
    assert empty.status_code == 400 and empty.json()["field"] == "photo"
    stage = _photo(client, code, staff, stage="during")
    assert stage.status_code == 400 and stage.json()["field"] == "stage"
    typed = _new_task(client, staff, before_photo="photos/before-1.jpg")
    assert typed.status_code == 400 and typed.json()["field"] == "before_photo"
    assert "POST /remediation/{code}/photos" in typed.json()["reason"]
    typed = _act(client, code, staff, "start", after_photo="photos/after-1.jpg")
    assert typed.status_code == 400 and typed.json()["field"] == "after_photo"
    for move in ("start", "finish", "verify"):
        assert _act(client, code, staff, move).status_code == 200
    frozen = _photo(client, code, staff, stage="after")
    assert frozen.status_code == 409 and "redo" in frozen.json()["reason"]
    props = client.get(f"/remediation/{code}").json()["properties"]
    assert props["photos"] == [] and [e["action"] for e in props["events"]] == ["create", "start", "finish", "verify"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM remediation_photos").fetchone() == (0,)
    folder = client.app.state.settings.db.home / "photos"
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def test_oversize_remediation_photo_is_413(db_url, tmp_path):
    settings = settings_for(db_url)
    settings.server.max_photo_bytes = 1000
    settings.db.home = tmp_path
    with TestClient(create_app(settings)) as client:
        staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
        code = _new_task(client, staff).json()["id"]
        big = _photo(client, code, staff, name="big.jpg", data=JPEG + b"\x00" * 5000)
        assert big.status_code == 413 and big.json()["field"] == "photo"
        assert "WUYE_MAX_PHOTO_BYTES" in big.json()["reason"]
        assert _photo(client, code, staff, data=JPEG + b"\x00" * 700).status_code == 201  # under the limit
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM remediation_photos").fetchone() == (1,)


@pytest.mark.parametrize(
    ("moves", "action", "extra", "status", "allowed"),
    [
        ([], "verify", {}, 409, "start"),
        ([], "finish", {}, 409, "start"),
        ([], "redo", {"note": "x"}, 409, "start"),
        (["start"], "start", {}, 409, "finish"),
        (["start", "finish"], "redo", {}, 400, None),  # redo needs a note
        ([], "teleport", {}, 400, None),
        ([], "start", {"date": "2999-01-01"}, 400, None),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(client, db_url, moves, action, extra, status, allowed):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    code = _new_task(client, staff).json()["id"]
    for move in moves:
        assert _act(client, code, staff, move).status_code == 200
    before = client.get(f"/remediation/{code}").json()["properties"]
    response = _act(client, code, staff, action, **extra)
    assert response.status_code == status, response.text
    if allowed:
        assert f"allowed now: {allowed}" in response.json()["reason"]
    after = client.get(f"/remediation/{code}").json()["properties"]
    assert after == before


def test_scope_other_subdistricts_zones_are_404_and_bad_input_is_400(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    assert _new_task(client, staff, zone="jinling").status_code == 404
    assert _new_task(client, staff, zone="no-such-zone").status_code == 404
    bad = _new_task(client, staff, item="扫雪")
    assert bad.status_code == 400 and bad.json()["field"] == "item"
    backwards = _new_task(client, staff, planned_start="2023-05-01", planned_end="2023-04-01")
    assert backwards.status_code == 400 and backwards.json()["field"] == "planned_end"
    code = _new_task(client, staff).json()["id"]
    other = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    assert _act(client, code, other, "start").status_code == 404
    assert _act(client, code, {}, "start").status_code == 401


def test_plan_items_progress_and_geojson_collection(client, db_url):
    with psycopg.connect(db_url) as conn:
        assert remediation.plan_items(conn, district_code=DISTRICT, actor="t") == 100
        assert remediation.plan_items(conn, district_code=DISTRICT, actor="t") == 0  # zones with tasks are skipped
        conn.commit()
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    tasks = client.get("/remediation", params={"zone": "yumin-north"}).json()
    assert tasks["type"] == "FeatureCollection" and tasks["numberReturned"] == 10
    assert {f["properties"]["item_zh"] for f in tasks["features"]} == set(remediation.ITEMS.values())
    for feature in tasks["features"][:4]:
        for move in ("start", "finish", "verify"):
            assert _act(client, feature["id"], staff, move).status_code == 200
    rows = client.get("/remediation/progress").json()
    zone = next(r for r in rows if r["zone_code"] == "yumin-north")
    assert (zone["tasks"], zone["verified"], zone["planned"], zone["verified_percent"]) == (10, 4, 6, 40)
    assert zone["overdue"] == 6  # planned_end 2023-04-30 has passed
    sub = next(r for r in rows if r["level"] == "subdistrict" and r["subdistrict_code"] == "xihu")
    assert (sub["tasks"], sub["verified"]) == (20, 4)
    district = next(r for r in rows if r["level"] == "district")
    assert (district["tasks"], district["verified"]) == (100, 4)
    body = client.get("/zones/yumin-north/remediation").json()
    assert body["progress"]["verified"] == 4 and len(body["features"]) == 10
    assert client.get("/remediation", params={"state": "verified"}).json()["numberReturned"] == 4
    assert client.get("/remediation", params={"state": "nonsense"}).status_code == 400
    assert client.get("/zones/no-such/remediation").status_code == 404


# ---------------------------------------------------------------- inspections


def _light(conn, zone: str = "jinling", layer: str = "street_lights") -> str:
    """A facility in good order lying inside ``zone`` (scope follows where a facility lies)."""
    stmt = sql.SQL(
        "SELECT f.code FROM {} f JOIN zones z ON ST_Intersects(z.geom, f.geom) "
        "WHERE z.code = %s AND f.condition = 'normal' ORDER BY f.code LIMIT 1"
    ).format(sql.Identifier(layer))
    row = conn.execute(stmt, [zone]).fetchone()
    assert row is not None, (layer, zone)
    return str(row[0])


def test_the_latest_inspection_sets_the_condition(client, db_url):
    with psycopg.connect(db_url) as conn:
        light = _light(conn)
    team = auth_headers(db_url, "property_team", zone_codes=("jinling",))
    url = f"/facilities/street_lights/{light}/inspections"
    first = client.post(url, json={"inspected_on": "2024-05-02", "condition": "故障", "note": "灯不亮"}, headers=team)
    assert first.status_code == 201, first.text
    assert client.get(url, headers=team).json()["condition"] == "faulty"
    # an older record does not override the newer one
    client.post(url, json={"inspected_on": "2024-05-01", "condition": "normal"}, headers=team)
    assert client.get(url, headers=team).json()["condition"] == "faulty"
    client.post(url, json={"inspected_on": "2024-05-03", "condition": "repairing"}, headers=team)
    body = client.get(url, headers=team).json()
    assert body["condition"] == "repairing" and body["condition_zh"] == "维修中"
    assert [i["inspected_on"] for i in body["inspections"]] == ["2024-05-03", "2024-05-02", "2024-05-01"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT condition, last_maintained FROM street_lights WHERE code = %s", [light]).fetchone()
    assert row is not None and row[0] == "repairing" and row[1] >= date(2024, 5, 3)
    future = (remediation.today() + timedelta(days=1)).isoformat()
    assert client.post(url, json={"inspected_on": future, "condition": "normal"}, headers=team).status_code == 400
    assert client.post(url, json={"inspected_on": "2024-05-03", "condition": "broken"}, headers=team).status_code == 400
    assert (
        client.post(
            "/facilities/street_lights/no-lamp/inspections",
            json={"inspected_on": "2024-05-03", "condition": "normal"},
            headers=team,
        ).status_code
        == 404
    )
    assert (
        client.post(
            url, json={"inspected_on": "2024-05-03", "condition": "normal"}, headers=auth_headers(db_url, "resident")
        ).status_code
        == 403
    )


def test_inspections_are_scoped_to_the_zones_where_the_facility_lies(client, db_url):
    with psycopg.connect(db_url) as conn:
        mine, other = _light(conn, "yumin-south"), _light(conn, "daopo")
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",))
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")  # yumin-south and -north
    record = {"inspected_on": "2024-05-02", "condition": "faulty"}
    for headers in (team, staff):
        inside = client.post(f"/facilities/street_lights/{mine}/inspections", json=record, headers=headers)
        assert inside.status_code == 201, inside.text
        assert client.get(f"/facilities/street_lights/{mine}/inspections", headers=headers).status_code == 200
        outside = client.post(f"/facilities/street_lights/{other}/inspections", json=record, headers=headers)
        assert outside.status_code == 404 and outside.json()["field"] == "facility_code"
        assert client.get(f"/facilities/street_lights/{other}/inspections", headers=headers).status_code == 404
    # an administrator works district-wide; residents and the public read no maintenance records
    admin = auth_headers(db_url, "admin")
    assert client.post(f"/facilities/street_lights/{other}/inspections", json=record, headers=admin).status_code == 201
    assert client.get(f"/facilities/street_lights/{other}/inspections", headers=admin).json()["condition"] == "faulty"
    assert client.get(f"/facilities/street_lights/{mine}/inspections").status_code == 401
    assert (
        client.get(
            f"/facilities/street_lights/{mine}/inspections", headers=auth_headers(db_url, "resident")
        ).status_code
        == 403
    )
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT facility_code, count(*) FROM inspections GROUP BY 1 ORDER BY 1").fetchall()
        assert dict(rows) == {mine: 2, other: 1}  # the refused ones wrote nothing
        assert conn.execute("SELECT condition FROM street_lights WHERE code = %s", [other]).fetchone() == ("faulty",)


def test_a_scoped_import_refuses_rows_outside_the_callers_zones(client, db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        mine, other = _light(conn, "yumin-south"), _light(conn, "daopo")
    csv = tmp_path / "mixed.csv"
    csv.write_text(
        "facility_layer,facility_code,date,inspector,condition\n"
        f"street_lights,{mine},2024-06-01,李四,faulty\n"
        f"street_lights,{other},2024-06-01,李四,faulty\n",
        encoding="utf-8",
    )
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",))
    refused = client.post(
        "/inspections/import", files={"file": ("mixed.csv", csv.read_bytes(), "text/csv")}, headers=team
    )
    assert refused.status_code == 400
    assert [(p["row"], p["field"]) for p in refused.json()["problems"]] == [(2, "facility_code")]
    assert "does not exist in the zones you act in" in refused.json()["problems"][0]["reason"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM inspections").fetchone() == (0,)
    admin = auth_headers(db_url, "admin")
    done = client.post(
        "/inspections/import", files={"file": ("mixed.csv", csv.read_bytes(), "text/csv")}, headers=admin
    )
    assert done.status_code == 200 and done.json() == {"recorded": 2}


def test_inspection_import_is_all_or_nothing_with_row_errors(client, db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        light = _light(conn, "yumin-south")
        tank = _light(conn, "yumin-north", layer="septic_tanks")
        far = _light(conn, "daopo")  # outside xihu: only the command line (an administrator) may record it
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "部件类型,部件编码,巡查日期,巡查人,状况\n"
        f"street_lights,{light},2024-06-01,李四,故障\n"
        "street_lights,no-lamp,2024-06-01,李四,故障\n"
        f"septic_tanks,{tank},2999-01-01,李四,正常\n"
        f"paths,{tank},2024-06-01,,坏了\n",
        encoding="utf-8",
    )
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    response = client.post(
        "/inspections/import", files={"file": ("bad.csv", bad.read_bytes(), "text/csv")}, headers=staff
    )
    assert response.status_code == 400
    problems = {(p["row"], p["field"]) for p in response.json()["problems"]}
    assert problems == {
        (2, "facility_code"),
        (3, "inspected_on"),
        (4, "facility_layer"),
        (4, "inspector"),
        (4, "condition"),
    }
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM inspections").fetchone() == (0,)
    good = tmp_path / "good.csv"
    good.write_text(
        "facility_layer,facility_code,date,inspector,condition,note\n"
        f"street_lights,{light},2024-06-01,李四,faulty,\n"
        f"septic_tanks,{tank},2024/6/2,李四,已拆除,填埋\n"
        f"street_lights,{far},2024-06-03,王五,repairing,\n",
        encoding="utf-8",
    )
    assert main(["inspect", "import", str(good)], settings=settings_for(db_url)) == 0  # district-wide
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT condition FROM street_lights WHERE code = %s", [far]).fetchone() == ("repairing",)
        assert conn.execute("SELECT condition FROM septic_tanks WHERE code = %s", [tank]).fetchone() == ("removed",)
        assert conn.execute("SELECT condition FROM street_lights WHERE code = %s", [light]).fetchone() == ("faulty",)


def test_closing_a_case_on_a_facility_records_an_inspection_in_its_transaction(db_url):
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT code, ST_X(geom), ST_Y(geom) FROM street_lights WHERE condition = 'faulty' ORDER BY code LIMIT 1"
        ).fetchone()
        assert row is not None
        light, lon, lat = row
        case = run(
            conn, cases.report(ADMIN, Report("light_out", lon, lat, facility_code=light), district_code=DISTRICT)
        )
        code = case["id"]
        for action, note in (("register", None), ("dispatch", None), ("handle", "已更换灯泡")):
            cases.act(conn, ADMIN, code, CaseAction(action, note=note), district_code=DISTRICT)
        assert conn.execute("SELECT count(*) FROM inspections").fetchone() == (0,)
        cases.act(
            conn,
            ADMIN,
            code,
            CaseAction("verify"),
            district_code=DISTRICT,
            on_verified=inspections.case_recorder(district_code=DISTRICT, actor=ADMIN.actor),
        )
        conn.commit()
        history = inspections.history(conn, ADMIN, "street_lights", light)
    assert history["condition"] == "normal"
    assert history["inspections"][0]["case_code"] == code and history["inspections"][0]["source"] == "case"
