"""The programme's workbench pages (issue 21 points 1-3) in a real Chromium against our app on a real
port: the remediation board, the phase table and publicity, as a sub-district staff member and an
administrator do their part with real clicks, taps, typing and uploads on a desktop (1280×800) and a
phone (390×844, touch). Bad input (a future or malformed date, a non-administrator's deadline, a place
more than 50 m from the zone, no photo chosen) shows the Chinese reason with what was typed kept and
writes nothing. Then 52 concurrent clients on the pages, and the pages through a database stop and
start. Screenshots under var/screenshots/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from geo.workcal import today
from tests.conftest import DEFAULT_SCOPE, DISTRICT, make_people, settings_for
from tests.live import serving, wuye
from tests.test_db_restart import own_home, target  # noqa: F401  (a database this module may stop and start)
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person, _jpeg

ZONE = "yumin-north"  # in 西湖 (the staff member's sub-district); its publicity is removed below
READY = "() => window.wuyeProgrammeReady === true"


@pytest.fixture(scope="module")
def board_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("board", template_db) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            # a zone with no publicity yet: its tasks cannot start (先宣传后实施)
            conn.execute(
                "DELETE FROM publicity_photos WHERE record_id IN "
                "(SELECT id FROM publicity_records WHERE zone_code = %s)",
                [ZONE],
            )
            conn.execute("DELETE FROM publicity_records WHERE zone_code = %s", [ZONE])
            # a redo item of the zone past its deadline (as an issued 补课 verdict opens one)
            conn.execute(
                "INSERT INTO redo_items (district_code, zone_code, criterion, title_zh, due_on, created_by) "
                "VALUES (%s, %s, 'cases', '无超期未结事件', DATE '2024-01-01', 'tests')",
                [DISTRICT, ZONE],
            )
        yield url


@pytest.fixture(scope="module")
def people(board_db: str) -> dict[str, str]:
    return make_people(
        board_db,
        "bd",
        {r: DEFAULT_SCOPE.get(r, {}) for r in ("admin", "subdistrict_staff", "property_team", "contractor")},
        PASSWORD,
    )


@pytest.fixture(scope="module")
def base_url(board_db: str, people: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = settings_for(board_db)
    settings.db.home = tmp_path_factory.mktemp("board-home")  # the photos' root
    with local_server(create_app(settings)) as url:
        yield url


def _one(url: str, sql: str, *params: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def _inside(url: str, zone: str) -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _east_of(url: str, zone: str, metres: float) -> tuple[float, float]:
    """A point ``metres`` due east of the zone's easternmost vertex: that far from the zone."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ST_X(q), ST_Y(q) FROM (SELECT ST_Transform(ST_Translate((SELECT d.geom FROM "
            "ST_DumpPoints(ST_Transform(z.geom, 4547)) d ORDER BY ST_X(d.geom) DESC LIMIT 1), %s, 0), 4490) q "
            "FROM zones z WHERE z.code = %s) p",
            [metres, zone],
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _map_pixel(person: Person, lon: float, lat: float) -> tuple[float, float]:
    """Where (page pixels) the publicity map draws lon/lat (read from Leaflet, as a person sees it)."""
    page = person.page
    x, y = page.evaluate(
        "([lat, lon]) => { const p = window.wuyePublicityMap.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    box = page.locator("#pub-map").bounding_box()
    assert box is not None
    assert 0 < x < box["width"] and 0 < y < box["height"], (x, y, box)
    return box["x"] + x, box["y"] + y


def _tap_map(person: Person, lon: float, lat: float) -> None:
    x, y = _map_pixel(person, lon, lat)
    if person.device == "phone":
        person.page.touchscreen.tap(x, y)
    else:
        person.page.mouse.click(x, y)


def _task(url: str, zone: str, title: str) -> tuple[str, str]:
    row = None
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT code, state FROM remediation_tasks WHERE zone_code = %s AND title = %s", [zone, title]
        ).fetchone()
    assert row is not None, title
    return str(row[0]), str(row[1])


def _only_refusals(errors: list[str]) -> bool:
    """No script error: only the statuses of the refused forms' pages, which the browser logs."""
    return all(re.fullmatch(r"Failed to load resource: .* status of (400|403|409) .*", e) for e in errors)


def _card(person: Person, code: str) -> Any:
    return person.page.locator(f"#task-{code}")


def test_staff_plans_is_held_by_publicity_first_records_publicity_on_the_map_then_works_the_task(
    browser,  # noqa: F811
    base_url,
    board_db,
    people,
    tmp_path,
):
    """A sub-district staff member on a desktop: a new task in a zone with no publicity is held by the
    publicise-first rule (the board names it as the blocker, and starting is refused in Chinese); a
    place 50 m too far is refused and the form keeps what was typed; a record placed by a click on the
    map with its photo lifts the blocker; the task then starts, gets its before photo (no file chosen is
    refused), a future finish date is refused with the date kept, and it finishes on the date entered."""
    photo = _jpeg(tmp_path / "before.jpg")
    staff = Person(browser)
    try:
        staff.sign_in(base_url, people["subdistrict_staff"], "/workbench/remediation")
        page = staff.page
        # the board lists the staff member's zones only (西湖), the zone with no publicity blocked first
        listed = page.locator("#zone-list tr.zone-row").evaluate_all("rows => rows.map(r => r.dataset.zone)")
        in_scope = _one(board_db, "SELECT array_agg(code ORDER BY code) FROM zones WHERE subdistrict_code = 'xihu'")
        assert sorted(listed) == in_scope
        for link in ("/workbench/remediation", "/workbench/phases", "/workbench/publicity"):
            assert page.locator(f"nav.wuye-nav a[href='{link}']").count() == 1
        assert page.locator(f"#zone-{ZONE} [data-blocker='publicity']").count() == 1
        assert page.locator("tr.total-row").count() == 0  # the district's totals are the bureau's
        staff.shot("board-index")
        staff.press(page.locator(f"#zone-{ZONE} th a"))
        page.wait_for_url(f"{base_url}/workbench/remediation/{ZONE}")

        # a new task from the page: its planned end before its start is refused, what was typed kept
        page.select_option("#nt-item", "walls")
        staff.type_into("#nt-title", "北门围墙修补")
        page.fill("#nt-start", "2026-04-30")
        page.fill("#nt-end", "2026-03-01")
        staff.press(page.locator("#nt-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "早于计划开始日期" in page.locator("#msg").inner_text()
        assert page.locator("#nt-title").input_value() == "北门围墙修补"
        assert page.locator("#nt-item").input_value() == "walls"
        assert page.locator("#nt-start").input_value() == "2026-04-30"
        assert _one(board_db, "SELECT count(*) FROM remediation_tasks WHERE zone_code = %s", ZONE) == 0
        page.fill("#nt-start", "2026-03-01")
        page.fill("#nt-end", "2026-04-30")
        staff.press(page.locator("#nt-go"))
        page.wait_for_url(re.compile(r".*done=task_added.*"))
        code, state = _task(board_db, ZONE, "北门围墙修补")
        assert state == "planned"
        card = _card(staff, code)
        assert card.locator("xpath=ancestor::section[@data-lane='planned']").count() == 1
        assert page.locator("#blockers [data-blocker='publicity']").count() == 1
        assert "先宣传后实施" in page.locator("#blockers").inner_text()
        assert page.locator("#redo-plan tr.redo-item.overdue").inner_text().startswith("无超期未结事件")

        # starting is refused by the publicity-first rule: its Chinese reason, the date typed kept
        day = (today() - timedelta(days=1)).isoformat()
        card.locator("select.move-action").select_option("start")
        card.locator("input.move-date").fill(day)
        staff.press(card.locator("button.move-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "先宣传后实施" in page.locator("#msg").inner_text()
        assert "先宣传后实施" in _card(staff, code).locator(".form-msg").inner_text()  # beside the form too
        assert _card(staff, code).locator("input.move-date").input_value() == day
        assert _task(board_db, ZONE, "北门围墙修补")[1] == "planned"
        staff.shot("board-publicity-first")

        # publicity: a place 120 m east of the zone is refused (50 m), the form keeps the typed values
        staff.press(page.locator("a[href^='/workbench/publicity/" + ZONE + "']").first)
        page.wait_for_url(f"{base_url}/workbench/publicity/{ZONE}")
        page.wait_for_function(READY)
        assert page.locator("#no-records").count() == 1
        assert page.locator("#pub-map path[stroke-dasharray]").count() == 1  # the 50 m band, drawn
        page.select_option("#pub-kind", "notice")
        page.fill("#pub-date", day)
        page.select_option("#pub-unit", "office-xihu")
        staff.type_into("#pub-attendance", "12")
        staff.type_into("#pub-note", "北门张贴整治公告")
        staff.press(page.locator(".leaflet-control-zoom-out"))
        page.wait_for_timeout(400)  # the zoom animation
        far = _east_of(board_db, ZONE, 120)
        _tap_map(staff, *far)
        assert abs(float(page.locator("#pub-lon").input_value()) - far[0]) < 1e-4
        page.set_input_files("#pub-photos", str(photo))
        staff.press(page.locator("#pub-go"))
        page.wait_for_selector("#msg.wuye-error")
        message = page.locator("#msg").inner_text()
        assert "须在小区 50 米范围内" in message, message
        assert page.locator("#pub-note").input_value() == "北门张贴整治公告"
        assert page.locator("#pub-attendance").input_value() == "12"
        assert page.locator("#pub-kind").input_value() == "notice"
        assert page.locator("#pub-date").input_value() == day
        assert _one(board_db, "SELECT count(*) FROM publicity_records WHERE zone_code = %s", ZONE) == 0
        page.wait_for_function(READY)
        assert page.locator("#pub-map .leaflet-marker-icon").count() == 1  # the place typed, kept on the map
        staff.shot("publicity-too-far")

        # the place picked inside the zone, with the photo: recorded, listed with its photo
        lon, lat = _inside(board_db, ZONE)
        _tap_map(staff, lon, lat)
        page.set_input_files("#pub-photos", str(photo))
        staff.press(page.locator("#pub-go"))
        page.wait_for_url(re.compile(r".*done=recorded.*"))
        row = page.locator("#record-list tr.record-row").first
        assert row.get_attribute("data-kind") == "notice"
        assert row.locator(".record-photos img").count() == 1
        assert _one(board_db, "SELECT attendance FROM publicity_records WHERE zone_code = %s", ZONE) == 12
        src = row.locator(".record-photos img").get_attribute("src")
        assert page.request.get(base_url + src).status == 200
        page.wait_for_function(READY)
        staff.shot("publicity-recorded")

        # back on the board: no publicity blocker; the task starts on the date entered
        staff.press(page.locator(f"a[href^='/workbench/remediation/{ZONE}']").first)
        page.wait_for_url(f"{base_url}/workbench/remediation/{ZONE}")
        assert page.locator("#blockers [data-blocker='publicity']").count() == 0
        card = _card(staff, code)
        card.locator("select.move-action").select_option("start")
        card.locator("input.move-date").fill(day)
        staff.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=start.*"))
        card = _card(staff, code)
        assert card.get_attribute("data-state") == "in_progress"
        assert _one(board_db, "SELECT actual_start::text FROM remediation_tasks WHERE code = %s", code) == day
        # started without a before photo: the board says so
        assert page.locator(f"#blockers .missing-photos a[href='#task-{code}']").count() == 1

        # no file chosen: refused in Chinese, the stage chosen kept
        card.locator("select.photo-stage").select_option("before")
        staff.press(card.locator("button.photo-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "请选择一张照片" in page.locator("#msg").inner_text()
        assert _card(staff, code).locator("select.photo-stage").input_value() == "before"
        # the before photo, uploaded from the page
        card = _card(staff, code)
        card.locator("input.photo-file").set_input_files(str(photo))
        staff.press(card.locator("button.photo-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        card = _card(staff, code)
        assert card.locator("[data-stage='before'] img").count() == 1
        assert page.locator(f"#blockers .missing-photos a[href='#task-{code}']").count() == 0

        # a finish date in the future is refused, the date typed kept; then finished on the day entered
        future = (today() + timedelta(days=3)).isoformat()
        card.locator("select.move-action").select_option("finish")
        card.locator("input.move-date").fill(future)
        staff.press(card.locator("button.move-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "晚于今天" in page.locator("#msg").inner_text()
        card = _card(staff, code)
        assert card.locator("input.move-date").input_value() == future
        assert card.locator("select.move-action").input_value() == "finish"
        assert _task(board_db, ZONE, "北门围墙修补")[1] == "in_progress"
        card.locator("input.move-date").fill(today().isoformat())
        staff.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=finish.*"))
        card = _card(staff, code)
        assert card.get_attribute("data-state") == "done"
        # finished without an after photo: the board says so
        assert "缺整治后照片" in page.locator("#blockers").inner_text()
        staff.shot("board-done")
        assert _only_refusals(staff.errors)
        assert staff.hosts == {base_url.split("//")[1]}
    finally:
        staff.close()


def test_administrator_on_a_phone_verifies_with_the_after_photo_and_redo_needs_a_note(
    browser,  # noqa: F811
    base_url,
    board_db,
    people,
    tmp_path,
):
    """The administrator on a phone: the after photo from the camera input, verify on the date entered,
    a redo without a note refused in Chinese, with one sent back to work."""
    photo = _jpeg(tmp_path / "after.jpg")
    with psycopg.connect(board_db) as conn:
        code = conn.execute(
            "SELECT code FROM remediation_tasks WHERE zone_code = %s AND state = 'done' ORDER BY id LIMIT 1", [ZONE]
        ).fetchone()
    if code is None:  # run alone: a task of its own, done, in the zone
        with psycopg.connect(board_db, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO publicity_records (district_code, zone_code, kind, held_on, place, unit_code, "
                " recorded_by) "
                "SELECT district_code, code, 'notice', DATE '2023-01-01', ST_PointOnSurface(geom), 'office-xihu', 't' "
                "FROM zones WHERE code = %s",
                [ZONE],
            )
        admin_http = httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url})
        assert admin_http.post("/login", data={"username": people["admin"], "password": PASSWORD}).status_code == 303
        made = admin_http.post(f"/zones/{ZONE}/remediation", json={"item": "walls", "title": "北门围墙修补"})
        assert made.status_code == 201, made.text
        task_code = made.json()["id"]
        shot = admin_http.post(
            f"/remediation/{task_code}/photos",
            data={"stage": "before"},
            files={"photo": ("b.jpg", _jpeg(tmp_path / "b.jpg").read_bytes(), "image/jpeg")},
        )
        assert shot.status_code == 201, shot.text
        for action in ("start", "finish"):
            r = admin_http.post(f"/remediation/{task_code}/actions", json={"action": action})
            assert r.status_code == 200, r.text
        admin_http.close()
        code = (task_code,)
    code = code[0]
    admin = Person(browser, "phone")
    try:
        admin.sign_in(base_url, people["admin"], f"/workbench/remediation/{ZONE}")
        page = admin.page
        card = _card(admin, code)
        card.scroll_into_view_if_needed()
        file_input = card.locator("input.photo-file")
        assert file_input.get_attribute("capture") == "environment"
        assert file_input.get_attribute("accept") == "image/*"
        assert card.locator("select.photo-stage").input_value() == "after"  # what the task lacks
        file_input.set_input_files(str(photo))
        admin.press(card.locator("button.photo-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        card = _card(admin, code)
        assert card.locator("[data-stage='after'] img").count() == 1
        day = today().isoformat()
        card.locator("select.move-action").select_option("verify")
        card.locator("input.move-date").fill(day)
        admin.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=verify.*"))
        card = _card(admin, code)
        assert card.get_attribute("data-state") == "verified"
        assert _one(board_db, "SELECT verified_on::text FROM remediation_tasks WHERE code = %s", code) == day
        assert card.locator("input.photo-file").count() == 0  # a verified task's evidence is frozen
        admin.shot("board-verified")
        # redo without a note: refused in Chinese; with one: back in progress
        card.locator("select.move-action").select_option("redo")
        admin.press(card.locator("button.move-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "须填写说明" in page.locator("#msg").inner_text()
        assert _task(board_db, ZONE, "北门围墙修补")[1] == "verified"
        card = _card(admin, code)
        assert card.locator("select.move-action").input_value() == "redo"
        admin.type_into(f"#task-{code} input.move-note", "墙面返碱，重新粉刷")
        admin.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=redo.*"))
        assert _card(admin, code).get_attribute("data-state") == "in_progress"
        admin.shot("board-redo")
        admin.go_by_the_bar(page.locator("nav.wuye-nav a.wuye-lang"))  # the same board in English
        page.wait_for_url(re.compile(r".*lang=en.*"))
        assert page.locator("h1").inner_text().endswith("Remediation board")
        assert _card(admin, code).locator("select.move-action option").first.inner_text() in ("Finish", "Redo")
        admin.shot("board-en")
        # the whole district for the bureau, with the sub-districts' and the district's totals
        admin.go_by_the_bar(page.locator("nav.wuye-nav a[href='/workbench/remediation?lang=en']"))
        page.wait_for_url(f"{base_url}/workbench/remediation?lang=en")
        assert page.locator("#zone-list tbody tr.zone-row").count() == _one(board_db, "SELECT count(*) FROM zones")
        total = page.locator("tr.total-row[data-level='district'] td").first.inner_text()
        assert int(total) == _one(board_db, "SELECT count(*) FROM remediation_tasks")
        assert page.locator("tr.total-row[data-level='subdistrict']").count() == _one(
            board_db, "SELECT count(DISTINCT subdistrict_code) FROM zones"
        )
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, width  # the table scrolls inside the page, the page itself does not
        admin.shot("board-index-en")
        assert _only_refusals(admin.errors)
    finally:
        admin.close()


def test_staff_on_a_phone_adds_a_task_takes_its_before_photo_and_starts_it(
    browser,  # noqa: F811
    base_url,
    board_db,
    people,
    tmp_path,
):
    """The sub-district staff member on a phone, in a zone with publicity: a task added by taps and
    typing, its before photo from the camera input, started today."""
    photo = _jpeg(tmp_path / "phone-before.jpg")
    zone = "yumin-south"
    staff = Person(browser, "phone")
    try:
        staff.sign_in(base_url, people["subdistrict_staff"], f"/workbench/remediation/{zone}")
        page = staff.page
        page.select_option("#nt-item", "street_lights")
        staff.type_into("#nt-title", "南门路灯更换")
        page.fill("#nt-start", "2026-05-01")
        page.fill("#nt-end", "2026-06-30")
        staff.press(page.locator("#nt-go"))
        page.wait_for_url(re.compile(r".*done=task_added.*"))
        code, _ = _task(board_db, zone, "南门路灯更换")
        card = _card(staff, code)
        assert card.get_attribute("data-state") == "planned"
        card.scroll_into_view_if_needed()
        file_input = card.locator("input.photo-file")
        assert file_input.get_attribute("capture") == "environment"
        assert card.locator("select.photo-stage").input_value() == "before"
        file_input.set_input_files(str(photo))
        staff.press(card.locator("button.photo-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        card = _card(staff, code)
        assert card.locator("[data-stage='before'] img").count() == 1
        assert card.locator("select.move-action").input_value() == "start"
        staff.press(card.locator("button.move-go"))
        page.wait_for_url(re.compile(r".*done=start.*"))
        assert _card(staff, code).get_attribute("data-state") == "in_progress"
        assert _one(board_db, "SELECT actual_start FROM remediation_tasks WHERE code = %s", code) == today()
        staff.shot("board-staff-phone")
        staff.go_by_the_bar(page.locator("nav.wuye-nav a[href='/workbench/phases']"))
        page.wait_for_url(f"{base_url}/workbench/phases")
        assert page.locator(f"#zone-{zone} td[data-phase='remediation']").is_visible()
        staff.shot("phases-staff-phone")
        assert _only_refusals(staff.errors) and staff.errors == []
    finally:
        staff.close()


def test_phases_behind_first_an_administrator_moves_a_deadline_staff_are_refused(
    browser,  # noqa: F811
    base_url,
    board_db,
    people,
):
    """The phase table, zones behind schedule first; the staff member's deadline change is refused with
    the Chinese reason and the typed values kept; the administrator (desktop, then a phone) sets one
    with a reason, and the table shows the zone's own deadline."""
    staff = Person(browser)
    try:
        staff.sign_in(base_url, people["subdistrict_staff"], "/workbench/phases")
        page = staff.page
        rows = page.locator("#phase-table tr.zone-row")
        overdue = [int(v) for v in rows.evaluate_all("rs => rs.map(r => r.dataset.overdue)")]
        assert overdue == sorted(overdue, reverse=True)
        zones = rows.evaluate_all("rs => rs.map(r => r.dataset.zone)")
        xihu = "SELECT array_agg(code ORDER BY code) FROM zones WHERE subdistrict_code = 'xihu'"
        assert sorted(zones) == _one(board_db, xihu)
        assert page.locator("#phase-table td.phase-cell").count() == 5 * len(zones)
        shown = page.locator(f"#zone-{ZONE} .publicity-n").get_attribute("data-publicity")
        assert int(shown) == _one(board_db, "SELECT count(*) FROM publicity_records WHERE zone_code = %s", ZONE)
        page.select_option("#dl-zone", ZONE)
        page.select_option("#dl-phase", "remediation")
        page.fill("#dl-due", "2026-12-31")
        staff.type_into("#dl-reason", "雨季推迟施工")
        staff.press(page.locator("#dl-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "仅管理员可调整小区阶段期限" in page.locator("#msg").inner_text()
        assert page.locator("#dl-reason").input_value() == "雨季推迟施工"
        assert page.locator("#dl-due").input_value() == "2026-12-31"
        assert page.locator("#dl-zone").input_value() == ZONE
        assert page.locator("#dl-phase").input_value() == "remediation"
        assert _one(board_db, "SELECT count(*) FROM zone_phase_deadlines WHERE zone_code = %s", ZONE) == 0
        staff.shot("phases-refused")
    finally:
        staff.close()
    for device in ("desktop", "phone"):
        admin = Person(browser, device)
        try:
            admin.sign_in(base_url, people["admin"], "/workbench/phases")
            page = admin.page
            assert page.locator("#phase-table tr.zone-row").count() == _one(board_db, "SELECT count(*) FROM zones")
            due = "2026-12-31" if device == "desktop" else "2027-01-15"
            admin.press(page.locator(f"#zone-{ZONE} a.set-link"))  # the row's link chooses its zone
            page.wait_for_url(re.compile(rf".*zone={ZONE}.*"))
            assert page.locator("#dl-zone").input_value() == ZONE
            page.select_option("#dl-phase", "remediation")
            page.fill("#dl-due", due)
            if device == "desktop":
                # no reason: refused, the date kept
                admin.press(page.locator("#dl-go"))
                page.wait_for_selector("#msg.wuye-error")
                assert "调整期限须说明原因" in page.locator("#msg").inner_text()
                assert page.locator("#dl-due").input_value() == due
            admin.type_into("#dl-reason", "雨季推迟施工")
            admin.press(page.locator("#dl-go"))
            page.wait_for_url(re.compile(r".*done=deadline_saved.*"))
            cell = page.locator(f"#zone-{ZONE} td[data-phase='remediation']")
            assert cell.get_attribute("data-due") == due
            assert cell.locator("em.own").count() == 1
            assert (
                _one(
                    board_db,
                    "SELECT due_on::text FROM zone_phase_deadlines WHERE zone_code = %s AND phase = 'remediation'",
                    ZONE,
                )
                == due
            )
            admin.shot("phases-admin")
            assert _only_refusals(admin.errors)
        finally:
            admin.close()


def test_a_property_team_on_a_phone_records_a_meeting_with_its_photo(browser, base_url, board_db, people, tmp_path):  # noqa: F811
    """The property team on a phone: a residents' meeting tapped onto the map with its attendance and a
    camera photo, in a zone of its own; a zone outside its scope is 404."""
    photo = _jpeg(tmp_path / "meeting.jpg")
    team = Person(browser, "phone")
    zone = "yumin-south"
    try:
        team.sign_in(base_url, people["property_team"], "/workbench/publicity")
        page = team.page
        tiles = page.locator("#zone-tiles a").evaluate_all("as => as.map(a => a.dataset.zone)")
        assert sorted(tiles) == ["yumin-north", "yumin-south"]
        before = _one(board_db, "SELECT count(*) FROM publicity_records WHERE zone_code = %s", zone)
        team.press(page.locator(f"#zone-tiles a[data-zone='{zone}']"))
        page.wait_for_url(f"{base_url}/workbench/publicity/{zone}")
        page.wait_for_function(READY)
        page.select_option("#pub-kind", "residents_meeting")
        page.select_option("#pub-unit", "office-xihu")
        team.type_into("#pub-attendance", "35")
        team.type_into("#pub-note", "居民会通报整治计划")
        assert page.locator("#pub-photos").get_attribute("capture") == "environment"
        page.locator("#pub-map").scroll_into_view_if_needed()
        lon, lat = _inside(board_db, zone)
        _tap_map(team, lon, lat)
        page.set_input_files("#pub-photos", str(photo))
        team.press(page.locator("#pub-go"))
        page.wait_for_url(re.compile(r".*done=recorded.*"))
        assert _one(board_db, "SELECT count(*) FROM publicity_records WHERE zone_code = %s", zone) == before + 1
        assert page.locator("#record-list tr.record-row[data-kind='residents_meeting']").count() >= 1
        page.wait_for_function(READY)
        team.shot("publicity-phone")
        # more photos for an earlier record (taken after the meeting): none chosen is refused in Chinese
        older = page.locator("#record-list tr.record-row").last
        record_id = older.get_attribute("data-id")
        shown = older.locator(".record-photos img").count()
        team.press(older.locator("button.more-go"))
        page.wait_for_selector("#msg.wuye-error")
        assert "请选择照片" in page.locator("#msg").inner_text()
        row = page.locator(f"#record-{record_id}")
        row.locator("input.more-file").set_input_files([str(photo), str(photo)])
        team.press(row.locator("button.more-go"))
        page.wait_for_url(re.compile(r".*done=photo_added.*"))
        assert page.locator(f"#record-{record_id} .record-photos img").count() == shown + 2
        # the record under another zone's path, or in a zone outside the team's: 404
        elsewhere = _one(board_db, "SELECT min(id) FROM publicity_records WHERE zone_code = 'daopo'")
        for path in (
            f"/workbench/publicity/{zone}/records/{elsewhere}/photos",
            f"/workbench/publicity/daopo/records/{elsewhere}/photos",
        ):
            answer = page.request.post(
                base_url + path,
                multipart={"photo": {"name": "p.jpg", "mimeType": "image/jpeg", "buffer": photo.read_bytes()}},
                headers={"Origin": base_url},
            )
            assert answer.status == 404, (path, answer.status)
        assert page.request.get(f"{base_url}/workbench/publicity/daopo").status == 404
        assert _only_refusals(team.errors)
    finally:
        team.close()


def test_what_a_phase_misses_is_shown_in_the_pages_language():
    from maps.web_programme import in_lang

    assert in_lang("1/1 项整治任务未验收 tasks not verified", "zh") == "1/1 项整治任务未验收"
    assert in_lang("物业服务 2027-01-01 开始 service starts on 2027-01-01", "en") == "service starts on 2027-01-01"
    verdict = "已签发结论 YS-2023-001 非通过"
    assert in_lang(f"{verdict} issued verdict is not a pass", "zh") == verdict
    assert in_lang("只有中文", "en") == "只有中文"


def test_the_pages_in_english_and_who_may_open_them(base_url, board_db, people):
    """?lang=en; the navigation of the roles that may open the pages; a contractor is refused; a
    malformed date sent to a form is refused in Chinese, naming the field, and writes nothing."""
    http = httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url})
    assert http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD}).status_code == 303
    task = _one(board_db, "SELECT code FROM remediation_tasks WHERE zone_code = %s ORDER BY id LIMIT 1", ZONE)
    if task is not None:
        events = _one(board_db, "SELECT count(*) FROM remediation_events")
        bad = http.post(f"/workbench/remediation/tasks/{task}/actions", data={"action": "finish", "date": "2026-02-30"})
        assert bad.status_code == 400 and "“date”须为日期" in bad.text, bad.text[:500]
        assert 'value="2026-02-30"' in bad.text  # what was sent, kept
        assert _one(board_db, "SELECT count(*) FROM remediation_events") == events
    bad = http.post(
        f"/workbench/publicity/{ZONE}", data={"kind": "notice", "held_on": "2026/13/01", "note": "日期写错"}
    )
    assert bad.status_code == 400 and "“held_on”须为日期" in bad.text and "日期写错" in bad.text
    # a file that is no image among the photos: refused before the record is written
    lon, lat = _inside(board_db, ZONE)
    records = _one(board_db, "SELECT count(*) FROM publicity_records")
    form = {"kind": "notice", "held_on": today().isoformat(), "lon": str(lon), "lat": str(lat)}
    form |= {"unit_code": "office-xihu", "note": "附件不是照片"}
    files = [
        ("photo", ("a.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image/jpeg")),
        ("photo", ("b.txt", b"text", "text/plain")),
    ]
    bad = http.post(f"/workbench/publicity/{ZONE}", data=form, files=files)
    assert bad.status_code == 400 and "照片须为 JPEG、PNG 或 WebP 图片" in bad.text and "附件不是照片" in bad.text
    assert _one(board_db, "SELECT count(*) FROM publicity_records") == records
    english = http.get("/workbench/remediation?lang=en")
    assert english.status_code == 200 and "Remediation board" in english.text and "整治看板" not in english.text
    assert "content-security-policy" in english.headers
    assert http.get("/workbench/phases?lang=en").status_code == 200
    assert "/workbench/remediation" in http.get("/", headers={"Accept": "text/html"}).text  # the portal
    assert "/workbench/phases" in http.get("/maps/remediation").text  # the map pages' navigation
    assert http.get("/workbench/remediation/daopo").status_code == 404  # 望岳: outside 西湖
    http.close()
    contractor = httpx.Client(base_url=base_url, timeout=60)
    assert contractor.post("/login", data={"username": people["contractor"], "password": PASSWORD}).status_code == 303
    refused = contractor.get("/workbench/remediation")
    assert refused.status_code == 403 and "<html" in refused.text
    assert "/workbench/remediation" not in contractor.get("/", headers={"Accept": "text/html"}).text
    contractor.close()


def test_fifty_concurrent_clients_read_the_programme_pages(base_url, people):
    http = httpx.Client(base_url=base_url, timeout=60)
    http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
    cookie = http.cookies["wuye_session"]
    http.close()
    paths = [
        "/workbench/remediation",
        f"/workbench/remediation/{ZONE}",
        "/workbench/phases",
        "/workbench/publicity",
        f"/workbench/publicity/{ZONE}",
        "/workbench/remediation?lang=en",
    ] * 10

    async def crowd() -> list[tuple[int, bool]]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=120) as client:
            answers = await asyncio.gather(*(client.get(p) for p in paths))
            return [(a.status_code, "bd-subdistrict_staff" in a.text) for a in answers]

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:  # (a thread of its own: Playwright's sync API keeps a loop in this one)
        answers = pool.submit(asyncio.run, crowd()).result()
    assert answers == [(200, True)] * 60, answers
    print(f"60 concurrent page loads in {time.monotonic() - started:.2f} s")


def test_fifty_concurrent_starts_of_one_task_from_the_page_move_it_once(base_url, board_db, people):
    """52 clients press "start" on the same planned task at once: one move, one event; the others get
    the board again with the 409 in Chinese (the task is no longer planned)."""
    http = httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url})
    assert http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD}).status_code == 303
    made = http.post("/workbench/remediation/yumin-south/tasks", data={"item": "ditches", "title": "东侧沟渠清淤"})
    assert made.status_code == 303, made.text[:300]
    cookie = http.cookies["wuye_session"]
    http.close()
    code, state = _task(board_db, "yumin-south", "东侧沟渠清淤")
    assert state == "planned"

    async def crowd() -> list[tuple[int, bool]]:
        async with httpx.AsyncClient(
            base_url=base_url, cookies={"wuye_session": cookie}, headers={"Origin": base_url}, timeout=120
        ) as client:
            form = {"action": "start", "date": today().isoformat()}
            answers = await asyncio.gather(
                *(client.post(f"/workbench/remediation/tasks/{code}/actions", data=form) for _ in range(52))
            )
            return [(a.status_code, "当前状态为「整治中」，不能执行此操作" in a.text) for a in answers]

    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, crowd()).result()
    assert sorted(answers) == [(303, False)] + [(409, True)] * 51, answers
    assert _task(board_db, "yumin-south", "东侧沟渠清淤")[1] == "in_progress"
    starts = "SELECT count(*) FROM remediation_events e JOIN remediation_tasks t ON t.id = e.task_id "
    assert _one(board_db, starts + "WHERE t.code = %s AND e.action = 'start'", code) == 1


_TASK_SQL = (
    "INSERT INTO remediation_tasks (code, district_code, zone_code, item, title, state, planned_end, created_by) "
    "VALUES (%s, %s, %s, 'street_lights', %s, %s, %s, 'tests')"
)


HTML = {"Accept": "text/html"}  # a browser's: / is the portal (JSON clients get the OGC landing page)


def _task_due(url: str, zone: str, state: str, due: date, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_TASK_SQL, [f"WEEK-{n}", DISTRICT, zone, f"本周任务 {n}", state, due])


def test_the_portal_counts_the_tasks_due_this_week_and_leads_to_the_board(browser, base_url, board_db, people):  # noqa: F811
    """The portal's "本周到期整治任务" (issue 20 point 1): the unfinished remediation tasks of the caller's
    zones due Monday to Sunday of this week; not one finished, due next week or in an earlier week, or
    outside the caller's zones (the bureau's administrator counts those too). A click on the count opens
    the remediation board; a contractor, who has no board, is shown no such count."""
    monday = today() - timedelta(days=today().weekday())
    outside = _one(board_db, "SELECT code FROM zones WHERE subdistrict_code <> 'xihu' ORDER BY code LIMIT 1")
    staff = Person(browser, "desktop")
    try:
        staff.sign_in(base_url, people["subdistrict_staff"], "/")
        page = staff.page
        before = int(page.inner_text("#n-tasks-week"))
        with httpx.Client(base_url=base_url, timeout=60, headers=HTML) as admin:
            assert admin.post("/login", data={"username": people["admin"], "password": PASSWORD}).status_code == 303
            admin_before = int(re.search(r'id="n-tasks-week">(\d+)<', admin.get("/").text).group(1))  # type: ignore[union-attr]
            for n, (zone, state, due) in enumerate(
                [
                    ("yumin-south", "planned", monday + timedelta(days=6)),  # this Sunday: counted
                    ("yumin-south", "in_progress", monday),  # this Monday, still open: counted
                    ("yumin-south", "done", monday + timedelta(days=3)),  # finished
                    ("yumin-south", "planned", monday + timedelta(days=7)),  # next week
                    ("yumin-south", "planned", monday - timedelta(days=1)),  # last week: the board's overdue
                    (outside, "planned", monday + timedelta(days=2)),  # not the staff's zone
                ]
            ):
                _task_due(board_db, zone, state, due, n)
            admin_after = int(re.search(r'id="n-tasks-week">(\d+)<', admin.get("/").text).group(1))  # type: ignore[union-attr]
        assert admin_after == admin_before + 3
        page.reload()
        assert int(page.inner_text("#n-tasks-week")) == before + 2
        assert "本周到期整治任务" in page.inner_text("#attention + ul")
        staff.shot("portal-tasks-week")
        staff.press(page.locator("a:has(#n-tasks-week)"))
        page.wait_for_url(f"{base_url}/workbench/remediation")
        assert staff.errors == []
    finally:
        staff.close()
    with httpx.Client(base_url=base_url, timeout=60, headers=HTML) as contractor:
        assert (
            contractor.post("/login", data={"username": people["contractor"], "password": PASSWORD}).status_code == 303
        )
        portal = contractor.get("/")
        assert portal.status_code == 200 and "n-tasks-week" not in portal.text


def test_the_pages_answer_503_in_chinese_while_the_database_is_down_and_work_again_after(target, tmp_path):  # noqa: F811
    """The board, the phase table, publicity and a form through a database stop and start."""
    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(
            conn,
            username="bd-restart",
            password=PASSWORD,
            role="subdistrict_staff",
            district_code=DISTRICT,
            actor="tests",
            subdistrict_code="xihu",
        )
    pages = ["/workbench/remediation", f"/workbench/remediation/{ZONE}", "/workbench/phases", "/workbench/publicity"]
    with serving(target.env) as url, httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as http:
        assert http.post("/login", data={"username": "bd-restart", "password": PASSWORD}).status_code == 303
        for path in pages:
            assert http.get(path).status_code == 200, path
        lon, lat = _inside(target.url(), ZONE)
        form = {
            "kind": "notice",
            "held_on": today().isoformat(),
            "lon": str(lon),
            "lat": str(lat),
            "unit_code": "office-xihu",
            "note": "停库测试",
        }
        assert wuye(target.env, "db", "stop").returncode == 0
        for path in pages:
            down = http.get(path)
            assert down.status_code == 503 and "<html" in down.text and "数据库" in down.text, (path, down.text[:300])
        refused = http.post(f"/workbench/publicity/{ZONE}", data=form)
        assert refused.status_code == 503 and "数据库" in refused.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/remediation")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        for path in pages:
            assert http.get(path).status_code == 200, path
        done = http.post(f"/workbench/publicity/{ZONE}", data=form)
        assert done.status_code == 303, done.text[:500]
        assert _one(target.url(), "SELECT count(*) FROM publicity_records WHERE note = '停库测试'") == 1
