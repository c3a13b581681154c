"""Supervision (督办, issue 20 point 4) and facility faults (point 6) in a real Chromium against our
app on a real port, as the people who use them: the bureau supervises a case from its page (a refusal
first, in Chinese, what was typed kept), the mark shows on the lists, the case page, the JSON and the
portal, the unit is notified and finds the case first on its desk; past its deadline the case goes to
the sub-district office once. Maintenance staff find their area's faulty facilities on a list and a
map, report a case on one and record an inspection from its row (desktop and phone). Access rules,
bad input and 50 concurrent clients on a real port. (The database stop/start test of these routes is
in tests/test_workbench.py, with the desk's.) Screenshots under var/screenshots/."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api import models
from api.app import create_app
from api.maps import local_server
from geo.cases.jobs import Escalator
from geo.settings import DatabaseSettings
from geo.store.db import open_pool
from geo.workcal import today
from tests.conftest import DISTRICT, settings_for
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import DESK_READY, PASSWORD, Person, _report, people  # noqa: F401

UNIT = "contractor-xiangjiang"  # the contractor of the `people` fixture


@pytest.fixture(scope="module")
def bench_db(server: Any, template_db: str) -> Iterator[str]:
    """This module's own copy of the demo (``people`` makes its users here)."""
    with server.copy("supervision", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(bench_db: str, people: dict[str, str]) -> Iterator[str]:  # noqa: F811
    with local_server(create_app(settings_for(bench_db))) as url:
        yield url


def _client(base_url: str, username: str) -> httpx.Client:
    """A signed-in page session (cookie), writing from our own pages' origin."""
    http = httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url})
    assert http.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    return http


def _dispatched(base_url: str, bench_db: str, admin: httpx.Client, description: str) -> str:
    code = _report(base_url, bench_db, description=description)
    for move in ({"action": "register"}, {"action": "dispatch", "unit_code": UNIT}):
        r = admin.post(f"/cases/{code}/actions", json=move)
        assert r.status_code == 200, r.text
    return code


def _supervision(bench_db: str, code: str) -> tuple[Any, ...]:
    with psycopg.connect(bench_db) as conn:
        row = conn.execute(
            "SELECT c.supervised_at IS NOT NULL, c.supervision_due, c.supervision_note, c.unit_code, "
            "(SELECT count(*) FROM case_events e WHERE e.case_id = c.id AND e.action = 'supervise'), "
            "(SELECT count(*) FROM case_notices n WHERE n.case_id = c.id AND n.kind = 'supervised') "
            "FROM cases c WHERE c.code = %s",
            [code],
        ).fetchone()
    assert row is not None
    return tuple(row)


def _type_date(p: Person, label_for: str, day: date) -> None:
    """Type a day into a date field as a person does: its label focuses the month, then the digits
    (the browser's en-US order, mm dd yyyy)."""
    p.press(p.page.locator(f"label[for={label_for}]"))
    p.page.keyboard.type(day.strftime("%m%d%Y"))
    assert p.page.input_value(f"#{label_for}") == day.isoformat()


# -- point 4: supervision ----------------------------------------------------------------------------------
def test_the_bureau_supervises_a_case_and_its_unit_sees_it_marked_and_first(browser, base_url, bench_db, people):  # noqa: F811
    admin = _client(base_url, people["admin"])
    code = _dispatched(base_url, bench_db, admin, "督办测试：楼道垃圾久未清运")
    newer = [_dispatched(base_url, bench_db, admin, f"更新的事件 {i}") for i in range(2)]  # newer ids: listed before it
    admin.close()
    deadline = today() + timedelta(days=3)

    p = Person(browser)
    try:
        page = p.page
        p.sign_in(base_url, people["admin"], f"/workbench/cases/{code}")
        page.wait_for_function(DESK_READY)
        assert not page.locator("#case-supervised").count()
        # refused by the server: a deadline in the past; the reason in Chinese, what was typed kept
        _type_date(p, "supervise-deadline", today() - timedelta(days=1))
        p.type_into("#supervise-note", "请三日内清运完毕并回复")
        p.press(page.locator("#do-supervise"))
        page.wait_for_selector("#msg.wuye-error")
        assert "督办期限" in page.inner_text("#msg") and "已过" in page.inner_text("#msg")
        assert page.input_value("#supervise-note") == "请三日内清运完毕并回复"
        assert _supervision(bench_db, code)[:1] == (False,) and _supervision(bench_db, code)[4:] == (0, 0)
        p.shot("supervise-refused")
        p.errors.clear()  # (the refusal's page comes with its 400: the browser logs it)
        _type_date(p, "supervise-deadline", deadline)
        p.press(page.locator("#do-supervise"))
        page.wait_for_selector("#case-supervised")
        assert "督办" in page.inner_text("#msg")
        assert deadline.isoformat() in page.inner_text("#supervision")
        assert "请三日内清运完毕并回复" in page.inner_text("#supervision")
        assert page.locator("#history tbody tr[data-action='supervise']").count() == 1
        p.shot("case-supervised")
        # the bureau's list: the supervised filter, ticked like a person
        page.goto(f"{base_url}/workbench/cases")
        page.wait_for_function(DESK_READY)
        p.press(page.locator("#f-supervised"))
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(r".*[?&]supervised=true.*"))
        page.wait_for_function(DESK_READY)
        shown = page.eval_on_selector_all("tr.case-row", "rs => rs.map(r => [r.dataset.code, r.dataset.supervised])")
        assert [code, "true"] in shown and all(s == "true" for _, s in shown)
        assert page.locator(f"tr[data-code='{code}'] .supervised-mark").is_visible()
        p.shot("desk-supervised")
        page.locator(".wuye-nav a", has_text="首页").click()
        page.wait_for_url(f"{base_url}/")
        assert int(page.inner_text("#n-supervised")) == len(shown)
        assert p.errors == []
    finally:
        p.close()
    assert _supervision(bench_db, code) == (True, deadline, "请三日内清运完毕并回复", UNIT, 1, 1)

    # the unit, on a phone: the notice on the portal, the case first on its desk with its mark
    p = Person(browser, "phone")
    try:
        page = p.page
        p.sign_in(base_url, people["contractor"], "/")
        notice = page.locator(f"li.notice[data-kind='supervised'][data-case='{code}']")
        assert "督办" in notice.inner_text() and deadline.isoformat() in notice.inner_text()
        p.go_by_the_bar(page.locator(".wuye-nav a", has_text="事件办理"))
        page.wait_for_function(DESK_READY)
        first = page.locator("tr.case-row").first
        assert first.get_attribute("data-code") == code and "pinned" in (first.get_attribute("class") or "")
        assert first.locator(".supervised-mark").is_visible()
        codes = page.eval_on_selector_all("tr.case-row", "rs => rs.map(r => r.dataset.code)")
        assert set(newer) <= set(codes) and len(codes) == len(set(codes))  # listed once, the newer after it
        p.shot("unit-desk-supervised-first")
        p.press(first.locator("a").first)
        page.wait_for_function(DESK_READY)
        assert page.locator("#case-supervised").is_visible() and not page.locator("#supervise-form").count()
        assert p.errors == []
    finally:
        p.close()

    # the JSON case view carries the mark (and, in full, the deadline and note)
    with closing(_client(base_url, people["contractor"])) as unit:
        feature = unit.get(f"/cases/{code}").json()
        models.CaseFeature.model_validate(feature)
        props = feature["properties"]
        assert (props["supervised"], props["supervision_due"]) == (True, deadline.isoformat())
        listed = unit.get("/cases", params={"supervised": "true"}).json()
        models.CaseCollection.model_validate(listed)
        assert code in {f["id"] for f in listed["features"]}
        assert all(f["properties"]["supervised"] for f in listed["features"])
    public = httpx.get(f"{base_url}/cases/{code}", timeout=60).json()["properties"]
    assert public["supervised"] is True and "supervision_note" not in public
    # and the public follow page (事件进度) shows the mark, not the note
    p = Person(browser, "phone")
    try:
        p.page.goto(f"{base_url}/report/{code}")
        p.page.wait_for_selector("#c-supervised")
        assert p.page.inner_text("#c-supervised") == "督办"
        assert "请三日内清运完毕并回复" not in p.page.content()
        p.shot("follow-supervised")
        assert p.errors == []
    finally:
        p.close()


def test_supervision_refuses_bad_input_and_other_roles_writing_nothing(base_url, bench_db, people):  # noqa: F811
    admin = _client(base_url, people["admin"])
    code = _dispatched(base_url, bench_db, admin, "督办输入检查")
    later = (today() + timedelta(days=5)).isoformat()
    for body, field in (
        ({"deadline": (today() - timedelta(days=1)).isoformat(), "note": "快办"}, "deadline"),
        ({"note": "快办"}, "deadline"),
        ({"deadline": later}, "note"),
        ({"deadline": later, "note": "   "}, "note"),
        ({"deadline": "明天", "note": "快办"}, "deadline"),
    ):
        r = admin.post(f"/cases/{code}/supervise", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
        assert r.json()["reason_zh"]
    # the page form: the same refusals, as a page in Chinese naming the field's problem
    r = admin.post(f"/workbench/cases/{code}/supervise", data={"deadline": later, "note": ""})
    assert r.status_code == 400 and "请填写督办意见" in r.text
    assert _supervision(bench_db, code)[0] is False and _supervision(bench_db, code)[4:] == (0, 0)
    # no such case; a closed case
    assert admin.post("/cases/C-none/supervise", json={"deadline": later, "note": "x"}).status_code == 404
    closed = _report(base_url, bench_db, description="已驳回的事件")
    assert admin.post(f"/cases/{closed}/actions", json={"action": "reject", "note": "不属实"}).status_code == 200
    r = admin.post(f"/cases/{closed}/supervise", json={"deadline": later, "note": "x"})
    assert r.status_code == 409 and "不能督办" in r.json()["reason_zh"]
    admin.close()
    # every other role: 403 (401 signed out), from the API and from the page, nothing written
    for role in ("subdistrict_staff", "property_team", "contractor", "resident"):
        with closing(_client(base_url, people[role])) as other:
            assert other.post(f"/cases/{code}/supervise", json={"deadline": later, "note": "x"}).status_code == 403
            page = other.post(f"/workbench/cases/{code}/supervise", data={"deadline": later, "note": "x"})
            assert page.status_code == 403 and "<html" in page.text
    assert httpx.post(f"{base_url}/cases/{code}/supervise", json={"deadline": later, "note": "x"}).status_code == 401
    assert _supervision(bench_db, code)[0] is False and _supervision(bench_db, code)[4:] == (0, 0)


def _withdrawals(bench_db: str, code: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(bench_db) as conn:
        return conn.execute(
            "SELECT e.note, e.details->>'deadline', e.details->>'withdrawn_note' FROM case_events e "
            "JOIN cases c ON c.id = e.case_id WHERE c.code = %s AND e.action = 'unsupervise' ORDER BY e.id",
            [code],
        ).fetchall()


def test_the_bureau_withdraws_a_supervision_from_the_case_page_and_the_history_keeps_it(
    browser,  # noqa: F811
    base_url,
    bench_db,
    people,  # noqa: F811
):
    admin = _client(base_url, people["admin"])
    code = _dispatched(base_url, bench_db, admin, "撤销督办测试：路灯不亮")
    deadline = today() + timedelta(days=4)
    r = admin.post(f"/cases/{code}/supervise", json={"deadline": deadline.isoformat(), "note": "三日内修复"})
    assert r.status_code == 200, r.text
    admin.close()
    p = Person(browser)
    try:
        page = p.page
        p.sign_in(base_url, people["admin"], f"/workbench/cases/{code}")
        page.wait_for_function(DESK_READY)
        assert page.locator("#case-supervised").is_visible()
        p.type_into("#unsupervise-note", "误督办，已由街道另行处理")
        p.press(page.locator("#do-unsupervise"))
        page.wait_for_url(re.compile(r".*done=unsupervise.*"))
        page.wait_for_function(DESK_READY)
        assert "撤销督办" in page.inner_text("#msg")
        assert not page.locator("#case-supervised").count() and not page.locator("#unsupervise-form").count()
        row = page.locator("#history tbody tr[data-action='unsupervise']")
        assert row.count() == 1 and "误督办" in row.inner_text()
        assert page.locator("#supervise-form").is_visible()  # it can be supervised again
        p.shot("case-supervision-withdrawn")
        # names, not codes: the case's zone here, and on the desk, chosen from the zone list by its name
        with psycopg.connect(bench_db) as conn:
            zone, name = conn.execute(
                "SELECT z.code, z.name FROM cases c JOIN zones z ON z.code = c.zone_code WHERE c.code = %s", [code]
            ).fetchone()  # type: ignore[misc]
        assert name in page.inner_text("dl") and zone not in page.inner_text("dl")
        page.goto(f"{base_url}/workbench/cases")
        page.wait_for_function(DESK_READY)
        page.select_option("#f-zone", label=name)
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(rf".*[?&]zone={zone}.*"))
        page.wait_for_function(DESK_READY)
        zones = page.eval_on_selector_all("tr.case-row td:nth-child(5)", "cs => cs.map(c => c.innerText)")
        assert zones and set(zones) == {name}, zones
        assert p.errors == []
    finally:
        p.close()
    assert _supervision(bench_db, code)[:3] == (False, None, None)
    assert _withdrawals(bench_db, code) == [("误督办，已由街道另行处理", deadline.isoformat(), "三日内修复")]


def test_withdrawing_a_supervision_refuses_bad_input_and_other_roles_writing_nothing(base_url, bench_db, people):  # noqa: F811
    admin = _client(base_url, people["admin"])
    code = _dispatched(base_url, bench_db, admin, "撤销督办输入检查")
    # not supervised: 409, in Chinese
    r = admin.post(f"/cases/{code}/unsupervise", json={"note": "撤销"})
    assert r.status_code == 409 and r.json()["field"] == "code" and "未被督办" in r.json()["reason_zh"]
    later = (today() + timedelta(days=5)).isoformat()
    assert admin.post(f"/cases/{code}/supervise", json={"deadline": later, "note": "快办"}).status_code == 200
    for body in ({}, {"note": "  "}, {"note": None}):
        r = admin.post(f"/cases/{code}/unsupervise", json=body)
        assert r.status_code == 400 and r.json()["field"] == "note" and r.json()["reason_zh"], (body, r.text)
    r = admin.post(f"/cases/{code}/unsupervise", json={"note": "x" * 2001})
    assert r.status_code in (400, 413) and r.json()["field"] == "note", r.text
    page = admin.post(f"/workbench/cases/{code}/unsupervise", data={"note": ""})
    assert page.status_code == 400 and "请填写撤销督办的理由" in page.text
    assert admin.post("/cases/C-none/unsupervise", json={"note": "x"}).status_code == 404
    admin.close()
    for role in ("subdistrict_staff", "property_team", "contractor", "resident"):
        with closing(_client(base_url, people[role])) as other:
            assert other.post(f"/cases/{code}/unsupervise", json={"note": "x"}).status_code == 403
            assert other.post(f"/workbench/cases/{code}/unsupervise", data={"note": "x"}).status_code == 403
    assert httpx.post(f"{base_url}/cases/{code}/unsupervise", json={"note": "x"}).status_code == 401
    assert _supervision(bench_db, code)[:3] == (True, date.fromisoformat(later), "快办")
    assert _withdrawals(bench_db, code) == []


def test_a_supervised_case_past_its_deadline_goes_to_the_office_once(base_url, bench_db, people):  # noqa: F811
    admin = _client(base_url, people["admin"])
    code = _dispatched(base_url, bench_db, admin, "督办超期")
    on_time = _dispatched(base_url, bench_db, admin, "督办未到期")
    for c in (code, on_time):
        r = admin.post(f"/cases/{c}/supervise", json={"deadline": today().isoformat(), "note": "今日办结"})
        assert r.status_code == 200, r.text
    admin.close()
    with psycopg.connect(bench_db, autocommit=True) as conn:  # time passes for one of them
        conn.execute("UPDATE cases SET supervision_due = supervision_due - 2 WHERE code = %s", [code])
    pool = open_pool(bench_db, DatabaseSettings(pool_min_size=1, pool_max_size=2))
    try:
        job = Escalator(pool, district_code=DISTRICT, grace=timedelta(days=365), interval=0)
        assert job.run_once() >= 1
        job.run_once()  # a second pass: nothing more for it
    finally:
        pool.close()
    with psycopg.connect(bench_db) as conn:
        rows = conn.execute(
            "SELECT c.code, c.unit_code, c.supervision_escalated_at IS NOT NULL, "
            "(SELECT count(*) FROM case_events e WHERE e.case_id = c.id AND e.action = 'supervision_overdue'), "
            "(SELECT count(*) FROM case_events e WHERE e.case_id = c.id AND e.action = 'escalate'), "
            "(SELECT array_agg(n.unit_code ORDER BY n.unit_code) FROM case_notices n "
            " WHERE n.case_id = c.id AND n.kind = 'overdue') "
            "FROM cases c WHERE c.code = ANY(%s) ORDER BY c.code = %s DESC",
            [[code, on_time], code],
        ).fetchall()
    assert rows[0] == (code, "office-xihu", True, 1, 0, ["contractor-xiangjiang", "office-xihu"])
    assert rows[1] == (on_time, UNIT, False, 0, 0, None)
    with closing(_client(base_url, people["subdistrict_staff"])) as staff:
        history = staff.get(f"/workbench/cases/{code}").text
        assert 'data-action="supervision_overdue"' in history and "督办超期升级" in history


# -- point 6: facility faults ----------------------------------------------------------------------------------
def _faults_in(bench_db: str, zones: tuple[str, ...]) -> set[tuple[str, str]]:
    """(layer, code) of every faulty or under-repair facility touching ``zones``, counted here directly."""
    from geo.programme.inspections import facility_layers

    found: set[tuple[str, str]] = set()
    with psycopg.connect(bench_db) as conn:
        for layer in facility_layers():
            found |= {
                (layer, r[0])
                for r in conn.execute(
                    f"SELECT DISTINCT f.code FROM {layer} f JOIN zones z ON ST_Intersects(z.geom, f.geom) "  # noqa: S608
                    "WHERE z.code = ANY(%s) AND f.condition IN ('faulty', 'repairing')",
                    [list(zones)],
                )
            }
    return found


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_property_team_finds_its_faulty_facilities_reports_a_case_and_records_an_inspection(
    browser,  # noqa: F811
    base_url,
    bench_db,
    people,  # noqa: F811
    device,
):
    expected = _faults_in(bench_db, ("yumin-south", "yumin-north"))
    assert len(expected) > 20
    p = Person(browser, device)
    try:
        page = p.page
        p.sign_in(base_url, people["property_team"], "/")
        p.go_by_the_bar(page.locator(".wuye-nav a", has_text="设施故障"))
        page.wait_for_url(f"{base_url}/workbench/facilities")
        page.wait_for_function(DESK_READY)
        listed = set(
            map(
                tuple, page.eval_on_selector_all("tr.fault-row", "rs => rs.map(r => [r.dataset.layer, r.dataset.code])")
            )
        )
        assert listed == expected and int(page.inner_text("#total")) == len(expected)
        # one marker per row on the map beside the list
        assert page.locator("#desk-map path.leaflet-interactive").count() == len(expected)
        p.shot("faults")
        # by layer: each layer's count, and a tap on the street lights' shows only them
        per_layer = page.eval_on_selector_all(
            ".counts a[data-layer]", "as => as.map(a => +a.querySelector('b').textContent)"
        )
        assert sum(per_layer) == len(expected)
        p.press(page.locator(".counts a[data-layer='street_lights']"))
        page.wait_for_url(re.compile(r".*layer=street_lights.*"))
        page.wait_for_function(DESK_READY)
        lights = page.eval_on_selector_all("tr.fault-row", "rs => rs.map(r => r.dataset.code)")
        assert lights and set(lights) == {c for layer, c in expected if layer == "street_lights"}
        assert page.input_value("#f-layer") == "street_lights"
        # a light no open case is linked to yet (each device's walk takes its own)
        light = page.eval_on_selector_all(
            "tr.fault-row", "rs => rs.filter(r => !r.querySelector('.case-link')).map(r => r.dataset.code)[0]"
        )
        row = page.locator(f"tr.fault-row[data-code='{light}']")
        assert row.locator(".open-cases").inner_text().strip() == "—"
        # report a case from the row
        p.press(row.locator(".report-link"))
        page.wait_for_url(re.compile(rf".*/workbench/facilities/street_lights/{light}(\?.*)?#report$"))
        page.wait_for_function(DESK_READY)
        assert page.input_value("#report-category") == "light_out"  # the one category of street lights
        p.type_into("#report-description", f"路灯不亮（{device}）")
        p.press(page.locator("#do-report"))
        page.wait_for_selector("#new-case")
        new_case = page.inner_text("#new-case")
        assert page.locator(f"#open-cases a:has-text('{new_case}')").is_visible()
        p.shot("facility-reported")
        # back to the list: the case is linked on the row; record an inspection from it
        p.press(page.locator("main a", has_text="设施故障").first)
        page.select_option("#f-layer", "street_lights")
        p.press(page.locator("#f-apply"))
        page.wait_for_function(DESK_READY)
        row = page.locator(f"tr.fault-row[data-code='{light}']")
        assert new_case in row.locator(".open-cases").inner_text()
        p.press(row.locator(".inspect-link"))
        page.wait_for_function(DESK_READY)
        # refused first: a day in the future; the reason in Chinese, the note kept
        page.select_option("#inspect-condition", "repairing")
        _type_date(p, "inspect-date", today() + timedelta(days=2))
        p.type_into("#inspect-note", "已报修，等待配件")
        p.press(page.locator("#do-inspect"))
        page.wait_for_selector("#msg.wuye-error")
        assert page.input_value("#inspect-note") == "已报修，等待配件"
        assert page.input_value("#inspect-condition") == "repairing"
        p.errors.clear()  # (the refusal's 400 is logged by the browser)
        _type_date(p, "inspect-date", today())
        p.press(page.locator("#do-inspect"))
        page.wait_for_selector("#msg.ok")
        assert page.inner_text("#facility-condition") == "维修中"
        assert page.locator("#inspections tbody tr").first.get_attribute("data-condition") == "repairing"
        p.shot("facility-inspected")
        p.press(page.locator("main a", has_text="设施故障").first)
        page.wait_for_function(DESK_READY)
        row = page.locator(f"tr.fault-row[data-code='{light}']")
        assert row.get_attribute("data-condition") == "repairing"
        assert today().isoformat() in row.locator(".last").inner_text()
        assert p.errors == []
    finally:
        p.close()
    with psycopg.connect(bench_db) as conn:
        case = conn.execute("SELECT facility_layer, facility_code FROM cases WHERE code = %s", [new_case]).fetchone()
        last = conn.execute(
            "SELECT condition, note, inspector FROM inspections WHERE facility_code = %s ORDER BY id DESC LIMIT 1",
            [light],
        ).fetchone()
    assert case == ("street_lights", light)
    assert last == ("repairing", "已报修，等待配件", people["property_team"])


def test_faults_follow_each_roles_area_and_refuse_others(base_url, bench_db, people):  # noqa: F811
    outside = sorted(_faults_in(bench_db, ("daopo",)))[0]
    with closing(_client(base_url, people["subdistrict_staff"])) as staff:
        text = staff.get("/workbench/facilities").text
        shown = set(re.findall(r'<tr class="fault-row" data-layer="([^"]+)" data-code="([^"]+)"', text))
        assert shown == _faults_in(bench_db, ("yumin-south", "yumin-north"))  # 西湖: the yumin zones
        assert staff.get(f"/workbench/facilities/{outside[0]}/{outside[1]}").status_code == 404
        r = staff.post(f"/workbench/facilities/{outside[0]}/{outside[1]}/inspections", data={"condition": "normal"})
        assert r.status_code == 404
        bad = staff.get("/workbench/facilities", params={"layer": "zones"})
        assert bad.status_code == 400 and "<html" in bad.text
        assert staff.get("/workbench/facilities", params={"condition": "normal"}).status_code == 400
        inside = sorted(shown)[0]
        before = _inspections(bench_db, inside[1])
        r = staff.post(f"/workbench/facilities/{inside[0]}/{inside[1]}/inspections", data={"condition": "broken"})
        assert r.status_code == 400 and 'id="msg" role="alert" class="wuye-error"' in r.text
        r = staff.post(f"/workbench/facilities/{inside[0]}/{inside[1]}/cases", data={"category": ""})
        assert r.status_code == 400 and "请选择事件类别" in r.text
        assert _inspections(bench_db, inside[1]) == before
    with closing(_client(base_url, people["contractor"])) as contractor:
        assert contractor.get("/workbench/facilities").status_code == 200
        english = contractor.get("/workbench/facilities", params={"lang": "en"}).text
        assert '<html lang="en"' in english and "Facility faults" in english and "Record an inspection" in english
    with closing(_client(base_url, people["admin"])) as admin:
        text = admin.get("/workbench/facilities").text
        assert 'id="shown-of"' in text  # the whole district: more than one page, the page says so
    with closing(_client(base_url, people["resident"])) as resident:
        assert resident.get("/workbench/facilities").status_code == 403
    assert httpx.get(f"{base_url}/workbench/facilities", timeout=60).status_code == 401


def test_the_whole_districts_faults_page_on_page_by_page_each_once(browser, base_url, bench_db, people):  # noqa: F811
    from geo.programme.inspections import facility_layers
    from layers.catalogue import load_catalogue

    with psycopg.connect(bench_db) as conn:
        expected = {
            (layer, r[0])
            for layer in facility_layers()
            for r in conn.execute(
                f"SELECT code FROM {layer} WHERE condition IN ('faulty', 'repairing')"  # noqa: S608
            )
        }
    assert len(expected) > 300  # two pages of 300 at least
    p = Person(browser)
    try:
        page = p.page
        p.sign_in(base_url, people["admin"], "/workbench/facilities")
        page.wait_for_function(DESK_READY)
        seen: list[tuple[str, str]] = []
        pages = 0
        while True:
            pages += 1
            assert int(page.inner_text("#total")) == len(expected)
            rows = page.eval_on_selector_all("tr.fault-row", "rs => rs.map(r => [r.dataset.layer, r.dataset.code])")
            assert 0 < len(rows) <= 300
            seen += [tuple(r) for r in rows]
            zones = set(page.eval_on_selector_all("tr.fault-row td:nth-child(4)", "cs => cs.map(c => c.innerText)"))
            assert not zones & {"yumin-south", "yumin-north", "jinling"}, zones  # names, not codes
            if not page.locator("#page-next").count():
                break
            p.press(page.locator("#page-next"))
            page.wait_for_url(re.compile(r".*[?&]after=.*"))
            page.wait_for_function(DESK_READY)
            assert page.locator("#page-first").is_visible()
        assert len(seen) == len(set(seen)) and set(seen) == expected and pages == -(-len(expected) // 300)
        p.shot("faults-last-page")
        p.press(page.locator("#page-first"))
        page.wait_for_function(DESK_READY)
        assert (
            page.eval_on_selector_all("tr.fault-row", "rs => rs.length") == 300
            and not page.locator("#page-first").count()
        )
        assert p.errors == []
    finally:
        p.close()
    with closing(_client(base_url, people["admin"])) as admin:
        for bad in ("zones/x", "street_lights", "nothing/SL-1", "/"):
            r = admin.get("/workbench/facilities", params={"after": bad})
            assert r.status_code == 400 and "翻页参数" in r.text, (bad, r.status_code)
        last = max(facility_layers(), key=lambda name: load_catalogue()[name].order)
        past = admin.get("/workbench/facilities", params={"after": f"{last}/zzzz"})  # past the end: counts kept
        assert past.status_code == 200 and 'id="no-faults"' in past.text
        assert f'<b id="total">{len(expected)}</b>' in past.text


def _inspections(bench_db: str, code: str) -> int:
    with psycopg.connect(bench_db) as conn:
        row = conn.execute("SELECT count(*) FROM inspections WHERE facility_code = %s", [code]).fetchone()
    return int(row[0]) if row else 0


def test_fifty_concurrent_clients_read_the_faults_and_the_supervised_list(base_url, bench_db, people):  # noqa: F811
    light = sorted(c for layer, c in _faults_in(bench_db, ("yumin-south",)) if layer == "street_lights")[0]
    with closing(_client(base_url, people["subdistrict_staff"])) as http:
        cookie = http.cookies["wuye_session"]
    paths = [
        "/workbench/facilities",
        "/workbench/facilities?layer=manholes",
        f"/workbench/facilities/street_lights/{light}",
        "/workbench/cases?supervised=true",
    ] * 13

    async def crowd() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=120) as client:
            answers = await asyncio.gather(*(client.get(p) for p in paths))
            return [a.status_code for a in answers]

    with ThreadPoolExecutor(1) as pool:  # (Playwright's sync API keeps an event loop in this thread)
        assert pool.submit(asyncio.run, crowd()).result() == [200] * len(paths)
