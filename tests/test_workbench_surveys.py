"""Survey entry on the workbench (issue 21 point 4) in a real Chromium against our app on a real port: a
survey team on a phone (390×844, touch) taps in households' answers, meets the 409 of a household already
answered in Chinese with what it typed kept, replaces it on purpose, and imports a file whose bad rows the
page lists in a table (nothing written), then a good one; an administrator at a desktop (1280×800)
corrects and withdraws answers with a reason. Bad input names the field in Chinese and writes nothing;
fifty clients at once; the database stopped and started under the pages. Screenshots under
var/screenshots/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from geo.workcal import today
from tests.conftest import DISTRICT, make_people, settings_for
from tests.live import serving, wuye
from tests.test_db_restart import own_home, target  # noqa: F401  (a database this module may stop and start)
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person

TEAM_ZONES = ("jinling", "lichen")  # the survey team's scope


def _script_errors(p: Person) -> list[str]:
    """The page's script errors, less the console's line for a page answered 4xx on purpose."""
    return [e for e in p.errors if not re.match(r"Failed to load resource: .* status of 4\d\d", e)]


@pytest.fixture(scope="module")
def survey_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("wb_surveys", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def people(survey_db: str) -> dict[str, str]:
    """A survey team of two zones, an administrator and a sub-district staff member (who may not enter)."""
    return make_people(
        survey_db,
        "sv",
        {"survey_team": {"zone_codes": TEAM_ZONES}, "admin": {}, "subdistrict_staff": {"subdistrict_code": "xihu"}},
        PASSWORD,
    )


@pytest.fixture(scope="module")
def base_url(survey_db: str, people: dict[str, str]) -> Iterator[str]:
    with local_server(create_app(settings_for(survey_db))) as url:
        yield url


def _answers(url: str, zone: str, household: str) -> list[tuple[Any, ...]]:
    """The counting answers of a household: (id, satisfied, remark, score_sanitation, score_greening)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, satisfied, remark, score_sanitation, score_greening FROM survey_answers "
            "WHERE zone_code = %s AND household = %s AND withdrawn_at IS NULL ORDER BY id",
            [zone, household],
        ).fetchall()


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM survey_answers").fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def _session(base_url: str, username: str) -> Iterator[httpx.Client]:
    """A signed-in page session (cookie) whose writes come from our own pages (Origin)."""
    with httpx.Client(base_url=base_url, timeout=120, headers={"Origin": base_url}) as http:
        assert http.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
        yield http


# -- the survey team on a phone ---------------------------------------------------------------------------------
def _fill_answer(p: Person, household: str, *, satisfied: str, remark: str) -> None:
    page = p.page
    page.locator("#a-zone").select_option("lichen")
    if not page.locator("#a-building").input_value():  # (kept from the previous door)
        p.type_into("#a-building", "5")
    p.type_into("#a-household", household)
    p.press(page.locator(f"label:has(#a-{satisfied})"))
    p.press(page.locator("label:has(#s-sanitation-4)"))
    p.press(page.locator("label:has(#s-greening-2)"))
    p.type_into("#a-remark", remark)


def test_a_survey_team_enters_answers_on_a_phone_and_meets_the_409_in_chinese(browser, base_url, survey_db, people):  # noqa: F811
    p = Person(browser, "phone")
    page = p.page
    p.sign_in(base_url, people["survey_team"], "/workbench/surveys")
    # the zones of the team's scope only, named
    options = page.locator("#a-zone option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(options) == sorted(TEAM_ZONES)
    assert page.locator("nav.wuye-nav a[href='/workbench/surveys']").count() == 1
    p.shot("survey-entry-empty")

    _fill_answer(p, "5-2-301", satisfied="yes", remark="楼道灯已修好")
    with page.expect_navigation() as nav:
        p.press(page.locator("#a-save"))
    assert nav.value is not None
    saved = _answers(survey_db, "lichen", "5-2-301")
    assert len(saved) == 1 and saved[0][1:] == (True, "楼道灯已修好", 4, 2), saved
    assert f"已保存答卷 #{saved[0][0]}" in page.locator("#msg").inner_text()
    # the zone and the building stay for the next door; the household is empty again
    assert page.locator("#a-zone").input_value() == "lichen"
    assert page.locator("#a-building").input_value() == "5"
    assert page.locator("#a-household").input_value() == ""

    # the same household again: 409, said in Chinese, everything typed kept, nothing written
    _fill_answer(p, "5-2-301", satisfied="no", remark="第二次上门")
    with page.expect_navigation() as nav:
        p.press(page.locator("#a-save"))
    assert nav.value is not None and nav.value.status == 409
    message = page.locator("#msg").inner_text()
    assert f"该户本轮已有答卷（#{saved[0][0]}）" in message and "替换该户本轮已有答卷" in message, message
    assert page.locator("#msg").get_attribute("role") == "alert"
    assert page.locator("#a-household").input_value() == "5-2-301"
    assert page.locator("#a-household").get_attribute("aria-invalid") == "true"
    assert page.locator("#a-remark").input_value() == "第二次上门"
    assert page.locator("#a-zone").input_value() == "lichen"
    assert page.locator("#a-no").is_checked() and page.locator("#s-sanitation-4").is_checked()
    assert _answers(survey_db, "lichen", "5-2-301") == saved
    p.shot("survey-entry-409")

    # replaced on purpose: the same id, the new values
    p.press(page.locator("label:has(#a-replace)"))
    with page.expect_navigation():
        p.press(page.locator("#a-save"))
    assert f"已替换答卷 #{saved[0][0]}" in page.locator("#msg").inner_text()
    assert _answers(survey_db, "lichen", "5-2-301") == [(saved[0][0], False, "第二次上门", 4, 2)]

    # the zone's answers list: the figures and the answer; no correction links for a survey team
    p.press(page.locator("#tab-answers"))
    page.wait_for_url(re.compile(r".*/workbench/surveys/answers.*"))
    page.locator("#z-zone").select_option("lichen")
    with page.expect_navigation():
        p.press(page.locator("#z-go"))
    assert page.locator("tr.answer[data-household='5-2-301']").count() == 1
    assert page.locator("a.open-answer").count() == 0
    assert page.locator("#n-answers").inner_text() == "1"
    p.shot("survey-answers")
    assert _script_errors(p) == [] and p.hosts == {base_url.removeprefix("http://")}
    p.close()


CSV_BAD = (
    "小区,楼栋,户号,调查日期,调查员,是否满意,公共环境卫生,备注\n"
    "lichen,1,1-1-101,{day},张三,是,5,好\n"  # fine
    "nowhere,1,1-1-102,{day},张三,是,5,\n"  # unknown zone
    "daopo,1,1-1-103,{day},张三,否,3,\n"  # outside the team's scope
    "lichen,1,1-1-104,{day},张三,也许,9,\n"  # bad yes/no and score
    "lichen,1,1-1-101,{day},张三,否,2,\n"  # the household of row 1 again
    "lichen,1,1-1-105,{future},张三,是,,\n"  # a future date
    "lichen,1,,{day},张三,是,,\n"  # no household
)


def test_the_import_page_lists_every_bad_row_in_a_table_and_writes_nothing_then_imports(
    browser,  # noqa: F811
    base_url,
    survey_db,
    people,
    tmp_path,
):
    from openpyxl import Workbook

    day = (today() - timedelta(days=1)).isoformat()
    future = (today() + timedelta(days=3)).isoformat()
    bad = tmp_path / "answers.csv"
    bad.write_text(CSV_BAD.format(day=day, future=future), encoding="utf-8")
    before = _count(survey_db)
    p = Person(browser, "phone")
    page = p.page
    p.sign_in(base_url, people["survey_team"], "/workbench/surveys/import")
    # the columns it understands, Chinese headers included
    assert page.locator("#columns tr[data-field='household'] td").first.inner_text() == "户号"
    assert "户号" in page.locator("#columns tr[data-field='household']").inner_text()
    assert "公共环境卫生" in page.locator("#columns tr[data-field='score_sanitation']").inner_text()
    with page.expect_download() as got:  # the empty template: the Chinese headers the table names
        p.press(page.locator("#template"))
    headers = Path(got.value.path()).read_text(encoding="utf-8-sig").strip().split(",")
    assert headers == page.locator("#columns tbody tr td:first-child").all_inner_texts()
    assert "户号" in headers and "公共绿化" in headers
    page.locator("#i-file").set_input_files(str(bad))
    with page.expect_navigation() as nav:
        p.press(page.locator("#i-go"))
    assert nav.value is not None and nav.value.status == 400
    assert "6 行有误（共 7 行），未导入任何答卷" in page.locator("#msg").inner_text()
    rows = page.locator("#problems tr.problem").evaluate_all(
        "rs => rs.map(r => [r.dataset.row, r.dataset.field, r.cells[1].innerText, r.cells[2].innerText])"
    )
    found = {(int(r), f): (col, text) for r, f, col, text in rows}
    assert found[(2, "zone")] == ("小区", "小区「nowhere」不存在")
    assert found[(3, "zone")] == ("小区", "小区「daopo」不在您的调查范围内")
    assert found[(4, "satisfied")] == ("是否满意", "「也许」不是 是/否")
    assert found[(4, "score_sanitation")] == ("公共环境卫生", "评分应为 1～5")
    assert found[(5, "household")][1] == "户号 1-1-101 与第 1 行是同一户（一户一轮只计一份答卷）"
    assert found[(6, "answered_on")][1] == f"日期 {future} 晚于今天"
    assert found[(7, "household")] == ("户号", "缺少户号")
    assert _count(survey_db) == before
    p.shot("survey-import-errors")

    # a good workbook, Chinese headers in another order: all rows in one batch
    book = Workbook()
    sheet = book.active
    sheet.append(["户号", "小区", "是否满意", "调查日期", "调查员", "公共绿化", "楼栋"])
    for i in range(1, 4):
        sheet.append([f"2-1-{i}01", "jinling", "满意" if i < 3 else "不满意", day, "李四", 5, "2"])
    good = tmp_path / "answers.xlsx"
    book.save(good)
    page.locator("#i-file").set_input_files(str(good))
    with page.expect_navigation() as nav:
        p.press(page.locator("#i-go"))
    assert nav.value is not None and nav.value.status == 200
    text = page.locator("#msg").inner_text()
    assert "已导入 3 行：新增 3 份，替换 0 份" in text, text
    assert _count(survey_db) == before + 3
    assert page.locator("#problems").count() == 0
    p.shot("survey-import-done")
    assert _script_errors(p) == []
    p.close()


# -- the administrator at a desktop -------------------------------------------------------------------------------
def test_an_administrator_corrects_and_withdraws_answers_with_a_reason(browser, base_url, survey_db, people):  # noqa: F811
    with _session(base_url, people["survey_team"]) as team:
        day = today().isoformat()
        for household in ("9-1-101", "9-1-102"):
            r = team.post(
                "/workbench/surveys",
                data={"zone": "jinling", "household": household, "satisfied": "yes", "answered_on": day},
            )
            assert r.status_code == 303, r.text
        # a survey team may not open an answer to correct it
        first = _answers(survey_db, "jinling", "9-1-101")[0][0]
        assert team.get(f"/workbench/surveys/answers/{first}").status_code == 403
        # nor read the answers of a zone outside its scope (as GET /zones/{code}/survey: 404)
        outside = team.get("/workbench/surveys/answers?zone=daopo")
        assert outside.status_code == 404 and "<html" in outside.text
    second = _answers(survey_db, "jinling", "9-1-102")[0][0]

    p = Person(browser, "desktop")
    page = p.page
    p.sign_in(base_url, people["admin"], "/workbench/surveys/answers?zone=jinling")
    with page.expect_navigation():
        p.press(page.locator(f"tr.answer[data-id='{first}'] a.open-answer"))
    p.press(page.locator("label:has(#c-no)"))
    page.locator("#c-greening").select_option("2")
    p.type_into("#c-reason", "调查员录错：住户表示不满意")
    with page.expect_navigation():
        p.press(page.locator("#c-go"))
    assert f"已更正答卷 #{first}" in page.locator("#msg").inner_text()
    assert _answers(survey_db, "jinling", "9-1-101") == [(first, False, None, None, 2)]
    with psycopg.connect(survey_db) as conn:
        event = conn.execute(
            "SELECT action, reason, before->>'satisfied', after->>'satisfied' FROM survey_answer_events "
            "WHERE answer_id = %s",
            [first],
        ).fetchall()
    assert event == [("correct", "调查员录错：住户表示不满意", "true", "false")]

    # a withdrawal without a reason: refused in Chinese, nothing written; then with one
    page.goto(f"{base_url}/workbench/surveys/answers/{second}")
    with page.expect_navigation() as nav:
        p.press(page.locator("#w-go"))
    assert nav.value is not None and nav.value.status == 400
    assert "须填写撤回或更正的原因" in page.locator("#msg").inner_text()
    assert len(_answers(survey_db, "jinling", "9-1-102")) == 1
    p.type_into("#w-reason", "重复入户，撤回")
    with page.expect_navigation():
        p.press(page.locator("#w-go"))
    assert f"已撤回答卷 #{second}" in page.locator("#msg").inner_text()
    assert _answers(survey_db, "jinling", "9-1-102") == []
    assert page.locator(f"tr.answer[data-id='{second}']").count() == 0
    assert page.locator(f"tr.answer[data-id='{first}']").count() == 1
    p.shot("survey-admin-answers")
    page.goto(f"{base_url}/workbench/surveys/answers/{second}")
    assert page.locator("#answer").get_attribute("data-counting") == "false"
    assert page.locator("#withdraw").count() == 0
    assert page.locator("tr.event[data-action='withdraw']").count() == 1
    p.shot("survey-admin-withdrawn")
    assert _script_errors(p) == []
    p.close()


def test_an_administrator_withdraws_a_whole_import_batch_and_the_file_goes_in_again(
    browser,  # noqa: F811
    base_url,
    survey_db,
    people,
):
    day = today().isoformat()
    csv = f"小区,户号,调查日期,调查员,是否满意\njinling,4-1-101,{day},王五,是\njinling,4-1-102,{day},王五,否\n"
    with _session(base_url, people["survey_team"]) as team:
        files = {"file": ("batch.csv", csv.encode(), "text/csv")}
        assert team.post("/workbench/surveys/import", files=files).status_code == 200
        answer = _answers(survey_db, "jinling", "4-1-102")[0][0]
        with psycopg.connect(survey_db) as conn:
            batch = conn.execute("SELECT batch_id FROM survey_answers WHERE id = %s", [answer]).fetchone()[0]
        again = team.post("/workbench/surveys/import", files=files)  # in again: every household answered already
        assert again.status_code == 400 and again.text.count('class="problem"') == 2
    p = Person(browser, "desktop")
    page = p.page
    p.sign_in(base_url, people["admin"], f"/workbench/surveys/answers/{answer}")
    p.type_into("#b-reason", "调查员漏填楼栋，整批重导")
    with page.expect_navigation():
        p.press(page.locator("#b-go"))
    assert f"已撤回导入批次 #{batch}（2 份答卷）" in page.locator("#msg").inner_text()
    assert _answers(survey_db, "jinling", "4-1-101") == _answers(survey_db, "jinling", "4-1-102") == []
    p.close()
    with _session(base_url, people["survey_team"]) as team:  # the corrected file goes in again
        assert "新增 2 份" in team.post("/workbench/surveys/import", files=files).text
    assert len(_answers(survey_db, "jinling", "4-1-101")) == 1


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "status", "field", "said"),
    [
        ({"zone": "daopo"}, 404, "zone", "不在您的调查范围内"),
        ({"household": ""}, 400, "household", "缺少户号"),
        ({"satisfied": ""}, 400, "satisfied", "请选择总体是否满意"),
        ({"score_greening": "7"}, 400, "score_greening", "评分应为 1～5"),
        ({"answered_on": "2026-13-40"}, 400, "answered_on", "须为日期"),
        ({"answered_on": "2099-01-01"}, 400, "answered_on", "晚于今天"),
        ({"round_kind": "third"}, 400, "round_kind", "调查轮次类型「third」无效"),
        # refused before the form is read (too long; a control character): the error page names the field
        ({"round": "x" * 41}, 400, "round", "请求有误（字段：round）"),
        ({"remark": "好\x00"}, 400, "remark", "“remark”含有不允许的控制字符"),
    ],
)
def test_bad_input_names_the_field_in_chinese_and_writes_nothing(
    base_url, survey_db, people, change, status, field, said
):
    good = {"zone": "jinling", "household": "7-7-707", "satisfied": "yes", "answered_on": today().isoformat()}
    before = _count(survey_db)
    with _session(base_url, people["survey_team"]) as http:
        r = http.post("/workbench/surveys", data={**good, **change})
    assert r.status_code == status, r.text[:500]
    assert "<html" in r.text and said in r.text, r.text[-3000:]
    if field not in ("round", "remark"):  # the form again, what was typed kept
        assert f'data-field="{field}"' in r.text or field == "zone"
        assert 'value="7-7-707"' in r.text or field == "household"
    assert _count(survey_db) == before


def test_other_roles_may_not_enter_answers(base_url, people):
    with _session(base_url, people["subdistrict_staff"]) as http:
        for path in ("/workbench/surveys", "/workbench/surveys/import", "/workbench/surveys/answers"):
            assert http.get(path).status_code == 403
        assert "入户调查" not in http.get("/workbench/cases").text.split("</nav>")[0]
    anonymous = httpx.get(f"{base_url}/workbench/surveys", timeout=30)
    assert anonymous.status_code == 401 and "<html" in anonymous.text


# -- fifty at once -----------------------------------------------------------------------------------------------
def test_fifty_concurrent_clients_read_the_survey_pages_and_one_household_is_answered_once(base_url, survey_db, people):
    with _session(base_url, people["survey_team"]) as http:
        cookie = http.cookies["wuye_session"]
    day = today().isoformat()

    async def crowd() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(
            base_url=base_url, cookies={"wuye_session": cookie}, timeout=120, headers={"Origin": base_url}
        ) as client:
            paths = ["/workbench/surveys", "/workbench/surveys/import", "/workbench/surveys/answers?zone=lichen"] * 17
            reads = await asyncio.gather(*(client.get(p) for p in paths))
            form = {"zone": "jinling", "household": "8-8-808", "satisfied": "yes", "answered_on": day}
            writes = await asyncio.gather(*(client.post("/workbench/surveys", data=form) for _ in range(50)))
            return [r.status_code for r in reads], [w.status_code for w in writes]

    with ThreadPoolExecutor(1) as pool:  # (Playwright's sync API keeps an event loop in this thread)
        reads, writes = pool.submit(asyncio.run, crowd()).result()
    assert reads == [200] * 51
    assert sorted(writes) == [303] + [409] * 49, writes
    assert len(_answers(survey_db, "jinling", "8-8-808")) == 1


# -- English ------------------------------------------------------------------------------------------------------
def test_the_survey_pages_speak_english_with_lang_en(base_url, survey_db, people):
    with _session(base_url, people["survey_team"]) as http:
        entry = http.get("/workbench/surveys?lang=en").text
        assert '<html lang="en"' in entry and "Enter an answer" in entry and "Satisfied overall" in entry
        assert "public order" in entry and 'name="lang" value="en"' in entry  # the labels, the form keeps the language
        assert "Columns understood" in http.get("/workbench/surveys/import?lang=en").text
        form = {"zone": "jinling", "household": "6-6-606", "satisfied": "no", "answered_on": today().isoformat()}
        first = http.post("/workbench/surveys", data={**form, "lang": "en"})
        assert first.status_code == 303 and first.headers["location"].endswith("lang=en")
        again = http.post("/workbench/surveys", data={**form, "lang": "en"})
        assert again.status_code == 409 and "already answered in this round" in again.text
        assert "Answers of" in http.get("/workbench/surveys/answers?zone=jinling&lang=en").text


# -- the database stopped and started (last: the cluster may come back on another port than the module's app has)
def test_the_survey_pages_answer_503_while_the_database_is_down_and_work_again_after(target):  # noqa: F811
    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(
            conn,
            username="sv-restart",
            password=PASSWORD,
            role="survey_team",
            district_code=DISTRICT,
            actor="tests",
            zone_codes=("jinling",),
        )
    form = {"zone": "jinling", "household": "3-3-303", "satisfied": "no", "answered_on": today().isoformat()}
    with serving(target.env) as url, _session(url, "sv-restart") as http:
        assert http.get("/workbench/surveys").status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        for path in ("/workbench/surveys", "/workbench/surveys/answers"):
            down = http.get(path)
            assert down.status_code == 503 and 'data-status="503"' in down.text and "数据库" in down.text, down.text
        refused = http.post("/workbench/surveys", data=form)
        assert refused.status_code == 503 and "数据库" in refused.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/surveys")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        saved = http.post("/workbench/surveys", data=form)
        assert saved.status_code == 303, saved.text
        assert "已保存答卷" in http.get(saved.headers["location"]).text
    assert len(_answers(target.url(), "jinling", "3-3-303")) == 1
