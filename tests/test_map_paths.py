"""A person's path through each page in a real Chromium, on a desktop (1280×800, mouse) and a phone
(390×844, touch): only clicks, taps, choices and typing; each page's screenshot saved under
``var/screenshots/`` for a reviewer to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from tests.conftest import settings_for
from tests.test_maps import READY, browser  # noqa: F401  (one browser for this module)

SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
DEVICES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}


@pytest.fixture(scope="module")
def paths_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("map_paths", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(paths_db: str) -> Iterator[str]:
    with local_server(create_app(settings_for(paths_db))) as url:
        for lon, lat in ((112.9563, 28.2405), (112.9580, 28.2395)):
            assert httpx.post(f"{url}/cases", json={"category": "light_out", "lon": lon, "lat": lat}).status_code == 201
        yield url


class Person:
    """A page on a device; presses with the mouse on a desktop and with a finger on a phone."""

    def __init__(self, chromium: Any, device: str) -> None:
        self.device = device
        self.context = chromium.new_context(**DEVICES[device])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_function(READY, timeout=30_000)
        return self.page

    def press(self, lat: float, lon: float) -> None:
        """Mouse click or finger tap where the map draws lat/lon (the pixel read from the page)."""
        self.page.evaluate("() => { wuye.map.closePopup(); }")
        self.page.wait_for_selector(".leaflet-popup", state="detached")
        x, y = self.page.evaluate(
            "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
            " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon],
        )
        if self.device == "phone":
            self.page.touchscreen.tap(x, y)
        else:
            self.page.mouse.click(x, y)
        self.page.wait_for_selector(".leaflet-popup-content")

    def choose(self, text: str) -> None:
        """When a list answers (several features under the finger), choose the entry naming ``text``."""
        if self.page.locator(".wuye-hits").count():
            self.page.locator(".wuye-hits a", has_text=text).first.click()
            self.page.wait_for_selector(".leaflet-popup-content .wuye-value")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        # tiles fade in for 200 ms after they have drawn: the picture once they are opaque
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.leaflet-tile')]"
            ".every(t => !t.style.opacity || t.style.opacity === '1')"
            " && [...document.querySelectorAll('.leaflet-popup')].every(p => getComputedStyle(p).opacity === '1')"
        )
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.device}.png"))

    def close(self) -> None:
        self.context.close()


def _one(url: str, query: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return tuple(row)


def _zone_centre(url: str, code: str) -> tuple[float, float]:
    lat, lon = _one(url, f"SELECT ST_Y(p), ST_X(p) FROM zones, ST_PointOnSurface(geom) p WHERE code = '{code}'")  # noqa: S608
    return float(lat), float(lon)


@pytest.mark.parametrize("device", DEVICES)
def test_maintenance_path(browser, base_url, paths_db, device):  # noqa: F811
    light, lat, lon = _one(
        paths_db,
        "SELECT code, ST_Y(geom), ST_X(geom) FROM street_lights "
        "WHERE ST_Within(geom, (SELECT geom FROM zones WHERE code = 'jinling')) ORDER BY code LIMIT 1",
    )
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/maps/maintenance")
        p.shot("maintenance-open")
        page.locator("#f-goto").select_option(label="金岭农民安置小区")
        page.wait_for_function(READY)
        assert page.evaluate("() => wuye.map.getZoom()") >= 15
        assert "金岭农民安置小区" in page.locator(".wuye-zone-label").all_inner_texts()  # its name fits now
        p.shot("maintenance-zone")
        page.evaluate("(ll) => { wuye.map.setView(ll, 18, {animate: false}); }", [lat, lon])
        page.wait_for_function(READY)
        p.press(lat, lon)
        p.choose(light)
        assert light in page.inner_text(".leaflet-popup-content")
        p.shot("maintenance-popup")
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.parametrize("device", DEVICES)
def test_cases_path(browser, base_url, device):  # noqa: F811
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/maps/cases")
        page.locator("#f-state").select_option("reported")
        page.locator("#f-apply").click()
        page.wait_for_function(READY)
        lat, lon, code = page.evaluate(
            "() => { const l = wuye.state.layers.cases.getLayers()[0];"
            " return [l.getLatLng().lat, l.getLatLng().lng, l.feature.properties.code]; }"
        )
        page.evaluate("(ll) => { wuye.map.setView(ll, 17, {animate: false}); }", [lat, lon])
        page.wait_for_function(READY)
        p.press(lat, lon)
        p.choose(code)
        text = page.inner_text(".leaflet-popup-content")
        assert code in text and "已上报" in text
        p.shot("cases-popup")
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.parametrize("device", DEVICES)
def test_remediation_path(browser, base_url, paths_db, device):  # noqa: F811
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/maps/remediation")
        sub = _one(paths_db, "SELECT subdistrict_code FROM zones WHERE code = 'jinling'")[0]
        zoom = page.evaluate("() => wuye.map.getZoom()")
        page.locator("#f-subdistrict").select_option(sub)
        page.wait_for_function(READY)
        assert page.evaluate("() => wuye.map.getZoom()") >= zoom  # the filter zooms to what it kept
        lat, lon = _zone_centre(paths_db, "jinling")
        p.press(lat, lon)
        assert "(jinling)" in page.inner_text(".leaflet-popup-content")
        p.shot("remediation-popup")
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.parametrize("device", DEVICES)
def test_zone_path(browser, base_url, paths_db, device):  # noqa: F811
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/maps/zones/jinling")
        legend = page.locator(".wuye-legend details")
        # on a phone the legend is folded to its title, so the zone stays in sight; a tap opens it
        assert legend.evaluate("(d) => d.open") is (device == "desktop")
        p.shot("zone-open")
        if device == "phone":
            page.locator(".wuye-legend summary").tap()
            assert legend.evaluate("(d) => d.open") is True
            assert "已拆除" in page.inner_text(".wuye-legend")
            page.locator(".wuye-legend summary").tap()
        code, name, lat, lon = _one(
            paths_db,
            "SELECT s.code, s.name, ST_Y(p), ST_X(p) FROM contract_sections s, ST_PointOnSurface(s.geom) p "
            "WHERE s.zone_code = 'jinling' ORDER BY s.code LIMIT 1",
        )
        page.evaluate("(ll) => { wuye.map.setView(ll, 19, {animate: false}); }", [lat, lon])
        page.wait_for_function(READY)
        p.press(lat, lon)
        p.choose(name)
        assert f"({code})" in page.inner_text(".leaflet-popup-content")
        p.shot("zone-popup")
        assert p.errors == []
    finally:
        p.close()


def _by_the_bar(page: Any, device: str, name: str) -> None:
    """Follow the bar's link ``name`` as a person does: on a phone the links are hidden under the ☰ menu
    button until a tap opens them (the map stays where it is below); on a desktop they stand in the bar."""
    link = page.locator(".wuye-nav a", has_text=name)
    if device == "phone":
        menu = page.locator(".wuye-nav .wuye-nav-menu")
        assert menu.get_attribute("aria-expanded") == "false" and not link.is_visible()
        menu.tap()
        assert menu.get_attribute("aria-expanded") == "true"
        link.tap()
    else:
        assert not page.locator(".wuye-nav .wuye-nav-menu").is_visible()
        link.click()


@pytest.mark.parametrize("device", DEVICES)
def test_navigation_bar_leads_to_every_map_and_sign_in(browser, base_url, device):  # noqa: F811
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/maps/maintenance")
        for name, path in (("事件", "/maps/cases"), ("整治", "/maps/remediation"), ("规划", "/maps/plan")):
            _by_the_bar(page, device, name)
            page.wait_for_url(base_url + path)
            page.wait_for_function(READY)
            assert page.locator(".wuye-nav a[aria-current]").inner_text() == name
        p.shot("plan-open")
        if device == "phone":  # the bar is one line above the map: the button
            box = page.locator(".wuye-nav").bounding_box()
            assert box is not None and box["height"] <= 60, box
            page.locator(".wuye-nav .wuye-nav-menu").tap()
            p.shot("plan-menu-open")
            page.locator(".wuye-nav .wuye-nav-menu").tap()
        _by_the_bar(page, device, "登录")
        page.wait_for_url(base_url + "/login?next=%2Fmaps%2Fplan")
        page.go_back()
        page.wait_for_function(READY)
        _by_the_bar(page, device, "首页")
        page.wait_for_url(base_url + "/")  # (a tap does not wait for the navigation it starts)
        page.wait_for_load_state()
        assert "/maps/maintenance" in page.content()
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.parametrize("device", DEVICES)
def test_report_path(browser, base_url, device):  # noqa: F811
    p = Person(browser, device)
    try:
        page = p.open(base_url + "/report")
        page.locator("#r-search").click()
        page.keyboard.type("金岭农民安置小区")
        page.keyboard.press("Enter")
        lat, lon = page.evaluate("() => [wuye.map.getCenter().lat, wuye.map.getCenter().lng]")
        x, y = page.evaluate(
            "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
            " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon],
        )
        if device == "phone":
            page.touchscreen.tap(x, y)
        else:
            page.mouse.click(x, y)
        page.locator("#r-category").select_option("garbage_pile")
        page.locator("#r-submit").click()
        page.wait_for_selector("#r-code")
        p.shot("report-done")
        page.locator("#r-follow").click()
        page.wait_for_selector("#c-state")
        assert page.inner_text("#c-state") == "已上报"
        p.shot("follow")
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    "path", ["/maps/maintenance", "/maps/cases", "/maps/remediation", "/maps/plan", "/maps/patrols", "/report"]
)
def test_every_link_of_the_navigation_bar_exists(base_url, path, lang):
    html = httpx.get(base_url + path, params={"lang": lang} if lang == "en" else None).text
    nav = re.search(r'<nav class="wuye-nav".*?</nav>', html, re.S)
    assert nav is not None
    links = re.findall(r'href="([^"]+)"', nav.group(0))
    assert len(links) == 8  # home, six pages, sign in (the workbench only for a signed-in session)
    for href in links:
        r = httpx.get(base_url + href.replace("&amp;", "&"))
        assert r.status_code == 200, (href, r.status_code)


# the programme's pages (issue 21 points 1-3: remediation board, phases, publicity)
PROGRAMME_PAGES = {"/workbench/remediation", "/workbench/phases", "/workbench/publicity"}


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (
            "admin",
            {
                "/workbench/facilities",
                "/workbench/surveys",
                "/workbench/acceptance",
                "/workbench/fees",
                "/workbench/admin",
                *PROGRAMME_PAGES,
            },
        ),
        ("property_team", {"/workbench/facilities", "/workbench/fees", "/workbench/acceptance", *PROGRAMME_PAGES}),
        ("contractor", {"/workbench/facilities", "/workbench/acceptance"}),
        ("security_admin", {"/workbench/admin"}),
        ("planner", {"/workbench/acceptance", *PROGRAMME_PAGES}),
        ("survey_team", {"/workbench/surveys", "/workbench/acceptance"}),
    ],
)
def test_the_map_pages_bar_leads_a_signed_in_caller_to_their_workbench_pages(base_url, paths_db, role, shown):
    """The maps' navigation bar, like the workbench's, links the facility faults, survey entry, acceptance
    desk, programme, fees and administration pages for the roles that may open them (a map user looking at
    a faulty light goes on to its list)."""
    from tests.conftest import DEFAULT_SCOPE, auth_headers

    caller = auth_headers(paths_db, role, **DEFAULT_SCOPE.get(role, {}))
    html = httpx.get(base_url + "/maps/maintenance", headers=caller).text
    nav = re.search(r'<nav class="wuye-nav".*?</nav>', html, re.S)
    assert nav is not None
    links = set(re.findall(r'href="(/workbench/[a-z]+)"', nav.group(0)))
    assert links - {"/workbench"} == shown
    for href in shown:
        assert httpx.get(base_url + href, headers=caller).status_code == 200, href
