"""The statistics page (issue 21 point 7) in a real Chromium against our app on a real port: an
anonymous visitor signs in from the 401 page, every ECharts chart is drawn from /workbench/stats/data
(our npm copy, no other host), each table shows the JSON's rows with names (not codes) and its CSV
download holds the same rows; a phone draws it too; a resident is refused; 50 concurrent clients.
(The database stop/restart of the page is in tests/test_workbench.py with the desk's.)"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import httpx
import pytest

from geo.cases.workflow import category_list
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person, _report, base_url, bench_db, people  # noqa: F401

READY = "() => window.wuyeStatsReady === true"
CHARTS = ("subdistrict", "category", "state", "satisfaction", "remediation")


@pytest.fixture(scope="module")
def seeded(base_url: str, bench_db: str, people: dict[str, str]) -> str:  # noqa: F811
    """A few cases, survey answers (7 of 10 satisfied in one zone) and two remediation tasks, entered
    through the API."""
    for n in range(3):
        _report(base_url, bench_db, description=f"统计页测试 {n}")
    with httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url}) as http:
        assert http.post("/login", data={"username": people["admin"], "password": PASSWORD}).status_code == 303
        for n in range(10):
            r = http.post(
                "/zones/yumin-south/survey",
                json={"household": f"stats-{n}", "answered_on": date.today().isoformat(), "satisfied": n < 7},
            )
            assert r.status_code == 201, r.text
        for item in ("牛皮癣清理", "路灯"):
            r = http.post("/zones/yumin-south/remediation", json={"item": item})
            assert r.status_code == 201, r.text
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


def _only_subdistrict(data: list[dict[str, Any]]) -> str:
    """The one sub-district the cases chart names (our cases and tasks are in the same zone)."""
    (row,) = data[0]["rows"]
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


def test_staff_sign_in_from_the_page_and_read_every_chart_its_table_and_csv(browser, seeded, people, tmp_path):  # noqa: F811
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
        assert [row[1:] for row in remediation] == [[2, 0, 0.0]] and remediation[0][0] == _only_subdistrict(data)
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
        assert not p.errors, p.errors
        assert p.hosts == {seeded.split("//")[1]}, p.hosts
    finally:
        p.close()


def test_a_phone_draws_the_charts_in_the_staff_scope(browser, seeded, people):  # noqa: F811
    p = Person(browser, "phone")
    try:
        p.sign_in(seeded, people["subdistrict_staff"], "/workbench/cases")
        p.press(p.page.locator(".wuye-nav a", has_text="统计图表"))  # the navigation bar names the page
        p.page.wait_for_url(re.compile(re.escape(seeded) + r"/workbench/stats$"))
        assert p.page.locator(".wuye-nav a[aria-current]").inner_text() == "统计图表"
        _walk(p, seeded)
        assert p.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        p.shot("stats")
        assert not p.errors, p.errors
    finally:
        p.close()


def test_residents_are_refused_and_bad_chart_names_named(seeded, people):  # noqa: F811
    with httpx.Client(base_url=seeded, timeout=60) as http:
        assert http.get("/workbench/stats/data").status_code == 401
        assert http.post("/login", data={"username": people["resident"], "password": PASSWORD}).status_code == 303
        refused = http.get("/workbench/stats", headers={"Accept": "text/html"})
        assert refused.status_code == 403 and "<html" in refused.text, refused.text
        assert http.get("/workbench/stats/data").status_code == 403
        assert http.get("/workbench/stats/state.csv").status_code == 403
    with httpx.Client(base_url=seeded, timeout=60) as http:
        http.post("/login", data={"username": people["admin"], "password": PASSWORD})
        bad = http.get("/workbench/stats/nothing.csv")
        assert bad.status_code == 400 and "字段：chart" in bad.text, bad.text


def test_fifty_concurrent_clients_read_the_page_its_json_and_csv(seeded, people):  # noqa: F811
    with httpx.Client(base_url=seeded, timeout=60) as http:
        http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
        cookie = http.cookies["wuye_session"]
        expected = http.get("/workbench/stats/data").json()

    async def crowd() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(base_url=seeded, cookies={"wuye_session": cookie}, timeout=120) as client:
            paths = ["/workbench/stats", "/workbench/stats/data", "/workbench/stats/satisfaction.csv"] * 17
            answers = await asyncio.gather(*(client.get(p) for p in paths))
            return [
                (a.status_code, a.json() if p.endswith("/data") else None) for p, a in zip(paths, answers, strict=True)
            ]

    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, crowd()).result()
    assert [s for s, _ in answers] == [200] * 51
    assert all(body == expected for _, body in answers if body is not None)
