"""The acceptance desk (issue 21 point 5) in a real Chromium against our app on a real port: an
administrator at a desktop (1280×800) reads every zone's verdict with the criteria it fails, its
satisfaction with the 95% interval, issues (签发) a zone's verdict from the page, sees its redo plan with
deadlines and its history, downloads the issued PDF, the district summary (PDF, XLSX) and the zone's
snapshot; sub-district staff read it on a phone (390×844, touch) without the issue form. Fifty clients at
once; the database stopped and started under the page. Screenshots under var/screenshots/."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from geo.programme import surveys
from geo.settings import AcceptanceSettings
from geo.workcal import today
from layers.catalogue import vocabulary
from tests.conftest import DISTRICT, make_people, settings_for
from tests.live import serving, wuye
from tests.test_acceptance import all_verified, answers
from tests.test_db_restart import own_home, target  # noqa: F401  (a database this module may stop and start)
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person

VERDICTS = vocabulary("verdicts").zh


@pytest.fixture(scope="module")
def desk_db(server: Any, template_db: str) -> Iterator[str]:
    """jinling passes (90 of 100 satisfied, every task verified), lichen is 补课 (80 of 100); the others
    have no answers."""
    with server.copy("wb_acceptance", template_db) as url:
        with psycopg.connect(url) as conn:
            all_verified(conn, "jinling")
            answers(conn, "jinling", 90, 100)
            all_verified(conn, "lichen")
            answers(conn, "lichen", 80, 100)
        yield url


@pytest.fixture(scope="module")
def people(desk_db: str) -> dict[str, str]:
    return make_people(
        desk_db, "ac", {"admin": {}, "subdistrict_staff": {"subdistrict_code": "xihu"}, "resident": {}}, PASSWORD
    )


@pytest.fixture(scope="module")
def base_url(desk_db: str, people: dict[str, str]) -> Iterator[str]:
    settings = settings_for(desk_db)
    settings.acceptance = AcceptanceSettings(document_number_pattern="岳麓城管验〔{year}〕{seq}号")
    with local_server(create_app(settings)) as url:
        yield url


def _zones(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT code FROM zones ORDER BY code")]


def _documents(url: str, zone: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, number, verdict, sha256 FROM acceptance_documents WHERE zone_code = %s ORDER BY id", [zone]
        ).fetchall()


def _interval(satisfied: int, total: int) -> str:
    low, high = surveys.wilson(satisfied, total) or (0.0, 0.0)
    return f"{100 * round(low, 4):.1f}%–{100 * round(high, 4):.1f}%"


def test_an_administrator_reads_every_verdict_and_issues_one_from_the_desk(browser, base_url, desk_db, people):  # noqa: F811
    p = Person(browser, "desktop")
    page = p.page
    p.sign_in(base_url, people["admin"], "/workbench/acceptance")
    assert page.locator("nav.wuye-nav a[href='/workbench/acceptance']").get_attribute("aria-current") == "page"
    rows = page.locator("tr.zone-row").evaluate_all("rs => rs.map(r => [r.dataset.zone, r.dataset.verdict])")
    assert sorted(z for z, _ in rows) == _zones(desk_db)
    verdict_of = dict(rows)
    assert verdict_of["jinling"] == "pass" and verdict_of["lichen"] == "redo"
    assert {v for z, v in rows if z not in ("jinling", "lichen")} == {"none"}
    assert page.locator("#n-pass").inner_text() == "1" and page.locator("#n-redo").inner_text() == "1"
    assert page.locator("#n-none").inner_text() == str(len(rows) - 2)
    lichen = page.locator("tr.zone-row[data-zone='lichen']")
    assert VERDICTS["redo"] in lichen.inner_text()
    assert lichen.locator(".crit").evaluate_all("cs => cs.map(c => c.dataset.criterion)") == ["satisfaction"]
    rate = lichen.locator("td.rate").inner_text()
    assert "80.0%" in rate and _interval(80, 100) in rate, rate
    assert VERDICTS["none"] in page.locator("tr.zone-row[data-zone='ansu']").inner_text()
    p.shot("acceptance-desk")

    # the zone's card opens from its row; the four standards, the failed criterion marked
    p.press(lichen.locator("a.to-zone"))
    card = page.locator("details#zone-lichen")
    page.wait_for_function("() => document.getElementById('zone-lichen').open === true")
    assert card.locator("tr.criterion[data-criterion='satisfaction']").get_attribute("data-met") == "no"
    assert card.locator("tr.criterion[data-criterion='remediation']").get_attribute("data-met") == "yes"
    assert card.locator("tr.criterion[data-criterion='remediation_photos']").get_attribute("data-met") == "off"
    assert card.locator("tr.redo-item").count() == 0 and card.locator("tr.issued-doc").count() == 0

    # 签发 from the page
    with page.expect_navigation(timeout=180_000):
        p.press(card.locator("button.issue-go"))
    docs = _documents(desk_db, "lichen")
    assert len(docs) == 1 and docs[0][2] == "redo"
    doc_id, number = docs[0][0], docs[0][1]
    assert page.locator("#msg").inner_text() == f"已签发 {number}（{VERDICTS['redo']}）"
    card = page.locator("details#zone-lichen")
    assert card.get_attribute("open") is not None
    assert card.locator("tr.issued-doc").evaluate_all("rs => rs.map(r => r.dataset.id)") == [str(doc_id)]
    # the redo plan it opened, with its deadline
    with psycopg.connect(desk_db) as conn:
        due = conn.execute("SELECT due_on FROM redo_items WHERE zone_code = 'lichen'").fetchall()
    assert len(due) == 1 and card.locator("tr.redo-item").count() == 1
    assert due[0][0].isoformat() in card.locator("tr.redo-item").inner_text()
    assert due[0][0] == today() + timedelta(days=AcceptanceSettings().redo_days)
    assert page.locator("tr.zone-row[data-zone='lichen'] a.issued-pdf").inner_text() == number
    p.shot("acceptance-issued")

    # the issued PDF as stored, byte for byte
    pdf = p.context.request.get(base_url + card.locator("a.zone-pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.body()).hexdigest() == docs[0][3]

    # issued again: refused in Chinese, nothing written, the card open with the reason
    with page.expect_navigation(timeout=180_000) as nav:
        p.press(page.locator("details#zone-lichen button.issue-go"))
    assert nav.value is not None and nav.value.status == 409
    assert page.locator("#msg").inner_text().startswith("lichen：") and "已签发" in page.locator("#msg").inner_text()
    assert len(_documents(desk_db, "lichen")) == 1
    assert page.locator("details#zone-lichen").get_attribute("open") is not None

    # the district summary, as XLSX and PDF
    from openpyxl import load_workbook

    with page.expect_download() as got:
        p.press(page.locator("#dl-summary-xlsx"))
    book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))
    cells = {str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value}
    assert any("丽臣" in c or "lichen" in c for c in cells), sorted(cells)[:40]
    with page.expect_download(timeout=120_000) as got:
        p.press(page.locator("#dl-summary-pdf"))
    assert Path(got.value.path()).read_bytes()[:5] == b"%PDF-"

    # the zone's map and its snapshot
    card = page.locator("details#zone-jinling")
    p.press(page.locator("tr.zone-row[data-zone='jinling'] a.to-zone"))
    page.wait_for_function("() => document.getElementById('zone-jinling').open === true")
    shot = p.context.request.get(base_url + card.locator("a.zone-snapshot").get_attribute("href"), timeout=120_000)
    assert shot.status == 200 and shot.headers["content-type"] == "image/png" and shot.body()[:4] == b"\x89PNG"
    assert card.locator("a.zone-map").get_attribute("href") == "/maps/zones/jinling"
    assert [e for e in p.errors if not re.match(r"Failed to load resource: .* status of 409", e)] == []
    p.close()


def test_sub_district_staff_read_the_desk_on_a_phone_without_issuing(browser, base_url, desk_db, people):  # noqa: F811
    p = Person(browser, "phone")
    page = p.page
    p.sign_in(base_url, people["subdistrict_staff"], "/workbench/acceptance")
    assert page.locator("tr.zone-row").count() == len(_zones(desk_db))
    assert page.locator("form.issue").count() == 0
    p.shot("acceptance-phone", full_page=False)
    p.press(page.locator("tr.zone-row[data-zone='jinling'] a.to-zone"))
    page.wait_for_function("() => document.getElementById('zone-jinling').open === true")
    assert "90.0%" in page.locator("details#zone-jinling p.satisfaction").inner_text()
    page.locator("details#zone-jinling").scroll_into_view_if_needed()
    p.shot("acceptance-phone-zone", full_page=False)
    # a write from the desk's form is refused to them, as POST /zones/{code}/verdicts is
    before = _documents(desk_db, "jinling")
    cookie = p.context.cookies()[0]["value"]
    refused = httpx.post(
        f"{base_url}/workbench/acceptance/jinling/issue",
        cookies={"wuye_session": cookie},
        headers={"Origin": base_url},
        timeout=60,
    )
    assert refused.status_code == 403 and "<html" in refused.text
    assert _documents(desk_db, "jinling") == before
    assert p.errors == []
    p.close()


@pytest.mark.parametrize(
    ("zone", "form", "status", "said"),
    [
        ("lichen", {"new_version": "true"}, 400, "重新签发须说明更正原因"),
        ("ansu", {}, 400, "ansu："),  # no answers in its round: nothing to issue
        ("nowhere", {}, 404, "nowhere："),
        ("lichen", {"round": "1999"}, 400, "lichen："),  # a round without its answers
    ],
)
def test_a_refused_issue_says_why_on_the_desk_and_writes_nothing(base_url, desk_db, people, zone, form, status, said):
    with psycopg.connect(desk_db) as conn:
        before = conn.execute("SELECT count(*) FROM acceptance_documents").fetchone()
    with httpx.Client(base_url=base_url, timeout=120, headers={"Origin": base_url}) as http:
        http.post("/login", data={"username": people["admin"], "password": PASSWORD})
        r = http.post(f"/workbench/acceptance/{zone}/issue", data=form)
    assert r.status_code == status, r.text[-2000:]
    assert 'id="msg" role="alert"' in r.text and said in r.text
    if form.get("round"):
        assert 'value="1999"' in r.text  # what was typed, kept in the zone's form
    with psycopg.connect(desk_db) as conn:
        assert conn.execute("SELECT count(*) FROM acceptance_documents").fetchone() == before


def test_residents_and_visitors_do_not_open_the_desk(base_url, people):
    with httpx.Client(base_url=base_url, timeout=60) as http:
        assert http.get("/workbench/acceptance").status_code == 401
        assert http.post("/login", data={"username": people["resident"], "password": PASSWORD}).status_code == 303
        assert http.get("/workbench/acceptance").status_code == 403
        assert "/workbench/acceptance" not in http.get("/", headers={"Accept": "text/html"}).text


def test_fifty_concurrent_clients_read_the_desk(base_url, people):
    with httpx.Client(base_url=base_url, timeout=60) as http:
        http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
        cookie = http.cookies["wuye_session"]

    async def timed(client: httpx.AsyncClient, path: str) -> tuple[int, float]:
        started = time.monotonic()
        answer = await client.get(path)
        return answer.status_code, time.monotonic() - started

    async def crowd() -> list[tuple[int, float]]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=180) as client:
            paths = ["/workbench/acceptance", "/workbench/acceptance?lang=en&zone=lichen"] * 25
            return await asyncio.gather(*(timed(client, p) for p in paths))

    with ThreadPoolExecutor(1) as pool:  # (Playwright's sync API keeps an event loop in this thread)
        answers = pool.submit(asyncio.run, crowd()).result()
    assert [status for status, _ in answers] == [200] * 50
    waits = sorted(s for _, s in answers)
    print(f"50 concurrent desk pages: median {waits[24]:.2f} s, slowest {waits[-1]:.2f} s")


def test_the_desk_speaks_english_with_lang_en(base_url, people):
    with httpx.Client(base_url=base_url, timeout=60) as http:
        http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
        page = http.get("/workbench/acceptance?lang=en").text
    labels = vocabulary("verdicts").en
    assert '<html lang="en"' in page and "Acceptance desk" in page and "District summary (XLSX)" in page
    assert labels["pass"] in page and labels["none"] in page
    # the criteria and their figures in English too, none of the Chinese texts left in the table
    criteria = re.findall(r'<tr class="criterion"[^>]*>\s*<td>([^<]*)</td>.*?<td class="hint">([^<]*)</td>', page, re.S)
    assert criteria and "every remediation task verified" in page and "satisfaction at least 85%" in page
    han = re.compile(r"[\u4e00-\u9fff]")
    assert not [c for c in criteria if han.search(c[0]) or (han.search(c[1]) and "〔" not in c[1])], criteria


def test_an_administrator_issues_every_zone_that_can_be_at_once(browser, base_url, desk_db, people):  # noqa: F811
    zones = _zones(desk_db)
    issued_before = {z: len(_documents(desk_db, z)) for z in zones}
    # the zones with answers (jinling, lichen) not issued yet: lichen is when the first test ran before
    ready = [z for z in ("jinling", "lichen") if not issued_before[z]]
    assert ready
    p = Person(browser, "desktop")
    page = p.page
    p.sign_in(base_url, people["admin"], "/workbench/acceptance")
    with page.expect_navigation(timeout=180_000):
        p.press(page.locator("#issue-all-go"))
    numbers = {_documents(desk_db, z)[-1][1] for z in ready}
    said = re.fullmatch(r"已签发 (\d+) 个小区：(.+)", page.locator("#msg").inner_text())
    assert said is not None and int(said.group(1)) == len(ready) and set(said.group(2).split("、")) == numbers
    assert {z: len(_documents(desk_db, z)) for z in zones} == {z: n + (z in ready) for z, n in issued_before.items()}
    p.press(page.locator("#skipped summary"))
    left = page.locator("#skipped li").all_inner_texts()
    assert len(left) == len(zones) - len(ready) and all(re.match(r"^[a-z-]+：\S", t) for t in left), left
    assert page.locator("tr.zone-row[data-zone='jinling'] a.issued-pdf").count() == 1
    p.shot("acceptance-issued-all")
    assert p.errors == []
    p.close()


# -- the database stopped and started (last: the cluster may come back on another port than the module's app has)
def test_the_desk_answers_503_while_the_database_is_down_and_works_again_after(target):  # noqa: F811
    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(
            conn, username="ac-restart", password=PASSWORD, role="admin", district_code=DISTRICT, actor="tests"
        )
    with (
        serving(target.env) as url,
        httpx.Client(base_url=url, timeout=60, headers={"Origin": url}) as http,
    ):
        assert http.post("/login", data={"username": "ac-restart", "password": PASSWORD}).status_code == 303
        assert http.get("/workbench/acceptance").status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        down = http.get("/workbench/acceptance")
        assert down.status_code == 503 and 'data-status="503"' in down.text and "数据库" in down.text, down.text
        refused = http.post("/workbench/acceptance/lichen/issue", data={})
        assert refused.status_code == 503 and "数据库" in refused.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/acceptance")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert again.text.count('class="zone-row"') == len(_zones(target.url()))
        # a zone without answers: the issue is refused in Chinese (400, round), nothing written
        empty = http.post("/workbench/acceptance/jinling/issue", data={})
        assert empty.status_code == 400 and "jinling：" in empty.text
