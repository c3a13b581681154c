"""The plan's four acceptance standards (issue 19 point 4) and reward funds and performance points
(point 5): each criterion fails a zone on its own, at its threshold from settings; a standard switched
off for a programme year fails nothing; an issued verdict stays as issued when the rules change; the
reward follows the latest issued verdict (released on 通过, withheld in 补课); each sub-district's
points with their parts; bad input named; fifty clients on a real port."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.maps import local_server
from geo.access.scope import Principal
from geo.cases import workflow as cases
from geo.cases.shapes import Report
from geo.programme import acceptance, inspections, verdicts
from geo.settings import AcceptanceSettings
from geo.steps import run
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.test_acceptance import all_verified, answers

ADMIN = Principal(username="tests-admin", role="admin")
ZONE = "jinling"


@pytest.fixture(autouse=True)
def _all_standards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing switched off (conftest switches off for the older tests what they do not record): by the
    environment, as pydantic-settings merges a dict given to the class with the environment's."""
    monkeypatch.setenv("WUYE_CRITERIA_OFF", "{}")


def _ready(conn: psycopg.Connection, zone: str = ZONE, *, paid: int = 8) -> None:
    """Make ``zone`` meet all four standards: 90 of 100 satisfied, every task verified with before and after
    photos, every facility normal, service since 2023-05-10 with a fee standard in force, ten households
    billed 20 yuan for 2023-08 and ``paid`` of them paid (8: exactly 80 %)."""
    answers(conn, zone, 90, 100)
    all_verified(conn, zone)
    conn.execute(
        "INSERT INTO remediation_photos (task_id, district_code, stage, path, content_type, bytes, actor) "
        "SELECT t.id, t.district_code, s, 'x.jpg', 'image/jpeg', 1, 'tests' FROM remediation_tasks t "
        "CROSS JOIN (VALUES ('before'), ('after')) v(s) WHERE t.zone_code = %s",
        [zone],
    )
    for layer in inspections.facility_layers():
        conn.execute(f"UPDATE {layer} SET condition = 'normal'")  # noqa: S608  a catalogue layer name
    conn.execute(
        "INSERT INTO zone_services (district_code, zone_code, starts_on, unit_code, recorded_by) "
        "SELECT %s, %s, DATE '2023-05-10', z.property_unit, 'tests' FROM zones z WHERE z.code = %s",
        [DISTRICT, zone, zone],
    )
    row = conn.execute(
        "INSERT INTO fee_standards (district_code, zone_code, basis, amount, effective, document_number, "
        "approved_by, recorded_by) VALUES (%s, %s, 'household', 20, daterange('2023-01-01', NULL), "
        "'岳发改价〔2023〕8号', 'bureau-fgj', 'tests') RETURNING id",
        [DISTRICT, zone],
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO buildings (code, district_code, name, zone_code, households, geom) "
        "SELECT %(z)s || '-b1', %(d)s, '1栋', %(z)s, 10, ST_Multi(ST_Transform(ST_Buffer(ST_Transform("
        " ST_PointOnSurface(geom), 4547), 6, 'quad_segs=1'), 4490)) FROM zones WHERE code = %(z)s",
        {"z": zone, "d": DISTRICT},
    )
    conn.execute(
        "INSERT INTO households (district_code, building_code, room, recorded_by) "
        "SELECT %s, %s || '-b1', g::text, 'tests' FROM generate_series(101, 110) g",
        [DISTRICT, zone],
    )
    conn.execute(
        "INSERT INTO fee_bills (district_code, household_id, period, amount, standard_id) "
        "SELECT district_code, id, DATE '2023-08-01', 20, %s FROM households WHERE building_code = %s || '-b1'",
        [row[0], zone],
    )
    conn.execute(
        "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, actor) "
        "SELECT district_code, id, DATE '2023-08-01', 20, DATE '2023-08-20', 'tests' FROM households "
        "WHERE building_code = %s || '-b1' ORDER BY id LIMIT %s",
        [zone, paid],
    )


def _sums_match(conn: psycopg.Connection) -> None:
    """The per-building monthly sums the triggers keep (migration 0017) equal the bills and payments."""
    kept = conn.execute(
        "SELECT building_code, period, bills, billed, paid FROM fee_building_months "
        "WHERE bills <> 0 OR billed <> 0 OR paid <> 0 ORDER BY 1, 2"
    ).fetchall()
    direct = conn.execute(
        "SELECT building_code, period, sum(bills)::int, sum(billed), sum(paid) FROM ("
        " SELECT h.building_code, f.period, 1 AS bills, f.amount AS billed, 0 AS paid FROM fee_bills f "
        " JOIN households h ON h.id = f.household_id UNION ALL "
        " SELECT coalesce(p.building_code, h.building_code), p.period, 0, 0, p.amount FROM fee_payments p "
        " LEFT JOIN households h ON h.id = p.household_id) s GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert kept == direct and kept


def judge(conn: psycopg.Connection, rules: AcceptanceSettings | None = None, zone: str = ZONE) -> dict:
    rules = rules or AcceptanceSettings()
    return acceptance.zone_acceptance(conn, zone, district_code=DISTRICT, rules=rules, fee_grace_months=2)


def _criterion(result: dict, key: str) -> dict:
    return next(c for c in result["criteria"] if c["criterion"] == key)


def _facilities(conn: psycopg.Connection, zone: str) -> list[tuple[str, str]]:
    """(layer, code) of the zone's facilities, as the acceptance counts them."""
    found: list[tuple[str, str]] = []
    for layer in inspections.facility_layers():
        found += conn.execute(
            f"SELECT %s, f.code FROM {layer} f JOIN zones z ON ST_Intersects(f.geom, z.geom) "  # noqa: S608
            "WHERE z.code = %s ORDER BY f.code",
            [layer, zone],
        ).fetchall()
    return found


def test_a_zone_meeting_all_four_standards_passes_and_each_criterion_fails_it_alone(conn):
    _ready(conn)
    result = judge(conn)
    assert result["verdict"] == "pass", [c for c in result["criteria"] if not c["met"]]
    assert [s["standard"] for s in result["standards"]] == ["clean", "appearance", "mechanism", "satisfaction"]
    assert [s["title_zh"] for s in result["standards"]] == [
        "脏乱差现象消除",
        "小区面貌改观",
        "长效机制形成",
        "群众满意",
    ]
    assert all(s["met"] and s["enabled"] for s in result["standards"]), result["standards"]
    assert len(result["criteria"]) == 8 and all(c["enabled"] for c in result["criteria"])
    assert "收费率 80.0%" in _criterion(result, "collection")["detail_zh"]  # exactly 80 %: met
    _sums_match(conn)

    # photos: one task without its after photo
    conn.execute(
        "DELETE FROM remediation_photos WHERE id = (SELECT min(p.id) FROM remediation_photos p JOIN "
        "remediation_tasks t ON t.id = p.task_id WHERE t.zone_code = %s AND p.stage = 'after')",
        [ZONE],
    )
    result = judge(conn)
    assert (result["verdict"], result["failed"], result["failed_standards"]) == (
        "redo",
        ["remediation_photos"],
        ["appearance"],
    )
    conn.execute(
        "INSERT INTO remediation_photos (task_id, district_code, stage, path, content_type, bytes, actor) "
        "SELECT t.id, t.district_code, 'after', 'y.jpg', 'image/jpeg', 1, 'tests' FROM remediation_tasks t "
        "WHERE t.zone_code = %s AND NOT EXISTS (SELECT 1 FROM remediation_photos p WHERE p.task_id = t.id "
        "AND p.stage = 'after')",
        [ZONE],
    )
    assert judge(conn)["verdict"] == "pass"

    # collection: 159.99 of 200 yuan is below 80 %, compared exactly
    conn.execute(
        "UPDATE fee_payments SET amount = 19.99 WHERE id = (SELECT min(p.id) FROM fee_payments p JOIN households h "
        "ON h.id = p.household_id WHERE h.building_code = %s)",
        [f"{ZONE}-b1"],
    )
    result = judge(conn)
    assert (result["failed"], result["failed_standards"]) == (["collection"], ["mechanism"])
    assert "实收 159.99 / 应收 200.00" in _criterion(result, "collection")["detail_zh"]
    _sums_match(conn)  # an update is summed too
    assert judge(conn, AcceptanceSettings(min_collection_percent=79))["verdict"] == "pass"
    # the mechanism switched off for the programme year (2023): shown, not judged
    off = judge(conn, AcceptanceSettings(criteria_off={2023: ["mechanism"]}))
    assert off["verdict"] == "pass" and off["failed"] == []
    mechanism = next(s for s in off["standards"] if s["standard"] == "mechanism")
    assert (mechanism["enabled"], mechanism["met"]) == (False, None)
    assert [c["enabled"] for c in off["criteria"] if c["standard"] == "mechanism"] == [False, False, False]
    assert judge(conn, AcceptanceSettings(criteria_off={2024: ["mechanism"]}))["verdict"] == "redo"  # another year
    conn.execute("UPDATE fee_payments SET amount = 20 WHERE amount = 19.99")

    # 脏乱差: an open sanitation case overdue beyond the grace fails; a facilities one does not
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [ZONE]
    ).fetchone()
    assert row is not None
    made = {}
    for category in ("garbage_pile", "light_out"):
        case = run(conn, cases.report(ADMIN, Report(category, row[0], row[1]), district_code=DISTRICT))
        made[category] = case["id"]
    conn.execute("UPDATE cases SET due_at = now() - interval '73 hours' WHERE code = %s", [made["light_out"]])
    result = judge(conn)
    assert result["verdict"] == "pass" and result["cases"]["overdue_beyond_grace"] == 1  # counted, not judged
    conn.execute("UPDATE cases SET due_at = now() - interval '73 hours' WHERE code = %s", [made["garbage_pile"]])
    result = judge(conn)
    assert (result["failed"], result["failed_standards"]) == (["cases"], ["clean"])
    assert judge(conn, AcceptanceSettings(standard_case_kinds=["greening"]))["verdict"] == "pass"
    conn.execute("UPDATE cases SET due_at = now() + interval '1 day' WHERE code = ANY(%s)", [list(made.values())])

    # facilities: the share normal at the last inspection, compared in integers at the threshold
    facilities = _facilities(conn, ZONE)
    counted = len(facilities)
    allowed = counted * 5 // 100  # faulty facilities that still leave ≥ 95 % normal
    assert counted >= 20, counted

    def faulty(n: int) -> None:
        for layer in {layer for layer, _ in facilities}:
            conn.execute(f"UPDATE {layer} SET condition = 'normal'")  # noqa: S608
        for layer, code in facilities[:n]:
            conn.execute(f"UPDATE {layer} SET condition = 'faulty' WHERE code = %s", [code])  # noqa: S608

    faulty(allowed)
    assert _criterion(judge(conn), "facilities")["met"] is True
    faulty(allowed + 1)
    result = judge(conn)
    assert (result["failed"], result["failed_standards"]) == (["facilities"], ["clean"])
    assert _criterion(result, "facilities")["detail_zh"].startswith(f"正常 {counted - allowed - 1} / {counted} 处")
    assert judge(conn, AcceptanceSettings(min_facilities_normal_percent=90))["verdict"] == "pass"
    # a removed facility is not counted
    layer, code = facilities[0]
    conn.execute(f"UPDATE {layer} SET condition = 'removed' WHERE code = %s", [code])  # noqa: S608
    assert _criterion(judge(conn), "facilities")["detail_zh"].startswith(
        f"正常 {counted - allowed - 1} / {counted - 1}"
    )


def test_the_mechanism_before_charging_may_start_and_without_service_or_standard(conn):
    _ready(conn)
    # service from last month: charging may not start yet, so no collection is asked
    conn.execute(
        "UPDATE zone_services SET starts_on = %s WHERE zone_code = %s", [date.today() - timedelta(days=20), ZONE]
    )
    conn.execute("DELETE FROM fee_payments")
    _sums_match(conn)  # a delete is taken off
    result = judge(conn)
    collection = _criterion(result, "collection")
    assert collection["met"] is True and "尚未到收费期" in collection["detail_zh"]
    assert result["verdict"] == "pass"
    # no fee standard in force: 长效机制 fails on it
    conn.execute(
        "UPDATE fee_standards SET effective = daterange('2023-01-01', '2023-12-31') WHERE zone_code = %s", [ZONE]
    )
    assert judge(conn)["failed"] == ["fee_standard"]
    conn.execute("DELETE FROM fee_bills")
    conn.execute("DELETE FROM fee_standards")
    conn.execute("DELETE FROM zone_services")
    result = judge(conn)
    assert result["failed"] == ["property_service", "fee_standard", "collection"]
    assert _criterion(result, "property_service")["detail_zh"] == "未登记物业服务单位及开始日期"


def _issue(conn: psycopg.Connection, zone: str, rules: AcceptanceSettings) -> dict:
    # the figures are what this test reads; the PDF is drawn by the zone report's own tests
    return verdicts.issue(
        conn, ADMIN, zone, district_code=DISTRICT, rules=rules, render=lambda figures: b"%PDF-1.7 figures"
    )


def test_issued_verdicts_stay_rewards_follow_them_and_points_per_subdistrict(db_url, tmp_path):
    three = AcceptanceSettings(criteria_off={2023: ["facilities", "remediation_photos", "mechanism"]})
    with psycopg.connect(db_url) as conn:
        _ready(conn)
        conn.execute(  # none in force today: fails 长效机制 when judged
            "UPDATE fee_standards SET effective = daterange('2023-01-01', '2023-12-31') WHERE zone_code = %s", [ZONE]
        )
        answers(conn, "huangnitang", 70, 100)  # guanshaling's other zone: 补课
        all_verified(conn, "huangnitang")
        passed = _issue(conn, ZONE, three)  # issued while the year judged three criteria: 通过
        redo = _issue(conn, "huangnitang", three)
        conn.commit()
    assert (passed["verdict"], redo["verdict"]) == ("pass", "redo")

    settings = settings_for(db_url)
    settings.db.home = tmp_path
    settings.acceptance = AcceptanceSettings(
        reward_basis="household", reward_amount=Decimal("10"), reward_zones={"huangnitang": Decimal("5000")}
    )
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    with TestClient(create_app(settings)) as client:
        live = client.get(f"/zones/{ZONE}/acceptance", headers=staff).json()
        # the rules changed: the live figures judge four standards and say 补课 …
        assert live["verdict"] == "redo" and live["failed"] == ["fee_standard"]
        # … the issued document says what it said, and the reward follows it
        doc = client.get(f"/verdicts/{passed['id']}", headers=staff).json()
        assert doc["verdict"] == "pass" and doc["figures"]["verdict"] == "pass" and "standards" in doc["figures"]
        assert [c["enabled"] for c in doc["figures"]["criteria"]].count(False) == 5
        assert live["issue"]["number"] == passed["number"]
        assert live["reward"] == {
            "basis": "household",
            "amount": "13210.00",  # 1,321 recorded households × 10 yuan
            "state": "released",
            "state_zh": "已拨付",
            "released": "13210.00",
            "document_number": passed["number"],
        }
        rows = {r["zone"]["code"]: r for r in client.get("/acceptance", headers=staff).json()}
        assert (
            rows["huangnitang"]["reward"]["state"] == "withheld"
            and rows["huangnitang"]["reward"]["amount"] == "5000.00"
        )
        assert rows["huangnitang"]["reward"]["released"] == "0.00"
        assert rows["ansu"]["reward"]["state"] == "pending" and rows["ansu"]["reward"]["amount"] == "4520.00"

        points = client.get("/acceptance/points", params={"year": 2023}, headers=staff)
        assert points.status_code == 200, points.text
        body = points.json()
        assert body["year"] == 2023 and body["weights"]["redo"] == 5.0
        subs = {s["subdistrict_code"]: s for s in body["subdistricts"]}
        g = subs["guanshaling"]
        assert g["zones"] == ["huangnitang", "jinling"]
        parts = {p["part"]: p for p in g["parts"]}
        assert (parts["first_pass"]["count"], parts["first_pass"]["base"], parts["first_pass"]["points"]) == (
            1,
            2,
            15.0,
        )
        assert (parts["redo"]["count"], parts["redo"]["points"]) == (1, -5.0)
        assert (parts["collection"]["count"], parts["collection"]["base"]) == ("160.00", "200.00")
        assert parts["collection"]["points"] == 16.0  # 20 × 0.8
        assert g["points"] == pytest.approx(sum(p["points"] for p in g["parts"]))
        assert g["reward"] == {"released": "13210.00", "withheld": "5000.00", "pending": "0.00"}
        # a sub-district without issued verdicts scores no first pass and loses nothing for redo
        x = {p["part"]: p for p in subs["xianjiahu"]["parts"]}
        assert (x["first_pass"]["points"], x["redo"]["points"]) == (0.0, 0.0)
        assert client.get("/acceptance/points", params={"year": 2031}, headers=staff).json()["subdistricts"] == []

        # bad input: named, nothing else answered
        for year in ("1999", "abc"):
            bad = client.get("/acceptance/points", params={"year": year}, headers=staff)
            assert 400 <= bad.status_code < 500 and bad.json()["field"] == "year", bad.text
        assert client.get("/acceptance/points").status_code == 401
        assert client.get("/acceptance/points", headers=auth_headers(db_url, "resident")).status_code == 403

        # the summary XLSX carries the four standards and the reward (new columns last)
        xlsx = client.get("/acceptance", params={"f": "xlsx"}, headers=staff)
    sheet = load_workbook(BytesIO(xlsx.content)).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    head = table[0]
    jinling = next(r for r in table if r[1] == ZONE)
    assert jinling[head.index("长效机制形成")] == "不符合：fee_standard"
    assert jinling[head.index("群众满意")] == "符合"
    assert (jinling[head.index("以奖代补(元)")], jinling[head.index("奖励状态")]) == (13210, "已拨付")
    # and a second sheet with each sub-district's points, part by part, and its rewards
    points_sheet = load_workbook(BytesIO(xlsx.content))["绩效考核"]
    by_code = {r[1]: r for r in points_sheet.iter_rows(min_row=2, values_only=True)}
    assert by_code["guanshaling"][:5] == (2023, "guanshaling", "观沙岭街道", 15.0, -5.0)
    assert by_code["guanshaling"][-4:] == (g["points"], 13210.0, 5000.0, 0.0)


def test_fifty_clients_read_the_standards_and_points_on_a_real_port(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        _ready(conn)
        conn.commit()
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    settings.db.pool_max_size = 20
    settings.acceptance = AcceptanceSettings(reward_amount=Decimal("100000"))
    staff = auth_headers(db_url, "admin")
    paths = ["/acceptance/points?year=2023", f"/zones/{ZONE}/acceptance", "/acceptance"]
    with local_server(create_app(settings)) as url:
        expected = {p: httpx.get(f"{url}{p}", headers=staff, timeout=60).json() for p in paths}
        assert expected[f"/zones/{ZONE}/acceptance"]["verdict"] == "pass"

        async def crowd() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=60)
            async with httpx.AsyncClient(base_url=url, headers=staff, timeout=120, limits=limits) as http:
                return await asyncio.gather(*(http.get(paths[i % len(paths)]) for i in range(50)))

        responses = asyncio.run(crowd())
    assert [r.status_code for r in responses] == [200] * 50
    for i, r in enumerate(responses):
        body, want = r.json(), expected[paths[i % len(paths)]]
        if isinstance(body, dict) and "generated_at" in body:  # the figures say when they were computed
            body, want = {**body, "generated_at": None}, {**want, "generated_at": None}
        if isinstance(body, list):
            body = [{**z, "generated_at": None} for z in body]
            want = [{**z, "generated_at": None} for z in want]
        assert body == want, paths[i % len(paths)]


def test_settings_naming_an_unknown_criterion_or_weight_are_refused_when_read(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("WUYE_CRITERIA_OFF", '{"2023": ["mechanism", "tidiness"]}')
    with pytest.raises(ValidationError, match=r"criteria_off 2023: unknown \['tidiness'\]"):
        AcceptanceSettings()
    monkeypatch.setenv("WUYE_CRITERIA_OFF", '{"2023": ["collection"]}')
    assert AcceptanceSettings().criteria_off == {2023: ["collection"]}
    with pytest.raises(ValidationError, match="points_weights"):
        AcceptanceSettings(points_weights={"first_pass": -1.0})
    with pytest.raises(ValidationError, match="points_weights"):
        AcceptanceSettings(points_weights={"speed": 10.0})
    with pytest.raises(ValidationError, match="reward_amount"):
        AcceptanceSettings(reward_amount=Decimal("-5"))
