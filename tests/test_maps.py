"""Map pages in a real headless Chromium (the system one, driven by Playwright) against our app on a
real port: offline (no host but ours), no console errors, features drawn (read from the page's own
Leaflet state), toggles and filters, drawing and saving on the planner page, snapshots."""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.cases.categories import categories
from layers.catalogue import vocabulary
from maps import snapshot
from maps.settings import MapSettings
from maps.styles import COMPLETION_BREAKS, OVERDUE_COLOUR
from tests.conftest import auth_headers, settings_for

CHROMIUM = Path("/usr/bin/chromium")
PAGES = ["/maps/maintenance", "/maps/cases", "/maps/remediation", "/maps/plan", "/maps/zones/jinling", "/report"]
READY = "() => window.wuyeReady === true"
FACILITIES = (
    "street_lights",
    "septic_tanks",
    "litter_bins",
    "green_plots",
    "drains",
    "manholes",
    "roads",
    "ditches",
    "walls",
    "sports_equipment",
    "drying_racks",
)


@pytest.fixture(scope="module")
def maps_db(server: Any, template_db: str) -> Iterator[str]:
    """A copy of the demo database for this module, with a few reported cases."""
    with server.copy("maps", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(maps_db: str) -> Iterator[str]:
    """Our app under uvicorn on a free loopback port."""
    with local_server(create_app(settings_for(maps_db))) as url:
        _report_cases(url)
        yield url


def _report_cases(url: str) -> None:
    """Three cases in jinling, two of one category (anonymous reports, as the phone page sends)."""
    points = [("light_out", 112.9563, 28.2405), ("light_out", 112.9567, 28.2407), ("garbage_pile", 112.9565, 28.2409)]
    for category, lon, lat in points:
        r = httpx.post(f"{url}/cases", json={"category": category, "lon": lon, "lat": lat})
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=snapshot.CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page with its console errors and the hosts it requested."""

    def __init__(self, browser: Any, width: int = 1200, height: int = 800, token: str | None = None) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        if token:
            self.context.add_init_script(f"localStorage.setItem('wuye_token', {token!r});")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_function(READY, timeout=30_000)
        return self.page

    def drawn(self, name: str) -> int:
        return int(self.page.evaluate("(n) => wuye.drawn(n)", name))

    def close(self) -> None:
        self.context.close()


def _count(url: str, query: str, params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_with_no_console_errors_and_draws(browser, base_url, maps_db, path):
    w = Watched(browser)
    try:
        w.open(base_url + path)
        assert w.errors == []
        assert w.hosts == {urlsplit(base_url).netloc}, w.hosts
        assert w.page.evaluate("wuye.state.errors") == []
        assert w.page.evaluate("document.documentElement.lang") == "zh-CN"
        if path != "/maps/plan" and path != "/maps/remediation":
            assert w.drawn("base:districts") == 1
        if path == "/maps/maintenance":
            for layer in FACILITIES:
                assert w.drawn(layer) == _count(maps_db, f"SELECT count(*) FROM {layer}"), layer  # noqa: S608
        elif path == "/maps/cases":
            assert w.drawn("cases") == _count(maps_db, "SELECT count(*) FROM cases") == 3
        elif path == "/maps/remediation":
            assert w.drawn("zones") == _count(maps_db, "SELECT count(*) FROM zones")
            assert "暂无整治任务" in w.page.inner_text("body")
        elif path == "/maps/plan":
            assert w.drawn("drawn") == _count(
                maps_db, "SELECT (SELECT count(*) FROM zones) + (SELECT count(*) FROM contract_sections)"
            )
        elif path == "/maps/zones/jinling":
            assert w.drawn("zone") == 1
            assert w.drawn("sections") == _count(
                maps_db, "SELECT count(*) FROM contract_sections WHERE zone_code = 'jinling'"
            )
            assert w.drawn("street_lights") > 0
            assert w.drawn("cases") == _count(maps_db, "SELECT count(*) FROM cases WHERE zone_code = 'jinling'")
            assert "金岭" in w.page.inner_text(".wuye-title")
    finally:
        w.close()


def test_english_fallback(browser, base_url):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance?lang=en")
        assert "Facility maintenance" in page.inner_text(".wuye-title")
        assert "faulty" in page.inner_text(".wuye-legend")
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("path", ["/maps/maintenance", "/maps/zones/jinling"])
def test_the_maps_date_is_the_day_in_shanghai_on_a_browser_in_utc_after_16_00(browser, base_url, path):
    """The zone PDF's date is the programme's day (Asia/Shanghai); the map in it, drawn by a browser
    whose clock and zone say 2026-03-31 17:30 UTC, must print the same day: 2026-04-01."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, timezone_id="UTC")
    try:
        page = context.new_page()
        page.clock.set_fixed_time(datetime(2026, 3, 31, 17, 30, tzinfo=UTC))
        page.goto(base_url + path)
        page.wait_for_function(READY, timeout=30_000)
        assert page.evaluate("new Date().toISOString()").startswith("2026-03-31T17:30")
        assert page.inner_text(".wuye-date").endswith("2026-04-01"), page.inner_text(".wuye-date")
    finally:
        context.close()


def test_maintenance_layer_toggle_hides_and_shows_a_layer(browser, base_url):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance")
        before = w.drawn("street_lights")
        assert before > 0
        page.get_by_label("路灯").uncheck()
        assert w.drawn("street_lights") == 0
        assert page.evaluate("wuye.map.hasLayer(wuye.state.layers.street_lights)") is False
        assert w.drawn("septic_tanks") > 0
        page.get_by_label("路灯").check()
        page.wait_for_function("() => wuye.drawn('street_lights') > 0")
        assert w.drawn("street_lights") == before
    finally:
        w.close()


def test_maintenance_draws_the_line_kinds_by_condition_with_their_own_symbols(browser, base_url, maps_db):
    """Issue 18: drains, roads, ditches and walls drawn as lines in their condition's colour; every
    kind in the legend (lines by their dash pattern)."""
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance")
        legend = page.inner_text(".wuye-legend")
        for title in ("下水管网", "检查井", "栋间道路", "沟渠", "围墙", "文体器材", "晾衣架"):
            assert title in legend, title
        assert page.locator(".wuye-legend svg line").count() == 4
        page.evaluate("wuye.map.setView([28.2406, 112.9565], 17, {animate: false})")
        page.wait_for_function(READY)
        page.wait_for_function("() => wuye.drawn('roads') > 0 && wuye.drawn('drains') > 0")
        for layer in ("roads", "drains", "manholes"):
            assert w.drawn(layer) > 0, layer
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "maintenance-six-kinds.png"))
        assert w.errors == []
    finally:
        w.close()


def test_maintenance_popup_reads_the_feature(browser, base_url):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance")
        page.evaluate("wuye.map.setView([28.2406, 112.9565], 17, {animate: false})")
        page.wait_for_function(READY)
        # At this zoom the detail grid draws every light (the overview grid stands aside); click one.
        assert page.evaluate("wuye.state.layers.street_lights.getLayers()[0].wuyeOverview") is True
        # a real mouse click at the pixel where the page draws a light (its position read from the page)
        code, lat, lon = page.evaluate("""() => {
            const grid = wuye.state.layers.street_lights.getLayers()[1], s = grid.getTileSize();
            for (const [key, r] of Object.entries(grid._vectorTiles)) {
              const c = grid._tiles[key] && grid._tiles[key].coords;
              for (const [id, f] of Object.entries(r._features)) {
                const pt = f.feature._point;
                const ll = wuye.map.unproject(L.point(c.x * s.x + pt.x, c.y * s.y + pt.y), c.z);
                const p = wuye.map.latLngToContainerPoint(ll), size = wuye.map.getSize();
                if (p.x > 300 && p.y > 300 && p.x < size.x - 300 && p.y < size.y - 300) return [id, ll.lat, ll.lng];
              }
            }
            return [null, 0, 0]; }""")
        assert code
        x, y = page.evaluate(
            "([a, b]) => { const p = wuye.map.latLngToContainerPoint([a, b]);"
            " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon],
        )
        page.mouse.click(x, y)
        page.wait_for_selector(".leaflet-popup-content")
        if page.locator(".wuye-hits").count():  # several lights under the pointer: choose ours
            page.locator(".wuye-hits a", has_text=code).first.click()
            page.wait_for_selector(".leaflet-popup-content .wuye-value")
        page.wait_for_selector(".leaflet-popup-content")
        text = page.inner_text(".leaflet-popup-content")
        assert code in text and "状况" in text and "最近维护" in text
    finally:
        w.close()


def test_cases_filters_and_heat_map(browser, base_url, maps_db):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/cases")
        assert w.drawn("cases") == 3
        page.select_option("#f-category", "light_out")
        page.click("#f-apply")
        page.wait_for_function(READY)
        assert w.drawn("cases") == _count(maps_db, "SELECT count(*) FROM cases WHERE category = 'light_out'") == 2
        page.select_option("#f-category", "")
        page.fill("#f-since", "2000-01-01")
        page.fill("#f-until", "2000-01-02")
        page.click("#f-apply")
        page.wait_for_function(READY)
        assert w.drawn("cases") == 0
        page.check("#f-heat")
        assert page.evaluate("wuye.map.hasLayer(wuye.state.layers.heat)") is True
        page.uncheck("#f-heat")
        assert page.evaluate("wuye.map.hasLayer(wuye.state.layers.heat)") is False
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_case_state_filter_names_each_state_by_its_own_label(browser, base_url, lang):
    # The page used to look a label up by the state's position in a key-sorted table and named
    # 'closed' 已上报; labels now come from the server by key (layers/vocabulary.toml).
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/cases" + ("?lang=en" if lang == "en" else ""))
        options = page.evaluate(
            "() => [...document.querySelectorAll('#f-state option')].filter(o => o.value).map(o => [o.value, o.text])"
        )
        assert dict(options) == vocabulary("case_states").labels(lang)
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_case_category_filter_names_each_category_in_the_page_language(browser, base_url, lang):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/cases" + ("?lang=en" if lang == "en" else ""))
        page.wait_for_function("() => document.querySelectorAll('#f-category option').length > 1")
        options = page.evaluate(
            "() => [...document.querySelectorAll('#f-category option')]"
            ".filter(o => o.value).map(o => [o.value, o.text])"
        )
        expected = {c.code: (c.name_en if lang == "en" else c.name) for c in categories().values()}
        assert dict(options) == expected
        assert w.errors == []
    finally:
        w.close()


def test_overdue_cases_stand_out(browser, base_url, maps_db):
    with psycopg.connect(maps_db, autocommit=True) as conn:
        conn.execute("UPDATE cases SET due_at = now() - interval '1 day' WHERE category = 'garbage_pile'")
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/cases")
        styles = page.evaluate("""() => wuye.state.layers.cases.getLayers().map(l => [
            l.feature.properties.category, l.options.color, l.options.radius])""")
        overdue = [s for s in styles if s[0] == "garbage_pile"]
        assert overdue and all(s[1] == OVERDUE_COLOUR and s[2] == 8 for s in overdue)
        assert all(s[1] != OVERDUE_COLOUR for s in styles if s[0] != "garbage_pile")
    finally:
        w.close()


def test_remediation_subdistrict_filter(browser, base_url, maps_db):
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/remediation")
        page.select_option("#f-subdistrict", "xihu")
        page.wait_for_function(READY)
        assert w.drawn("zones") == _count(maps_db, "SELECT count(*) FROM zones WHERE subdistrict_code = 'xihu'")
        assert 0 < w.drawn("zones") < _count(maps_db, "SELECT count(*) FROM zones")
    finally:
        w.close()


def test_remediation_colours_by_verified_share_and_lists_each_item(browser, db_url):
    from geo.programme.remediation import plan_items

    with psycopg.connect(db_url) as conn:
        plan_items(conn, district_code="430104", actor="tests", zone_code="jinling")
        conn.commit()
        total = _count(db_url, "SELECT count(*) FROM remediation_tasks WHERE zone_code = 'jinling'")
        conn.execute(
            "UPDATE remediation_tasks SET state = 'verified' WHERE id IN (SELECT id FROM remediation_tasks "
            "WHERE zone_code = 'jinling' ORDER BY id LIMIT %s)",
            [total],
        )
        conn.commit()
    assert total > 0
    with local_server(create_app(settings_for(db_url))) as url:
        w = Watched(browser)
        try:
            page = w.open(url + "/maps/remediation")
            fills = page.evaluate(
                "() => Object.fromEntries(wuye.state.layers.zones.getLayers().map("
                "l => [l.feature.id, l.options.fillColor]))"
            )
            top = COMPLETION_BREAKS[-1][1]
            assert fills["jinling"] == top  # all verified: the top completion class
            assert fills["daopo"] != top  # no tasks: coloured by phase
            assert "≥ 100%" in page.inner_text(".wuye-legend")
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT ST_Y(p), ST_X(p) FROM zones, ST_PointOnSurface(geom) p WHERE code = 'jinling'"
                ).fetchone()
            assert row is not None
            page.evaluate("(ll) => { wuye.map.setView(ll, 16, {animate: false}); }", list(row))
            page.wait_for_function(READY)
            x, y = page.evaluate(
                "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
                " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
                list(row),
            )
            page.mouse.click(x, y)
            page.wait_for_function("() => document.querySelectorAll('.wuye-tasks li').length > 0")
            items = page.locator(".wuye-tasks li").all_inner_texts()
            assert len(items) == total and all("已验收" in t for t in items)
            assert w.errors == []
        finally:
            w.close()


# -- planner page: tests/test_plan_page.py ------------------------------------------------------------


SHOTS = Path(__file__).resolve().parents[1] / "var" / "shots"  # screenshots for a person to look at


def test_login_page_shows_the_chinese_reason_of_a_refused_sign_in(browser, base_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    try:
        page.goto(f"{base_url}/login")
        page.locator("#u").fill("nobody-here")
        page.locator("#p").fill("wrong-password")
        page.locator("#login button[type=submit]").click()
        page.wait_for_function("() => document.getElementById('msg').textContent.length > 0")
        assert "用户名或密码错误" in page.inner_text("#msg")
        page.screenshot(path=str(SHOTS / "login-refused.png"))
    finally:
        page.close()


# -- report page ------------------------------------------------------------------------------------------
def test_report_page_taps_a_position_and_gets_a_case_number_and_unit(browser, base_url, maps_db):
    w = Watched(browser, 390, 844)
    try:
        page = w.open(base_url + "/report")
        page.evaluate("wuye.map.setView([28.2406, 112.9565], 17, {animate: false})")
        box = page.locator(".folium-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.select_option("#r-category", "light_out")
        page.fill("#r-description", "路灯不亮（浏览器测试）")
        page.click("#r-submit")
        page.wait_for_selector("#r-code")
        code = page.inner_text("#r-code")
        assert code and page.inner_text("#r-unit") != "—"
        assert "附近可能重复的事件" in page.inner_text("#r-result")
        assert _count(maps_db, "SELECT count(*) FROM cases WHERE code = %s AND zone_code = 'jinling'", (code,)) == 1
        assert w.errors == []
    finally:
        w.close()


def test_report_page_uses_the_phone_gps_and_uploads_a_photo_when_signed_in(browser, base_url, maps_db, tmp_path):
    token = auth_headers(maps_db, "resident")["Authorization"].split(" ", 1)[1]
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        geolocation={"longitude": 112.9566, "latitude": 28.2404},
        permissions=["geolocation"],
    )
    context.add_init_script(f"localStorage.setItem('wuye_token', {token!r});")
    photo = tmp_path / "light.png"
    photo.write_bytes(
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
        b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base_url + "/report")
        page.wait_for_function(READY)
        page.click("#r-gps")
        page.wait_for_function("() => document.querySelector('#r-pos').textContent.startsWith('112.956600')")
        page.select_option("#r-category", "light_out")
        page.set_input_files("#r-photo", str(photo))
        page.click("#r-submit")
        page.wait_for_selector("#r-code")
        code = page.inner_text("#r-code")
        page.wait_for_function("() => document.querySelector('#r-result').textContent.includes('✓')")
        with psycopg.connect(maps_db) as conn:
            row = conn.execute(
                "SELECT coord_sys, zone_code, reporter_user IS NOT NULL FROM cases WHERE code = %s", [code]
            ).fetchone()
        assert row == ("wgs84", "jinling", True)
        photos = httpx.get(f"{base_url}/cases/{code}/photos", headers={"Authorization": f"Bearer {token}"}).json()
        assert len(photos) == 1
        assert errors == []
    finally:
        context.close()


# -- landing page, basemaps -----------------------------------------------------------------------------
def test_landing_page_links_every_map_and_every_zone(base_url, maps_db):
    links = {lk["href"] for lk in httpx.get(base_url + "/").json()["links"]}
    for path in PAGES:
        assert base_url + path in links or "/zones/" in path
    with psycopg.connect(maps_db) as conn:
        zones = [r[0] for r in conn.execute("SELECT code FROM zones")]
    assert zones and all(f"{base_url}/maps/zones/{z}" in links for z in zones)
    html = httpx.get(base_url + "/?f=html").text
    assert "/maps/maintenance" in html and "/maps/zones/jinling" in html


def test_osm_basemap_is_allowed_by_the_page_csp(maps_db):
    app = create_app(settings_for(maps_db))
    app.state.map_settings = MapSettings(basemap="osm")
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        r = client.get("/maps/maintenance")
    assert "tile.openstreetmap.org" in r.text
    assert "https://tile.openstreetmap.org" in r.headers["content-security-policy"]


def test_tianditu_needs_a_key():
    with pytest.raises(ValueError, match="WUYE_TIANDITU_KEY"):
        MapSettings(basemap="tianditu")


def test_amap_basemap_shifts_overlays_to_gcj02_and_clicks_back(browser, maps_db):
    from geo.spatial.coords import wgs84_to_gcj02

    app = create_app(settings_for(maps_db))
    app.state.map_settings = MapSettings(basemap="amap")
    with local_server(app) as url:
        w = Watched(browser)
        w.page.route("**/*autonavi.com/**", lambda route: route.abort())
        try:
            w.open(url + "/maps/zones/jinling")
            probes = [(112.9565, 28.2406), (112.95, 28.20), (112.91, 28.17)]
            shown = w.page.evaluate(
                "(ps) => ps.map(p => { const ll = wuye.toDisplay(p[0], p[1]);"
                " const back = wuye.fromDisplay(ll); return [ll.lng, ll.lat, back[0], back[1]]; })",
                probes,
            )
            for (lon, lat), (slon, slat, blon, blat) in zip(probes, shown, strict=True):
                glon, glat = wgs84_to_gcj02(lon, lat)
                assert abs(slon - glon) * 98_000 < 0.5 and abs(slat - glat) * 111_000 < 0.5
                assert abs(blon - lon) * 98_000 < 0.01 and abs(blat - lat) * 111_000 < 0.01
            # the zone outline is drawn shifted (about 600 m here), not where the stored data is
            west = w.page.evaluate("wuye.state.layers.zone.getBounds().getWest()")
            with psycopg.connect(maps_db) as conn:
                row = conn.execute("SELECT ST_XMin(geom) FROM zones WHERE code = 'jinling'").fetchone()
            assert row is not None and abs(west - wgs84_to_gcj02(row[0], 28.235)[0]) < 0.0002
        finally:
            w.close()


# -- snapshots ----------------------------------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_colours(data: bytes) -> set[tuple[int, ...]]:
    """Distinct RGB(A) colours of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    width, height = _png_size(data)
    depth, colour_type = data[24], data[25]
    assert depth == 8 and colour_type in (2, 6)
    channels = 3 if colour_type == 2 else 4
    raw, pos = b"", 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            raw += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(raw)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = pixels[y * (stride + 1)]
        line = bytearray(pixels[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return {tuple(r[i : i + 3]) for r in rows for i in range(0, stride, channels * 7)}


def test_zone_snapshot_png_has_the_size_and_shows_the_zone(base_url):
    r = httpx.get(f"{base_url}/maps/zones/jinling/snapshot.png", params={"width": 640, "height": 480}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert _png_size(r.content) == (640, 480)
    colours = _png_colours(r.content)
    assert len(colours) > 20  # not a blank page
    zone_outline = (0xD9, 0x48, 0x01)
    assert any(sum(abs(a - b) for a, b in zip(c, zone_outline, strict=True)) < 30 for c in colours)


def test_zone_snapshot_pdf_has_title_legend_and_date(base_url):
    r = httpx.get(f"{base_url}/maps/zones/jinling/snapshot.pdf", timeout=60)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=r.content, capture_output=True, check=True
    ).stdout.decode()
    assert "金岭" in text and "图例" in text and "日期" in text and "北" in text
    assert " m" in text  # the scale bar


def test_unknown_zone_snapshot_is_404_without_a_browser(base_url):
    assert httpx.get(f"{base_url}/maps/zones/nowhere/snapshot.png").status_code == 404
    assert httpx.get(f"{base_url}/maps/zones/nowhere").status_code == 404


def test_cli_snapshot_writes_a_png_of_the_requested_size(base_url, tmp_path):
    from api.cli import main

    out = tmp_path / "jinling.png"
    assert (
        main(
            ["snapshot", "--zone", "jinling", "--out", str(out), "--width", "500", "--height", "400", "--url", base_url]
        )
        == 0
    )
    assert _png_size(out.read_bytes()) == (500, 400)


def test_cli_snapshot_of_an_unknown_zone_fails_without_writing(base_url, tmp_path, capsys):
    from api.cli import main

    out = tmp_path / "nowhere.png"
    assert main(["snapshot", "--zone", "nowhere", "--out", str(out), "--url", base_url]) == 1
    assert not out.exists()
    assert "404" in capsys.readouterr().err


def test_static_assets_refuse_paths_outside_their_roots(base_url):
    assert httpx.get(f"{base_url}/static/vendor/leaflet/dist/leaflet.js").status_code == 200
    assert httpx.get(f"{base_url}/static/vendor/%2E%2E/package.json").status_code == 404
    assert httpx.get(f"{base_url}/static/app/..%2F..%2Fsettings.py").status_code == 404
    assert httpx.get(f"{base_url}/static/nothing/x.js").status_code == 404
