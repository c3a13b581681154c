"""The fees pages (issue 21 point 6) in a real Chromium against our app on a real port: an administrator
on a desktop (1280×800) reads every zone's fee standard, first chargeable month and collection rates,
with the zones coloured on the map, and a zone's buildings and arrears; the property team on a phone
(390×844, touch) records payments — refused in Chinese with what was typed kept for a month before
charging starts and for a negative amount — imports a file whose row errors are listed in a table, and
sees its zone's arrears with phone numbers masked. 50 clients at once; the database stopped and started.
Screenshots under var/screenshots/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from tests.conftest import DISTRICT, make_people, settings_for
from tests.live import serving, wuye
from tests.test_db_restart import own_home, target  # noqa: F401  (a database this module may stop and start)
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person

ZONE = "yumin-south"  # 西湖街道; the property team's zone
READY = "() => window.wuyeFeesReady === true"


def _district(url: str) -> None:
    """Buildings, households (with phones), service, standard, bills and payments in two zones: in
    yumin-south 2 buildings of 4 households, service from 10 May 2023 (first chargeable month 2023-08),
    bills for August and September 2023, some paid; in huangnitang one building billed, nothing paid."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO buildings (code, district_code, name, zone_code, households, geom) "
            "SELECT z.code || '-p' || g, z.district_code, g || '栋', z.code, 4, ST_Multi(ST_Transform(ST_Buffer("
            " ST_Translate(ST_Transform(ST_PointOnSurface(z.geom), 4547), g * 15, 0), 5, 'quad_segs=1'), 4490)) "
            "FROM zones z CROSS JOIN generate_series(1, 2) g WHERE z.code IN (%s, 'huangnitang')",
            [ZONE],
        )
        conn.execute(
            "INSERT INTO households (district_code, building_code, unit, room, occupied, fee_category, phone, "
            " recorded_by) SELECT %s, b.code, '1', (100 + h)::text, true, CASE h WHEN 2 THEN 'dibao' "
            " ELSE 'standard' END, '1380013' || lpad((row_number() OVER ())::text, 4, '0'), 'tests' "
            "FROM buildings b CROSS JOIN generate_series(1, 4) h WHERE b.code LIKE '%%-p_'",
            [DISTRICT],
        )
        conn.execute(
            "INSERT INTO zone_services (district_code, zone_code, starts_on, unit_code, monthly_cost, recorded_by) "
            "VALUES (%s, %s, DATE '2023-05-10', 'team-yumin', 1000, 'tests'), "
            "(%s, 'huangnitang', DATE '2023-03-01', 'team-jinling', 1000, 'tests')",
            [DISTRICT, ZONE, DISTRICT],
        )
        conn.execute(
            "INSERT INTO fee_standards (district_code, zone_code, basis, amount, effective, document_number, "
            " approved_by, reductions, recorded_by) SELECT %s, z, 'household', 20, daterange('2023-01-01', NULL), "
            " '岳发改价〔2023〕8号', 'bureau-fgj', '{\"dibao\": 50}', 'tests' FROM unnest(%s::text[]) z",
            [DISTRICT, [ZONE, "huangnitang"]],
        )
        for month in ("2023-08-01", "2023-09-01"):
            conn.execute(
                "INSERT INTO fee_bills (district_code, household_id, period, amount, standard_id) "
                "SELECT h.district_code, h.id, %s, CASE h.fee_category WHEN 'dibao' THEN 10 ELSE 20 END, s.id "
                "FROM households h JOIN buildings b ON b.code = h.building_code "
                "JOIN fee_standards s ON s.zone_code = b.zone_code WHERE b.code IN (%s, %s, 'huangnitang-p1')",
                [month, f"{ZONE}-p1", f"{ZONE}-p2"],
            )
        # August paid in yumin-south-p1 (4 households), September by 1: 5 of 16 bills, 90 of 280 yuan there
        conn.execute(
            "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, actor) "
            "SELECT f.district_code, f.household_id, f.period, f.amount, f.period + 20, 'tests' FROM fee_bills f "
            "JOIN households h ON h.id = f.household_id WHERE h.building_code = %s "
            "AND (f.period = DATE '2023-08-01' OR h.room = '101')",
            [f"{ZONE}-p1"],
        )


@pytest.fixture(scope="module")
def fees_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("fees_pages", template_db) as url:
        _district(url)
        yield url


@pytest.fixture(scope="module")
def people(fees_db: str) -> dict[str, str]:
    return make_people(
        fees_db,
        "fees",
        {
            "admin": {},
            "property_team": {"zone_codes": (ZONE,), "unit_code": "team-yumin"},
            "subdistrict_staff": {"subdistrict_code": "xihu"},
        },
        PASSWORD,
    )


@pytest.fixture(scope="module")
def base_url(fees_db: str, people: dict[str, str]) -> Iterator[str]:
    with local_server(create_app(settings_for(fees_db))) as url:
        yield url


def _payments(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT h.building_code, h.room, p.building_code, p.households_paid, to_char(p.period, 'YYYY-MM'), "
            "p.amount::text, p.source FROM fee_payments p LEFT JOIN households h ON h.id = p.household_id "
            "WHERE p.actor LIKE 'fees-%%' ORDER BY p.id"
        ).fetchall()


def test_an_administrator_reads_rates_on_the_table_and_the_map_and_a_zones_arrears(browser, base_url, people):  # noqa: F811
    me = Person(browser, "desktop")
    try:
        me.sign_in(base_url, people["admin"], "/workbench/cases")
        me.press(me.page.locator("nav.wuye-nav a", has_text="收费管理"))
        me.page.wait_for_url(f"{base_url}/workbench/fees")
        # the months August-September 2023, typed into the form
        me.page.locator("#f-start").fill("2023-08")
        me.page.locator("#f-end").fill("2023-09")
        me.press(me.page.locator("#f-show"))
        me.page.wait_for_url("**/workbench/fees?start=2023-08&end=2023-09")
        me.page.wait_for_function(READY)
        row = me.page.locator(f'tr.zone-row[data-zone="{ZONE}"]')
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == "西湖街道" and "20.00 元/户·月" in cells[2] and "岳发改价〔2023〕8号" in cells[2]
        assert cells[3] == "2023-08"  # service from 10 May 2023 + 2 months' grace
        # 16 bills (8 households × 2 months), 5 paid in full; 90 of 280 yuan
        assert cells[4].split("\n") == ["31.2%", "5/16"] and cells[5] == "32.1%", cells
        assert (cells[6], cells[7]) == ("280.00", "90.00")
        other = me.page.locator('tr.zone-row[data-zone="huangnitang"] td').all_inner_texts()
        assert other[3] == "2023-05" and other[5] == "0.0%"
        unbilled = me.page.locator('tr.zone-row[data-rate=""]')
        assert unbilled.count() == 8 and unbilled.first.locator("td").all_inner_texts()[4] == "无账单"
        # the map: every zone drawn, yumin-south in the 0-50 % colour, a zone without bills grey
        zones = me.page.locator("tr.zone-row").count()
        assert me.page.locator("#fees-map").get_attribute("data-zones") == str(zones) and zones == 10
        fills = me.page.evaluate(
            "() => Array.from(document.querySelectorAll('#fees-map path.leaflet-interactive'))"
            ".map(p => p.getAttribute('fill'))"
        )
        assert len(fills) == 10 and "#c62828" in fills and "#bdbdbd" in fills, fills
        assert me.hosts == {urlsplit(base_url).netloc}, me.hosts  # nothing from another host
        me.shot("fees")
        # a zone's page: its buildings and its arrears, phone numbers in full for an administrator
        me.press(row.locator("a"))
        me.page.wait_for_url(f"**/workbench/fees/zones/{ZONE}?*")
        buildings = me.page.locator("tr.building-row")
        assert buildings.count() == 2
        assert me.page.locator(f'tr.building-row[data-building="{ZONE}-p1"] td').all_inner_texts()[3] == "64.3%"
        arrears = me.page.locator("tr.arrears-row")
        assert arrears.count() == 7  # 8 households, the one who paid both months owes nothing
        phones = arrears.locator("td.phone").all_inner_texts()
        assert all(p.startswith("1380013") and "*" not in p for p in phones), phones
        assert me.page.locator("#phones-masked").count() == 0
        me.shot("fees-zone")
        assert not me.errors, me.errors
    finally:
        me.close()


def test_the_property_team_on_a_phone_records_payments_refused_in_chinese_and_imports_a_file(
    browser,  # noqa: F811
    base_url,
    fees_db,
    people,
    tmp_path,
):
    me = Person(browser, "phone")
    try:
        me.sign_in(base_url, people["property_team"], "/workbench/fees")
        # only their zone
        assert [r.get_attribute("data-zone") for r in me.page.locator("tr.zone-row").all()] == [ZONE]
        me.press(me.page.locator("#tab-pay"))
        me.page.wait_for_url(f"{base_url}/workbench/fees/payments")
        form = me.page.locator("#pay")
        assert me.page.locator("#pay-building option").count() == 3  # "choose" and the zone's two buildings
        me.page.locator("#pay-building").select_option(f"{ZONE}-p2")
        me.type_into("#pay-unit", "1")
        me.type_into("#pay-room", "103")
        me.page.locator("#pay-period").fill("2023-07")  # before the first chargeable month
        me.type_into("#pay-amount", "20")
        me.page.locator("#pay-day").fill("2023-07-20")
        with me.page.expect_navigation():
            me.press(me.page.locator("#pay-save"))
        message = me.page.locator("#msg")
        assert message.inner_text() == f"先服务后收费：小区 {ZONE} 自 2023-08 起方可收费", message.inner_text()
        assert message.get_attribute("role") == "alert"
        kept = {
            f: me.page.locator(f"#pay-{f}").input_value()
            for f in ("building", "unit", "room", "period", "amount", "day")
        }
        assert kept == {"building": f"{ZONE}-p2", "unit": "1", "room": "103", "period": "2023-07", "amount": "20",
                        "day": "2023-07-20"}  # fmt: skip
        me.shot("fees-refused-month")
        # a negative amount: refused, the month corrected and kept
        me.page.locator("#pay-period").fill("2023-09")
        me.page.locator("#pay-amount").fill("")
        me.type_into("#pay-amount", "-5")
        with me.page.expect_navigation():
            me.press(me.page.locator("#pay-save"))
        assert me.page.locator("#msg").inner_text() == "缴费金额须为正数"
        assert me.page.locator("#pay-period").input_value() == "2023-09"
        assert me.page.locator("#pay-amount").input_value() == "-5"
        me.shot("fees-refused-amount")
        assert _payments(fees_db) == []
        # right: recorded
        me.page.locator("#pay-amount").fill("")
        me.type_into("#pay-amount", "20")
        with me.page.expect_navigation():
            me.press(me.page.locator("#pay-save"))
        me.page.wait_for_url("**/workbench/fees/payments?done=*")
        assert me.page.locator("#msg").inner_text().startswith("已登记缴费")
        assert form.locator("#pay-room").input_value() == ""  # an empty form for the next one
        assert _payments(fees_db) == [(f"{ZONE}-p2", "103", None, None, "2023-09", "20.00", "api")]
        me.shot("fees-recorded")

        # the import page: the columns it understands, then a file with row errors, then a good one
        me.press(me.page.locator("#tab-import"))
        me.page.wait_for_url(f"{base_url}/workbench/fees/import")
        label, names = me.page.locator('#columns tr[data-column="period"] td').all_inner_texts()
        assert label == "月份" and "所属月份" in names.split("、") and "period" in names.split("、")
        bad = tmp_path / "缴费.csv"
        bad.write_text(
            "楼栋,单元,户号,所属月份,缴费金额,缴费日期\n"
            f"{ZONE}-p1,1,102,2023-09,10,2023-09-28\n"
            f"{ZONE}-p1,1,999,2023-09,10,2023-09-28\n"
            f"{ZONE}-p2,1,101,2023-06,-3,2023-06-31\n"
            "huangnitang-p1,1,101,2023-09,20,2023-09-28\n",
            encoding="utf-8",
        )
        me.page.locator("#import-file").set_input_files(str(bad))
        with me.page.expect_navigation():
            me.press(me.page.locator("#import-go"))
        me.page.wait_for_selector("#row-errors")
        listed = [r.locator("td").all_inner_texts() for r in me.page.locator("tr.row-error").all()]
        assert listed == [
            ["2", "户号", f"住户 {ZONE}-p1-1-999 不在住户登记表中"],
            ["3", "金额", "“-3”不是正数金额"],
            ["3", "缴费日期", "“2023-06-31”不是日期（年-月-日）"],
            ["3", "月份", "先服务后收费：2023-08 起方可收费"],
            ["4", "楼栋", "楼栋 huangnitang-p1 不存在"],  # another zone's: not theirs
        ], listed
        assert me.page.locator("#msg").inner_text().startswith("文件有 5 处错误，未导入任何记录")
        me.shot("fees-import-errors")
        assert len(_payments(fees_db)) == 1  # nothing imported
        good = tmp_path / "good.xlsx"
        _xlsx(good, [["楼栋", "单元", "户号", "所属月份", "缴费金额", "缴费日期", "缴费户数"],
                     [f"{ZONE}-p1", "1", "102", "2023-09", "10", "2023-09-28", ""],
                     [f"{ZONE}-p2", "", "", "2023-08", "60", "2023-08-31", "3"]])  # fmt: skip
        me.page.locator("#import-file").set_input_files(str(good))
        with me.page.expect_navigation():
            me.press(me.page.locator("#import-go"))
        me.page.wait_for_selector("#msg.ok")
        assert me.page.locator("#msg").inner_text() == "已导入 2 条缴费记录"
        assert _payments(fees_db)[1:] == [
            (f"{ZONE}-p1", "102", None, None, "2023-09", "10.00", "import"),
            (None, None, f"{ZONE}-p2", 3, "2023-08", "60.00", "import"),
        ]
        me.shot("fees-imported")
        # their zone's arrears: phone numbers masked
        me.page.goto(f"{base_url}/workbench/fees/zones/{ZONE}?start=2023-08&end=2023-09")
        phones = me.page.locator("tr.arrears-row td.phone").all_inner_texts()
        assert phones and all(len(p) == 11 and p[3:7] == "****" for p in phones), phones
        assert me.page.locator("#phones-masked").inner_text() == "电话号码按个人信息保护规定部分隐藏。"
        assert me.page.evaluate("() => document.body.scrollWidth <= window.innerWidth + 1")  # fits the phone
        me.shot("fees-arrears")
        assert me.page.goto(f"{base_url}/workbench/fees/zones/huangnitang").status == 404  # not their zone
        # (the refusals are pages answered 409/400/404, which the console notes; no script error)
        assert not [e for e in me.errors if not e.startswith("Failed to load resource")], me.errors
    finally:
        me.close()


def _xlsx(path: Path, rows: list[list[str]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)


def _session(base_url: str, username: str) -> str:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        assert http.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
        return str(http.cookies["wuye_session"])


def test_who_may_open_the_fees_pages_and_bad_input_named(base_url, fees_db, people):
    with httpx.Client(base_url=base_url, timeout=60) as anonymous:
        assert anonymous.get("/workbench/fees", headers={"Accept": "text/html"}).status_code == 401
    cookie = _session(base_url, people["subdistrict_staff"])
    with httpx.Client(base_url=base_url, timeout=60, cookies={"wuye_session": cookie}) as staff:
        page = staff.get("/workbench/fees", params={"start": "2023-08", "end": "2023-09"})
        assert page.status_code == 200 and 'href="/workbench/fees"' in page.text
        assert page.text.count('class="zone-row"') == 2  # 西湖街道's zones
        english = staff.get("/workbench/fees", params={"start": "2023-08", "end": "2023-09", "lang": "en"})
        assert english.status_code == 200 and "<h1>Fees</h1>" in english.text and "Rate (amount)" in english.text
        bad = staff.get("/workbench/fees", params={"start": "2023-13"})
        assert bad.status_code == 400 and "月份格式须为 YYYY-MM" in bad.text
        later = staff.get("/workbench/fees", params={"start": "2023-09", "end": "2023-08"})
        assert later.status_code == 400
        # a day that does not exist: 400, the field named in Chinese, what was typed kept, nothing written
        with psycopg.connect(fees_db) as conn:
            paid = conn.execute("SELECT count(*) FROM fee_payments").fetchone()
        form = {"building": f"{ZONE}-p1", "unit": "1", "room": "101", "period": "2023-09", "amount": "20",
                "paid_on": "2023-09-31"}  # fmt: skip
        day = staff.post("/workbench/fees/payments", data=form, headers={"Origin": base_url})
        assert day.status_code == 400 and "缴费日期须为日期（年-月-日）" in day.text, day.text[-2000:]
        assert 'value="2023-09-31"' in day.text and 'value="101"' in day.text
        with psycopg.connect(fees_db) as conn:
            assert conn.execute("SELECT count(*) FROM fee_payments").fetchone() == paid
        geo = staff.get("/workbench/fees/map.json", params={"start": "2023-08", "end": "2023-09"}).json()
        with psycopg.connect(fees_db) as conn:
            xihu = {r[0] for r in conn.execute("SELECT code FROM zones WHERE subdistrict_code = 'xihu'")}
        assert {f["id"] for f in geo["features"]} == xihu and len(xihu) == 2
        ys = next(f for f in geo["features"] if f["id"] == ZONE)
        assert ys["geometry"]["type"] in ("Polygon", "MultiPolygon")
        # the zone's rates as the API's /fees/collection gives them (other tests of this module pay bills)
        rates = staff.get("/fees/collection", params={"start": "2023-08", "end": "2023-09", "zone": ZONE}).json()
        zone = next(r for r in rates if r["level"] == "zone")
        assert (ys["properties"]["rate_by_amount"], ys["properties"]["rate_by_households"]) == (
            zone["rate_by_amount"],
            zone["rate_by_households"],
        )
        assert zone["rate_by_amount"] > 0
    with httpx.Client(base_url=base_url, timeout=60) as resident:
        assert resident.get("/workbench/fees/payments", headers={"Accept": "text/html"}).status_code == 401


def test_fifty_concurrent_clients_read_the_fees_pages(base_url, people):
    cookie = _session(base_url, people["admin"])

    async def crowd() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=120) as client:
            paths = [
                "/workbench/fees?start=2023-08&end=2023-09",
                "/workbench/fees/map.json?start=2023-08&end=2023-09",
                f"/workbench/fees/zones/{ZONE}?start=2023-08&end=2023-09",
                "/workbench/fees/payments",
                "/workbench/fees/import",
            ] * 11
            answers = await asyncio.gather(*(client.get(p, headers={"Accept": "text/html"}) for p in paths))
            return [a.status_code for a in answers]

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, crowd()).result() == [200] * 55
    assert time.monotonic() - started < 120


def test_the_fees_pages_answer_503_while_the_database_is_down_and_work_again_after(target):  # noqa: F811
    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(
            conn,
            username="fees-restart",
            password=PASSWORD,
            role="property_team",
            district_code=DISTRICT,
            actor="tests",
            zone_codes=(ZONE,),
        )
    _district(target.url())
    with serving(target.env) as url, httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as http:
        assert http.post("/login", data={"username": "fees-restart", "password": PASSWORD}).status_code == 303
        assert http.get("/workbench/fees").status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        down = http.get("/workbench/fees")
        assert down.status_code == 503 and "<html" in down.text and "数据库" in down.text, down.text
        assert http.get("/workbench/fees/map.json").status_code == 503
        form = {"building": f"{ZONE}-p1", "unit": "1", "room": "103", "period": "2023-09", "amount": "20",
                "paid_on": "2023-09-20"}  # fmt: skip
        refused = http.post("/workbench/fees/payments", data=form)
        assert refused.status_code == 503 and "数据库" in refused.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/fees", params={"start": "2023-08", "end": "2023-09"})).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert 'data-zone="yumin-south"' in again.text
        done = http.post("/workbench/fees/payments", data=form)
        assert done.status_code == 303, done.text
    with psycopg.connect(target.url()) as conn:
        assert conn.execute("SELECT count(*) FROM fee_payments WHERE actor = 'fees-restart'").fetchone() == (1,)
