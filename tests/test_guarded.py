"""Issue 13 ("Guarded"): triage belongs to the office it is routed to (point 4), and reporters cannot
be placed closer than the public 50 m grid (point 2): the trilateration attack learns nothing finer
than the cell, while staff in scope keep the metres."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod, Transformer

from api.app import create_app
from tests.conftest import auth_headers, settings_for

GEOD = Geod(ellps="WGS84")
TO_METRIC = Transformer.from_crs(4490, 4547, always_xy=True)
FROM_METRIC = Transformer.from_crs(4547, 4490, always_xy=True)
CELL_M = 50.0


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _report(client, lon, lat, category="garbage_pile", headers=None, **extra):
    response = client.post(
        "/cases", json={"category": category, "lon": lon, "lat": lat, **extra}, headers=headers or {}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _outside_every_zone(conn, subdistrict: str) -> tuple[float, float]:
    """A point of the sub-district that lies in no zone (where triage cases come from)."""
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Difference(s.geom, "
        "(SELECT ST_Union(z.geom) FROM zones z))) p FROM subdistricts s WHERE s.code = %s) q",
        [subdistrict],
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


# --- point 4: triage ----------------------------------------------------------------------------------


def test_triage_cases_are_listed_for_and_actionable_by_their_office(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _outside_every_zone(conn, "yuelu")
        daopo = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = 'daopo') q"
        ).fetchone()
    triage = _report(client, lon, lat, reporter_phone="13800001111")
    props = triage["properties"]
    assert props["assigned"] is False and props["subdistrict_code"] == "yuelu" and props["unit_code"] == "office-yuelu"
    order = _report(client, daopo[0], daopo[1], category="street_vendor")  # public order → 望岳's office
    yuelu = auth_headers(db_url, "subdistrict_staff", subdistrict_code="yuelu")
    wangyue = auth_headers(db_url, "subdistrict_staff", subdistrict_code="wangyue")

    listed = client.get("/cases", headers=yuelu).json()["features"]
    assert [f["id"] for f in listed] == [triage["id"]] and listed[0]["properties"]["full"] is True
    assert listed[0]["properties"]["reporter_phone"] == "13800001111"
    assert [f["id"] for f in client.get("/cases", headers=wangyue).json()["features"]] == [order["id"]]
    assert client.get("/cases", params={"unassigned": "true"}, headers=yuelu).json()["numberReturned"] == 1

    registered = client.post(f"/cases/{triage['id']}/actions", json={"action": "register"}, headers=yuelu)
    assert registered.status_code == 200, registered.text
    assert registered.json()["properties"]["state"] == "registered"
    assert client.post(f"/cases/{order['id']}/actions", json={"action": "register"}, headers=wangyue).status_code == 200
    stats = client.get("/cases/stats", headers=yuelu).json()
    assert {(r["dimension"], r["key"], r["cases"]) for r in stats if r["dimension"] == "subdistrict"} == {
        ("subdistrict", "yuelu", 1)
    }


def test_outside_the_area_and_nonexistent_answer_the_same_404(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = _outside_every_zone(conn, "yuelu")
    code = _report(client, lon, lat)["id"]
    xihu = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    bodies = []
    for asked in (code, "C20990101-999999"):
        for method, path, kwargs in (
            ("POST", f"/cases/{asked}/actions", {"json": {"action": "register"}}),
            ("GET", f"/cases/{asked}/photos", {}),
            ("POST", f"/cases/{asked}/call", {}),
        ):
            response = client.request(method, path, headers=xihu, **kwargs)
            assert response.status_code == 404, (asked, path, response.text)
            body = response.json()
            body.pop("request_id", None)
            bodies.append(body)
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0]["reason_zh"] == "该事件不在您的辖区" and bodies[0]["field"] == "code"
    assert code not in str(bodies[0])
    with psycopg.connect(db_url) as conn:  # nothing moved
        assert conn.execute("SELECT state FROM cases WHERE code = %s", [code]).fetchone() == ("reported",)


# --- point 2: the 50 m grid ---------------------------------------------------------------------------


def _cell_of(lon: float, lat: float) -> tuple[float, float]:
    """The public cell's centre (metres, EPSG:4547), as PostGIS's ST_SnapToGrid(…, 50) rounds."""
    x, y = TO_METRIC.transform(lon, lat)
    return round(x / CELL_M) * CELL_M, round(y / CELL_M) * CELL_M


def _at(x: float, y: float) -> tuple[float, float]:
    lon, lat = FROM_METRIC.transform(x, y)
    return float(lon), float(lat)


def _zone_centre_cell(db_url: str, zone: str) -> tuple[float, float]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
        ).fetchone()
    assert row is not None
    return _cell_of(float(row[0]), float(row[1]))


def _trilaterate(probes: list[tuple[float, float]], distances: list[float]) -> tuple[float, float]:
    """Least-squares position from three or more (x, y) probes and their distances (linearised)."""
    (x0, y0), d0 = probes[0], distances[0]
    rows = [
        (2 * (x - x0), 2 * (y - y0), d0**2 - d**2 + x**2 - x0**2 + y**2 - y0**2)
        for (x, y), d in zip(probes[1:], distances[1:], strict=True)
    ]
    saa = sum(a * a for a, _, _ in rows)
    sab = sum(a * b for a, b, _ in rows)
    sbb = sum(b * b for _, b, _ in rows)
    sac = sum(a * c for a, _, c in rows)
    sbc = sum(b * c for _, b, c in rows)
    det = saa * sbb - sab * sab
    return (sbb * sac - sab * sbc) / det, (saa * sbc - sab * sac) / det


def _attack(client, victim_code: str, probes: list[tuple[float, float]], category: str, headers=None) -> list[dict]:
    """Report at each probe position and keep what each answer says about the victim (minus its code)."""
    seen = []
    for x, y in probes:
        answer = _report(client, *_at(x, y), category=category, headers=headers)
        entries = [d for d in answer["possible_duplicates"] if d["code"] == victim_code]
        assert len(entries) <= 1
        seen.append({k: v for k, v in entries[0].items() if k not in ("code", "reported_at")} if entries else None)
    return seen


def test_trilateration_learns_nothing_finer_than_the_public_cell(client, db_url):
    cx, cy = _zone_centre_cell(db_url, "lichen")
    # Two victims in one cell, 30 m apart; the attacker probes around the public grid point, as the
    # issue's attack did (three probes 20 m around it), and a fourth probe elsewhere in the probe cell.
    probes = [(cx + 20 * math.sin(math.radians(b)), cy + 20 * math.cos(math.radians(b))) for b in (0, 120, 240)]
    probes.append((cx - 12.0, cy + 7.0))
    victims = {"garbage_pile": (cx - 14.0, cy - 13.0), "stairwell_clutter": (cx + 13.0, cy + 11.0)}
    assert len({_cell_of(*_at(*v)) for v in victims.values()}) == 1
    resident = auth_headers(db_url, "resident")
    observed = {}
    for category, (vx, vy) in victims.items():
        victim = _report(client, *_at(vx, vy), category=category, headers=resident, reporter_phone="13912345678")
        observed[category] = _attack(client, victim["id"], probes, category)
        # nothing in an answer is in metres, and each probe found the victim
        assert all(o is not None and "distance_m" not in o for o in observed[category]), observed[category]
        public = client.get(f"/cases/{victim['id']}").json()
        assert _cell_of(*public["geometry"]["coordinates"]) == (cx, cy)
        observed[category].append(public["geometry"])
    # The attacker's whole view is the same for both victims: it cannot tell them apart, 30 m apart
    # in one cell, so it learns nothing finer than the cell.
    assert observed["garbage_pile"] == observed["stairwell_clutter"]

    # The same probes answered in metres (as to staff in scope) would place the victim within a metre:
    # what the public answer must not give.
    admin = auth_headers(db_url, "admin")
    vx, vy = (cx + 4.0, cy - 18.0)
    victim = _report(client, *_at(vx, vy), category="poor_cleaning", headers=resident)
    exact = _attack(client, victim["id"], probes[:3], "poor_cleaning", headers=admin)
    ex, ey = _trilaterate(probes[:3], [float(o["distance_m"]) for o in exact if o is not None])
    assert math.hypot(ex - vx, ey - vy) < 1.0
    _leave_results(
        {
            "victims_apart_m": round(math.dist(*victims.values()), 1),
            "probes": len(probes),
            "public_views_identical": observed["garbage_pile"] == observed["stairwell_clutter"],
            "public_answer": observed["garbage_pile"][0],
            "exact_error_m": round(math.hypot(ex - vx, ey - vy), 2),
        }
    )


def _leave_results(results: dict) -> None:
    """For bench/security.py (which sets WUYE_GUARDED_RESULTS to a folder): what the attack learnt."""
    folder = os.environ.get("WUYE_GUARDED_RESULTS")
    if folder:
        Path(folder, "trilateration.json").write_text(json.dumps(results, ensure_ascii=False))


def test_probes_anywhere_in_one_cell_get_the_same_answer(client, db_url):
    cx, cy = _zone_centre_cell(db_url, "lichen")
    victim = _report(client, *_at(cx + 60.0, cy + 5.0), headers=auth_headers(db_url, "resident"))  # next cell
    answers = []
    for dx, dy in ((-24, -24), (24, 24), (-24, 24), (0, 0), (10, -20)):
        answer = _attack(client, victim["id"], [(cx + dx, cy + dy)], "garbage_pile")
        answers.append(answer[0])
    assert answers[0] is not None and answers[0]["proximity"] == "adjacent_cell" and "distance_m" not in answers[0]
    assert all(a == answers[0] for a in answers), answers
    # a probe two cells away does not see it at all (and learns only that)
    assert _attack(client, victim["id"], [(cx - 50.0, cy)], "garbage_pile") == [None]


def test_the_public_view_carries_no_facility_link(client, db_url):
    with psycopg.connect(db_url) as conn:
        light = conn.execute("SELECT code, ST_X(geom), ST_Y(geom) FROM street_lights ORDER BY code LIMIT 1").fetchone()
    assert light is not None
    lon, lat, _ = GEOD.fwd(light[1], light[2], 90, 2.0)
    reporter = auth_headers(db_url, "resident")
    code = _report(client, lon, lat, category="light_out", headers=reporter)["id"]
    mine = client.get(f"/cases/{code}", headers=reporter).json()["properties"]
    assert mine["facility_code"] == light[0] and mine["facility_distance_m"] <= 2.1
    staff = client.get(f"/cases/{code}", headers=auth_headers(db_url, "admin")).json()["properties"]
    assert staff["facility_code"] == light[0]
    for headers in ({}, auth_headers(db_url, "resident"), auth_headers(db_url, "survey_team", zone_codes=("jinling",))):
        seen = client.get(f"/cases/{code}", headers=headers).json()["properties"]
        assert "facility_code" not in seen and "facility_distance_m" not in seen, seen
        assert seen["location_precision_m"] == 50
        listed = client.get("/cases", headers=headers).json()["features"]
        assert all("facility_code" not in f["properties"] for f in listed)
