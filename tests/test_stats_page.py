"""The statistics page (issue 21 point 7) in a real Chromium against our app on a real port: an
anonymous visitor signs in from the 401 page, every ECharts chart is drawn from /workbench/stats/data
(our npm copy, no other host), each table shows the JSON's rows with names (not codes); each
chart's two buttons switch to its table and back, and its CSV and XLSX downloads hold the same rows;
the on-time and hours-to-close charts (by unit, by month: a deadline counted on the working
calendar across the National Day holidays), the fee collection chart and the cases by sub-district
equal counts this test makes with its own SQL; the /cases/stats XLSX and CSV name sub-districts,
zones, categories and states; a phone switches and draws too; a resident is refused; 50 concurrent
clients; the downloads through a database stop and start."""

# ruff: noqa: F811  (the fixtures imported from the modules that own them)
from __future__ import annotations

import asyncio
import csv
import io
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from openpyxl import load_workbook

from geo.cases.categories import category
from geo.cases.workflow import category_list
from geo.store import embedded
from geo.workcal import calendar
from tests.conftest import DISTRICT
from tests.live import serving
from tests.test_db_restart import Target, own_home, target  # noqa: F401  (a database this module may stop and start)
from tests.test_fees import HOUSEHOLDS, _buildings
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person, _report, base_url, bench_db, people  # noqa: F401

READY = "() => window.wuyeStatsReady === true"
CHARTS = ("subdistrict", "category", "state", "unit", "month", "satisfaction", "remediation", "fees")
LOCAL = ZoneInfo("Asia/Shanghai")
# (zone, unit, created (local), hours to close): the deadline is garbage_pile's 4 working hours
CLOSED = (
    ("yumin-south", "team-yumin", datetime(2026, 9, 7, 9, 0, tzinfo=LOCAL), 5),  # by 15:00: on time
    # reported the afternoon before the National Day holidays: due the morning of 8 October, closed
    # 186 hours later and still on time on the working calendar
    ("yumin-south", "team-yumin", datetime(2026, 9, 30, 16, 0, tzinfo=LOCAL), 186),
    ("yumin-south", "team-yumin", datetime(2026, 10, 12, 9, 0, tzinfo=LOCAL), 24),  # late
    ("jinling", "team-jinling", datetime(2026, 9, 14, 9, 0, tzinfo=LOCAL), 24),  # late
    ("jinling", "team-jinling", datetime(2026, 10, 26, 9, 0, tzinfo=LOCAL), 1),  # on time
    # closed at 01:00 on 1 October local time, still 30 September in UTC: an October case
    ("jinling", "team-jinling", datetime(2026, 9, 30, 20, 0, tzinfo=LOCAL), 5),
)


def _close(http: httpx.Client, code: str, unit: str) -> None:
    """A case through its workflow by an administrator, dispatched to ``unit``."""
    for action, extra in (
        ("register", {}),
        ("dispatch", {"unit_code": unit}),
        ("handle", {"note": "已清理"}),
        ("verify", {}),
    ):
        r = http.post(f"/cases/{code}/actions", json={"action": action, **extra})
        assert r.status_code == 200, (action, r.text)


def _closed_cases(base_url: str, bench_db: str, http: httpx.Client) -> None:
    """Cases reported, worked and closed through the API; then dated as if reported and closed on the
    days of CLOSED, each with the deadline intake gives at that moment (the working calendar)."""
    deadline = category("garbage_pile").deadline
    for zone, unit, created, hours in CLOSED:
        code = _report(base_url, bench_db, zone=zone, description=f"统计页结案 {created:%m%d}")
        _close(http, code, unit)
        due = calendar().add(created, deadline)
        with psycopg.connect(bench_db, autocommit=True) as conn:
            conn.execute(
                "UPDATE cases SET created_at = %s, due_at = %s, closed_at = %s WHERE code = %s",
                [created, due, created + timedelta(hours=hours), code],
            )
    holiday = calendar().add(CLOSED[1][2], deadline)
    assert holiday == datetime(2026, 10, 8, 11, 0, tzinfo=LOCAL), holiday  # layers/calendar.toml's holidays


def _fees(bench_db: str, staff: httpx.Client, admin: httpx.Client) -> None:
    """裕民南片's households billed for two months (3 bills each), one bill paid in full."""
    _buildings(bench_db)
    files = {"file": ("h.csv", HOUSEHOLDS.encode("utf-8"), "text/csv")}
    assert staff.post("/households/import", files=files).status_code == 200
    service = {"starts_on": "2023-05-10", "unit_code": "team-yumin", "monthly_cost": "1000"}
    assert staff.put("/zones/yumin-south/service", json=service).status_code == 200
    standard = {"basis": "household", "amount": "20.00", "starts_on": "2023-01-01", "ends_on": "2023-12-31",
                "document_number": "岳发改价〔2023〕8号", "reductions": {"dibao": 50}}  # fmt: skip
    assert admin.post("/zones/yumin-south/fee-standards", json=standard).status_code == 201
    for period in ("2023-08", "2023-09"):
        assert admin.post("/bills/generate", json={"period": period}).json()["created"] == 3
    with psycopg.connect(bench_db) as conn:
        row = conn.execute("SELECT id FROM households WHERE building_code = 'ys-b1' AND room = '101'").fetchone()
    assert row is not None
    pay = {"period": "2023-08", "amount": "20", "paid_on": "2023-08-15", "household_id": row[0]}
    assert staff.post("/payments", json=pay).status_code == 201


@pytest.fixture(scope="module")
def seeded(base_url: str, bench_db: str, people: dict[str, str]) -> str:
    """A few cases, five of them closed (two units, two months), survey answers (7 of 10 satisfied in
    one zone), two remediation tasks and a zone's fee bills and a payment, entered through the API."""
    for n in range(3):
        _report(base_url, bench_db, description=f"统计页测试 {n}")
    with (
        httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url}) as http,
        httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url}) as staff,
    ):
        assert http.post("/login", data={"username": people["admin"], "password": PASSWORD}).status_code == 303
        assert (
            staff.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD}).status_code
            == 303
        )
        for n in range(10):
            r = http.post(
                "/zones/yumin-south/survey",
                json={"household": f"stats-{n}", "answered_on": date.today().isoformat(), "satisfied": n < 7},
            )
            assert r.status_code == 201, r.text
        for item in ("牛皮癣清理", "路灯"):
            r = http.post("/zones/yumin-south/remediation", json={"item": item})
            assert r.status_code == 201, r.text
        _closed_cases(base_url, bench_db, http)
        _fees(bench_db, staff, http)
    return base_url


def _table(page: Any, chart: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#stat-{chart} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )


def _norm(row: list[Any]) -> list[Any]:
    """A row's cells as values: a number as a float (JS shows 70.0 as "70"), an empty cell as None."""
    out: list[Any] = []
    for cell in row:
        if cell is None or cell in ("—", ""):
            out.append(None)
            continue
        try:
            out.append(float(cell))
        except ValueError:
            out.append(str(cell))
    return out


def _subdistrict_of(bench_db: str, zone: str) -> str:
    """The name of the sub-district ``zone`` lies in, read from the tables."""
    with psycopg.connect(bench_db) as conn:
        row = conn.execute(
            "SELECT s.name FROM zones z JOIN subdistricts s ON s.code = z.subdistrict_code WHERE z.code = %s", [zone]
        ).fetchone()
    assert row is not None
    return str(row[0])


def _walk(p: Person, base: str, lang: str = "zh") -> list[dict[str, Any]]:
    """The page drawn: every chart rendered, each table the JSON's rows, each CSV the table."""
    p.page.wait_for_function(READY, timeout=30_000)
    assert p.page.locator("#stats-status").get_attribute("data-charts") == "drawn"
    data = p.page.request.get(f"{base}/workbench/stats/data" + ("?lang=en" if lang == "en" else "")).json()
    assert [c["id"] for c in data] == list(CHARTS)
    for chart in data:
        section = p.page.locator(f"#stat-{chart['id']}")
        assert section.get_attribute("data-drawn") == "true"
        assert section.locator(".stat-chart canvas").count() >= 1
        table = [_norm(row) for row in _table(p.page, chart["id"])]
        assert table == [_norm(row) for row in chart["rows"]], chart["id"]
    return data


def test_staff_sign_in_from_the_page_and_read_every_chart_its_table_and_csv(
    browser, seeded, bench_db, people, tmp_path
):
    p = Person(browser, "desktop")
    try:
        p.page.goto(f"{seeded}/workbench/stats")
        assert p.page.locator("[data-status='401']").count() == 1
        p.errors.clear()  # the 401 itself, as the console reports it
        p.press(p.page.locator("main a[href^='/login']"))
        p.type_into("#u", people["admin"])
        p.type_into("#p", PASSWORD)
        p.press(p.page.locator("#login button[type=submit]"))
        p.page.wait_for_url(re.compile(re.escape(seeded) + r"/workbench/stats$"))
        data = _walk(p, seeded)
        named = {c["id"]: c for c in data}
        # names, not codes: our three cases' category and state by their Chinese names
        categories = {row[0]: row[1] for row in named["category"]["rows"]}
        garbage = next(c["name"] for c in category_list() if c["code"] == "garbage_pile")
        assert categories.get(garbage, 0) >= 3 and "garbage_pile" not in categories, categories
        assert "received" not in {row[0] for row in named["state"]["rows"]}
        satisfaction = {row[0]: row for row in named["satisfaction"]["rows"]}
        zone = next(row for name, row in satisfaction.items() if row[4] == 10)
        assert zone[1] == 70.0 and zone[2] < 70.0 < zone[3], zone  # the rate inside its Wilson interval
        assert not any(name.startswith("yumin") for name in satisfaction)
        remediation = named["remediation"]["rows"]
        assert [row[1:] for row in remediation] == [[2, 0, 0.0]] and remediation[0][0] == _subdistrict_of(
            bench_db, "yumin-south"
        )
        p.page.locator("#stat-category").scroll_into_view_if_needed()
        with p.page.expect_download() as got:
            p.press(p.page.locator("#stat-category a.stat-csv"))
        path = tmp_path / "category.csv"
        got.value.save_as(path)
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
        assert rows[0] == named["category"]["columns"]
        assert [_norm(r) for r in rows[1:]] == [_norm(r) for r in named["category"]["rows"]]
        assert [_norm(r) for r in rows[1:]] == [_norm(r) for r in _table(p.page, "category")]
        p.page.evaluate("() => window.scrollTo(0, 0)")
        p.shot("stats")
        # English: the language link, titles and names of the vocabulary in English
        p.press(p.page.locator("a.wuye-lang"))
        p.page.wait_for_url(re.compile(r"lang=en"))
        english = _walk(p, seeded, "en")
        assert p.page.locator("#h-category").text_content() == "Cases by category"
        english_names = {row[0] for row in english[1]["rows"]}
        assert english_names.isdisjoint(categories) and "garbage_pile" not in english_names, english_names
        # the English page's XLSX in English: the sheet named after the chart, its columns, a state's name
        section = p.page.locator("#stat-state")
        section.scroll_into_view_if_needed()
        with p.page.expect_download() as got:
            p.press(section.locator("a.stat-xlsx"))
        got.value.save_as(tmp_path / "state-en.xlsx")
        book = load_workbook(tmp_path / "state-en.xlsx")
        assert book.sheetnames == ["Cases by state"]
        sheet = _sheet_rows(tmp_path / "state-en.xlsx")
        assert sheet[0] == english[2]["columns"] == ["Name", "Cases", "Open", "Overdue"]
        assert "closed" in {r[0] for r in sheet[1:]} and [_norm(r) for r in sheet[1:]] == [
            _norm(r) for r in english[2]["rows"]
        ]
        assert not p.errors, p.errors
        assert p.hosts == {seeded.split("//")[1]}, p.hosts
    finally:
        p.close()


def _visible_table(page: Any, chart: str) -> list[list[Any]]:
    """The rows of a chart's table as a person sees them (innerText: as rendered)."""
    rows = page.eval_on_selector_all(
        f"#table-{chart} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.innerText))"
    )
    return [_norm(r) for r in rows]


def _by_name(rows: list[list[Any]]) -> dict[str, list[Any]]:
    return {str(r[0]): list(r[1:]) for r in rows}


def _close_to(got: dict[str, list[Any]], want: dict[str, list[Any]], chart: str) -> None:
    """The same names, and each value equal (a rate or a median to its last shown digit)."""
    assert set(got) == set(want), (chart, got, want)
    for name, values in want.items():
        assert len(got[name]) == len(values), (chart, name, got[name], values)
        for a, b in zip(got[name], values, strict=True):
            assert (a is None and b is None) or abs(float(a) - float(b)) <= 0.051, (chart, name, got[name], values)


def _counted(bench_db: str) -> dict[str, dict[str, list[Any]]]:
    """What the charts must show, counted here from the tables with this test's own SQL and Python:
    cases per sub-district; per unit and per month closed (local time), the closed cases, those closed
    by their deadline, the rate in % and the median hours from report to close; per zone, the bills,
    those paid in full, the rate, the amounts billed and paid and that rate."""
    with psycopg.connect(bench_db) as conn:
        subdistricts = conn.execute(
            "SELECT coalesce(s.name, '（未落点）'), count(*) FROM cases c LEFT JOIN subdistricts s "
            "ON s.code = c.subdistrict_code WHERE c.district_code = %s GROUP BY 1",
            [DISTRICT],
        ).fetchall()
        closed = conn.execute(
            "SELECT coalesce(u.name, '（无责任单位）'), c.created_at, c.closed_at, c.due_at FROM cases c "
            "LEFT JOIN units u ON u.code = c.unit_code WHERE c.district_code = %s AND c.state = 'closed'",
            [DISTRICT],
        ).fetchall()
        bills = conn.execute(
            "SELECT z.name, count(*), count(*) FILTER (WHERE coalesce(p.paid, 0) >= f.amount), sum(f.amount), "
            " sum(least(coalesce(p.paid, 0), f.amount)) FROM fee_bills f JOIN households h ON h.id = f.household_id "
            "JOIN buildings b ON b.code = h.building_code JOIN zones z ON z.code = b.zone_code "
            "LEFT JOIN (SELECT household_id, period, sum(amount) AS paid FROM fee_payments GROUP BY 1, 2) p "
            " ON p.household_id = f.household_id AND p.period = f.period GROUP BY 1"
        ).fetchall()
    groups: dict[str, dict[str, list[tuple[float, bool]]]] = {"unit": {}, "month": {}}
    for unit, created, closed_at, due in closed:
        hours, on_time = (closed_at - created).total_seconds() / 3600, closed_at <= due
        groups["unit"].setdefault(unit, []).append((hours, on_time))
        groups["month"].setdefault(f"{closed_at.astimezone(LOCAL):%Y-%m}", []).append((hours, on_time))
    out: dict[str, dict[str, list[Any]]] = {"subdistrict": {name: [n] for name, n in subdistricts}}
    for dim, by in groups.items():
        out[dim] = {
            key: [
                len(v),
                sum(t for _, t in v),
                round(100 * sum(t for _, t in v) / len(v), 1),
                statistics.median(h for h, _ in v),
            ]
            for key, v in by.items()
        }
    out["fees"] = {
        zone: [
            n,
            paid_n,
            round(100 * paid_n / n, 1),
            float(billed),
            float(paid),
            round(100 * float(paid) / float(billed), 1),
        ]
        for zone, n, paid_n, billed, paid in bills
    }
    return out


def _sheet_rows(path: Any) -> list[list[Any]]:
    sheet = load_workbook(path).active
    assert sheet is not None
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def test_each_chart_switches_to_its_table_and_downloads_the_rows_the_tables_count(
    browser, seeded, bench_db, people, tmp_path
):
    """Per chart, a click on 数据表 shows the table instead of the chart, CSV and XLSX download by click
    and hold the table's rows, 图表 brings the chart back; the tables equal the test's own counts."""
    p = Person(browser, "desktop")
    try:
        p.sign_in(seeded, people["admin"], "/workbench/stats")
        p.page.wait_for_function(READY, timeout=30_000)
        data = {c["id"]: c for c in p.page.request.get(f"{seeded}/workbench/stats/data").json()}
        assert list(data) == list(CHARTS)
        for chart in CHARTS:
            section = p.page.locator(f"#stat-{chart}")
            section.scroll_into_view_if_needed()
            assert section.locator(".stat-chart").is_visible() and not section.locator(".stat-table").is_visible()
            p.press(section.locator("button.stat-view[data-view=table]"))
            assert section.locator(".stat-table").is_visible() and not section.locator(".stat-chart").is_visible()
            assert section.locator("button[data-view=table]").get_attribute("aria-pressed") == "true"
            shown = _visible_table(p.page, chart)
            assert shown == [_norm(r) for r in data[chart]["rows"]], chart
            header = section.locator("thead th").all_inner_texts()
            assert header == data[chart]["columns"], chart
            with p.page.expect_download() as got:
                p.press(section.locator("a.stat-csv"))
            assert got.value.suggested_filename == f"stats-{chart}.csv"
            got.value.save_as(tmp_path / f"{chart}.csv")
            rows = list(csv.reader(io.StringIO((tmp_path / f"{chart}.csv").read_bytes().decode("utf-8-sig"))))
            assert rows[0] == header and [_norm(r) for r in rows[1:]] == shown, chart
            with p.page.expect_download() as got:
                p.press(section.locator("a.stat-xlsx"))
            assert got.value.suggested_filename == f"stats-{chart}.xlsx"
            got.value.save_as(tmp_path / f"{chart}.xlsx")
            sheet = _sheet_rows(tmp_path / f"{chart}.xlsx")
            assert sheet[0] == header and [_norm(r) for r in sheet[1:]] == shown, chart
            if chart in ("unit", "month", "fees"):  # the sheet keeps numbers as numbers
                assert all(isinstance(v, int | float) for r in sheet[1:] for v in r[1:] if v is not None), sheet
        p.page.locator("#stat-unit").scroll_into_view_if_needed()
        p.shot("stats-tables")
        # the figures as this test counts them from the tables
        counted = _counted(bench_db)
        shown_by = {c: _by_name([_norm(r) for r in data[c]["rows"]]) for c in ("unit", "month", "fees")}
        _close_to({k: v[:1] for k, v in _by_name([_norm(r) for r in data["subdistrict"]["rows"]]).items()},
                  counted["subdistrict"], "subdistrict")  # fmt: skip
        for chart in ("unit", "month", "fees"):
            _close_to(shown_by[chart], counted[chart], chart)
        # what CLOSED made: units and months by name, the holiday case on time
        assert shown_by["unit"]["裕民小区物业服务队"][:3] == [3.0, 2.0, 66.7], shown_by["unit"]
        assert shown_by["unit"]["金岭小区物业服务队"][:3] == [3.0, 2.0, 66.7], shown_by["unit"]
        assert shown_by["month"]["2026-09"] == [2.0, 1.0, 50.0, 14.5], shown_by["month"]
        assert shown_by["month"]["2026-10"] == [4.0, 3.0, 75.0, 14.5], shown_by["month"]
        assert shown_by["fees"]["裕民农民安置小区南片"] == [6.0, 1.0, 16.7, 100.0, 20.0, 20.0], shown_by["fees"]
        # back to the chart: drawn again at its size
        section = p.page.locator("#stat-fees")
        section.scroll_into_view_if_needed()
        p.press(section.locator("button.stat-view[data-view=chart]"))
        assert section.locator(".stat-chart").is_visible() and not section.locator(".stat-table").is_visible()
        box = section.locator(".stat-chart canvas").first.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200, box
        p.page.evaluate("() => window.scrollTo(0, 0)")
        p.shot("stats-charts")
        assert not p.errors, p.errors
        assert p.hosts == {seeded.split("//")[1]}, p.hosts
    finally:
        p.close()


def test_the_case_stats_downloads_name_what_they_count(seeded, bench_db, people):
    """/cases/stats?f=xlsx (and csv): sub-districts, zones, categories, states and units by name, counted as
    this test's SQL counts them."""
    with psycopg.connect(bench_db) as conn:
        codes = {
            str(c)
            for (c,) in conn.execute(
                "SELECT code FROM subdistricts UNION SELECT code FROM zones UNION SELECT DISTINCT category FROM cases "
                "UNION SELECT DISTINCT state FROM cases UNION SELECT code FROM units"
            )
        }
        want = {
            ("街道", name): n
            for name, n in conn.execute(
                "SELECT s.name, count(*) FROM cases c JOIN subdistricts s ON s.code = c.subdistrict_code GROUP BY 1"
            )
        }
        want |= {
            ("小区", name): n
            for name, n in conn.execute(
                "SELECT z.name, count(*) FROM cases c JOIN zones z ON z.code = c.zone_code GROUP BY 1"
            )
        }
        want |= {
            ("责任单位", name): n
            for name, n in conn.execute(
                "SELECT u.name, count(*) FROM cases c JOIN units u ON u.code = c.unit_code GROUP BY 1"
            )
        }
        garbage = conn.execute("SELECT count(*) FROM cases WHERE category = 'garbage_pile'").fetchone()
    assert garbage is not None and ("街道", "观沙岭街道") in want
    with httpx.Client(base_url=seeded, timeout=60) as http:
        assert http.post("/login", data={"username": people["admin"], "password": PASSWORD}).status_code == 303
        xlsx = http.get("/cases/stats", params={"f": "xlsx"})
        csv_body = http.get("/cases/stats", params={"f": "csv"})
        english = http.get("/cases/stats", params={"f": "xlsx", "lang": "en"})
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = _sheet_rows(io.BytesIO(xlsx.content))
    assert sheet[0][:3] == ["维度", "名称", "事件数"]
    got = {(r[0], r[1]): r[2] for r in sheet[1:]}
    assert {k: v for k, v in got.items() if k[0] in ("街道", "小区", "责任单位")} == want
    assert ("责任单位", "裕民小区物业服务队") in want and ("小区", "金岭农民安置小区") in want
    assert got[("类别", "垃圾堆积")] == garbage[0] and got[("合计", "全部")] == sum(
        v for k, v in want.items() if k[0] == "街道"
    )
    assert {r[0] for r in sheet[1:]} == {"街道", "小区", "类别", "状态", "责任单位", "合计"}
    assert not {str(r[1]) for r in sheet[1:]} & codes, sheet  # not one code
    assert ("状态", "已结案") in got and got[("状态", "已结案")] == len(CLOSED)
    rows = list(csv.reader(io.StringIO(csv_body.content.decode("utf-8-sig"))))
    assert rows[0] == [str(v) for v in sheet[0]]
    assert [_norm(r) for r in rows[1:]] == [_norm(r) for r in sheet[1:]]
    named = _sheet_rows(io.BytesIO(english.content))
    assert named[0][:2] == ["Dimension", "Name"] and ("Category", "piled-up rubbish") in {(r[0], r[1]) for r in named}


def test_a_phone_draws_the_charts_in_the_staff_scope(browser, seeded, people):
    p = Person(browser, "phone")
    try:
        p.sign_in(seeded, people["subdistrict_staff"], "/workbench/cases")
        p.go_by_the_bar(p.page.locator(".wuye-nav a", has_text="统计图表"))  # the navigation bar names the page
        p.page.wait_for_url(re.compile(re.escape(seeded) + r"/workbench/stats$"))
        assert p.page.locator(".wuye-nav a[aria-current]").inner_text() == "统计图表"
        data = {c["id"]: c for c in _walk(p, seeded)}
        assert p.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        p.shot("stats")
        # the staff's scope: xihu's unit only; a tap shows the table, another the chart
        assert [r[0] for r in data["unit"]["rows"]] == ["裕民小区物业服务队"], data["unit"]
        section = p.page.locator("#stat-unit")
        section.scroll_into_view_if_needed()
        p.press(section.locator("button.stat-view[data-view=table]"))
        assert _visible_table(p.page, "unit") == [_norm(r) for r in data["unit"]["rows"]]
        assert p.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        p.shot("stats-unit-table", full_page=False)
        p.press(section.locator("button.stat-view[data-view=chart]"))
        assert section.locator(".stat-chart").is_visible()
        assert not p.errors, p.errors
    finally:
        p.close()


def test_residents_are_refused_and_bad_chart_names_named(seeded, people):
    with httpx.Client(base_url=seeded, timeout=60) as http:
        assert http.get("/workbench/stats/data").status_code == 401
        assert http.post("/login", data={"username": people["resident"], "password": PASSWORD}).status_code == 303
        refused = http.get("/workbench/stats", headers={"Accept": "text/html"})
        assert refused.status_code == 403 and "<html" in refused.text, refused.text
        assert http.get("/workbench/stats/data").status_code == 403
        assert http.get("/workbench/stats/state.csv").status_code == 403
        assert http.get("/workbench/stats/unit.xlsx").status_code == 403
    with httpx.Client(base_url=seeded, timeout=60) as http:
        http.post("/login", data={"username": people["admin"], "password": PASSWORD})
        bad = http.get("/workbench/stats/nothing.csv")
        assert bad.status_code == 400 and "字段：chart" in bad.text, bad.text
        bad = http.get("/workbench/stats/nothing.xlsx")
        assert bad.status_code == 400 and "字段：chart" in bad.text, bad.text
        lang = http.get("/cases/stats", params={"f": "xlsx", "lang": "fr"})
        assert lang.status_code == 400 and lang.json()["field"] == "lang" and lang.json()["reason_zh"], lang.text


def test_fifty_concurrent_clients_read_the_page_its_json_csv_and_xlsx(seeded, people):
    with httpx.Client(base_url=seeded, timeout=60) as http:
        http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
        cookie = http.cookies["wuye_session"]
        expected = http.get("/workbench/stats/data").json()
    fees = next(c for c in expected if c["id"] == "fees")

    async def crowd() -> list[tuple[str, int, bytes]]:
        async with httpx.AsyncClient(base_url=seeded, cookies={"wuye_session": cookie}, timeout=120) as client:
            # 50 clients on the figures at once, and among them the page and two downloads
            paths = ["/workbench/stats/data"] * 50 + [
                "/workbench/stats",
                "/workbench/stats/unit.csv",
                "/workbench/stats/fees.xlsx",
            ] * 4
            answers = await asyncio.gather(*(client.get(p) for p in paths))
            return [(a.url.path, a.status_code, a.content) for a in answers]

    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, crowd()).result()
    assert [s for _, s, _ in answers] == [200] * 62 and sum(p.endswith("/data") for p, _, _ in answers) == 50
    for path, _, body in answers:
        if path.endswith("/data"):
            assert httpx.Response(200, content=body).json() == expected
        elif path.endswith(".xlsx"):
            sheet = _sheet_rows(io.BytesIO(body))
            assert sheet[0] == fees["columns"] and [_norm(r) for r in sheet[1:]] == [_norm(r) for r in fees["rows"]]


# last in the module: it stops the session's cluster, which the module's server also reads
DOWNLOADS = ["/workbench/stats/data", "/workbench/stats/unit.xlsx", "/workbench/stats/month.csv",
             "/workbench/stats/fees.xlsx", "/cases/stats?f=xlsx"]  # fmt: skip


def test_the_downloads_answer_503_while_the_database_is_down_and_serve_after(target: Target):
    """The statistics' JSON, CSV and XLSX under a running ``wuye serve`` through a database stop and start."""
    from geo.access import users

    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(conn, username="stats-restart", password=PASSWORD, role="admin", district_code=DISTRICT,
                          actor="tests")  # fmt: skip
    with serving(target.env) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/login", data={"username": "stats-restart", "password": PASSWORD}).status_code == 303
        before = {p: http.get(p) for p in DOWNLOADS}
        assert {p: r.status_code for p, r in before.items()} == dict.fromkeys(DOWNLOADS, 200)
        embedded.stop(target.cluster)
        try:
            for path in DOWNLOADS:
                down = http.get(path)
                assert down.status_code == 503 and "数据库" in down.text, (path, down.status_code, down.text[:200])
                assert int(down.headers["Retry-After"]) > 0, path
        finally:
            target.start()
        limit = time.monotonic() + 60
        pending = list(DOWNLOADS)
        while pending:
            pending = [p for p in pending if http.get(p).status_code != 200]
            assert time.monotonic() < limit, f"not serving again after the start: {pending}"
            if pending:
                time.sleep(0.5)
        assert http.get("/workbench/stats/data").json() == before["/workbench/stats/data"].json()
        again = _sheet_rows(io.BytesIO(http.get("/workbench/stats/unit.xlsx").content))
        assert again == _sheet_rows(io.BytesIO(before["/workbench/stats/unit.xlsx"].content))
