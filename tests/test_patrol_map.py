"""巡更图, the week's patrol map (issue 18 point 4) under a person's hand: the demo's two weeks of
rounds, a visitor asked to sign in, a sub-district's staff choosing a zone and clicking a checkpoint
that was never scanned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from geo.demo.load import DEMO_CHECKPOINTS, DEMO_NEGLECTED_ZONE, load_patrols
from tests.conftest import DISTRICT, settings_for
from tests.test_map_clicks import click_at
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person

READY = "() => window.wuyeReady === true"
STAFF = "patrol-map-staff"


@pytest.fixture(scope="module")
def patrol_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("patrol_map", template_db) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            load_patrols(conn, district_code=DISTRICT)
            users.create_user(
                conn,
                username=STAFF,
                password=PASSWORD,
                role="subdistrict_staff",
                district_code=DISTRICT,
                actor="tests",
                subdistrict_code="guanshaling",
            )
        yield url


@pytest.fixture(scope="module")
def base_url(patrol_db: str) -> Iterator[str]:
    with local_server(create_app(settings_for(patrol_db))) as url:
        yield url


def test_a_visitor_is_asked_to_sign_in(browser, base_url):  # noqa: F811
    p = Person(browser)
    try:
        p.page.goto(f"{base_url}/maps/patrols")
        p.page.wait_for_function(READY)
        status = p.page.locator("#p-status")
        assert "请先登录" in status.inner_text()
        assert status.locator("a").get_attribute("href") == "/login?next=%2Fmaps%2Fpatrols"
        assert p.page.locator("#p-zones tr").count() == 0
    finally:
        p.close()


def test_staff_see_the_neglected_zone_flagged_and_click_a_checkpoint_never_scanned(browser, base_url, patrol_db):  # noqa: F811
    with psycopg.connect(patrol_db) as conn:
        row = conn.execute(
            "SELECT code, ST_Y(geom), ST_X(geom) FROM patrol_points WHERE zone_code = %s ORDER BY code DESC LIMIT 1",
            [DEMO_NEGLECTED_ZONE],
        ).fetchone()
    assert row is not None
    code, lat, lon = row
    p = Person(browser)
    try:
        p.sign_in(base_url, STAFF, "/maps/patrols")
        page = p.page
        page.wait_for_function(READY)
        # the sub-district's zones, the neglected one flagged (5 of 8 checkpoints: 62.5 %)
        flagged = page.locator(f"#p-zones tr[data-zone='{DEMO_NEGLECTED_ZONE}']")
        assert "wuye-flagged" in (flagged.get_attribute("class") or "")
        assert "62.5 %" in flagged.inner_text() and "巡更覆盖率不足" in flagged.inner_text()
        assert page.locator("#p-zones tr.wuye-flagged").count() == 1
        # choose the zone and apply, as a person does
        page.locator("#p-zone").select_option(DEMO_NEGLECTED_ZONE)
        page.locator("#p-apply").click()
        page.wait_for_function(READY)
        assert page.locator("#p-status").inner_text().endswith(f"{DEMO_CHECKPOINTS} 巡更点")
        page.evaluate("([lat, lon]) => wuye.map.setView([lat, lon], 18, {animate: false})", [lat, lon])
        page.wait_for_function(READY)
        click_at(page, lat, lon)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        text = popup.inner_text()
        assert code in text and "黄泥塘" in text
        assert page.locator(".leaflet-popup-content .wuye-value[data-key='scans']").inner_text() == "0"
        assert page.locator(".leaflet-popup-content .wuye-value[data-key='days_missed']").inner_text() == "7"
        p.shot("patrol-map")
        assert p.errors == []
    finally:
        p.close()
