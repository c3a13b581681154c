"""Phases follow the work (issue 19, point 1): each phase's status is derived from records (the baseline
record, the remediation tasks, the service start, the first full month of service, an issued 通过
verdict), deadlines come from the programme calendar, only administrators set a zone's own deadline
(with a reason, audited), and GET /phases gives the district table."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.maps import local_server
from geo.programme import phases, remediation
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.test_acceptance import answers


@pytest.fixture
def client(db_url: str, tmp_path):
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    with TestClient(create_app(settings)) as c:
        yield c


def _by_phase(rows: list[dict]) -> dict[str, dict]:
    return {p["phase"]: p for p in rows}


def _verify_all(db_url: str, zone: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE remediation_tasks SET state = 'verified', verified_on = DATE '2023-07-01' WHERE zone_code = %s",
            [zone],
        )


def _issued(db_url: str, zone: str, verdict: str, number: str, *, replaces: str | None = None, version: int = 1):
    """An issued acceptance document for the zone (the record the 考核验收 phase reads)."""
    with psycopg.connect(db_url) as conn:
        if version == 1:
            answers(conn, zone, 9, 10)
        seq = int(number.rsplit("-", 1)[1])
        conn.execute(
            "INSERT INTO acceptance_documents (district_code, number, year, seq, zone_code, round, version, "
            "replaces, reason, verdict, figures, pdf, sha256, issued_by, issued_at) VALUES (%s, %s, 2023, %s, %s, "
            "'2023', %s, %s, %s, %s, '{}', '\\x00', 'x', 'tests', timestamptz '2023-09-01 10:00+08' + %s * interval "
            "'1 day')",
            [DISTRICT, number, seq, zone, version, replaces, "更正" if replaces else None, verdict, seq],
        )


def test_subdistrict_staff_cannot_move_their_own_zones_deadline(client, db_url):
    # The bug: 西湖's staff moved their own zone's deadline a year later, which cleared its overdue flag.
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    before = _by_phase(client.get("/zones/yumin-south/phases").json())
    later = (remediation.today() + timedelta(days=365)).isoformat()
    answer = client.put(
        "/zones/yumin-south/phases/remediation", json={"due_on": later, "reason": "推迟一年"}, headers=staff
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["reason_zh"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM zone_phase_deadlines").fetchone() == (0,)
    after = _by_phase(client.get("/zones/yumin-south/phases").json())
    assert after["remediation"]["due_on"] == before["remediation"]["due_on"]
    assert after["remediation"]["overdue"] is True


def test_an_administrator_sets_a_deadline_with_a_reason_and_it_is_audited(client, db_url):
    admin = auth_headers(db_url, "admin")
    later = (remediation.today() + timedelta(days=30)).isoformat()
    no_reason = client.put("/zones/jinling/phases/survey", json={"due_on": later}, headers=admin)
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["field"]
    blank = client.put("/zones/jinling/phases/survey", json={"due_on": later, "reason": "  "}, headers=admin)
    assert blank.status_code == 400 and blank.json()["field"] == "reason"
    unknown = client.put("/zones/jinling/phases/harvest", json={"due_on": later, "reason": "x"}, headers=admin)
    assert unknown.status_code == 400 and unknown.json()["field"] == "phase"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM zone_phase_deadlines").fetchone() == (0,)
    put = client.put("/zones/jinling/phases/survey", json={"due_on": later, "reason": "拆迁延误"}, headers=admin)
    assert put.status_code == 200, put.text
    survey = _by_phase(put.json())["survey"]
    assert (survey["due_on"], survey["default_deadline"], survey["overdue"]) == (later, False, False)
    assert survey["status"] == "in_progress"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT details FROM audit_log WHERE action = 'phase.deadline' AND record_code = 'jinling/survey'"
        ).fetchone()
    assert row is not None
    year = client.get("/zones/jinling/phases").json()[0]["due_on"][:4]
    assert row[0] == {"zone": "jinling", "phase": "survey", "before": None, "after": later, "reason": "拆迁延误"}
    assert year == later[:4]


def test_deadlines_come_from_the_programme_calendar(client, db_url):
    rows = client.get("/zones/jinling/phases").json()
    assert [p["phase"] for p in rows] == list(phases.PHASES)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT programme_year FROM zones WHERE code = 'jinling'").fetchone()
    assert row is not None
    year = row[0] or remediation.today().year
    assert {p["phase"]: p["due_on"] for p in rows} == {
        "survey": f"{year}-02-28",
        "remediation": f"{year}-04-30",
        "rollout": f"{year}-05-31",
        "service": f"{year}-06-30",
        "acceptance": f"{year}-08-31",
    }
    assert client.get("/zones/no-such/phases").status_code == 404


def test_each_phase_follows_its_records_and_never_runs_ahead_of_an_earlier_one(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    zone = "yumin-south"
    start = _by_phase(client.get(f"/zones/{zone}/phases").json())
    # A typed phase no longer decides: nothing is recorded, so nothing is done.
    assert all(p["status"] != "done" for p in start.values())
    assert start["survey"]["missing"] == ["无摸底记录 no baseline record"]

    partial = {"surveyed_on": "2023-02-10", "households_inventoried": True, "problems": []}
    rows = _by_phase(client.put(f"/zones/{zone}/baseline", json=partial, headers=staff).json())
    assert rows["survey"]["status"] == "overdue"  # the 2023 calendar's February has passed
    assert rows["survey"]["missing"] == [
        "楼栋未摸清 buildings not inventoried",
        "设施未摸清 facilities not inventoried",
        "未列出问题清单 problems not listed",
    ]
    full = {
        "surveyed_on": "2023-02-10",
        "households_inventoried": True,
        "buildings_inventoried": True,
        "facilities_inventoried": True,
        "problems": ["12 栋化粪池满溢", "路灯缺 6 盏"],
        "unit_code": "office-xihu",
    }
    rows = _by_phase(client.put(f"/zones/{zone}/baseline", json=full, headers=staff).json())
    assert (rows["survey"]["status"], rows["survey"]["done_on"], rows["survey"]["missing"]) == (
        "done",
        "2023-02-10",
        [],
    )

    # 裕民南片 with 0 of 10 tasks verified is not 集中整治 done.
    with psycopg.connect(db_url) as conn:
        assert remediation.plan_items(conn, district_code=DISTRICT, actor="tests", zone_code=zone) == 10
    rows = _by_phase(client.get(f"/zones/{zone}/phases").json())
    assert rows["remediation"]["status"] == "overdue"
    assert rows["remediation"]["missing"] == ["10/10 项整治任务未验收 tasks not verified"]

    # Service recorded before the remediation is verified: rollout is not shown done, and says why.
    service = {"starts_on": "2023-05-10", "unit_code": "team-yumin"}
    rows = _by_phase(client.put(f"/zones/{zone}/service", json=service, headers=staff).json())
    assert rows["rollout"]["status"] != "done" and rows["service"]["status"] != "done"
    assert rows["rollout"]["missing"] == ["前一阶段「集中整治」未完成 an earlier phase is not done"]

    _verify_all(db_url, zone)
    rows = _by_phase(client.get(f"/zones/{zone}/phases").json())
    assert [rows[k]["status"] for k in phases.PHASES] == ["done", "done", "done", "done", "overdue"]
    assert rows["remediation"]["done_on"] == "2023-07-01"
    assert rows["rollout"]["done_on"] == "2023-05-10"
    assert rows["service"]["done_on"] == "2023-06-30"  # the first full month of service is June
    assert rows["acceptance"]["missing"] == ["无签发的验收结论 no issued verdict"]

    _issued(db_url, zone, "redo", "T-1")
    rows = _by_phase(client.get(f"/zones/{zone}/phases").json())
    assert rows["acceptance"]["status"] == "overdue" and "T-1" in rows["acceptance"]["missing"][0]
    _issued(db_url, zone, "pass", "T-2", replaces="T-1", version=2)
    rows = _by_phase(client.get(f"/zones/{zone}/phases").json())
    assert (rows["acceptance"]["status"], rows["acceptance"]["done_on"]) == ("done", "2023-09-03")
    # Phases follow the records backwards too: a redone task takes 集中整治 and all after it back.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE remediation_tasks SET state = 'in_progress', verified_on = NULL "
            "WHERE id = (SELECT min(id) FROM remediation_tasks WHERE zone_code = %s)",
            [zone],
        )
    rows = _by_phase(client.get(f"/zones/{zone}/phases").json())
    assert [rows[k]["status"] == "done" for k in phases.PHASES] == [True, False, False, False, False]


def test_service_start_needs_a_property_service_unit_and_a_zone_in_scope(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    bureau = client.put("/zones/yumin-south/service", json={"starts_on": "2023-05-10", "unit_code": "bureau-fgj"},
                        headers=staff)  # fmt: skip
    assert bureau.status_code == 400 and bureau.json()["field"] == "unit_code"
    unknown = client.put("/zones/yumin-south/service", json={"starts_on": "2023-05-10", "unit_code": "nobody"},
                         headers=staff)  # fmt: skip
    assert unknown.status_code == 400 and unknown.json()["field"] == "unit_code"
    other = client.put("/zones/daopo/service", json={"starts_on": "2023-05-10", "unit_code": "team-daopo"},
                       headers=staff)  # fmt: skip
    assert other.status_code == 404
    future = client.put("/zones/yumin-south/baseline", json={"surveyed_on": "2999-01-01"}, headers=staff)
    assert future.status_code == 400 and "surveyed_on" in future.json()["field"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM zone_services").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM zone_baselines").fetchone() == (0,)
    # a service starting later this month: rollout not done yet, and the first full month is next month
    soon = remediation.today() + timedelta(days=3)
    rows = _by_phase(client.put("/zones/yumin-south/service", json={"starts_on": soon.isoformat(),
                                "unit_code": "team-yumin"}, headers=staff).json())  # fmt: skip
    assert rows["rollout"]["missing"] == [f"物业服务 {soon} 开始 service starts on {soon}"]


def test_first_full_month_of_service():
    assert phases.first_full_month(date(2023, 5, 1)) == date(2023, 5, 1)
    assert phases.first_full_month(date(2023, 5, 10)) == date(2023, 6, 1)
    assert phases.first_full_month(date(2023, 12, 2)) == date(2024, 1, 1)


def test_the_district_table_is_every_zone_by_phase_and_fifty_clients_read_it_on_a_real_port(db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    settings = settings_for(db_url)
    settings.db.pool_max_size = 20
    with local_server(create_app(settings)) as url:
        baseline = {"surveyed_on": "2023-02-10", "households_inventoried": True, "buildings_inventoried": True,
                    "facilities_inventoried": True, "problems": ["墙面脱落"]}  # fmt: skip
        assert httpx.put(f"{url}/zones/yumin-north/baseline", json=baseline, headers=staff).status_code == 200
        table = httpx.get(f"{url}/phases").json()
        with psycopg.connect(db_url) as conn:
            zones = [r[0] for r in conn.execute("SELECT code FROM zones ORDER BY subdistrict_code, code")]
        assert [z["zone_code"] for z in table["zones"]] == zones
        assert [p["phase"] for p in table["phases"]] == list(phases.PHASES)
        assert table["summary"]["survey"]["done"] == 1
        north = next(z for z in table["zones"] if z["zone_code"] == "yumin-north")
        assert north["current_phase"] == "remediation" and north["current_phase_zh"] == "集中整治"
        assert set(north["publicity"]) == set(phases.PUBLICITY_KINDS)
        overdue = sum(1 for z in table["zones"] for p in z["phases"] if p["status"] == "overdue")
        assert sum(c["overdue"] for c in table["summary"].values()) == overdue

        async def crowd() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=60)) as http:
                return await asyncio.gather(
                    *(http.get("/phases" if i % 2 else "/zones/yumin-north/phases") for i in range(50))
                )

        responses = asyncio.run(crowd())
        assert sorted({r.status_code for r in responses}) == [200]
        assert all(r.json() == table for r in responses[1::2])
        assert all(r.json() == north["phases"] for r in responses[0::2])
