"""The resident's page /report and the follow page /report/{code}, on a phone (390×844, touch) in a real
Chromium: taps and typing only; a fresh Idempotency-Key per report (a retry reuses it); the photo
picker only when a photo can be sent; the case number, a follow link and a next-report button; the
follow page's public view; 50 concurrent clients on the follow page."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from layers.catalogue import vocabulary
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.live import serving, uvicorn_app, wuye
from tests.test_db_restart import Target, own_home, target  # noqa: F401  (a database we may stop and start)
from tests.test_maps import READY, browser  # noqa: F401  (one browser for this module)

SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
SPOT = (28.2406, 112.9565)  # inside jinling


@pytest.fixture(scope="module")
def report_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("report_page", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(report_db: str) -> Iterator[str]:
    with local_server(create_app(settings_for(report_db))) as url:
        yield url


class Phone:
    """A phone page with touch, its console errors and the POST /cases requests it sent."""

    def __init__(self, chromium: Any, token: str | None = None, **extra: Any) -> None:
        self.context = chromium.new_context(**PHONE, **extra)
        if token:
            self.context.add_init_script(f"localStorage.setItem('wuye_token', {token!r});")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.posts: list[dict[str, str]] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request",
            lambda r: self.posts.append(r.headers) if r.method == "POST" and r.url.endswith("/cases") else None,
        )

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_function(READY, timeout=30_000)
        return self.page

    def tap_map(self, lat: float, lon: float) -> None:
        """A finger on the map where it draws lat/lon (the position read from the page)."""
        self.page.evaluate("(ll) => { wuye.map.setView(ll, 17, {animate: false}); }", [lat, lon])
        x, y = self.page.evaluate(
            "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
            " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon],
        )
        self.page.touchscreen.tap(x, y)
        self.page.wait_for_function("() => document.querySelector('#r-pos').textContent !== '—'")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def _cases(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM cases").fetchone()
    return int(row[0]) if row else 0


def test_two_reports_from_one_page_each_get_their_own_key_and_case(browser, base_url, report_db):  # noqa: F811
    phone = Phone(browser)
    before = _cases(report_db)
    try:
        page = phone.open(base_url + "/report")
        assert not page.locator("#r-photo").is_visible()  # anonymous: no photo can be sent
        assert "登录后可上传照片" in page.inner_text(".wuye-report")
        phone.tap_map(*SPOT)
        page.locator("#r-category").select_option("light_out")
        page.locator("#r-description").tap()
        page.keyboard.type("路灯不亮")
        phone.shot("report-phone-form")
        page.locator("#r-submit").tap()
        page.wait_for_selector("#r-code")
        first = page.inner_text("#r-code")
        assert page.locator("#r-follow").get_attribute("href") == f"/report/{first}"
        phone.shot("report-phone-done")
        page.locator("#r-next").tap()
        page.locator("#r-category").select_option("garbage_pile")
        page.locator("#r-description").tap()
        page.keyboard.type("垃圾堆积")
        page.locator("#r-submit").tap()
        page.wait_for_selector("#r-code")
        second = page.inner_text("#r-code")
        assert second != first
        keys = [h["idempotency-key"] for h in phone.posts]
        assert len(keys) == 2 and keys[0] != keys[1]
        assert _cases(report_db) == before + 2
        assert phone.errors == []
    finally:
        phone.close()


def test_a_retry_after_a_network_error_reuses_the_key_and_reports_once(browser, base_url, report_db):  # noqa: F811
    phone = Phone(browser)
    before = _cases(report_db)
    try:
        page = phone.open(base_url + "/report")
        phone.tap_map(*SPOT)
        page.locator("#r-category").select_option("light_out")
        failed = []

        def once(route: Any) -> None:
            if not failed and route.request.method == "POST":
                failed.append(route.request.headers["idempotency-key"])
                route.abort()
            else:
                route.continue_()

        page.route("**/cases", once)
        page.locator("#r-submit").tap()
        page.wait_for_function("() => document.querySelector('#r-msg').textContent.includes('网络错误')")
        page.locator("#r-submit").tap()
        page.wait_for_selector("#r-code")
        assert failed and phone.posts[-1]["idempotency-key"] == failed[0]
        assert _cases(report_db) == before + 1
    finally:
        phone.close()


def test_messages_are_chinese_and_english_with_lang_en(browser, base_url):  # noqa: F811
    for lang, expected in (("zh", "请先在地图上点选位置或使用定位"), ("en", "Tap the map or use your location first")):
        phone = Phone(browser)
        try:
            page = phone.open(base_url + "/report" + ("?lang=en" if lang == "en" else ""))
            page.locator("#r-submit").tap()
            assert page.inner_text("#r-msg") == expected
        finally:
            phone.close()


def test_signed_in_reporter_gets_the_photo_picker(browser, base_url, report_db):  # noqa: F811
    token = auth_headers(report_db, "resident")["Authorization"].split(" ", 1)[1]
    phone = Phone(browser, token=token)
    try:
        page = phone.open(base_url + "/report")
        assert page.locator("#r-photo").is_visible()
        assert not page.locator("#r-photo-note").is_visible()
        page.locator(".wuye-nav .wuye-nav-menu").tap()  # the bar's links are under its menu on a phone
        assert page.locator(".wuye-nav-logout").is_visible() and not page.locator(".wuye-nav-login").is_visible()
    finally:
        phone.close()


def test_search_box_zooms_to_a_zone_by_name(browser, base_url, report_db):  # noqa: F811
    with psycopg.connect(report_db) as conn:
        row = conn.execute(
            "SELECT name, ST_Y(ST_Centroid(geom)), ST_X(ST_Centroid(geom)) FROM zones WHERE code = 'jinling'"
        ).fetchone()
    assert row is not None
    name, lat, lon = row
    phone = Phone(browser)
    try:
        page = phone.open(base_url + "/report")
        page.locator("#r-search").tap()
        page.keyboard.type(name)
        page.keyboard.press("Enter")
        page.wait_for_function("(ll) => wuye.map.getBounds().contains(ll) && wuye.map.getZoom() >= 15", arg=[lat, lon])
        page.locator("#r-search").fill("")
        page.locator("#r-search").tap()
        page.keyboard.type("没有这个地方")
        page.keyboard.press("Enter")
        assert page.inner_text("#r-msg") == "没有找到这个名称"
    finally:
        phone.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_follow_page_shows_the_state_and_public_history_without_personal_data(browser, base_url, lang):  # noqa: F811
    r = httpx.post(
        f"{base_url}/cases",
        json={
            "category": "light_out",
            "lon": SPOT[1],
            "lat": SPOT[0],
            "reporter_name": "张小明",
            "reporter_phone": "13800000000",
            "description": "楼下路灯不亮",
        },
    )
    assert r.status_code == 201
    code = r.json()["properties"]["code"]
    phone = Phone(browser)
    try:
        page = phone.open(f"{base_url}/report/{code}" + ("?lang=en" if lang == "en" else ""))
        page.wait_for_selector("#c-state")
        state = r.json()["properties"]["state"]
        assert page.inner_text("#c-state") == vocabulary("case_states").labels(lang)[state]
        assert page.locator("#c-history li").count() >= 1
        # times in Asia/Shanghai, "2026-11-30 09:15"
        reported = datetime.fromisoformat(r.json()["properties"]["reported_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        assert (
            page.inner_text("#c-history li")
            == f"{reported:%Y-%m-%d %H:%M} " + vocabulary("case_states").labels(lang)["reported"]
        )
        text = page.inner_text("body")
        assert code in text
        assert "张小明" not in text and "13800000000" not in text and "楼下路灯不亮" not in text
        phone.shot(f"follow-phone-{lang}")
        assert phone.errors == []
    finally:
        phone.close()


def test_follow_page_of_an_unknown_case_is_404_and_says_so(browser, base_url):  # noqa: F811
    assert httpx.get(f"{base_url}/report/C-NOPE").status_code == 404
    phone = Phone(browser)
    try:
        page = phone.open(f"{base_url}/report/C-NOPE")
        page.wait_for_function("() => document.querySelector('#c-body').textContent.includes('没有这个事件编号')")
    finally:
        phone.close()


def test_fifty_concurrent_clients_read_the_follow_page(server, template_db):
    name = f"wuye_follow_crowd_{os.getpid()}"
    db_url = server.create(name, template=template_db)
    try:
        with serving({"WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}, *uvicorn_app()) as url:
            r = httpx.post(f"{url}/cases", json={"category": "light_out", "lon": SPOT[1], "lat": SPOT[0]})
            assert r.status_code == 201
            code = r.json()["properties"]["code"]

            async def crowd() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=50)) as http:
                    pages = [http.get(f"{url}/report/{code}") for _ in range(50)]
                    views = [http.get(f"{url}/cases/{code}") for _ in range(50)]
                    return await asyncio.gather(*pages, *views)

            # in a thread of its own: this one runs Playwright's event loop
            with ThreadPoolExecutor(1) as pool:
                responses = pool.submit(asyncio.run, crowd()).result()
            assert Counter(r.status_code for r in responses) == Counter({200: 100})
            assert all(f'"caseCode": "{code}"' in r.text for r in responses[:50])
            assert all(r.json()["properties"]["history"][0]["state"] == "reported" for r in responses[50:])
    finally:
        server.drop(name)


def test_a_refused_report_and_a_refused_location_are_told_in_chinese(browser, base_url):  # noqa: F811
    outside = (28.60, 113.40)  # north-east of the district
    refused = httpx.post(f"{base_url}/cases", json={"category": "light_out", "lon": outside[1], "lat": outside[0]})
    assert 400 <= refused.status_code < 500
    phone = Phone(browser)
    try:
        page = phone.open(base_url + "/report")
        page.locator("#r-gps").tap()  # no permission to locate in this context
        page.wait_for_function("() => document.querySelector('#r-msg').textContent.length > 0")
        assert page.inner_text("#r-msg") == "未允许定位，请在地图上点选位置"
        phone.tap_map(*outside)
        page.locator("#r-category").select_option("light_out")
        page.locator("#r-submit").tap()
        page.wait_for_function("() => document.querySelector('#r-msg').textContent.startsWith('提交失败')")
        assert page.inner_text("#r-msg") == "提交失败：" + refused.json()["reason_zh"]
    finally:
        phone.close()


# Last in this module: it restarts the session's database under the module's own server too.
def test_follow_page_answers_503_while_the_database_is_down_and_recovers(target: Target):  # noqa: F811
    """The follow page reads the database: stopped, it answers 503 with Retry-After (never 500); started
    again, the same running server answers the page again."""
    with serving({**target.env, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}) as url:
        r = httpx.post(f"{url}/cases", json={"category": "light_out", "lon": SPOT[1], "lat": SPOT[0]})
        assert r.status_code == 201
        page = f"{url}/report/{r.json()['properties']['code']}"
        assert httpx.get(page).status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        try:
            down = httpx.get(page, timeout=60)
            assert down.status_code == 503 and "Retry-After" in down.headers, down.text
            assert down.json()["reason_zh"]
        finally:
            target.start()
        for _ in range(300):  # the pool reconnects by itself; give it up to a minute under load
            if httpx.get(page, timeout=60).status_code == 200:
                break
            time.sleep(0.2)
        assert httpx.get(page, timeout=60).status_code == 200


def _label_position(page: Any, zone: str) -> tuple[float, float]:
    """Where the page draws the zone's name label (lat, lon), once it is shown."""
    page.wait_for_selector(".wuye-zone-label")
    return tuple(
        page.evaluate(
            "(code) => { let at = null; wuye.map.eachLayer((l) => { if (l.feature && l.feature.id === code &&"
            " l.getTooltip && l.getTooltip() && l.isTooltipOpen()) { const p = l.getTooltip().getLatLng();"
            " at = [p.lat, p.lng]; } }); return at; }",
            zone,
        )
    )


def _marker_hidden_by_labels(page: Any, lat: float, lon: float, radius: int = 11) -> float | None:
    """Share of the marker's pixels (a disc of 9 px, the markers' radius, around lat/lon) that change when the zone
    labels are taken away: 0 when the marker is drawn above them; None when no label lies on the
    marker (then this view could not show the fault)."""
    from io import BytesIO

    from PIL import Image

    x, y = page.evaluate(
        "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
        " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lat, lon],
    )
    overlaps = page.evaluate(
        "([x, y, r]) => Array.from(document.querySelectorAll('.wuye-zone-label')).some((el) => {"
        " const b = el.getBoundingClientRect();"
        " return b.left < x + r && b.right > x - r && b.top < y + r && b.bottom > y - r; })",
        [x, y, radius],
    )
    if not overlaps:
        return None
    clip = {"x": x - radius, "y": y - radius, "width": 2 * radius, "height": 2 * radius}
    with_labels = Image.open(BytesIO(page.screenshot(clip=clip))).convert("RGB")
    page.evaluate("() => { wuye.map.getPane('wuyeLabels').style.visibility = 'hidden'; }")
    without = Image.open(BytesIO(page.screenshot(clip=clip))).convert("RGB")
    page.evaluate("() => { wuye.map.getPane('wuyeLabels').style.visibility = ''; }")
    scale = with_labels.width / (2 * radius)
    inside = changed = 0
    for i in range(with_labels.width):
        for j in range(with_labels.height):
            if (i / scale - radius) ** 2 + (j / scale - radius) ** 2 > 9**2:  # inside the outline
                continue
            inside += 1
            a, b = with_labels.getpixel((i, j)), without.getpixel((i, j))
            changed += max(abs(p - q) for p, q in zip(a, b, strict=True)) > 24
    return changed / inside


def test_the_zone_name_does_not_cover_the_case_marker(browser, base_url):  # noqa: F811
    """A case reported where the zone's name is written: on the follow page and on the report page
    the marker is drawn above the name (a person sees the marker, not the label over it)."""
    phone = Phone(browser)
    try:
        page = phone.open(f"{base_url}/report")
        page.evaluate("(ll) => { wuye.map.setView(ll, 17, {animate: false}); }", list(SPOT))
        lat, lon = _label_position(page, "jinling")
        phone.tap_map(lat, lon)  # the reporter's position marker, where the name is
        shown = page.evaluate("() => wuye.map.getZoom()")
        assert shown == 17
        assert _marker_hidden_by_labels(page, lat, lon) == 0
        phone.shot("report-marker-over-label")
        r = httpx.post(f"{base_url}/cases", json={"category": "light_out", "lon": lon, "lat": lat})
        assert r.status_code == 201, r.text
        code = r.json()["properties"]["code"]
        page = phone.open(f"{base_url}/report/{code}")
        page.wait_for_selector("#c-state")
        page.wait_for_function("() => wuye.map.getZoom() === 17")
        # the public view may place the case at its 50 m cell, off the name: zoom out until the
        # name (at the zone's centre) lies on the marker, as it does for a person zooming out
        at = page.evaluate("() => { const p = wuye.state.layers.case.getLatLng(); return [p.lat, p.lng]; }")
        seen = []
        for zoom in (17, 16, 15):
            page.evaluate("([ll, z]) => { wuye.map.setView(ll, z, {animate: false}); }", [at, zoom])
            page.wait_for_timeout(150)
            seen.append(_marker_hidden_by_labels(page, at[0], at[1]))
            if seen[-1] is not None:
                phone.shot("follow-marker-over-label")
                break
        assert seen[-1] == 0, seen
        assert phone.errors == []
    finally:
        phone.close()
