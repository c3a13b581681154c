"""The programme's people at work (issue 21 point 8): one walk per programme role, each doing its part of
the programme end to end in a real Chromium against our app on a real port, on a desktop (1280×800,
mouse) and on a phone (390×844, touch), moving from page to page by the links a person clicks:

- the survey team (满意度调查员) opens the survey entry from the portal, enters households' answers of
  its zone, meets the 409 of a household answered already, imports a CSV file and reads the zone's
  answers;
- sub-district staff (街道工作人员) take a new case from the portal's count to the desk and register and
  dispatch it, add a remediation task on the board and work it with its before and after photos,
  record a residents' meeting with its place picked on the map and a photo, and find the zone on the
  phases table;
- the bureau's administrator (区城管局) gives a zone its own deadline with a reason on the phases page,
  issues (签发) the zone's verdict on the acceptance desk, downloads the issued PDF and the district
  summary XLSX, and reads the statistics page's charts, a chart's table and its CSV.

After each walk the database shows what the person did, and the pages had no script error. Every step
is the role's own under the routes' Guards (api/workbench*.py, api/acceptance.py): nothing here is
done by another role. Screenshots: var/screenshots/walk-<role>-<step>-<device>.png."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from api.app import create_app
from api.maps import local_server
from geo.workcal import today
from layers.catalogue import vocabulary
from tests.conftest import make_people, settings_for
from tests.test_acceptance import all_verified, answers
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, SHOTS, Person, _jpeg, _report
from tests.test_workbench_remediation import READY as PUBLICITY_READY
from tests.test_workbench_remediation import _inside, _tap_map

DEVICES = ("desktop", "phone")
DESK_READY = "() => window.wuyeDeskReady === true"
STATS_READY = "() => window.wuyeStatsReady === true"
# Each device's walk works in a zone of its own, so that the two walks of a role never meet.
SURVEY_ZONES = {"desktop": "jinling", "phone": "lichen"}  # the survey team's zones (its scope)
STAFF_ZONES = {"desktop": "yumin-south", "phone": "yumin-north"}  # 西湖's zones (the staff's scope)
BUREAU_ZONES = {"desktop": "ansu", "phone": "shangduifang"}  # zones with answers, not yet issued
SCOPES: dict[str, dict[str, Any]] = {
    "survey_team": {"zone_codes": tuple(SURVEY_ZONES.values())},
    "subdistrict_staff": {"subdistrict_code": "xihu"},
    "admin": {},
}


@pytest.fixture(scope="module")
def walks_db(server: Any, template_db: str) -> Iterator[str]:
    """The demo district; the bureau's two zones have their survey answers (90 of 100 satisfied) and
    every remediation task verified, so that a verdict can be issued for each."""
    with server.copy("walks", template_db) as url:
        with psycopg.connect(url) as conn:
            for zone in BUREAU_ZONES.values():
                all_verified(conn, zone)
                answers(conn, zone, 90, 100)
        yield url


@pytest.fixture(scope="module")
def people(walks_db: str) -> dict[str, str]:
    return make_people(walks_db, "walk", SCOPES, PASSWORD)


@pytest.fixture(scope="module")
def base_url(walks_db: str, people: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = settings_for(walks_db)
    settings.db.home = tmp_path_factory.mktemp("walks-home")  # the photos' root
    with local_server(create_app(settings)) as url:
        yield url


def _rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _shot(p: Person, role: str, step: str, *, whole: bool = True) -> None:
    """The page (``whole``), or what the screen shows now: a long page on a phone, at the step's place;
    the page no wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.page.screenshot(path=str(SHOTS / f"walk-{role}-{step}-{p.device}.png"), full_page=whole)
    # and the page fits the screen's width (a wide table scrolls inside it; the page does not sideways)
    wide, screen = p.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= screen, (role, step, p.device, wide, screen)


def _script_errors(p: Person, *expected: int) -> list[str]:
    """The page's script errors, less the console's line for a page answered with one of ``expected``
    (a refusal the walk meets on purpose)."""
    codes = "|".join(str(c) for c in expected) or "-"
    return [e for e in p.errors if not re.fullmatch(rf"Failed to load resource: .* status of ({codes}) .*", e)]


def _nav(p: Person, path: str) -> None:
    """A click on the navigation bar's link to ``path`` (on the phone: a tap on ☰ 菜单, then on the link)."""
    p.go_by_the_bar(p.page.locator(f"nav.wuye-nav a[href='{path}']"))
    p.page.wait_for_url(re.compile(re.escape(path) + r"(\?.*)?$"))


# -- the survey team -----------------------------------------------------------------------------------------
def _answer(p: Person, zone: str, household: str, satisfied: str, sanitation: int, remark: str) -> None:
    page = p.page
    page.locator("#a-zone").select_option(zone)
    if not page.locator("#a-building").input_value():  # (kept from the previous door)
        p.type_into("#a-building", "3")
    p.type_into("#a-household", household)
    p.press(page.locator(f"label:has(#a-{satisfied})"))
    p.press(page.locator(f"label:has(#s-sanitation-{sanitation})"))
    p.type_into("#a-remark", remark)


@pytest.mark.parametrize("device", DEVICES)
def test_the_survey_team_enters_answers_meets_the_409_imports_a_file_and_reads_its_zone(
    browser,  # noqa: F811
    base_url,
    walks_db,
    people,
    tmp_path,
    device,
):
    zone, me = SURVEY_ZONES[device], people["survey_team"]
    doors = [(f"3-1-{device}-101", "yes", 5, "楼道干净"), (f"3-1-{device}-102", "no", 2, "垃圾清运不及时")]
    imported = [f"3-2-{device}-20{i}" for i in range(1, 4)]
    p = Person(browser, device)
    page = p.page
    try:
        p.sign_in(base_url, me, "/")
        # the portal offers the team its own pages: the survey entry, not the case desk
        assert page.locator("main a[href='/workbench/cases']").count() == 0
        p.press(page.locator("main a[href='/workbench/surveys']"))
        page.wait_for_url(f"{base_url}/workbench/surveys")
        assert page.locator("nav.wuye-nav a[href='/workbench/surveys']").get_attribute("aria-current") == "page"
        zones = page.locator("#a-zone option").evaluate_all("os => os.map(o => o.value)")
        assert sorted(zones) == sorted(SURVEY_ZONES.values())  # the zones of its scope, no other
        _shot(p, "survey", "entry")

        for household, satisfied, score, remark in doors:
            _answer(p, zone, household, satisfied, score, remark)
            with page.expect_navigation():
                p.press(page.locator("#a-save"))
            message = page.locator("#msg").inner_text()
            assert "已保存答卷" in message and household in message, message
            assert page.locator("#a-household").input_value() == ""  # ready for the next door
        _shot(p, "survey", "saved")

        # the first door again: 409, said in Chinese, what was typed kept, nothing written
        household = doors[0][0]
        _answer(p, zone, household, "no", 1, "再次上门")
        with page.expect_navigation() as nav:
            p.press(page.locator("#a-save"))
        assert nav.value is not None and nav.value.status == 409
        message = page.locator("#msg").inner_text()
        assert "该户本轮已有答卷" in message, message
        assert page.locator("#a-household").input_value() == household
        assert page.locator("#a-remark").input_value() == "再次上门"
        _shot(p, "survey", "409")

        # a CSV file of the team's other doors, Chinese headers, through the import tab
        day = today().isoformat()
        lines = ["小区,楼栋,户号,调查日期,调查员,是否满意,公共环境卫生,备注"]
        lines += [f"{zone},3,{h},{day},张三,{'是' if i else '否'},{4 - i},纸质问卷" for i, h in enumerate(imported)]
        sheet = tmp_path / "answers.csv"
        sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
        p.press(page.locator("#tab-import"))
        page.wait_for_url(f"{base_url}/workbench/surveys/import")
        page.locator("#i-file").set_input_files(str(sheet))
        with page.expect_navigation() as nav:
            p.press(page.locator("#i-go"))
        assert nav.value is not None and nav.value.status == 200
        message = page.locator("#msg").inner_text()
        assert "已导入 3 行：新增 3 份，替换 0 份" in message, message
        assert page.locator("#problems").count() == 0
        _shot(p, "survey", "imported")

        # the zone's answers: the five households, as the database has them
        p.press(page.locator("#to-answers"))
        page.wait_for_url(re.compile(r".*/workbench/surveys/answers.*"))
        page.locator("#z-zone").select_option(zone)
        with page.expect_navigation():
            p.press(page.locator("#z-go"))
        shown = page.locator("tr.answer").evaluate_all("rs => rs.map(r => r.dataset.household)")
        assert {h for h, *_ in doors} | set(imported) <= set(shown)
        assert page.locator("#n-answers").inner_text() == str(len(shown))
        assert page.locator("a.open-answer").count() == 0  # corrections are the administrator's
        _shot(p, "survey", "answers")
        assert _script_errors(p, 409) == []
        assert p.hosts == {base_url.removeprefix("http://")}
    finally:
        p.close()

    # the database: one answer per door, entered by the team (the first door's kept, not the second
    # visit's), three more in one import batch; the page listed exactly the zone's counting answers
    found = {
        row[0]: row[1:]
        for row in _rows(
            walks_db,
            "SELECT household, satisfied, score_sanitation, remark, actor, surveyor, batch_id FROM survey_answers "
            "WHERE zone_code = %s AND withdrawn_at IS NULL",
            zone,
        )
    }
    assert set(found) == set(shown)
    for household, satisfied, score, remark in doors:
        assert found[household][:5] == (satisfied == "yes", score, remark, me, me), found[household]
        assert found[household][5] is None
    batches = {found[h][5] for h in imported}
    assert len(batches) == 1 and None not in batches
    assert [found[h][4] for h in imported] == ["张三"] * 3 and {found[h][3] for h in imported} == {me}


# -- the sub-district staff -------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_sub_district_staff_dispatch_a_case_work_a_task_with_photos_record_publicity_and_check_the_phases(
    browser,  # noqa: F811
    base_url,
    walks_db,
    people,
    tmp_path,
    device,
):
    zone, me = STAFF_ZONES[device], people["subdistrict_staff"]
    code = _report(base_url, walks_db, zone=zone, description=f"楼道堆放杂物（{device}）")
    title = f"东侧围墙修补（{device}）"
    before, after = _jpeg(tmp_path / "before.jpg"), _jpeg(tmp_path / "after.jpg")
    day = today().isoformat()
    p = Person(browser, device)
    page = p.page
    try:
        # the portal's count of new cases leads to the desk, the case to its page
        p.sign_in(base_url, me, "/")
        assert int(page.locator("#n-new").inner_text()) >= 1
        _shot(p, "staff", "portal")
        p.press(page.locator("a:has(#n-new)"))
        page.wait_for_url(re.compile(r".*/workbench/cases\?state=reported$"))
        page.wait_for_function(DESK_READY)
        p.press(page.locator(f"tr[data-code='{code}'] a"))
        page.wait_for_url(f"{base_url}/workbench/cases/{code}")
        page.wait_for_function(DESK_READY)
        p.type_into("#register-note", "核实属实，立案")
        p.press(page.locator("#do-register"))
        page.wait_for_selector("#case-state:has-text('已立案')")
        page.wait_for_function(DESK_READY)
        page.select_option("#dispatch-unit", "team-yumin")
        p.type_into("#dispatch-note", "请物业当日清理")
        p.press(page.locator("#do-dispatch"))
        page.wait_for_selector("#case-state:has-text('已派遣')")
        _shot(p, "staff", "case-dispatched")

        # the remediation board: the zone's row, a new task, started, the before photo, finished, the after photo
        _nav(p, "/workbench/remediation")
        p.press(page.locator(f"#zone-{zone} th a"))
        page.wait_for_url(f"{base_url}/workbench/remediation/{zone}")
        page.select_option("#nt-item", "walls")
        p.type_into("#nt-title", title)
        p.press(page.locator("#nt-go"))
        page.wait_for_url(re.compile(r".*done=task_added.*"))
        assert page.locator("#msg").inner_text() == "已新增整治任务"
        (task,) = _rows(walks_db, "SELECT code FROM remediation_tasks WHERE zone_code = %s AND title = %s", zone, title)
        card = page.locator(f"#task-{task[0]}")
        assert card.locator("xpath=ancestor::section[@data-lane='planned']").count() == 1
        assert card.locator("select.move-action").input_value() == "start"
        card.locator("input.move-date").fill(day)
        p.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=start.*"))
        assert card.get_attribute("data-state") == "in_progress"
        assert card.locator("select.photo-stage").input_value() == "before"  # what the task lacks first
        card.locator("input.photo-file").set_input_files(str(before))
        p.press(card.locator("button.photo-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        card.locator("select.move-action").select_option("finish")
        card.locator("input.move-date").fill(day)
        p.type_into(f"#task-{task[0]} input.move-note", "墙面已修补粉刷")
        p.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=finish.*"))
        assert card.get_attribute("data-state") == "done"
        assert card.locator("select.photo-stage").input_value() == "after"
        card.locator("input.photo-file").set_input_files(str(after))
        p.press(card.locator("button.photo-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        for stage in ("before", "after"):
            image = card.locator(f"[data-stage='{stage}'] img")
            assert image.count() == 1
            image.scroll_into_view_if_needed()
            page.wait_for_function("(i) => i.complete && i.naturalWidth === 40", arg=image.element_handle())
        assert page.locator(f"#blockers .missing-photos a[href='#task-{task[0]}']").count() == 0
        _shot(p, "staff", "task-done")

        # publicity: a residents' meeting, its place tapped on the map, its attendance and a photo
        p.press(page.locator(f"a[href='/workbench/publicity/{zone}']").first)
        page.wait_for_url(f"{base_url}/workbench/publicity/{zone}")
        page.wait_for_function(PUBLICITY_READY)
        records_before = int(page.locator("#record-count").inner_text())
        page.select_option("#pub-kind", "residents_meeting")
        page.locator("#pub-date").fill(day)
        lon, lat = _inside(walks_db, zone)
        page.locator("#pub-map").scroll_into_view_if_needed()  # (below the form's first fields on a phone)
        _tap_map(p, lon, lat)
        assert abs(float(page.locator("#pub-lon").input_value()) - lon) < 1e-4
        assert abs(float(page.locator("#pub-lat").input_value()) - lat) < 1e-4
        page.select_option("#pub-unit", "office-xihu")
        p.type_into("#pub-attendance", "36")
        p.type_into("#pub-note", f"整治方案居民会（{device}）")
        page.set_input_files("#pub-photos", str(before))
        p.press(page.locator("#pub-go"))
        page.wait_for_url(re.compile(r".*done=recorded.*"))
        assert page.locator("#msg").inner_text() == "宣传记录已登记"
        assert int(page.locator("#record-count").inner_text()) == records_before + 1
        row = page.locator("#record-list tr.record-row").first
        assert row.get_attribute("data-kind") == "residents_meeting"
        assert row.locator(".record-photos img").count() == 1
        page.wait_for_function(PUBLICITY_READY)
        _shot(p, "staff", "publicity")

        # the phases table: the sub-district's zones only, this one with its publicity counted
        _nav(p, "/workbench/phases")
        listed = page.locator("#phase-table tr.zone-row").evaluate_all("rs => rs.map(r => r.dataset.zone)")
        (xihu,) = _rows(walks_db, "SELECT array_agg(code ORDER BY code) FROM zones WHERE subdistrict_code = 'xihu'")
        assert sorted(listed) == xihu[0]
        zone_row = page.locator(f"#zone-{zone}")
        zone_row.scroll_into_view_if_needed()
        # the zone's sub-district by its name (西湖街道), as the board and the acceptance desk name it
        (subdistrict,) = _rows(walks_db, "SELECT name FROM subdistricts WHERE code = 'xihu'")
        assert zone_row.locator("th small").first.inner_text() == f"{zone} · {subdistrict[0]}"
        (count,) = _rows(walks_db, "SELECT count(*) FROM publicity_records WHERE zone_code = %s", zone)
        assert zone_row.locator(".publicity-n").get_attribute("data-publicity") == str(count[0])
        assert zone_row.locator("td.phase-cell").count() == len(vocabulary("phases").zh)
        _shot(p, "staff", "phases")
        assert _script_errors(p) == []
        assert p.hosts == {base_url.removeprefix("http://")}
    finally:
        p.close()

    # the database: the case registered and dispatched by this person, the task worked with both
    # photos on the day entered, the meeting recorded at its place in the zone with its photo
    assert _rows(walks_db, "SELECT state, unit_code FROM cases WHERE code = %s", code) == [("dispatched", "team-yumin")]
    events = _rows(
        walks_db,
        "SELECT e.action, e.actor, e.note FROM case_events e JOIN cases c ON c.id = e.case_id "
        "WHERE c.code = %s AND e.action IN ('register', 'dispatch') ORDER BY e.id",
        code,
    )
    assert events == [("register", me, "核实属实，立案"), ("dispatch", me, "请物业当日清理")]
    ((state, started, ended, created_by),) = _rows(
        walks_db,
        "SELECT state, actual_start::text, actual_end::text, created_by FROM remediation_tasks WHERE code = %s",
        task[0],
    )
    assert (state, started, ended, created_by) == ("done", day, day, me)
    shots = _rows(
        walks_db,
        "SELECT stage, actor, bytes > 0 FROM remediation_photos p JOIN remediation_tasks t ON t.id = p.task_id "
        "WHERE t.code = %s ORDER BY p.id",
        task[0],
    )
    assert shots == [("before", me, True), ("after", me, True)]
    meeting = _rows(
        walks_db,
        "SELECT r.kind, r.held_on::text, r.attendance, r.unit_code, r.recorded_by, "
        "ST_DWithin(ST_Transform(r.place, 4547), ST_Transform(z.geom, 4547), 1), "
        "(SELECT count(*) FROM publicity_photos f WHERE f.record_id = r.id AND f.district_code = r.district_code) "
        "FROM publicity_records r JOIN zones z ON z.code = r.zone_code WHERE r.zone_code = %s AND r.note = %s",
        zone,
        f"整治方案居民会（{device}）",
    )
    assert meeting == [("residents_meeting", day, 36, "office-xihu", me, True, 1)]


# -- the bureau's administrator --------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_the_bureau_sets_a_deadline_issues_a_verdict_downloads_its_papers_and_reads_the_charts(
    browser,  # noqa: F811
    base_url,
    walks_db,
    people,
    device,
):
    zone, me = BUREAU_ZONES[device], people["admin"]
    due = (today() + timedelta(days=45)).isoformat()
    reason = f"雨季施工受阻，延期验收（{device}）"
    (name,) = _rows(walks_db, "SELECT name FROM zones WHERE code = %s", zone)
    p = Person(browser, device)
    page = p.page
    try:
        p.sign_in(base_url, me, "/")
        # the phases page: the zone's "set deadline" link chooses it in the form; the acceptance phase
        _nav(p, "/workbench/phases")
        assert page.locator("tr.zone-row").count() == _rows(walks_db, "SELECT count(*) FROM zones")[0][0]
        p.press(page.locator(f"#zone-{zone} a.set-link"))
        page.wait_for_url(re.compile(rf".*/workbench/phases\?zone={zone}#deadline-form$"))
        assert page.locator("#dl-zone").input_value() == zone
        page.select_option("#dl-phase", "acceptance")
        page.locator("#dl-due").fill(due)
        p.type_into("#dl-reason", reason)
        _shot(p, "bureau", "deadline-form", whole=device == "desktop")
        p.press(page.locator("#dl-go"))
        page.wait_for_url(re.compile(rf".*done=deadline_saved#zone-{zone}$"))
        assert page.locator("#msg").inner_text() == "期限已调整"
        cell = page.locator(f"#zone-{zone} td.phase-cell[data-phase='acceptance']")
        assert cell.get_attribute("data-due") == due
        assert cell.locator("em.own").count() == 1  # the zone's own deadline, marked
        cell.scroll_into_view_if_needed()
        _shot(p, "bureau", "deadline-set", whole=device == "desktop")

        # the acceptance desk: the zone's card from its row, 签发
        _nav(p, "/workbench/acceptance")
        p.press(page.locator(f"tr.zone-row[data-zone='{zone}'] a.to-zone"))
        page.wait_for_function(f"() => document.getElementById('zone-{zone}').open === true")
        card = page.locator(f"details#zone-{zone}")
        assert card.locator("tr.issued-doc").count() == 0
        with page.expect_navigation(timeout=180_000):
            p.press(card.locator("button.issue-go"))
        ((doc_id, number, verdict, digest, issued_by),) = _rows(
            walks_db,
            "SELECT id, number, verdict, sha256, issued_by FROM acceptance_documents WHERE zone_code = %s",
            zone,
        )
        label = vocabulary("verdicts").zh[verdict]
        assert page.locator("#msg").inner_text() == f"已签发 {number}（{label}）"
        assert card.locator("tr.issued-doc").evaluate_all("rs => rs.map(r => r.dataset.id)") == [str(doc_id)]
        card.locator("a.zone-pdf").scroll_into_view_if_needed()
        _shot(p, "bureau", "issued", whole=device == "desktop")

        # the issued PDF, downloaded: the file as stored (byte for byte); the district summary as a workbook
        with page.expect_download() as got:
            p.press(card.locator("a.zone-pdf"))
        assert got.value.suggested_filename == f"verdict-{doc_id}.pdf"
        pdf = Path(got.value.path()).read_bytes()
        assert pdf[:5] == b"%PDF-" and hashlib.sha256(pdf).hexdigest() == digest
        with page.expect_download() as got:
            p.press(page.locator("#dl-summary-xlsx"))
        assert got.value.suggested_filename.endswith(".xlsx")
        book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))
        cells = {str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value}
        assert name[0] in cells or zone in cells, sorted(cells)[:40]

        # the statistics: every chart drawn; the satisfaction chart's table names the zone; its CSV
        _nav(p, "/workbench/stats")
        page.wait_for_function(STATS_READY, timeout=30_000)
        sections = page.locator("section.stat")
        assert sections.count() >= 8
        assert page.locator("section.stat[data-drawn='true']").count() == sections.count()
        assert page.locator("section.stat .stat-chart canvas").count() >= sections.count()
        chart = page.locator("#stat-satisfaction")
        chart.scroll_into_view_if_needed()
        _shot(p, "bureau", "stats")
        p.press(chart.locator("button.stat-view[data-view='table']"))
        assert chart.get_attribute("data-view") == "table"
        assert chart.locator(".stat-table").is_visible() and not chart.locator(".stat-chart").is_visible()
        table = chart.locator(".stat-table tbody tr").evaluate_all(
            "rs => rs.map(r => [...r.children].map(c => c.textContent))"
        )
        assert name[0] in {row[0] for row in table}, table
        _shot(p, "bureau", "stats-table")
        with page.expect_download() as got:
            p.press(chart.locator("a.stat-csv"))
        text = Path(got.value.path()).read_text(encoding="utf-8-sig")
        head, *body = list(csv.reader(io.StringIO(text)))
        assert head == chart.locator(".stat-table thead th").all_inner_texts()
        assert [row[0] for row in body] == [row[0] for row in table]
        p.press(chart.locator("button.stat-view[data-view='chart']"))
        assert chart.locator(".stat-chart").is_visible() and not chart.locator(".stat-table").is_visible()
        assert _script_errors(p) == []
        assert p.hosts == {base_url.removeprefix("http://")}
    finally:
        p.close()

    # the database: the zone's own deadline with its reason and who set it, audited; the verdict issued
    # by this administrator, once
    assert _rows(
        walks_db, "SELECT due_on::text, reason, set_by FROM zone_phase_deadlines WHERE zone_code = %s", zone
    ) == [(due, reason, me)]
    audited = _rows(
        walks_db,
        "SELECT actor, details->>'after', details->>'reason' FROM audit_log WHERE action = 'phase.deadline' "
        "AND record_code = %s",
        f"{zone}/acceptance",
    )
    assert audited == [(me, due, reason)]
    assert issued_by == me
