"""先服务后收费 (issue 19 point 3): the household register imported with row errors, fee standards
(overlaps refused), charging only from the first full month after service start + WUYE_FEE_GRACE_MONTHS
(409 naming the first chargeable month), bills by one idempotent statement, payments per household or
per building, arrears, collection rates and income against service cost."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.maps import local_server
from geo.programme import fees
from tests.conftest import DISTRICT, auth_headers, settings_for

HOUSEHOLDS = (
    "楼栋,单元,户号,是否入住,收费类别,建筑面积\n"
    "ys-b1,1,101,是,,80\n"
    "ys-b1,1,102,是,低保户,60\n"
    "ys-b1,2,201,否,,90\n"
    "ys-b2,1,101,是,,100\n"
)


def _buildings(db_url: str) -> None:
    """Two buildings of 裕民南片 in the buildings layer (small squares around points inside the zone)."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO buildings (code, district_code, name, zone_code, households, geom) "
            "SELECT b.code, %s, b.name, 'yumin-south', b.n, ST_Multi(ST_Transform(ST_Buffer(ST_Transform("
            " ST_PointOnSurface(z.geom), 4547), 6, 'quad_segs=1'), 4490)) "
            "FROM zones z CROSS JOIN (VALUES ('ys-b1', '1栋', 3)) b(code, name, n) WHERE z.code = 'yumin-south' "
            "UNION ALL SELECT 'ys-b2', %s, '2栋', 'yumin-south', 1, ST_Multi(ST_Transform(ST_Buffer(ST_Translate("
            " ST_Transform(ST_PointOnSurface(z.geom), 4547), 0, 20), 6, 'quad_segs=1'), 4490)) "
            "FROM zones z WHERE z.code = 'yumin-south'",
            [DISTRICT, DISTRICT],
        )


@pytest.fixture
def client(db_url: str, tmp_path):
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    _buildings(db_url)
    with TestClient(create_app(settings)) as c:
        yield c


def _count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608  a test's own table name
    assert row is not None
    return int(row[0])


def _csv(client, path: str, text: str, headers) -> httpx.Response:
    return client.post(path, files={"file": ("f.csv", text.encode("utf-8"), "text/csv")}, headers=headers)


def _set_up(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    admin = auth_headers(db_url, "admin")
    assert _csv(client, "/households/import", HOUSEHOLDS, staff).json() == {"rows": 4, "inserted": 4, "updated": 0}
    service = {"starts_on": "2023-05-10", "unit_code": "team-yumin", "monthly_cost": "1000"}
    assert client.put("/zones/yumin-south/service", json=service, headers=staff).status_code == 200
    standard = {
        "basis": "household",
        "amount": "20.00",
        "starts_on": "2023-01-01",
        "ends_on": "2023-12-31",
        "document_number": "岳发改价〔2023〕8号",
        "reductions": {"dibao": 50},
    }
    made = client.post("/zones/yumin-south/fee-standards", json=standard, headers=admin)
    assert made.status_code == 201, made.text
    return staff, admin


def test_first_chargeable_month():
    from datetime import date

    assert fees.first_chargeable(date(2023, 5, 10), 2) == date(2023, 8, 1)
    assert fees.first_chargeable(date(2023, 5, 1), 2) == date(2023, 7, 1)
    assert fees.first_chargeable(date(2023, 12, 31), 2) == date(2024, 3, 1)
    assert fees.first_chargeable(date(2023, 11, 30), 3) == date(2024, 3, 1)


def test_household_import_is_all_or_nothing_with_row_errors(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    bad = HOUSEHOLDS + "ys-b9,1,101,是,,80\nys-b1,1,101,是,,80\nys-b1,1,103,也许,富豪,-5\n"
    answer = _csv(client, "/households/import", bad, staff)
    assert answer.status_code == 400, answer.text
    problems = {(p["row"], p["field"]) for p in answer.json()["problems"]}
    assert problems == {(5, "building"), (6, "room"), (7, "occupied"), (7, "fee_category"), (7, "floor_area_m2")}
    assert _count(db_url, "households") == 0
    other = auth_headers(db_url, "subdistrict_staff", subdistrict_code="wangyue")
    assert _csv(client, "/households/import", HOUSEHOLDS, other).status_code == 400  # not their buildings
    assert _count(db_url, "households") == 0


def test_serve_first_charge_after_bills_payments_arrears_and_rates(client, db_url):
    staff, admin = _set_up(client, db_url)
    # overlapping standard refused, naming the one it overlaps
    overlap = {"basis": "area", "amount": "0.5", "starts_on": "2023-12-01", "document_number": "X"}
    clash = client.post("/zones/yumin-south/fee-standards", json=overlap, headers=admin)
    assert clash.status_code == 409 and clash.json()["field"] == "starts_on" and "岳发改价" in clash.json()["reason"]
    staff_standard = client.post("/zones/yumin-south/fee-standards", json={**overlap, "starts_on": "2024-01-01"},
                                 headers=staff)  # fmt: skip
    assert staff_standard.status_code == 403
    assert _count(db_url, "fee_standards") == 1

    # service from 10 May + 2 months' grace: August is the first chargeable month
    early = client.post("/bills/generate", json={"period": "2023-07", "zone_code": "yumin-south"}, headers=staff)
    assert early.status_code == 409, early.text
    assert early.json()["first_chargeable_month"] == "2023-08" and early.json()["rule"] == "fee_grace_months"
    assert "WUYE_FEE_GRACE_MONTHS" in early.json()["reason"]
    assert _count(db_url, "fee_bills") == 0
    run = client.post("/bills/generate", json={"period": "2023-08", "zone_code": "yumin-south"}, headers=staff)
    assert run.status_code == 200 and run.json()["created"] == 3  # the empty household is not billed
    again = client.post("/bills/generate", json={"period": "2023-08", "zone_code": "yumin-south"}, headers=staff)
    assert again.json()["created"] == 0  # idempotent
    with psycopg.connect(db_url) as conn:
        amounts = conn.execute(
            "SELECT h.room, f.amount::text FROM fee_bills f JOIN households h ON h.id = f.household_id "
            "ORDER BY h.building_code, h.room"
        ).fetchall()
        ids = dict(conn.execute("SELECT building_code || '-' || room, id FROM households").fetchall())
    assert amounts == [("101", "20.00"), ("102", "10.00"), ("101", "20.00")]  # 低保户 50 % off
    assert client.post("/bills/generate", json={"period": "2023-09"}, headers=admin).json()["created"] == 3

    pay = {"period": "2023-08", "amount": "20", "paid_on": "2023-08-15", "household_id": ids["ys-b1-101"]}
    assert client.post("/payments", json=pay, headers=staff).status_code == 201
    for change, field, status in (
        ({"period": "2023-07"}, "period", 409),
        ({"amount": "-5"}, "amount", 400),
        ({"household_id": 999999}, "household_id", 400),
        ({"paid_on": "2999-01-01"}, "paid_on", 400),
    ):
        refused = client.post("/payments", json={**pay, **change}, headers=staff)
        assert (refused.status_code, refused.json()["field"]) == (status, field), refused.text
    before = _count(db_url, "fee_payments")
    building = {"period": "2023-08", "amount": "20", "paid_on": "2023-08-20", "building_code": "ys-b2",
                "households_paid": 1}  # fmt: skip
    assert client.post("/payments", json=building, headers=staff).status_code == 201
    assert _count(db_url, "fee_payments") == before + 1

    rates = client.get("/fees/collection", params={"start": "2023-08", "end": "2023-08"}, headers=staff).json()
    zone = next(r for r in rates if r["level"] == "zone")
    assert (zone["bills"], zone["bills_paid"], zone["billed"], zone["paid"]) == (3, 2, "50.00", "40.00")
    assert (zone["rate_by_households"], zone["rate_by_amount"]) == (66.7, 80.0)
    b1 = next(r for r in rates if r["building_code"] == "ys-b1")
    assert (b1["bills"], b1["bills_paid"], b1["rate_by_amount"]) == (2, 1, 66.7)
    sub = next(r for r in rates if r["level"] == "subdistrict")
    assert sub["subdistrict_code"] == "xihu" and sub["billed"] == "50.00"

    owed = client.get("/fees/arrears", params={"zone": "yumin-south"}, headers=staff).json()
    assert sorted((r["building_code"], r["room"], r["owed"], tuple(r["months_owed"])) for r in owed) == [
        ("ys-b1", "101", "20.00", ("2023-09",)),
        ("ys-b1", "102", "20.00", ("2023-08", "2023-09")),
        ("ys-b2", "101", "40.00", ("2023-08", "2023-09")),
    ]
    assert client.get("/fees/arrears").status_code == 401

    income = client.get("/fees/income", params={"start": "2023-08", "end": "2023-09"}, headers=staff).json()
    ys = next(r for r in income if r["zone_code"] == "yumin-south")
    assert (ys["months_served"], ys["service_cost"], ys["fee_income"], ys["subsidy"]) == (
        2,
        "2000.00",
        "40.00",
        "1960.00",
    )

    csv = (
        "楼栋,单元,户号,月份,金额,缴费日期,缴费户数\n"
        "ys-b1,1,102,2023-08,10,2023-08-30,\nys-b2,,,2023-09,20,2023-09-30,1\n"
    )
    bad = csv + "ys-b1,1,999,2023-08,10,2023-08-30,\nys-b1,1,101,2023-06,10,2023-06-30,\nys-b1,1,101,2023-09,-1,x,\n"
    count = _count(db_url, "fee_payments")
    rejected = _csv(client, "/payments/import", bad, staff)
    assert rejected.status_code == 400
    assert {(p["row"], p["field"]) for p in rejected.json()["problems"]} == {
        (3, "room"), (4, "period"), (5, "amount"), (5, "paid_on")}  # fmt: skip
    assert _count(db_url, "fee_payments") == count
    assert _csv(client, "/payments/import", csv, staff).json() == {"recorded": 2}
    rates = client.get("/fees/collection", params={"start": "2023-08", "end": "2023-09"}, headers=staff).json()
    zone = next(r for r in rates if r["level"] == "zone")
    assert (zone["bills"], zone["bills_paid"], zone["rate_by_amount"]) == (6, 4, 70.0)


def test_fifty_clients_read_the_collection_figures_on_a_real_port(db_url, tmp_path):
    _buildings(db_url)
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    settings.db.pool_max_size = 20
    with TestClient(create_app(settings)) as c:
        staff, _ = _set_up(c, db_url)
        assert c.post("/bills/generate", json={"period": "2023-08", "zone_code": "yumin-south"},
                      headers=staff).status_code == 200  # fmt: skip
    paths = ["/fees/collection?start=2023-08&end=2023-08", "/fees/arrears", "/fees/income", "/fee-standards"]
    with local_server(create_app(settings)) as url:
        expected = {p: httpx.get(f"{url}{p}", headers=staff, timeout=60).json() for p in paths}

        async def crowd() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=60)
            async with httpx.AsyncClient(base_url=url, headers=staff, timeout=120, limits=limits) as http:
                return await asyncio.gather(*(http.get(paths[i % len(paths)]) for i in range(50)))

        responses = asyncio.run(crowd())
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.json() == expected[paths[i % len(paths)]] for i, r in enumerate(responses))
