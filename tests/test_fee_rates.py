"""The fee figures made fast (issue 19 benchmark (a)-(c)) give the answers the slow ways gave:
collection rates read from the per-building monthly sums (fee_building_months, migrations 0017 + 0018)
equal the rates computed from every bill and payment, through bills and payments inserted, updated and
deleted in every order (payments before their bill, overpayments, bills of 0, building totals); the
set-based payments import names the problems the row-by-row check named and writes the same rows; a
bill run stays idempotent, also two at once; the row-by-row foreign keys replaced by statement checks
still refuse a bill for a missing household and deleting a household that has bills."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from geo.access.scope import Principal
from geo.errors import ImportRejected, NotFound
from geo.programme import fees
from geo.steps import run
from tests.conftest import DISTRICT

ADMIN = Principal(username="tests", role="admin")
STAFF = Principal(username="staff", role="subdistrict_staff", subdistrict_code="xihu")
ZONES = ("yumin-south", "huangnitang")
GRACE = 2


def _district(conn: psycopg.Connection) -> None:
    """Three buildings in each of two zones, 7 households each (one empty, one 低保户 at 50 %, one 特困户 at
    100 % off: a bill of 0), service from 10 May 2023, 20 yuan a household a month."""
    conn.execute(
        "INSERT INTO buildings (code, district_code, name, zone_code, households, geom) "
        "SELECT z.code || '-f' || g, z.district_code, g || '栋', z.code, 7, ST_Multi(ST_Transform(ST_Buffer("
        " ST_Translate(ST_Transform(ST_PointOnSurface(z.geom), 4547), g * 15, 0), 5, 'quad_segs=1'), 4490)) "
        "FROM zones z CROSS JOIN generate_series(1, 3) g WHERE z.code = ANY(%s)",
        [list(ZONES)],
    )
    conn.execute(
        "INSERT INTO households (district_code, building_code, unit, room, occupied, fee_category, recorded_by) "
        "SELECT %s, b.code, '1', (100 + h)::text, h <> 7, CASE h WHEN 2 THEN 'dibao' WHEN 3 THEN 'tekun' "
        " ELSE 'standard' END, 'tests' FROM buildings b CROSS JOIN generate_series(1, 7) h "
        "WHERE b.code LIKE '%%-f_'",
        [DISTRICT],
    )
    conn.execute(
        "INSERT INTO zone_services (district_code, zone_code, starts_on, unit_code, monthly_cost, recorded_by) "
        "SELECT %s, z, DATE '2023-05-10', 'team-yumin', 1000, 'tests' FROM unnest(%s::text[]) z",
        [DISTRICT, list(ZONES)],
    )
    conn.execute(
        "INSERT INTO fee_standards (district_code, zone_code, basis, amount, effective, document_number, approved_by, "
        " reductions, recorded_by) SELECT %s, z, 'household', 20, daterange('2023-01-01', NULL), "
        " '岳发改价〔2023〕8号', 'bureau-fgj', '{\"dibao\": 50, \"tekun\": 100}', 'tests' FROM unnest(%s::text[]) z",
        [DISTRICT, list(ZONES)],
    )


def _households(conn: psycopg.Connection) -> list[tuple[int, str]]:
    return conn.execute("SELECT id, building_code FROM households WHERE building_code LIKE '%-f_' "
                        "ORDER BY building_code, room").fetchall()  # fmt: skip


def _pay(conn: psycopg.Connection, household: int, period: str, amount: str) -> None:
    conn.execute(
        "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, actor) "
        "VALUES (%s, %s, %s, %s, DATE '2023-12-20', 'tests')",
        [DISTRICT, household, date.fromisoformat(period + "-01"), Decimal(amount)],
    )


def _same(conn: psycopg.Connection, start: str = "2023-08", end: str = "2023-11") -> list[dict[str, Any]]:
    """The fast figures equal the bill-level ones (amounts as numbers: the bill-level query printed an unpaid
    building's 0 as '0', the sums print '0.00'); for every zone and each one. Compared in one order: for one
    zone the bill-level query listed the zone before its sub-district (PostgreSQL dropped the ORDER BY key
    its WHERE made constant, though the grouping sets' totals have it NULL); the sums list the sub-district
    first, as for every zone."""
    first, last = fees.period_of(start), fees.period_of(end)
    for zone in (None, *ZONES):
        fast = run(conn, fees.collection(district_code=DISTRICT, start=first, end=last, zone_code=zone))
        slow = run(conn, fees.collection_from_bills(district_code=DISTRICT, start=first, end=last, zone_code=zone))
        as_numbers = [
            sorted(
                ({k: Decimal(v) if k in ("billed", "paid") else v for k, v in r.items()} for r in rows),
                key=lambda r: (r["level"], r["subdistrict_code"], r["zone_code"] or "", r["building_code"] or ""),
            )
            for rows in (fast, slow)
        ]
        assert [r["level"] for r in fast][:1] == (["subdistrict"] if fast else [])
        assert as_numbers[0] == as_numbers[1], (zone, fast, slow)
    figures = run(conn, fees.collection(district_code=DISTRICT, start=first, end=last))
    _sums_rebuilt_equal(conn)
    return figures


def _sums_rebuilt_equal(conn: psycopg.Connection) -> None:
    """What the triggers kept equals the sums rebuilt from the bills and payments (0018's own backfill)."""
    kept = conn.execute(
        "SELECT building_code, period, bills, billed, paid, bills_paid, paid_capped, total_paid, total_households "
        "FROM fee_building_months WHERE (bills, billed, paid, bills_paid, paid_capped, total_paid, total_households) "
        " <> (0, 0, 0, 0, 0, 0, 0) ORDER BY 1, 2"
    ).fetchall()
    rebuilt = conn.execute(
        "SELECT building_code, period, sum(n)::int, sum(billed), sum(paid), sum(bp)::int, sum(pc), sum(tp), "
        " sum(th)::int FROM ("
        " SELECT h.building_code, f.period, 1 AS n, f.amount AS billed, 0 AS paid, "
        "  (coalesce(o.own, 0) >= f.amount)::int AS bp, least(coalesce(o.own, 0), f.amount) AS pc, 0 AS tp, 0 AS th "
        " FROM fee_bills f JOIN households h ON h.id = f.household_id LEFT JOIN (SELECT household_id, period, "
        "  sum(amount) AS own FROM fee_payments WHERE household_id IS NOT NULL GROUP BY 1, 2) o "
        "  ON o.household_id = f.household_id AND o.period = f.period "
        " UNION ALL SELECT coalesce(p.building_code, h.building_code), p.period, 0, 0, p.amount, 0, 0, "
        "  CASE WHEN p.household_id IS NULL THEN p.amount ELSE 0 END, "
        "  CASE WHEN p.household_id IS NULL THEN coalesce(p.households_paid, 0) ELSE 0 END "
        " FROM fee_payments p LEFT JOIN households h ON h.id = p.household_id) s "
        "GROUP BY 1, 2 HAVING (sum(n), sum(billed), sum(paid), sum(bp), sum(pc), sum(tp), sum(th)) "
        " <> (0, 0, 0, 0, 0, 0, 0) ORDER BY 1, 2"
    ).fetchall()
    assert kept == rebuilt


def test_collection_from_the_monthly_sums_equals_the_bill_level_answer(conn):
    _district(conn)
    homes = _households(conn)
    # paid before the bill exists: counted once the bill is made
    _pay(conn, homes[0][0], "2023-08", "20")
    _pay(conn, homes[1][0], "2023-08", "5")  # 低保户 owes 10: half paid
    for month in ("2023-08", "2023-09", "2023-10"):
        fees.generate_bills(conn, ADMIN, fees.period_of(month), district_code=DISTRICT, grace_months=GRACE)
    figures = _same(conn)
    zone = next(r for r in figures if r["level"] == "zone" and r["zone_code"] == "huangnitang")
    # 3 buildings × 6 occupied × 3 months, each month 4 × 20 + 10 + 0 a building; paid in full: the
    # household that paid August, and the 特困户's bills of 0
    assert (zone["bills"], zone["bills_paid"], zone["billed"], zone["paid"]) == (54, 10, "810.00", "25.00")

    # payments of every kind after the bills: exact, partial in two parts, over, a building's monthly total
    for household, _ in homes[2:12]:
        _pay(conn, household, "2023-09", "20")
    _pay(conn, homes[12][0], "2023-09", "12")
    _pay(conn, homes[12][0], "2023-09", "8")  # two payments together cover the bill
    _pay(conn, homes[13][0], "2023-10", "55")  # overpaid: capped at the bill
    _pay(conn, homes[14][0], "2023-11", "20")  # a month not billed: not counted
    conn.execute(
        "INSERT INTO fee_payments (district_code, building_code, households_paid, period, amount, paid_on, actor) "
        "VALUES (%s, %s, 3, DATE '2023-10-01', 60, DATE '2023-10-30', 'tests')",
        [DISTRICT, homes[20][1]],
    )
    _same(conn)
    # in one statement, many households and months at once (as the import writes)
    conn.execute(
        "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, actor) "
        "SELECT district_code, household_id, period, amount, DATE '2023-12-01', 'tests' FROM fee_bills "
        "WHERE household_id % 3 = 0 AND period = DATE '2023-10-01' AND amount > 0"
    )
    _same(conn)
    # corrected and withdrawn: updates that move a payment to another month and household, deletes
    conn.execute(
        "UPDATE fee_payments SET amount = amount - 1 WHERE id IN (SELECT id FROM fee_payments ORDER BY id LIMIT 4)"
    )
    conn.execute(
        "UPDATE fee_payments SET period = DATE '2023-10-01', household_id = %s WHERE id = (SELECT max(id) "
        "FROM fee_payments WHERE household_id IS NOT NULL)",
        [homes[5][0]],
    )
    conn.execute("DELETE FROM fee_payments WHERE id IN (SELECT id FROM fee_payments ORDER BY id DESC LIMIT 3)")
    _same(conn)
    # bills changed and withdrawn: a new amount, a month withdrawn for a building
    conn.execute("UPDATE fee_bills SET amount = 15 WHERE household_id = %s", [homes[12][0]])
    conn.execute(
        "DELETE FROM fee_bills WHERE period = DATE '2023-09-01' AND household_id IN "
        "(SELECT id FROM households WHERE building_code = %s)",
        [homes[0][1]],
    )
    _same(conn)
    _same(conn, "2023-09", "2023-09")  # one month
    _same(conn, "2020-01", "2022-12")  # no bills: empty both ways
    assert run(conn, fees.collection(district_code=DISTRICT, start=date(2020, 1, 1), end=date(2022, 12, 1))) == []


def _payments_file(tmp_path: Path, rows: list[str], header: str = "楼栋,单元,户号,月份,金额,缴费日期,缴费户数") -> Path:
    path = tmp_path / "payments.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_the_set_based_payments_import_names_what_the_row_check_named_and_writes_the_same_rows(conn, tmp_path):
    _district(conn)
    fees.generate_bills(conn, ADMIN, date(2023, 8, 1), district_code=DISTRICT, grace_months=GRACE)
    b1, b2 = "yumin-south-f1", "yumin-south-f2"
    good = [
        f"{b1},1,101,2023-08,20,2023-08-20,",
        f"{b1}, 1 ,102,2023/08/15,10.5,2023/8/20,",  # spaces, slashes, a day in the month
        f"{b1},1,104,2023-8,1e1,2023年8月21日,",
        f"{b1},1,105, 2023 - 09 ,  7 ,20230901,",
        f"{b2},1,101,2023-09,20.00,2023-09-01 00:00:00,",  # a spreadsheet's datetime
        f"{b2},,,2023-08,60,2023-08-31,3",  # the building's monthly total
        "huangnitang-f1,1,101,2023-10,20,2023-10-02,",
    ]
    path = _payments_file(tmp_path, good)
    expected = fees.parse_payment_rows(conn, ADMIN, path, district_code=DISTRICT, grace_months=GRACE)
    top = conn.execute("SELECT coalesce(max(id), 0) FROM fee_payments").fetchone()[0]  # type: ignore[index]
    assert fees.import_payments(conn, ADMIN, path, district_code=DISTRICT, grace_months=GRACE) == {"recorded": 7}
    written = conn.execute(
        "SELECT household_id, building_code, households_paid, period, amount, paid_on, source FROM fee_payments "
        "WHERE id > %s ORDER BY id",
        [top],
    ).fetchall()
    assert [w[:6] for w in written] == [
        (r["household_id"], r["building_code"], r["households_paid"], r["period"], r["amount"], r["paid_on"])
        for r in expected
    ]
    assert {w[6] for w in written} == {"import"}
    _same(conn, "2023-08", "2023-10")

    bad = [
        f"{b1},1,101,2023-08,20,2023-08-20,",
        "nope,1,101,2023-6,x,2023/6/20,",
        f"{b1},9,999,2021-01,-5,2099-01-01,",
        f"{b1},,,2023-13,0,2023年6月20日,abc",
        f"{b1},,,2023-05,10,1999-12-31,3",
        f"{b1},1,103,2023,NaN,2023-02-30,",
        f"{b1},1,104,2023-08,1e400,2023-08-32,",
        "huangnitang-f1,1,101,2023-07,20,2023-07-02,",
    ]
    path = _payments_file(tmp_path, bad)
    with pytest.raises(ImportRejected) as by_row:
        fees.parse_payment_rows(conn, ADMIN, path, district_code=DISTRICT, grace_months=GRACE)
    count = conn.execute("SELECT count(*) FROM fee_payments").fetchone()
    with pytest.raises(ImportRejected) as set_based:
        fees.import_payments(conn, ADMIN, path, district_code=DISTRICT, grace_months=GRACE)
    # the same problems, except that 1e400 now is one (it passed the row check, then overflowed the column)
    problems = set_based.value.details["problems"]
    assert [p for p in problems if p != {"row": 7, "field": "amount", "reason": "'1e400' is not a positive amount"}] \
        == by_row.value.details["problems"]  # fmt: skip
    assert (
        len(problems) == len(by_row.value.details["problems"]) + 1
        and conn.execute("SELECT count(*) FROM fee_payments").fetchone() == count
    )
    assert {
        "row": 8,
        "field": "period",
        "reason": "before the first chargeable month 2023-08 (先服务后收费)",
    } in problems

    # blank cells: 'missing', where the row check printed the spreadsheet's 'nan'
    path = _payments_file(tmp_path, [f"{b1},1,101,,,,"])
    with pytest.raises(ImportRejected) as blank:
        fees.import_payments(conn, ADMIN, path, district_code=DISTRICT, grace_months=GRACE)
    assert blank.value.details["problems"] == [
        {"row": 1, "field": field, "reason": "missing"} for field in ("period", "amount", "paid_on")
    ]
    # a sub-district's staff: buildings of another sub-district's zones do not exist for them
    path = _payments_file(
        tmp_path, [f"{b1},1,101,2023-08,20,2023-08-20,", "huangnitang-f1,1,101,2023-10,20,2023-10-02,"]
    )
    with pytest.raises(ImportRejected) as scoped:
        fees.import_payments(conn, STAFF, path, district_code=DISTRICT, grace_months=GRACE)
    with pytest.raises(ImportRejected) as scoped_by_row:
        fees.parse_payment_rows(conn, STAFF, path, district_code=DISTRICT, grace_months=GRACE)
    assert scoped.value.details["problems"] == scoped_by_row.value.details["problems"]
    assert [p["row"] for p in scoped.value.details["problems"]] == [2]


def test_bill_runs_are_idempotent_also_two_at_once(db_url):
    with psycopg.connect(db_url) as conn:
        _district(conn)
    period = date(2023, 9, 1)
    made: list[int] = []
    gate = threading.Barrier(2)

    def bill_run() -> None:
        with psycopg.connect(db_url) as c:
            gate.wait()
            made.append(fees.generate_bills(c, ADMIN, period, district_code=DISTRICT, grace_months=GRACE)["created"])

    threads = [threading.Thread(target=bill_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == [0, 36]  # 2 zones × 3 buildings × 6 occupied households: once
    with psycopg.connect(db_url) as conn:
        assert fees.generate_bills(conn, ADMIN, period, district_code=DISTRICT, grace_months=GRACE)["created"] == 0
        assert conn.execute("SELECT count(*) FROM fee_bills").fetchone() == (36,)
        _same(conn, "2023-09", "2023-09")


def test_bills_and_payments_name_households_that_exist(conn):
    _district(conn)
    fees.generate_bills(conn, ADMIN, date(2023, 8, 1), district_code=DISTRICT, grace_months=GRACE)
    standard = conn.execute("SELECT min(id) FROM fee_standards").fetchone()[0]  # type: ignore[index]
    household = _households(conn)[0][0]
    for statement, params in (
        (
            "INSERT INTO fee_bills (district_code, household_id, period, amount, standard_id) "
            "VALUES (%s, 99999999, DATE '2023-09-01', 20, %s)",
            [DISTRICT, standard],
        ),
        (
            "INSERT INTO fee_bills (district_code, household_id, period, amount, standard_id) "
            "VALUES (%s, %s, DATE '2023-09-01', 20, 99999999)",
            [DISTRICT, household],
        ),
        (
            "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, actor) "
            "VALUES (%s, 99999999, DATE '2023-09-01', 20, DATE '2023-09-02', 'tests')",
            [DISTRICT],
        ),
        ("DELETE FROM households WHERE id = %s", [household]),
        ("DELETE FROM fee_standards WHERE id = %s", [standard]),
    ):
        with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
            conn.execute(statement, params)
    # a household without bills or payments may go
    empty = conn.execute("SELECT id FROM households WHERE NOT occupied LIMIT 1").fetchone()[0]  # type: ignore[index]
    conn.execute("DELETE FROM households WHERE id = %s", [empty])


def test_the_household_register_takes_a_phone_number(conn, tmp_path):
    """The arrears list's phone comes from the register (电话 / 联系电话); a bad one is a row error."""
    _district(conn)
    path = tmp_path / "households.csv"
    path.write_text("楼栋,单元,户号,是否入住,联系电话\nyumin-south-f1,1,101,是,13800138000\n"
                    "yumin-south-f1,1,102,是,call me\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(ImportRejected) as bad:
        fees.import_households(conn, ADMIN, path, district_code=DISTRICT)
    assert bad.value.details["problems"] == [{"row": 2, "field": "phone", "reason": "'call me' is not a phone number"}]
    path.write_text("楼栋,单元,户号,是否入住,联系电话\nyumin-south-f1,1,101,是,13800138000\n", encoding="utf-8")
    assert fees.import_households(conn, ADMIN, path, district_code=DISTRICT) == {"rows": 1, "inserted": 0, "updated": 1}
    fees.generate_bills(conn, ADMIN, date(2023, 8, 1), district_code=DISTRICT, grace_months=GRACE)
    owed = {r["room"]: r["phone"] for r in fees.arrears_list(conn, STAFF, "yumin-south", district_code=DISTRICT)
            if r["building_code"] == "yumin-south-f1"}  # fmt: skip
    assert owed["101"] == "13800138000" and owed["102"] is None  # staff see personal data (PII_ROLES)
    team = Principal(username="team", role="property_team", zone_codes=("yumin-south",))
    owed = {r["room"]: r["phone"] for r in fees.arrears_list(conn, team, "yumin-south", district_code=DISTRICT)
            if r["building_code"] == "yumin-south-f1"}  # fmt: skip
    assert owed["101"] == "138****8000"
    with pytest.raises(NotFound):
        fees.arrears_list(conn, team, "huangnitang", district_code=DISTRICT)
