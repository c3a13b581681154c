"""Cases: intake, routing by spatial join, workflow, scope, idempotency, re-routing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from api.app import create_app
from api.cli import main
from geo.access.scope import Principal
from geo.cases import workflow as cases
from geo.cases.shapes import Report
from geo.spatial import coords
from geo.steps import run
from tests.conftest import DEFAULT_SCOPE, DISTRICT, auth_headers, settings_for

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _inside(conn, zone: str) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _point_in_section(conn, section: str) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM contract_sections WHERE code = %s) q",
        [section],
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _report(client, lon, lat, category="garbage_pile", headers=None, **extra):
    return client.post("/cases", json={"category": category, "lon": lon, "lat": lat, **extra}, headers=headers or {})


def test_report_in_a_section_that_covers_the_kind_goes_to_its_contractor(client, db_url):
    with psycopg.connect(db_url) as conn:
        section = conn.execute(
            "SELECT code, zone_code, contractor_unit FROM contract_sections "
            "WHERE 'sanitation' = ANY(service_kinds) ORDER BY code LIMIT 1"
        ).fetchone()
        assert section is not None
        lon, lat = _point_in_section(conn, section[0])
    response = _report(client, lon, lat, description="3栋旁垃圾堆积", reporter_phone="13800000001")
    assert response.status_code == 201, response.text
    props = response.json()["properties"]
    assert (props["zone_code"], props["section_code"], props["unit_code"], props["routing_rule"]) == (
        section[1],
        section[0],
        section[2],
        "section_contractor",
    )
    assert props["state"] == "reported" and response.headers["location"] == f"/cases/{props['code']}"
    assert props["due_at"] > props["reported_at"]


def test_kind_not_covered_by_the_section_goes_to_the_zone_team(client, db_url):
    with psycopg.connect(db_url) as conn:
        section = conn.execute(
            "SELECT s.code, z.property_unit FROM contract_sections s JOIN zones z "
            "ON z.code = s.zone_code WHERE NOT 'public_facilities' = ANY(s.service_kinds) "
            "ORDER BY s.code LIMIT 1"
        ).fetchone()
        assert section is not None
        lon, lat = _point_in_section(conn, section[0])
    props = _report(client, lon, lat, category="road_uneven").json()["properties"]
    assert (props["unit_code"], props["routing_rule"]) == (section[1], "zone_team")


def test_public_order_goes_to_the_subdistrict_office(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "daopo")
    props = _report(client, lon, lat, category="流动摊贩").json()["properties"]
    assert (props["zone_code"], props["unit_code"], props["routing_rule"]) == (
        "daopo",
        "office-wangyue",
        "subdistrict_office",
    )


def test_outside_every_zone_is_kept_unassigned_for_triage(client, db_url):
    # the sub-district centre of 岳麓街道 lies outside its two zones
    response = _report(client, 112.935, 28.165)
    assert response.status_code == 201
    props = response.json()["properties"]
    assert props["assigned"] is False and "zone_code" not in props and props["subdistrict_code"] == "yuelu"
    admin = auth_headers(client.app.state.settings.db.database_url, "admin")
    triage = client.get("/cases", params={"unassigned": "true"}, headers=admin).json()
    assert [f["id"] for f in triage["features"]] == [props["code"]]


@pytest.mark.parametrize(
    ("lon", "lat", "reason"),
    [
        (113.5, 28.5, "outside district 430104"),
        (28.2325, 112.952, "coordinates look swapped"),
        (200.0, 28.2, "is not a longitude/latitude pair"),
    ],
)
def test_points_outside_or_swapped_are_refused_and_nothing_is_written(client, db_url, lon, lat, reason):
    response = _report(client, lon, lat)
    assert response.status_code == 400 and reason in response.json()["reason"]
    assert response.json()["field"] == "geometry"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (0,)


def test_bad_bodies_name_the_field(client):
    assert client.post("/cases", json={"category": "garbage_pile"}).status_code == 400
    unknown = _report(client, 112.95, 28.23, category="ufo_sighting")
    assert unknown.status_code == 400 and unknown.json()["field"] == "category"
    bad_sys = _report(client, 112.95, 28.23, coord_sys="utm")
    assert bad_sys.status_code == 400 and "coord_sys" in bad_sys.json()["reason"]


def test_a_point_on_the_shared_edge_of_two_parts_goes_to_the_first_code(client, db_url):
    with psycopg.connect(db_url) as conn:
        # a vertex of the cut line: the two parts share it exactly
        row = conn.execute(
            "SELECT ST_X(d.geom), ST_Y(d.geom) FROM zones a, zones b, ST_DumpPoints(a.geom) d "
            "WHERE a.code = 'yumin-north' AND b.code = 'yumin-south' AND ST_Covers(b.geom, d.geom) "
            "ORDER BY 1 LIMIT 1"
        ).fetchone()
        assert row is not None
        on_both = conn.execute(
            "SELECT count(*) FROM zones WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4490))", row
        ).fetchone()
        assert on_both == (2,)
    for _ in range(2):
        props = _report(client, row[0], row[1]).json()["properties"]
        assert props["zone_code"] == "yumin-north"


def test_gcj02_and_bd09_input_is_converted_once_on_the_way_in(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "jinling")
    for system, forward in (("gcj02", coords.wgs84_to_gcj02), ("bd09", coords.wgs84_to_bd09)):
        glon, glat = forward(lon, lat)
        props = _report(client, float(glon), float(glat), coord_sys=system).json()
        stored = props["geometry"]["coordinates"]
        _, _, error_m = GEOD.inv(lon, lat, stored[0], stored[1])
        assert error_m < 0.5
        _, _, offset_m = GEOD.inv(lon, lat, float(glon), float(glat))
        assert offset_m > 300  # the raw phone position would have been far off
        assert props["properties"]["zone_code"] == "jinling"


def test_nearest_facility_within_30_m_is_linked(client, db_url):
    with psycopg.connect(db_url) as conn:
        light = conn.execute("SELECT code, ST_X(geom), ST_Y(geom) FROM street_lights ORDER BY code LIMIT 1").fetchone()
        assert light is not None
    lon, lat, _ = GEOD.fwd(light[1], light[2], 90, 5.0)  # 5 m east of the lamp
    props = _report(client, lon, lat, category="light_out").json()["properties"]
    assert props["facility_layer"] == "street_lights"
    with psycopg.connect(db_url) as conn:
        nearest = conn.execute(
            "SELECT code FROM street_lights ORDER BY ST_Distance(ST_Transform(geom, 4547), "
            "ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 4547)) LIMIT 1",
            [lon, lat],
        ).fetchone()
    assert nearest is not None and props["facility_code"] == nearest[0]
    assert props["facility_distance_m"] <= 5.1
    named = _report(client, lon, lat, category="light_out", facility_code="no-such-lamp")
    assert named.status_code == 400 and named.json()["field"] == "facility_code"
    by_code = _report(client, lon, lat, category="light_out", facility_code=nearest[0]).json()["properties"]
    assert by_code["facility_code"] == nearest[0] and by_code["facility_distance_m"] <= 5.1
    wrong_layer = _report(client, lon, lat, category="illegal_parking", facility_code=nearest[0])
    assert wrong_layer.status_code == 400 and wrong_layer.json()["field"] == "facility_code"
    with psycopg.connect(db_url) as conn:  # the refused reports wrote nothing, not even an event
        assert conn.execute("SELECT count(*), (SELECT count(*) FROM case_events) FROM cases").fetchone() == (2, 2)


def test_the_intake_answer_is_the_case_as_stored(client, db_url):
    """Intake builds its answer in the insert's statement; it must equal what a later read gives."""
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "lichen")
    staff = auth_headers(db_url, "admin")
    first = _report(
        client, lon, lat, reporter_name="张三", reporter_phone="13900000000", description="楼下垃圾堆积"
    ).json()
    answer = _report(client, lon, lat, reporter_name="李四", description="又堆了", headers=staff).json()
    stored = client.get(f"/cases/{answer['id']}", headers=staff).json()
    assert [d["code"] for d in answer.pop("possible_duplicates")] == [first["id"]]
    for key in ("reported_at", "due_at"):  # the same instants, however the text spells them
        assert datetime.fromisoformat(answer["properties"].pop(key)) == datetime.fromisoformat(
            stored["properties"].pop(key)
        )
    events = answer["properties"].pop("events"), stored["properties"].pop("events")
    assert [(e["action"], e["actor"], e["note"], e["to_state"], e["details"]) for e in events[0]] == [
        (e["action"], e["actor"], e["note"], e["to_state"], e["details"]) for e in events[1]
    ]
    assert [(e["action"], e["note"], e["to_state"]) for e in events[0]] == [("report", "又堆了", "reported")]
    assert answer == stored
    assert answer["properties"]["reporter_name"] == "李四" and answer["properties"]["zone_code"] == "lichen"


def test_duplicates_nearby_are_offered(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "lichen")
    first = _report(client, lon, lat).json()
    lon2, lat2, _ = GEOD.fwd(lon, lat, 0, 20.0)
    second = _report(client, lon2, lat2).json()
    # anonymous: the cell, not the metres
    assert [d["code"] for d in second["possible_duplicates"]] == [first["id"]]
    assert "distance_m" not in second["possible_duplicates"][0]
    assert second["possible_duplicates"][0]["proximity"] in ("same_cell", "adjacent_cell")
    # staff in the case's area: the metres
    staff = auth_headers(db_url, "admin")
    third = _report(client, lon2, lat2, headers=staff).json()
    assert [d["code"] for d in third["possible_duplicates"]][-1] == first["id"]
    assert 19 < third["possible_duplicates"][-1]["distance_m"] < 21
    other_kind = _report(client, lon2, lat2, category="drain_blocked").json()
    assert other_kind["possible_duplicates"] == []


def _case_in(client, db_url, zone="yumin-south", category="garbage_pile") -> str:
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, zone)
    response = _report(client, lon, lat, category=category, reporter_name="张三", reporter_phone="13900000000")
    assert response.status_code == 201
    return str(response.json()["id"])


def _act(client, code, headers, action, **extra):
    return client.post(f"/cases/{code}/actions", json={"action": action, **extra}, headers=headers)


def test_the_whole_workflow_and_its_events(client, db_url):
    code = _case_in(client, db_url)
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    unit = client.get(f"/cases/{code}", headers=staff).json()["properties"]["unit_code"]
    with psycopg.connect(db_url) as conn:
        kind = conn.execute("SELECT kind FROM units WHERE code = %s", [unit]).fetchone()
    assert kind is not None
    worker_role = "contractor" if kind[0] in ("contractor", "district_company") else "property_team"
    worker = auth_headers(
        db_url,
        worker_role,
        **({"unit_code": unit} if worker_role == "contractor" else {"zone_codes": ("yumin-south",), "unit_code": unit}),
    )
    steps = [
        (staff, "register", {}),
        (staff, "dispatch", {}),
        (worker, "start", {}),
        (worker, "handle", {"note": "已清运"}),
        (staff, "verify", {}),
    ]
    for headers, action, extra in steps:
        response = _act(client, code, headers, action, **extra)
        assert response.status_code == 200, (action, response.text)
    final = client.get(f"/cases/{code}", headers=staff).json()["properties"]
    assert final["state"] == "closed" and final["closed_at"]
    assert [e["action"] for e in final["events"]] == ["report", "register", "dispatch", "start", "handle", "verify"]
    assert final["events"][4]["note"] == "已清运"
    reopened = _act(client, code, staff, "reopen", note="居民反映未清理干净")
    assert reopened.json()["properties"]["state"] == "reopened"


@pytest.mark.parametrize(
    ("action", "extra", "status", "field"),
    [
        ("verify", {}, 409, "action"),
        ("start", {}, 409, "action"),
        ("reject", {}, 400, "note"),
        ("mark_duplicate", {}, 400, "duplicate_of"),
        ("mark_duplicate", {"duplicate_of": "C-none"}, 400, "duplicate_of"),
        ("teleport", {}, 400, "action"),
        ("dispatch", {}, 409, "action"),
    ],
)
def test_illegal_moves_are_refused_and_write_nothing(client, db_url, action, extra, status, field):
    code = _case_in(client, db_url)
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    response = _act(client, code, staff, action, **extra)
    assert response.status_code == status and response.json()["field"] == field
    events = client.get(f"/cases/{code}", headers=staff).json()["properties"]["events"]
    assert [e["action"] for e in events] == ["report"]


def test_reject_with_a_reason_and_duplicate_marking(client, db_url):
    first, second = _case_in(client, db_url), _case_in(client, db_url)
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    assert _act(client, first, staff, "reject", note="非本辖区事务").json()["properties"]["state"] == "rejected"
    dup = _act(client, second, staff, "mark_duplicate", duplicate_of=first)
    assert dup.status_code == 200 and dup.json()["properties"]["state"] == "duplicate"


def test_scope_other_subdistrict_staff_get_404_and_residents_403(client, db_url):
    code = _case_in(client, db_url, zone="daopo")  # 望岳
    xihu = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    assert _act(client, code, xihu, "register").status_code == 404
    wangyue = auth_headers(db_url, "subdistrict_staff", subdistrict_code="wangyue")
    assert _act(client, code, wangyue, "register").status_code == 200
    resident = auth_headers(db_url, "resident")
    assert _act(client, code, resident, "verify").status_code == 403
    assert _act(client, code, {}, "register").status_code == 401
    contractor = auth_headers(db_url, "contractor", **DEFAULT_SCOPE["contractor"])
    assert _act(client, code, contractor, "handle", note="x").status_code == 404


def test_private_fields_only_for_staff_in_scope_and_the_reporter(client, db_url):
    resident = auth_headers(db_url, "resident")
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "yumin-north")
    mine = _report(client, lon, lat, headers=resident, reporter_phone="13700000000").json()["id"]
    for headers, full in (
        (resident, True),
        ({}, False),
        (auth_headers(db_url, "resident"), False),
        (auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu"), True),
        (auth_headers(db_url, "subdistrict_staff", subdistrict_code="wangyue"), False),
        (auth_headers(db_url, "admin"), True),
    ):
        props = client.get(f"/cases/{mine}", headers=headers).json()["properties"]
        assert ("reporter_phone" in props) is full and ("events" in props) is full
        assert (props.get("location_precision_m") == 50) is not full
    public = client.get(f"/cases/{mine}").json()["geometry"]["coordinates"]
    _, _, moved = GEOD.inv(lon, lat, public[0], public[1])
    assert 0 < moved <= 36  # snapped to the 50 m grid: at most half a diagonal away


def test_staff_lists_hold_only_their_scope(client, db_url):
    _case_in(client, db_url, zone="daopo")
    south = _case_in(client, db_url, zone="yumin-south")
    xihu = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    listed = client.get("/cases", headers=xihu).json()["features"]
    assert [f["id"] for f in listed] == [south]
    public = client.get("/cases").json()["features"]
    assert len(public) == 2 and all("reporter_phone" not in f["properties"] for f in public)
    assert client.get("/cases", params={"state": "lost"}).status_code == 400
    assert client.get("/cases", params={"limit": 0}).status_code == 400


def test_paging_is_keyset(client, db_url):
    codes = [_case_in(client, db_url) for _ in range(5)]
    admin = auth_headers(db_url, "admin")
    first = client.get("/cases", params={"limit": 2}, headers=admin).json()
    second = client.get("/cases", params={"limit": 2, "after": first["next_after"]}, headers=admin).json()
    seen = [f["id"] for f in first["features"] + second["features"]]
    assert seen == list(reversed(codes))[:4]


def test_idempotency_key_returns_the_first_answer(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "ansu")
    headers = {"Idempotency-Key": "phone-42-report-1"}
    first = _report(client, lon, lat, headers=headers)
    again = _report(client, lon, lat, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers and again.headers["location"] == first.headers["location"]
    other = _report(client, lon + 0.0001, lat, headers=headers)
    assert other.status_code == 400 and other.json()["field"] == "Idempotency-Key"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (1,)


def test_concurrent_retries_with_one_key_create_one_case(db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "huangnitang")
    answers: list[str] = []
    with TestClient(create_app(settings_for(db_url))) as client:

        def post() -> None:
            r = _report(client, lon, lat, headers={"Idempotency-Key": "same-key"})
            answers.append(r.json()["id"])

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(answers) == 6 and len(set(answers)) == 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (1,)


def test_boundary_edit_reroutes_open_cases_with_an_event(client, db_url):
    code = _case_in(client, db_url, zone="shangduifang", category="safety_hazard")  # routed to the zone team
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute("SELECT unit_code, zone_code FROM cases WHERE code = %s", [code]).fetchone()
        area = conn.execute("SELECT ST_AsBinary(geom) FROM zones WHERE code = 'shangduifang'").fetchone()
        assert before == ("team-shangduifang", "shangduifang") and area is not None
        with conn.transaction():
            conn.execute("UPDATE zones SET property_unit = 'team-daopo' WHERE code = 'shangduifang'")
            moved = cases.reassign_within(
                conn, bytes(area[0]), district_code=DISTRICT, actor="planner-x", reason="zone edit"
            )
        assert moved == 1
        after = conn.execute("SELECT unit_code FROM cases WHERE code = %s", [code]).fetchone()
        assert after == ("team-daopo",)
        event = conn.execute(
            "SELECT actor, action, details->>'from_unit', details->>'to_unit' FROM case_events "
            "e JOIN cases c ON c.id = e.case_id WHERE c.code = %s AND action = 'reroute'",
            [code],
        ).fetchone()
        assert event == ("planner-x", "reroute", "team-shangduifang", "team-daopo")


def test_assign_all_rewrites_only_what_changes(client, db_url, capsys):
    _case_in(client, db_url, zone="jinling", category="safety_hazard")
    _case_in(client, db_url, zone="daopo", category="safety_hazard")
    settings = settings_for(db_url)
    assert main(["assign", "--all"], settings=settings) == 0
    assert "0 case(s) re-routed" in capsys.readouterr().out
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE zones SET property_unit = 'team-huangnitang' WHERE code = 'jinling'")
    assert main(["assign", "--all"], settings=settings) == 0
    assert "1 case(s) re-routed" in capsys.readouterr().out


def test_overdue_cases_are_escalated_once(client, db_url):
    code = _case_in(client, db_url, zone="daopo", category="stairwell_clutter")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE cases SET due_at = now() - interval '3 days' WHERE code = %s", [code])
        assert cases.escalate_overdue(conn, district_code=DISTRICT, grace=timedelta(days=1)) == 1
        assert cases.escalate_overdue(conn, district_code=DISTRICT, grace=timedelta(days=1)) == 0
        row = conn.execute(
            "SELECT unit_code, routing_rule, escalated_at IS NOT NULL FROM cases WHERE code = %s", [code]
        ).fetchone()
    assert row == ("office-wangyue", "escalated", True)
    admin = auth_headers(db_url, "admin")
    overdue = client.get("/cases", params={"overdue": "true"}, headers=admin).json()["features"]
    assert [f["id"] for f in overdue] == [code]


def test_report_as_function_records_the_signed_in_reporter(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        lon, lat = _inside(conn, "jinling")
        resident = Principal(username="res-1", role="resident")
        body = run(conn, cases.report(resident, Report("poor_cleaning", lon, lat), district_code=DISTRICT))
        assert conn.execute("SELECT reporter_user FROM cases WHERE code = %s", [body["id"]]).fetchone() == ("res-1",)


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def test_photos_type_size_and_access(client, db_url):
    resident = auth_headers(db_url, "resident")
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "jinling")
    code = _report(client, lon, lat, headers=resident).json()["id"]
    ok = client.post(
        f"/cases/{code}/photos", files={"photo": ("../../etc/passwd.jpg", JPEG, "image/jpeg")}, headers=resident
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["content_type"] == "image/jpeg"
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT path FROM case_photos").fetchone()
    assert stored is not None and ".." not in stored[0] and "passwd" not in stored[0]
    fake = client.post(
        f"/cases/{code}/photos", files={"photo": ("x.jpg", b"#!/bin/sh\nrm -rf /", "image/jpeg")}, headers=resident
    )
    assert fake.status_code == 400 and fake.json()["field"] == "photo"
    photo_id = ok.json()["id"]
    got = client.get(f"/cases/{code}/photos/{photo_id}", headers=resident)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    stranger = auth_headers(db_url, "resident")
    assert client.get(f"/cases/{code}/photos/{photo_id}", headers=stranger).status_code == 404
    assert client.get(f"/cases/{code}/photos/{photo_id}").status_code == 401
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    assert client.get(f"/cases/{code}/photos", headers=staff).json()[0]["id"] == photo_id
    other_staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    assert (
        client.post(
            f"/cases/{code}/photos", files={"photo": ("p.png", PNG, "image/png")}, headers=other_staff
        ).status_code
        == 404
    )


def test_oversize_photo_is_413(db_url):
    settings = settings_for(db_url)
    settings.server.max_photo_bytes = 1000
    with TestClient(create_app(settings)) as client:
        resident = auth_headers(db_url, "resident")
        with psycopg.connect(db_url) as conn:
            lon, lat = _inside(conn, "jinling")
        code = _report(client, lon, lat, headers=resident).json()["id"]
        big = client.post(
            f"/cases/{code}/photos", files={"photo": ("big.jpg", JPEG + b"\x00" * 5000, "image/jpeg")}, headers=resident
        )
        assert big.status_code == 413
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM case_photos").fetchone() == (0,)


def test_stats_by_dimension_with_on_time_rate_and_exports(client, db_url):
    codes = [_case_in(client, db_url, zone="yumin-south", category="safety_hazard") for _ in range(3)]
    _case_in(client, db_url, zone="daopo", category="safety_hazard")
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",), unit_code="team-yumin")
    for code in codes[:2]:
        for headers, action, extra in (
            (staff, "register", {}),
            (staff, "dispatch", {}),
            (team, "handle", {"note": "ok"}),
            (staff, "verify", {}),
        ):
            assert _act(client, code, headers, action, **extra).status_code == 200
    with psycopg.connect(db_url, autocommit=True) as conn:  # the second closed late
        conn.execute("UPDATE cases SET due_at = closed_at - interval '1 hour' WHERE code = %s", [codes[1]])
    rows = {(r["dimension"], r["key"]): r for r in client.get("/cases/stats", headers=staff).json()}
    total = rows[("total", None)]
    assert (total["cases"], total["open"], total["closed"], total["closed_on_time"]) == (3, 1, 2, 1)
    assert total["on_time_rate"] == 0.5 and total["median_hours_to_close"] is not None
    assert rows[("zone", "yumin-south")]["cases"] == 3 and ("zone", "daopo") not in rows
    admin_total = next(
        r for r in client.get("/cases/stats", headers=auth_headers(db_url, "admin")).json() if r["dimension"] == "total"
    )
    assert admin_total["cases"] == 4
    csv_body = client.get("/cases/stats", params={"f": "csv"}, headers=staff)
    assert csv_body.headers["content-type"].startswith("text/csv")
    assert csv_body.content.decode("utf-8-sig").splitlines()[0].startswith("维度,名称,事件数")
    xlsx = client.get("/cases/stats", params={"f": "xlsx"}, headers=staff)
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["A1"].value == "维度" and sheet.max_row == len(rows) + 1


def test_zone_edit_through_the_ogc_api_reroutes_open_cases_in_the_same_transaction(client, db_url):
    code = _case_in(client, db_url, zone="daopo", category="safety_hazard")  # → team-daopo
    planner = auth_headers(db_url, "planner")
    zone = client.get("/collections/zones/items/daopo", headers=planner)
    etag = zone.headers["etag"]
    response = client.patch(
        "/collections/zones/items/daopo",
        json={"properties": {"property_unit": "team-jinling"}},
        headers={**planner, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    admin = auth_headers(db_url, "admin")
    props = client.get(f"/cases/{code}", headers=admin).json()["properties"]
    assert props["unit_code"] == "team-jinling"
    reroute = [e for e in props["events"] if e["action"] == "reroute"]
    assert len(reroute) == 1 and reroute[0]["details"]["from_unit"] == "team-daopo"
    assert reroute[0]["actor"].startswith("planner")


def test_zone_import_reroutes_open_cases(client, db_url, tmp_path):
    import json

    from geo.io.importer import import_file
    from layers.catalogue import load_catalogue

    code = _case_in(client, db_url, zone="daopo", category="safety_hazard")
    with psycopg.connect(db_url) as conn:
        doc = conn.execute(
            "SELECT json_build_object('type', 'FeatureCollection', 'features', "
            "json_agg(ST_AsGeoJSON(z.*, 'geom')::json))"
            " FROM (SELECT code, name, kind, subdistrict_code, households, programme_year, phase, "
            " CASE WHEN code = 'daopo' THEN 'team-shangduifang' ELSE property_unit END AS property_unit, geom "
            " FROM zones) z"
        ).fetchone()[0]
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with psycopg.connect(db_url) as conn:
        import_file(conn, load_catalogue(), path, layer="zones", district_code=DISTRICT, mode="upsert", actor="imp")
    props = client.get(f"/cases/{code}", headers=auth_headers(db_url, "admin")).json()["properties"]
    assert props["unit_code"] == "team-shangduifang"
    assert [e["actor"] for e in props["events"] if e["action"] == "reroute"] == ["imp"]


def test_the_running_service_escalates_overdue_cases(db_url):
    import time

    settings = settings_for(db_url)
    settings.cases.escalation_interval_seconds = 0.2
    settings.cases.escalation_grace_hours = 1
    with TestClient(create_app(settings)) as client:
        code = _case_in(client, db_url, zone="daopo", category="safety_hazard")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE cases SET due_at = now() - interval '2 hours' WHERE code = %s", [code])
        admin = auth_headers(db_url, "admin")
        for _ in range(100):  # wait for the background pass (polling, not timing)
            props = client.get(f"/cases/{code}", headers=admin).json()["properties"]
            if props.get("escalated_at"):
                break
            time.sleep(0.1)
    assert props["unit_code"] == "office-wangyue" and props["routing_rule"] == "escalated"
    assert [e["actor"] for e in props["events"] if e["action"] == "escalate"] == ["system"]


def _per_case_then_bulk(db_url: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The cases' assignments as intake made them (point → polygon), then as the bulk statement
    makes them from scratch, and the bulk statement's changes."""
    columns = "code, subdistrict_code, community_code, zone_code, section_code, unit_code, routing_rule"
    with psycopg.connect(db_url, autocommit=True) as conn:
        per_case = conn.execute(f"SELECT {columns} FROM cases ORDER BY code").fetchall()  # noqa: S608
        conn.execute(
            "UPDATE cases SET subdistrict_code = NULL, community_code = NULL, zone_code = NULL, "
            "section_code = NULL, unit_code = NULL, routing_rule = NULL"
        )
        with conn.transaction():
            changed = cases.assign(conn, district_code=DISTRICT, ids=None)
        bulk = conn.execute(f"SELECT {columns} FROM cases ORDER BY code").fetchall()  # noqa: S608
    return per_case, bulk, changed


def test_bulk_and_per_case_assignment_agree(client, db_url):
    """assign_cases.sql (polygon → points, bulk) and assign_few.sql (point → polygons) give the same answer."""
    with psycopg.connect(db_url) as conn:
        edge = conn.execute(
            "SELECT ST_X(d.geom), ST_Y(d.geom) FROM zones a, zones b, ST_DumpPoints(a.geom) d "
            "WHERE a.code = 'yumin-north' AND b.code = 'yumin-south' AND ST_Covers(b.geom, d.geom) LIMIT 1"
        ).fetchone()
        points = [_inside(conn, z) for z in ("jinling", "ansu", "lichen", "yanghaitang-east", "daopo")]
        sections = conn.execute("SELECT code FROM contract_sections ORDER BY code").fetchall()
        points += [_point_in_section(conn, s[0]) for s in sections]
    points += [edge, (112.935, 28.165)]
    categories = ["garbage_pile", "light_out", "street_vendor", "safety_hazard", "road_uneven", "tree_pests"]
    for i, (lon, lat) in enumerate(points):
        assert _report(client, lon, lat, category=categories[i % len(categories)]).status_code == 201
    per_case, bulk, changed = _per_case_then_bulk(db_url)
    assert bulk == per_case
    assert len(changed) == len(points)
    assert any(row[5] is not None and row[6] == "section_contractor" for row in bulk)


def test_bulk_assignment_of_a_zone_across_a_subdistrict_boundary(client, db_url):
    """The bulk statement gives a zone's points its sub-district without a test of their own only when
    exactly one sub-district touches the zone; a zone across a boundary has each point looked up."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        edge = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge("
            " ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)), 1), 0.5) p "
            " FROM subdistricts a JOIN subdistricts b ON a.code < b.code AND ST_Intersects(a.geom, b.geom) "
            " WHERE ST_Length(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)) > 0.01 LIMIT 1) q"
        ).fetchone()
        assert edge is not None
        conn.execute(
            "UPDATE zones SET geom = ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 0.002)) "
            "WHERE code = 'daopo'",
            edge,
        )
    around = [
        (edge[0] + dx, edge[1] + dy)
        for dx, dy in ((0.001, 0), (-0.001, 0), (0, 0.001), (0, -0.001), (0.0007, 0.0007), (-0.0007, -0.0007))
    ]
    for lon, lat in [*around, edge]:
        assert _report(client, lon, lat).status_code == 201
    per_case, bulk, _ = _per_case_then_bulk(db_url)
    assert bulk == per_case
    assert {row[3] for row in bulk} == {"daopo"}
    assert len({row[1] for row in bulk}) == 2  # the zone's points lie in two sub-districts


def test_bulk_assignment_on_boundaries_and_grid_lines_agrees_with_per_case(client, db_url):
    """The bulk statement answers most points from a grid of cells; points on zone and section
    boundaries (vertices, edge midpoints) and exactly on grid lines must get what the
    point → polygon lookup gives them."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "WITH b AS (SELECT geom FROM zones UNION ALL SELECT geom FROM contract_sections), "
            "v AS (SELECT (ST_DumpPoints(geom)).geom AS p FROM b), "
            "e AS (SELECT ST_LineInterpolatePoint(ST_MakeLine(p, lead(p) OVER ()), 0.5) AS p FROM v) "
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT p FROM v UNION ALL SELECT p FROM e WHERE p IS NOT NULL) q "
            "ORDER BY md5(ST_AsText(p)) LIMIT 120"
        ).fetchall()
        lon, lat = _inside(conn, "yumin-north")
    # points on the grid's lines (multiples of 0.0002 degree) across the shared edge of the two parts
    grid = [(round(lon / 0.0002) * 0.0002, lat + k * 0.0001) for k in range(-12, 13)]
    grid += [(lon + k * 0.0001, round(lat / 0.0002) * 0.0002) for k in range(-12, 13)]
    points = [(float(x), float(y)) for x, y in rows] + grid
    for i, (x, y) in enumerate(points):
        response = _report(client, x, y, category=("garbage_pile", "light_out", "road_uneven")[i % 3])
        assert response.status_code in (201, 400), response.text  # 400: a vertex on the district's edge
    per_case, bulk, _ = _per_case_then_bulk(db_url)
    assert len(per_case) > 100
    assert bulk == per_case
