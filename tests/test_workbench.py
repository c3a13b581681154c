"""The workbench in a real Chromium against our app on a real port: the API documentation drawn
offline, the portal at ``/`` (and the OGC landing page kept for JSON clients), signing in and out
with a session cookie, and each role's day at the case desk with real clicks, taps, typing and
uploads on a desktop (1280×800) and a phone (390×844, touch). Screenshots under var/screenshots/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from tests.test_map_paths import DEVICES
from tests.test_maps import browser  # noqa: F401  (one browser for this module)

SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
PASSWORD = "workbench-pass"
DESK_READY = "() => window.wuyeDeskReady === true"


def _jpeg(path: Path) -> Path:
    """A small real JPEG (the store checks the content; the page shows it)."""
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 80, 40)).save(path, "JPEG")
    return path


@pytest.fixture(scope="module")
def bench_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("workbench", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def people(bench_db: str) -> dict[str, str]:
    """One user per role that works cases (and a resident), in the scopes the other tests use."""
    return make_people(
        bench_db,
        "wb",
        {
            r: DEFAULT_SCOPE.get(r, {})
            for r in ("admin", "subdistrict_staff", "property_team", "contractor", "resident")
        },
        PASSWORD,
    )


@pytest.fixture(scope="module")
def base_url(bench_db: str, people: dict[str, str]) -> Iterator[str]:
    with local_server(create_app(settings_for(bench_db))) as url:
        yield url


def _point_in(url: str, zone: str) -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _report(base_url: str, bench_db: str, zone: str = "yumin-south", description: str = "工作台测试") -> str:
    lon, lat = _point_in(bench_db, zone)
    r = httpx.post(
        f"{base_url}/cases",
        timeout=60,
        json={"category": "garbage_pile", "lon": lon, "lat": lat, "description": description},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _state(bench_db: str, code: str) -> tuple[str, str | None]:
    with psycopg.connect(bench_db) as conn:
        row = conn.execute("SELECT state, unit_code FROM cases WHERE code = %s", [code]).fetchone()
    assert row is not None
    return str(row[0]), row[1]


class Person:
    """A browser context on a device, with what the page requested and any script error."""

    def __init__(self, chromium: Any, device: str = "desktop") -> None:
        self.device = device
        self.context = chromium.new_context(**DEVICES[device])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))

    def press(self, locator: Any) -> None:
        """A finger on a phone, the mouse on a desktop."""
        if self.device == "phone":
            locator.tap()
        else:
            locator.click()

    def go_by_the_bar(self, link: Any) -> None:
        """Follow a link of the navigation bar: on a phone, the ☰ menu button first opens the links."""
        if self.device == "phone":
            self.press(self.page.locator(".wuye-nav .wuye-nav-menu"))
        self.press(link)

    def type_into(self, selector: str, text: str) -> None:
        self.press(self.page.locator(selector))
        self.page.keyboard.type(text)

    def sign_in(self, base_url: str, username: str, next_path: str = "/") -> None:
        self.page.goto(f"{base_url}/login?next={next_path}")
        self.type_into("#u", username)
        self.type_into("#p", PASSWORD)
        self.press(self.page.locator("#login button[type=submit]"))
        self.page.wait_for_url(re.compile(re.escape(base_url + next_path.split("?")[0]) + r"(\?.*)?$"))

    def shot(self, name: str, *, full_page: bool = True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"workbench-{name}-{self.device}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


# -- point 8: the API documentation, offline ------------------------------------------------------------------
def _drawn_while_scrolling(page: Any, until: str | None = None) -> set[str]:
    """The operations ("get /path") Swagger UI draws as a person scrolls the page down with the mouse
    wheel: from 150 tags and operations on, it draws only what is near the viewport (a virtual list).
    Stops at the bottom, or once ``until`` (a selector) is on the page."""
    seen: set[str] = set()
    page.mouse.move(640, 400)
    last = -1.0
    for _ in range(2000):
        seen.update(
            page.eval_on_selector_all(
                ".opblock",
                "els => els.map(e => e.querySelector('.opblock-summary-method').textContent.toLowerCase()"
                " + ' ' + e.querySelector('[data-path]').dataset.path)",
            )
        )
        if until is not None and page.locator(until).count():
            break
        y = page.evaluate("() => window.scrollY")
        if y == last and page.evaluate("() => window.innerHeight + window.scrollY >= document.body.scrollHeight - 2"):
            break
        last = y
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(40)
    return seen


def test_docs_draw_every_operation_with_no_request_to_another_host(browser, base_url):  # noqa: F811
    document = httpx.get(f"{base_url}/api", timeout=120).json()
    operations = {
        f"{method} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete", "options", "head")
    }
    p = Person(browser)
    try:
        response = p.page.goto(f"{base_url}/docs")
        assert response is not None and response.status == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        p.page.wait_for_function("() => window.wuyeReady === true", timeout=60_000)
        assert "wuye-gis" in p.page.inner_text(".info .title")
        # Every operation is drawn by the time a person has scrolled to the bottom.
        seen = _drawn_while_scrolling(p.page)
        assert seen == operations, (len(seen), len(operations), sorted(operations ^ seen)[:5])
        # open one operation with a real click: its parameters are drawn from our document
        p.page.evaluate("() => window.scrollTo(0, 0)")
        target = ".opblock-summary-path[data-path='/cases/{code}/actions']"
        _drawn_while_scrolling(p.page, until=target)
        p.page.locator(target).first.click()
        p.page.wait_for_selector(".opblock.is-open .parameters-container")
        p.shot("docs", full_page=False)
        assert p.hosts == {urlsplit(base_url).netloc}, p.hosts
        assert p.errors == []
    finally:
        p.close()
    assert httpx.get(f"{base_url}/redoc", timeout=60).status_code == 404  # ReDoc needed a CDN: removed


# -- point 1: the portal and the OGC landing page ---------------------------------------------------------
def test_browsers_get_the_portal_and_ogc_clients_keep_the_landing_page(base_url):
    ogc = httpx.get(f"{base_url}/", headers={"Accept": "application/json"}, timeout=60)
    assert ogc.status_code == 200 and ogc.headers["content-type"].startswith("application/json")
    rels = {link["rel"] for link in ogc.json()["links"]}
    assert {"service-desc", "service-doc", "conformance", "data"} <= rels
    portal = httpx.get(f"{base_url}/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, timeout=60)
    assert portal.status_code == 200 and '<html lang="zh-CN"' in portal.text and "登录" in portal.text
    assert "default-src 'self'" in portal.headers["content-security-policy"]
    # every link of the portal answers, the OGC landing page among them (HTML and JSON)
    links = set(re.findall(r'href="(/[^"#]*)"', portal.text))
    assert {"/?f=html", "/?f=json", "/docs", "/api"} <= links
    for href in links:
        r = httpx.get(base_url + href.replace("&amp;", "&"), timeout=60)
        assert r.status_code == 200, (href, r.status_code)
    english = httpx.get(f"{base_url}/?lang=en", headers={"Accept": "text/html"}, timeout=60)
    assert '<html lang="en"' in english.text and "Sign in" in english.text
    assert httpx.get(f"{base_url}/?lang=fr", headers={"Accept": "text/html"}, timeout=60).status_code == 400


def test_sign_in_shows_who_and_scope_on_every_page_and_sign_out_ends_it(browser, base_url, people):  # noqa: F811
    p = Person(browser)
    try:
        page = p.page
        page.goto(f"{base_url}/login?next=/maps/cases")
        # refused: the reason in Chinese, the username kept
        p.type_into("#u", people["subdistrict_staff"])
        p.type_into("#p", "not-the-password")
        page.locator("#login button[type=submit]").click()
        page.wait_for_selector("#msg:has-text('用户名或密码错误')")
        assert page.input_value("#u") == people["subdistrict_staff"]
        p.shot("login-refused")
        p.type_into("#p", PASSWORD)
        page.locator("#login button[type=submit]").click()
        page.wait_for_url(f"{base_url}/maps/cases")
        page.wait_for_function("() => window.wuyeReady === true", timeout=30_000)
        who = page.locator(".wuye-nav .wuye-who")
        # the role's label and the scope by its name (西湖街道), not its code
        assert people["subdistrict_staff"] in who.inner_text() and "西湖街道" in who.inner_text()
        assert "xihu" not in who.inner_text() and "街道工作人员" in who.inner_text()
        assert page.locator(".wuye-nav a", has_text="工作台").is_visible()
        assert not page.locator(".wuye-nav-login").count()
        p.shot("map-signed-in")
        page.locator(".wuye-nav a", has_text="首页").click()
        page.wait_for_url(f"{base_url}/")
        assert people["subdistrict_staff"] in page.inner_text(".wuye-nav .wuye-who")
        assert page.locator("#n-new").is_visible()
        p.shot("portal-signed-in")
        page.locator(".wuye-nav-logout").click()
        page.wait_for_url(f"{base_url}/")
        assert page.locator(".wuye-nav-login").is_visible() and not page.locator(".wuye-who").count()
        # the session is gone on the server too: the desk asks to sign in
        r = page.goto(f"{base_url}/workbench/cases")
        assert r is not None and r.status == 401
        assert "请先登录" in page.inner_text(".wuye-error")
        assert p.errors == [] or all("401" in e for e in p.errors)
    finally:
        p.close()


def _nav_shot(page: Any, name: str) -> None:
    """The top of the page with the navigation bar (and the open menu), as a person sees it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_navigation_bar_is_a_menu_on_a_phone_and_stays_a_bar_on_a_desktop(browser, base_url, people, device):  # noqa: F811
    """On a phone (390×844) the bar is one line with a ☰ 菜单 button (a real button with aria-expanded)
    and its links hidden; a tap opens them above the desk's map and another closes them, Tab, Enter,
    Space and Escape do the same, and a tap on a link goes there. On a desktop (1280×800) the links
    stand in the bar and there is no button."""
    p = Person(browser, device)
    try:
        page = p.page
        p.sign_in(base_url, people["subdistrict_staff"], "/workbench/cases")
        page.wait_for_function(DESK_READY)
        nav = page.locator("nav.wuye-nav")
        menu = nav.locator("button.wuye-nav-menu")
        links = nav.locator("a")
        home = nav.locator("a", has_text="首页")
        assert links.count() >= 8
        if device == "desktop":
            assert not menu.is_visible()
            assert all(links.nth(i).is_visible() for i in range(links.count()))
            assert nav.locator(".wuye-who").is_visible() and nav.locator(".wuye-nav-logout").is_visible()
            first, box = home.bounding_box(), nav.bounding_box()  # the links start the bar, as before
            assert first is not None and box is not None and first["x"] - box["x"] < 20, (first, box)
            _nav_shot(page, "nav-desktop")
            p.press(home)
            page.wait_for_url(f"{base_url}/")
            return
        # a phone: one line, the button and nothing else
        assert menu.is_visible() and menu.text_content() == "☰ 菜单"
        assert (
            menu.get_attribute("aria-expanded") == "false" and menu.get_attribute("aria-controls") == "wuye-nav-links"
        )
        assert not any(links.nth(i).is_visible() for i in range(links.count()))
        assert not nav.locator(".wuye-who").is_visible()
        box = nav.bounding_box()
        assert box is not None and box["height"] <= 60, box
        _nav_shot(page, "nav-phone-closed")
        p.press(menu)
        assert menu.get_attribute("aria-expanded") == "true"
        assert all(links.nth(i).is_visible() for i in range(links.count()))
        assert nav.locator(".wuye-who").is_visible() and nav.locator(".wuye-nav-logout").is_visible()
        for i in range(links.count()):  # each a finger's height, inside the screen's width
            one = links.nth(i).bounding_box()
            assert one is not None and one["height"] >= 44 and one["x"] + one["width"] <= 390, one
        _nav_shot(page, "nav-phone-open")
        p.press(menu)
        assert menu.get_attribute("aria-expanded") == "false" and not home.is_visible()
        # the keyboard: Tab past the skip link to the button, Enter opens, Escape closes, Space opens
        page.reload()
        page.wait_for_function(DESK_READY)
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.classList.contains('wuye-nav-menu')")
        page.keyboard.press("Enter")
        assert menu.get_attribute("aria-expanded") == "true" and home.is_visible()
        page.keyboard.press("Tab")  # the first link, reachable
        assert page.evaluate("() => document.activeElement.textContent") == "首页"
        page.keyboard.press("Escape")
        assert menu.get_attribute("aria-expanded") == "false" and not home.is_visible()
        assert page.evaluate("() => document.activeElement.classList.contains('wuye-nav-menu')")
        page.keyboard.press("Space")
        assert menu.get_attribute("aria-expanded") == "true"
        # a tap on a link goes there; the next page's menu is closed again
        p.press(home)
        page.wait_for_url(f"{base_url}/")
        assert menu.get_attribute("aria-expanded") == "false" and not home.is_visible()
        assert page.locator("#n-new").is_visible()
        assert not p.errors, p.errors
    finally:
        p.close()


def test_a_session_cookie_does_not_write_from_another_sites_page(base_url, bench_db, people):
    code = _report(base_url, bench_db)
    with httpx.Client(base_url=base_url, timeout=60) as http:
        r = http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD, "next": "/"})
        assert r.status_code == 303 and "wuye_session" in http.cookies
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
        foreign = http.post(
            f"/cases/{code}/actions", json={"action": "register"}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 401, foreign.text
        assert _state(bench_db, code)[0] == "reported"
        own = http.post(f"/cases/{code}/actions", json={"action": "register"}, headers={"Origin": base_url})
        assert own.status_code == 200, own.text
        assert _state(bench_db, code)[0] == "registered"
        assert http.get("/auth/me").json()["username"] == people["subdistrict_staff"]  # reads need no Origin


# -- point 3: the case desk, each role's day --------------------------------------------------------------------
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_staff_registers_dispatches_and_a_property_team_handles_with_a_photo_then_staff_verifies(
    browser,  # noqa: F811
    base_url,
    bench_db,
    people,
    tmp_path,
    device,
):
    code = _report(base_url, bench_db, description=f"楼道堆放垃圾（{device}）")
    staff = Person(browser, device)
    try:
        page = staff.page
        staff.sign_in(base_url, people["subdistrict_staff"], "/workbench/cases")
        page.wait_for_function(DESK_READY)
        row = page.locator(f"tr[data-code='{code}']")
        assert row.is_visible() and "已上报" in row.inner_text()
        assert int(page.inner_text("#total")) >= 1
        staff.shot("desk")
        staff.press(page.locator(f"tr[data-code='{code}'] a"))
        page.wait_for_url(re.compile(rf".*/workbench/cases/{code}$"))
        page.wait_for_function(DESK_READY)
        # only the moves the workflow allows now, for this role
        names = {f.get_attribute("id") for f in page.locator("#actions form.action").all()}
        assert names == {
            "act-register",
            "act-reject",
            "act-mark_duplicate",
            "act-recategorise",
            "act-move",
            "photo-form",
        }
        staff.shot("case-reported")
        # refused by the server: the reason in Chinese, the typed original kept
        staff.type_into("#mark_duplicate-of", "C-no-such-case")
        staff.type_into("#mark_duplicate-note", "与旧事件相同")
        staff.press(page.locator("#do-mark_duplicate"))
        page.wait_for_selector("#msg.wuye-error")
        assert page.inner_text("#msg") == "原事件 C-no-such-case 不存在"  # the error body's reason_zh
        assert page.input_value("#mark_duplicate-of") == "C-no-such-case"
        assert page.input_value("#mark_duplicate-note") == "与旧事件相同"
        assert _state(bench_db, code)[0] == "reported"
        staff.shot("case-refused")
        assert staff.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
        staff.errors.clear()  # (the refusal's page comes with its status: the browser logs it)
        staff.type_into("#register-note", "属实，立案")
        staff.press(page.locator("#do-register"))
        page.wait_for_selector("#case-state:has-text('已立案')")
        options = page.locator("#dispatch-unit option").all()
        unit = next(o.get_attribute("value") for o in options if o.get_attribute("value"))
        page.select_option("#dispatch-unit", unit)
        staff.press(page.locator("#do-dispatch"))
        page.wait_for_selector("#case-state:has-text('已派遣')")
        assert _state(bench_db, code) == ("dispatched", unit)
        assert [r.get_attribute("data-action") for r in page.locator("#history tbody tr").all()][-2:] == [
            "register",
            "dispatch",
        ]
        staff.shot("case-dispatched")
        assert staff.errors == []
    finally:
        staff.close()

    team = Person(browser, device)
    try:
        page = team.page
        team.sign_in(base_url, people["property_team"], f"/workbench/cases/{code}")
        page.wait_for_function(DESK_READY)
        names = {f.get_attribute("id") for f in page.locator("#actions form.action").all()}
        assert names == {"act-start", "act-handle", "photo-form"}
        team.press(page.locator("#do-start"))
        page.wait_for_selector("#case-state:has-text('处置中')")
        page.set_input_files("#photo-file", str(_jpeg(tmp_path / "handled.jpg")))
        team.press(page.locator("#do-photo"))
        page.wait_for_function("() => { const i = document.querySelector('.photos img'); return i && i.complete; }")
        assert page.evaluate("document.querySelector('.photos img').naturalWidth") == 40  # the photo itself
        team.type_into("#handle-note", "已清运")
        team.press(page.locator("#do-handle"))
        page.wait_for_selector("#case-state:has-text('已处理')")
        team.shot("case-handled")
        assert team.errors == []
    finally:
        team.close()

    staff = Person(browser, device)
    try:
        page = staff.page
        staff.sign_in(base_url, people["subdistrict_staff"], "/workbench/cases?state=handled")
        page.wait_for_function(DESK_READY)
        staff.press(page.locator(f"tr[data-code='{code}'] a"))
        page.wait_for_function(DESK_READY)
        staff.press(page.locator("#do-verify"))
        page.wait_for_selector("#case-state:has-text('已结案')")
        assert _state(bench_db, code)[0] == "closed"
        staff.shot("case-closed")
    finally:
        staff.close()


def test_contractor_on_a_phone_sees_its_work_and_handles_with_the_camera(browser, base_url, bench_db, people, tmp_path):  # noqa: F811
    code = _report(base_url, bench_db, description="路面破损（承包商）")
    admin = httpx.Client(base_url=base_url, timeout=60)
    admin.post("/login", data={"username": people["admin"], "password": PASSWORD})
    for move in ({"action": "register"}, {"action": "dispatch", "unit_code": "contractor-xiangjiang"}):
        r = admin.post(f"/cases/{code}/actions", json=move, headers={"Origin": base_url})
        assert r.status_code == 200, r.text
    admin.close()
    p = Person(browser, "phone")
    try:
        page = p.page
        p.sign_in(base_url, people["contractor"], "/workbench/cases")
        page.wait_for_function(DESK_READY)
        assert page.locator(f"tr[data-code='{code}']").is_visible()
        assert not page.locator("#batch-go").count()  # dispatching is the staff's
        p.shot("contractor-list")
        p.press(page.locator(f"tr[data-code='{code}'] a"))
        page.wait_for_function(DESK_READY)
        p.press(page.locator("#do-start"))
        page.wait_for_selector("#case-state:has-text('处置中')")
        assert page.get_attribute("#photo-file", "capture") == "environment"
        page.set_input_files("#photo-file", str(_jpeg(tmp_path / "road.jpg")))
        p.press(page.locator("#do-photo"))
        page.wait_for_selector(".photos img")
        p.type_into("#handle-note", "已修补")
        p.press(page.locator("#do-handle"))
        page.wait_for_selector("#case-state:has-text('已处理')")
        p.shot("contractor-handled")
        assert p.errors == []
    finally:
        p.close()
    assert _state(bench_db, code)[0] == "handled"


def test_staff_dispatch_several_cases_at_once_and_filters_keep_their_values(browser, base_url, bench_db, people):  # noqa: F811
    codes = [_report(base_url, bench_db, description=f"批量 {i}") for i in range(3)]
    staff = httpx.Client(base_url=base_url, timeout=60)
    staff.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
    for code in codes:
        assert staff.post(
            f"/cases/{code}/actions", json={"action": "register"}, headers={"Origin": base_url}
        ).is_success
    staff.close()
    p = Person(browser)
    try:
        page = p.page
        p.sign_in(base_url, people["subdistrict_staff"], "/workbench/cases")
        page.wait_for_function(DESK_READY)
        p.press(page.locator("#f-state"))
        page.select_option("#f-state", "registered")
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(r".*[?&]state=registered.*"))  # htmx swapped the list and pushed the URL
        page.wait_for_function(
            "() => [...document.querySelectorAll('#case-list tr.case-row')]"
            ".every(r => r.dataset.state === 'registered')"
        )
        page.wait_for_function(DESK_READY)
        assert page.input_value("#f-state") == "registered"
        shown = page.eval_on_selector_all("tr.case-row", "rs => rs.map(r => r.dataset.code)")
        assert set(codes) <= set(shown)
        for code in codes[:2]:
            p.press(page.locator(f"tr[data-code='{code}'] input[type=checkbox]"))
        page.select_option("#batch-unit", "contractor-xiangjiang")
        p.press(page.locator("#batch-go"))
        page.wait_for_selector("#msg:has-text('已派遣 2 件')")
        p.shot("batch-dispatched")
        assert p.errors == []
    finally:
        p.close()
    assert [_state(bench_db, c) for c in codes] == [
        ("dispatched", "contractor-xiangjiang"),
        ("dispatched", "contractor-xiangjiang"),
        ("registered", _state(bench_db, codes[2])[1]),
    ]


def test_case_desk_counts_and_pages_follow_the_api_scope(base_url, bench_db, people):
    """The desk shows what GET /cases shows the same caller, page by page (keyset), and no more."""
    for i in range(3):
        _report(base_url, bench_db, zone="daopo", description=f"范围外 {i}")  # outside 西湖
    http = httpx.Client(base_url=base_url, timeout=60)
    http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
    api = http.get("/cases", params={"limit": 1000}).json()
    api_codes = {f["properties"]["code"] for f in api["features"]}
    seen: list[str] = []
    url: str | None = "/workbench/cases"
    while url:
        page = http.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<tr class="case-row[^"]*" data-code="([^"]+)"', page.text)
        found = re.search(r'href="([^"]+)" id="page-next"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert set(seen) == api_codes and len(seen) == len(api_codes)
    assert int(re.search(r'id="total">(\d+)<', http.get("/workbench/cases").text).group(1)) == len(api_codes)
    # a case outside the caller's scope: 404 as the API answers
    outside = _report(base_url, bench_db, zone="daopo")
    assert http.get(f"/workbench/cases/{outside}").status_code == 404
    http.close()


def test_fifty_concurrent_clients_read_the_desk_and_the_portal(base_url, people):
    http = httpx.Client(base_url=base_url, timeout=60)
    http.post("/login", data={"username": people["subdistrict_staff"], "password": PASSWORD})
    cookie = http.cookies["wuye_session"]
    http.close()

    async def crowd() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=120) as client:
            paths = ["/workbench/cases", "/", "/docs", "/login"] * 13
            answers = await asyncio.gather(*(client.get(p, headers={"Accept": "text/html"}) for p in paths[:52]))
            return [a.status_code for a in answers]

    # (in a thread of its own: Playwright's sync API keeps an event loop in this one)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, crowd()).result() == [200] * 52


def test_the_desk_answers_503_in_chinese_while_the_database_is_down_and_works_again_after(target):  # noqa: F811
    """A signed-in desk, the facility-faults page, the statistics page's figures and supervision (api/faults.py, POST
    /cases/{code}/supervise) through a database stop and start (the server recovers by itself)."""
    with psycopg.connect(target.url(), autocommit=True) as conn:
        for username, role, scope in (
            ("wb-restart", "subdistrict_staff", {"subdistrict_code": "xihu"}),
            ("wb-restart-bureau", "admin", {}),
        ):
            users.create_user(
                conn,
                username=username,
                password=PASSWORD,
                role=role,
                district_code=DISTRICT,
                actor="tests",
                **scope,  # type: ignore[arg-type]
            )
    with (
        serving(target.env) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as bureau,
    ):
        assert http.post("/login", data={"username": "wb-restart", "password": PASSWORD}).status_code == 303
        assert bureau.post("/login", data={"username": "wb-restart-bureau", "password": PASSWORD}).status_code == 303
        code = _report(url, target.url())
        due_day = (today() + timedelta(days=7)).isoformat()
        assert http.get("/workbench/cases").status_code == 200
        assert http.get("/workbench/facilities").status_code == 200
        assert http.get("/workbench/stats/data").status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        down = http.get("/workbench/cases")
        # a page, saying in Chinese that the database cannot be reached (or, as a restart may be seen,
        # that no connection is free)
        assert down.status_code == 503 and "<html" in down.text and 'data-status="503"' in down.text, down.text
        assert "数据库" in down.text
        faults = http.get("/workbench/facilities")
        assert faults.status_code == 503 and "数据库" in faults.text and "<html" in faults.text, faults.text
        # the statistics page's figures and CSV (issue 21 point 7), on the workbench's error page
        figures = http.get("/workbench/stats/data")
        assert figures.status_code == 503 and "数据库" in figures.text, figures.text
        assert http.get("/workbench/stats/state.csv").status_code == 503
        refused = bureau.post(f"/cases/{code}/supervise", json={"deadline": due_day, "note": "停库期间督办"})
        assert refused.status_code == 503 and "数据库" in refused.json()["reason_zh"], refused.text
        assert http.get("/", headers={"Accept": "text/html"}).status_code in (200, 503)  # the portal's counts
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/cases")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert "wb-restart" in again.text
        assert http.get("/workbench/facilities").status_code == 200
        assert http.get("/workbench/stats").status_code == 200
        assert http.get("/workbench/stats/data").json()[0]["id"] == "subdistrict"
        done = bureau.post(f"/cases/{code}/supervise", json={"deadline": due_day, "note": "恢复后督办"})
        assert done.status_code == 200 and done.json()["properties"]["supervised"] is True, done.text
