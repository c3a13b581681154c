"""Security patrols by checkpoint (issue 18 point 4): rounds through the API and from CSV/XLSX, tracks
(GPX, GCJ-02), coverage per zone and day or week on hand-computed cases, bad input refused whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from api.app import create_app
from geo.programme import acceptance
from geo.settings import AcceptanceSettings
from geo.spatial import coords
from geo.workcal import calendar, today
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.test_db_restart import own_home, target  # noqa: F401  the fixtures of the restart pattern

GEOD = Geod(ellps="WGS84")
ZONE = "jinling"
OTHER = "yumin-south"


def _points(conn: psycopg.Connection, zone: str, n: int, prefix: str) -> list[str]:
    """n checkpoints spread inside the zone (random points, seeded), their codes."""
    rows = conn.execute(
        "INSERT INTO patrol_points (code, district_code, name, zone_code, geom) "
        "SELECT %(prefix)s || '-' || d.path[1], %(district)s, '巡更点' || d.path[1], z.code, d.geom "
        "FROM zones z, ST_Dump(ST_GeneratePoints(z.geom, %(n)s, 7)) d WHERE z.code = %(zone)s "
        "ORDER BY d.path[1] RETURNING code",
        {"prefix": prefix, "district": DISTRICT, "zone": zone, "n": n},
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def setup(db_url: str) -> Iterator[tuple[TestClient, str, list[str], list[str]]]:
    with psycopg.connect(db_url) as conn:
        mine = _points(conn, ZONE, 4, "PP-J")
        other = _points(conn, OTHER, 2, "PP-Y")
    with TestClient(create_app(settings_for(db_url))) as client:
        yield client, db_url, mine, other


def _at(day: date, hh: int, mm: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=calendar().zone).isoformat()


def _round(day: date, scans: list[tuple[str, int, int]], zone: str = ZONE, **extra: Any) -> dict[str, Any]:
    return {
        "zone_code": zone,
        "patroller": "王保安",
        "started_at": _at(day, 20),
        "ended_at": _at(day, 21, 30),
        "scans": [{"point_code": p, "scanned_at": _at(day, h, m)} for p, h, m in scans],
        **extra,
    }


def _count(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM patrol_rounds), (SELECT count(*) FROM patrol_scans)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _coverage(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/patrols/coverage", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return next(z for z in r.json() if z["zone_code"] == ZONE)


def test_half_the_checkpoints_scanned_is_50_percent(setup):
    client, url, mine, _ = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=7)  # in the last full week, which the acceptance figures show
    a, b = mine[0], mine[1]
    body = _round(day, [(a, 20, 5), (b, 20, 20), (a, 21, 10)])
    r = client.post("/patrols/rounds", json=body, headers=team)
    assert r.status_code == 201, r.text
    assert (r.json()["scans"], r.json()["checkpoints"]) == (3, 2)

    figures = _coverage(client, team, period="day", on=day.isoformat())
    # 4 checkpoints, 2 scanned at least once that day: 2 / 4 = 50 %
    assert (figures["checkpoints"], figures["checkpoint_days_covered"], figures["coverage_pct"]) == (4, 2, 50.0)
    assert (figures["rounds"], figures["hours"], figures["scans"]) == (1, 1.5, 3)
    assert figures["flagged"] and figures["flag_zh"] == "巡更覆盖率不足"
    # the week: 2 covered checkpoint-days of 4 × 7 = 28 → 7.1 %
    week = _coverage(client, team, period="week", on=day.isoformat())
    assert (week["days"], week["checkpoint_days_covered"], week["coverage_pct"]) == (7, 2, 7.1)
    # the next day nobody patrolled
    assert _coverage(client, team, period="day", on=(day + timedelta(days=1)).isoformat())["coverage_pct"] == 0.0

    # the same figure in the acceptance figures, flagged below WUYE_MIN_PATROL_COVERAGE
    with psycopg.connect(url) as conn:
        zone = acceptance.district_figures(conn, district_code=DISTRICT, rules=AcceptanceSettings(), zone_code=ZONE)[0]
        strict = acceptance.district_figures(
            conn,
            district_code=DISTRICT,
            rules=AcceptanceSettings(patrol_min_scans=2, min_patrol_coverage=5.0),
            zone_code=ZONE,
        )[0]
        lenient = acceptance.district_figures(
            conn, district_code=DISTRICT, rules=AcceptanceSettings(min_patrol_coverage=5.0), zone_code=ZONE
        )[0]
    assert zone["patrol"]["coverage_pct"] == 7.1 and zone["patrol"]["flagged"]
    # WUYE_PATROL_MIN_SCANS=2: only checkpoint a (scanned twice) counts: 1 / 28 = 3.6 %, below 5 %
    assert strict["patrol"]["checkpoint_days_covered"] == 1 and strict["patrol"]["coverage_pct"] == 3.6
    assert strict["patrol"]["flagged"] and not lenient["patrol"]["flagged"]
    # a zone without checkpoints is flagged as such
    with psycopg.connect(url) as conn:
        bare = acceptance.district_figures(conn, district_code=DISTRICT, rules=AcceptanceSettings(), zone_code="ansu")
    assert bare[0]["patrol"]["coverage_pct"] is None and bare[0]["patrol"]["flag_zh"] == "无巡更点"


def test_every_checkpoint_every_day_is_full_coverage(setup):
    client, url, mine, _ = setup
    admin = auth_headers(url, "admin")
    monday = today() - timedelta(days=today().weekday() + 7)
    for i in range(7):
        day = monday + timedelta(days=i)
        scans = [(p, 20, 10 * k) for k, p in enumerate(mine)]
        assert client.post("/patrols/rounds", json=_round(day, scans), headers=admin).status_code == 201
    week = _coverage(client, admin, period="week", on=monday.isoformat())
    assert (week["coverage_pct"], week["rounds"], week["hours"], week["flagged"]) == (100.0, 7, 10.5, False)
    missed = client.get("/patrols/checkpoints", params={"on": monday.isoformat(), "zone": ZONE}, headers=admin).json()
    assert {f["properties"]["code"]: f["properties"]["days_missed"] for f in missed["features"]} == dict.fromkeys(
        mine, 0
    )


def test_bad_rounds_are_refused_naming_the_field_and_nothing_is_written(setup):
    client, url, mine, other = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=1)
    cases = [
        (_round(day, [(mine[0], 20, 5), (other[0], 20, 10)]), "scans.1.point_code", "belongs to zone"),
        (_round(day, [(mine[0], 19, 55)]), "scans.0.scanned_at", "outside the round"),
        (_round(day, [(mine[0], 20, 30), (mine[1], 20, 10)]), "scans.1.scanned_at", "earlier than the scan before"),
        (_round(day, [("PP-NONE", 20, 5)]), "scans.0.point_code", "does not exist"),
        ({**_round(day, [(mine[0], 20, 5)]), "ended_at": _at(day, 19)}, "ended_at", "before it starts"),
        (_round(day, [(other[0], 20, 5)], zone=OTHER), "zone_code", "not one you act in"),
    ]
    for body, field, reason in cases:
        r = client.post("/patrols/rounds", json=body, headers=team)
        assert r.status_code == 400, (field, r.text)
        assert r.json()["field"] == field and reason in r.text, r.text
    assert _count(url) == (0, 0)


def test_scans_name_a_round_that_exists_and_go_with_their_round(setup):
    """Migration 0020: the foreign key scan → round is checked once per statement (set-based), with the
    same outcomes: a scan of a round that does not exist is refused (23503) and nothing of the statement
    is written; deleting rounds deletes their scans; a round being deleted holds back a statement adding
    scans to it, which then fails."""
    client, url, mine, _ = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=1)
    for _ in range(2):
        r = client.post("/patrols/rounds", json=_round(day, [(mine[0], 20, 5), (mine[1], 20, 10)]), headers=team)
        assert r.status_code == 201, r.text
    with psycopg.connect(url, autocommit=True) as conn:
        first, second = (row[0] for row in conn.execute("SELECT id FROM patrol_rounds ORDER BY id"))
        add = (
            "INSERT INTO patrol_scans (round_id, district_code, zone_code, point_code, scanned_at) "
            "SELECT r, 'x', %s, %s, now() FROM unnest(%s::bigint[]) r"
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="patrol round 999999 does not exist"):
            conn.execute(add, [ZONE, mine[0], [first, 999999]])
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("UPDATE patrol_scans SET round_id = 999999 WHERE round_id = %s", [first])
        assert _count(url) == (2, 4)
        conn.execute("DELETE FROM patrol_rounds WHERE id = %s", [first])
        assert _count(url) == (1, 2)
        assert conn.execute("SELECT DISTINCT round_id FROM patrol_scans").fetchall() == [(second,)]
        # a round deleted in a transaction not yet committed: adding scans to it waits, then fails
        with psycopg.connect(url) as deleting:
            deleting.execute("DELETE FROM patrol_rounds WHERE id = %s", [second])
            outcome: list[BaseException | None] = []

            def adding() -> None:
                try:
                    with psycopg.connect(url, autocommit=True) as other:
                        other.execute(add, [ZONE, mine[0], [second]])
                    outcome.append(None)
                except psycopg.Error as error:
                    outcome.append(error)

            worker = threading.Thread(target=adding)
            worker.start()
            worker.join(1.0)
            assert worker.is_alive() and not outcome  # held back by the delete's lock
            deleting.commit()
            worker.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.ForeignKeyViolation), outcome
    assert _count(url) == (0, 0)


def _gpx(points: list[tuple[float, float, datetime | None]]) -> str:
    pts = "".join(
        f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}">' + (f"<time>{t.isoformat()}</time>" if t else "") + "</trkpt>"
        for lon, lat, t in points
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="test" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>巡更</name><trkseg>' + pts + "</trkseg></trk></gpx>"
    )


def _walk(lon: float, lat: float, start: datetime, steps: int, metres: float, seconds: float) -> list[Any]:
    """A walk east: ``steps`` fixes ``metres`` apart, ``seconds`` apart."""
    out = []
    for i in range(steps):
        x, y, _ = GEOD.fwd(lon, lat, 90, metres * i)
        out.append((x, y, start + timedelta(seconds=seconds * i)))
    return out


def test_a_track_is_kept_converted_from_gcj02_with_jumps_dropped_and_bad_tracks_refused(setup):
    client, url, mine, _ = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=1)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM patrol_points WHERE code = %s", [mine[0]]).fetchone()
    assert row is not None
    lon, lat = float(row[0]), float(row[1])
    start = datetime.fromisoformat(_at(day, 20, 1))
    walk = _walk(lon, lat, start, 6, 10.0, 10.0)  # 1 m/s
    # the fourth fix jumps 2 km away for a second: dropped, named by its number
    jx, jy, _ = GEOD.fwd(walk[3][0], walk[3][1], 0, 2000.0)
    walk[3] = (jx, jy, walk[3][2])
    gcj = [(*coords.wgs84_to_gcj02(x, y), t) for x, y, t in walk]
    body = _round(day, [(mine[0], 20, 5)], track_gpx=_gpx(gcj), track_coord_sys="gcj02")
    r = client.post("/patrols/rounds", json=body, headers=team)
    assert r.status_code == 201, r.text
    assert r.json()["track_dropped"] == [4] and "4" in r.json()["warnings"][0]
    assert r.json()["track_points"] == 5
    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "SELECT ST_X(ST_StartPoint(track)), ST_Y(ST_StartPoint(track)) FROM patrol_rounds"
        ).fetchone()
    assert stored is not None
    _, _, error_m = GEOD.inv(walk[0][0], walk[0][1], float(stored[0]), float(stored[1]))
    assert error_m < 0.5  # converted back to WGS84 (the raw GCJ-02 fix is hundreds of metres off)

    rounds_before = _count(url)
    untimed = [(x, y, None) for x, y, _ in walk]
    r = client.post("/patrols/rounds", json=_round(day, [(mine[0], 20, 5)], track_gpx=_gpx(untimed)), headers=team)
    assert r.status_code == 400 and r.json()["field"] == "track" and "<time>" in r.text
    far = _walk(lon + 1.0, lat, start, 3, 10.0, 10.0)  # a degree east: outside the district
    r = client.post("/patrols/rounds", json=_round(day, [(mine[0], 20, 5)], track_gpx=_gpx(far)), headers=team)
    assert r.status_code == 400 and r.json()["field"] == "track" and "leaves the district" in r.text
    assert _count(url) == rounds_before


def _export(day: date, mine: list[str], other: list[str]) -> pd.DataFrame:
    rows = []
    for n, (who, hh) in enumerate((("王保安", 20), ("李保安", 22))):
        for k, p in enumerate(mine[:3]):
            rows.append(
                {
                    "巡更编号": f"R{n + 1}",
                    "小区": ZONE,
                    "巡更人": who,
                    "开始时间": f"{day:%Y/%m/%d} {hh}:00",
                    "结束时间": f"{day:%Y/%m/%d} {hh}:50",
                    "巡更点": p,
                    "打卡时间": f"{day:%Y/%m/%d} {hh}:{10 * (k + 1):02d}",
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_patrol_systems_export_imports_whole_or_not_at_all(setup, tmp_path: Path, suffix: str):
    client, url, mine, other = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=2)
    good = _export(day, mine, other)

    def upload(frame: pd.DataFrame, name: str) -> Any:
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False, encoding="utf-8-sig")
        else:
            frame.to_excel(path, index=False)
        with path.open("rb") as fh:
            return client.post("/patrols/import", files={"file": (path.name, fh)}, headers=team)

    bad = good.copy()
    bad.loc[1, "巡更点"] = other[0]  # another zone's checkpoint
    bad.loc[5, "打卡时间"] = f"{day:%Y/%m/%d} 22:05"  # before the scan above it
    bad.loc[2, "打卡时间"] = f"{day:%Y/%m/%d} 23:55"  # after its round's end
    r = upload(bad, "bad")
    assert r.status_code == 400, r.text
    problems = {(p["row"], p["field"]) for p in r.json()["problems"]}
    assert problems == {(2, "point_code"), (3, "scanned_at"), (6, "scanned_at")}, r.json()["problems"]
    assert _count(url) == (0, 0)

    r = upload(good, "good")
    assert r.status_code == 200, r.text
    assert r.json() == {"rounds": 2, "scans": 6}
    day_figures = _coverage(client, team, period="day", on=day.isoformat())
    assert (day_figures["coverage_pct"], day_figures["rounds"]) == (75.0, 2)  # 3 of 4 checkpoints


# ---------------------------------------------------------------- served: a crowd, a restart


def test_fifty_concurrent_rounds_and_coverage_reads_all_answer(setup, tmp_path):
    import asyncio

    from api.maps import local_server
    from tests.test_holds import CROWD, _crowd, _settings, _statuses

    _, url, mine, _ = setup
    team = auth_headers(url, "property_team", zone_codes=(ZONE,))
    day = today() - timedelta(days=3)
    requests: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(CROWD):
        if i % 4 == 1:
            requests.append(("GET", f"/patrols/coverage?period=day&on={day}", {"headers": team}))
        elif i % 4 == 3:  # the week's map page (巡更图)
            requests.append(("GET", "/maps/patrols", {"headers": team}))
        else:
            scans = [(p, 20, 10 * k + i % 10) for k, p in enumerate(mine)]
            requests.append(("POST", "/patrols/rounds", {"json": _round(day, scans), "headers": team}))
    settings = _settings(url, tmp_path, pool_max_size=8, pool_timeout_s=60)
    with local_server(create_app(settings)) as base:
        responses = asyncio.run(_crowd(base, requests))
        final = httpx.get(f"{base}/patrols/coverage", params={"period": "day", "on": str(day)}, headers=team)
    assert _statuses(responses) == {201: CROWD // 2, 200: CROWD // 2}, [r.text for r in responses][:3]
    assert _count(url) == (CROWD // 2, CROWD // 2 * len(mine))
    figures = next(z for z in final.json() if z["zone_code"] == ZONE)
    assert (figures["rounds"], figures["coverage_pct"]) == (CROWD // 2, 100.0)


def test_patrol_routes_answer_503_while_the_database_is_down_and_serve_after(target):  # noqa: F811
    import time

    from geo.store import embedded
    from tests.live import serving

    url = target.url()
    with psycopg.connect(url) as conn:
        mine = _points(conn, ZONE, 2, "PP-R")
    admin = auth_headers(url, "admin")
    day = today() - timedelta(days=1)
    body = _round(day, [(mine[0], 20, 5), (mine[1], 20, 15)])
    env = {**target.env, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}
    with serving(env) as base, httpx.Client(base_url=base, headers=admin, timeout=180) as http:
        assert http.post("/patrols/rounds", json=body).status_code == 201
        embedded.stop(target.cluster)
        try:
            for method, path in (
                ("GET", "/patrols/coverage"),
                ("GET", "/patrols/checkpoints"),
                ("GET", "/maps/patrols"),
                ("POST", "/patrols/rounds"),
            ):
                r = http.request(method, path, json=body if method == "POST" else None)
                assert r.status_code == 503, (path, r.status_code, r.text[:200])
                assert int(r.headers["Retry-After"]) > 0 and r.json()["reason_zh"]
        finally:
            target.start()
        deadline = time.monotonic() + 60
        while http.get("/patrols/coverage", params={"on": str(day)}).status_code != 200:
            assert time.monotonic() < deadline, "not serving again after the start"
            time.sleep(0.5)
        assert _count(url) == (1, 2)  # the round refused while down left nothing
        assert http.post("/patrols/rounds", json=body).status_code == 201
        assert _count(url) == (2, 4)


def test_the_demo_patrols_two_weeks_with_one_neglected_zone(db_url: str):
    """`wuye demo` lays out eight checkpoints inside every zone and two weeks of rounds before today;
    the neglected zone's last three checkpoints are never scanned (5 of 8 a day: flagged)."""
    from geo.demo.load import DEMO_CHECKPOINTS, DEMO_NEGLECTED_ZONE, load_patrols

    with psycopg.connect(db_url) as conn:
        zones = conn.execute("SELECT count(*) FROM zones WHERE district_code = %s", [DISTRICT]).fetchone()
        assert zones is not None
        points, scans = load_patrols(conn, district_code=DISTRICT)
        assert points == DEMO_CHECKPOINTS * int(zones[0]) and scans > 0
        assert load_patrols(conn, district_code=DISTRICT) == (0, 0)  # once only
        outside = conn.execute(
            "SELECT count(*) FROM patrol_points p JOIN zones z ON z.code = p.zone_code "
            "WHERE NOT ST_Within(p.geom, z.geom)"
        ).fetchone()
        assert outside == (0,)
        figures = {
            z["zone"]["code"]: z["patrol"]
            for z in acceptance.district_figures(conn, district_code=DISTRICT, rules=AcceptanceSettings())
        }
    neglected = figures.pop(DEMO_NEGLECTED_ZONE)
    assert neglected["coverage_pct"] == 62.5 and neglected["flagged"]  # 5 of 8 checkpoints, every day
    assert all(f["coverage_pct"] >= 95 and not f["flagged"] for f in figures.values()), figures
