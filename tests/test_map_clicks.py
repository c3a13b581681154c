"""Map pages under a person's hand: real mouse clicks (``page.mouse.click`` at a feature's pixel, read
from the page's map) open the popup of what lies under the pointer, and every popup names each case
state, facility condition and zone phase by its own label from ``layers/vocabulary.toml``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from layers.catalogue import vocabulary
from tests.conftest import settings_for
from tests.test_maps import READY, SHOTS, Watched, browser  # noqa: F401  (one browser for this module)

pytestmark = pytest.mark.usefixtures("browser")

LIGHTS_IN_JINLING = (
    "SELECT code, condition, ST_Y(geom), ST_X(geom) FROM street_lights "
    "WHERE ST_Within(geom, (SELECT geom FROM zones WHERE code = 'jinling'))"
)
# A row of points across jinling, 60 m apart: one case per state.
CASE_ROW = [(112.9540 + 0.0006 * i, 28.2400) for i in range(9)]


@pytest.fixture(scope="module")
def clicks_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("map_clicks", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(clicks_db: str) -> Iterator[str]:
    """The app on a real port, with a case in every state, a light in every condition and a zone
    in every phase."""
    with local_server(create_app(settings_for(clicks_db))) as url:
        states = list(vocabulary("case_states").labels())
        codes = []
        for lon, lat in CASE_ROW[: len(states)]:
            r = httpx.post(f"{url}/cases", json={"category": "garbage_pile", "lon": lon, "lat": lat})
            assert r.status_code == 201, r.text
            codes.append(r.json()["properties"]["code"] if "properties" in r.json() else r.json()["code"])
        with psycopg.connect(clicks_db, autocommit=True) as conn:
            for code, state in zip(codes, states, strict=True):
                conn.execute("UPDATE cases SET state = %s WHERE code = %s", [state, code])
            conditions = list(vocabulary("conditions").labels())
            lights = [
                r[0]
                for r in conn.execute(
                    LIGHTS_IN_JINLING + " ORDER BY code LIMIT %s",
                    [len(conditions)],
                )
            ]
            for code, condition in zip(lights, conditions, strict=True):
                conn.execute("UPDATE street_lights SET condition = %s WHERE code = %s", [condition, code])
            phases = list(vocabulary("phases").labels())
            zones = [r[0] for r in conn.execute("SELECT code FROM zones ORDER BY code LIMIT %s", [len(phases)])]
            for code, phase in zip(zones, phases, strict=True):
                conn.execute("UPDATE zones SET phase = %s WHERE code = %s", [phase, code])
        yield url


def _rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _show(page: Any, lat: float, lon: float, zoom: int) -> None:
    """Move the view (not an input event) and wait until what it shows has drawn."""
    page.evaluate("([lat, lon, z]) => { wuye.map.setView([lat, lon], z, {animate: false}); }", [lat, lon, zoom])
    page.wait_for_function(READY)


def click_at(page: Any, lat: float, lon: float) -> None:
    """A real mouse click at the pixel where the page's map draws lat/lon."""
    x, y = page.evaluate(
        """([lat, lon]) => { const p = wuye.map.latLngToContainerPoint([lat, lon]);
        const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
        [lat, lon],
    )
    page.mouse.click(x, y)


def popup_for(page: Any, lat: float, lon: float, pick: str | None = None) -> str:
    """Click at lat/lon; when a list of several features answers, click the entry naming ``pick``."""
    page.evaluate("() => { wuye.map.closePopup(); }")
    page.wait_for_selector(".leaflet-popup", state="detached")  # a closed popup fades out for 200 ms
    click_at(page, lat, lon)
    page.wait_for_selector(".leaflet-popup-content")
    if page.locator(".wuye-hits").count():
        assert pick is not None, page.inner_text(".wuye-hits")
        listed = page.inner_text(".wuye-hits")
        page.wait_for_function(READY)  # a list that pans the map into view: let it settle, as an eye does
        page.locator(".wuye-hits a", has_text=pick).first.click()
        try:
            page.wait_for_selector(".leaflet-popup-content .wuye-value", timeout=15_000)
        except Exception as e:  # say what the page showed instead, for the next person to read
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "popup-list-click-failed.png"))
            state = page.evaluate(
                "() => ({popup: (document.querySelector('.leaflet-popup-content') || {}).innerHTML || null,"
                " errors: wuye.state.errors, ready: window.wuyeReady, zoom: wuye.map.getZoom(),"
                " center: wuye.map.getCenter()})"
            )
            raise AssertionError(f"list {listed!r} clicked at {pick!r}; the page then showed {state!r}") from e
    return str(page.inner_text(".leaflet-popup-content"))


def _value(page: Any) -> tuple[str, str]:
    el = page.locator(".leaflet-popup-content .wuye-value").first
    el.wait_for()
    return str(el.get_attribute("data-key")), str(el.inner_text())


def _query(lang: str) -> str:
    return "?lang=en" if lang == "en" else ""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_case_popup_names_every_state_by_its_label(browser, base_url, clicks_db, lang):  # noqa: F811
    labels = vocabulary("case_states").labels(lang)
    cases = _rows(clicks_db, "SELECT code, state, ST_Y(geom), ST_X(geom) FROM cases WHERE category = 'garbage_pile'")
    assert {c[1] for c in cases} == set(labels)
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/cases" + _query(lang))
        seen = {}
        for code, state, _, _ in cases:
            # where the page draws it (the public position, snapped to a 50 m grid): read, not input
            lat, lon = page.evaluate(
                "(code) => { const l = wuye.state.layers.cases.getLayers()"
                ".find(m => m.feature.properties.code === code); return [l.getLatLng().lat, l.getLatLng().lng]; }",
                code,
            )
            _show(page, lat, lon, 18)
            text = popup_for(page, lat, lon, pick=code)
            assert code in text
            seen[state] = _value(page)
        assert seen == {k: (k, v) for k, v in labels.items()}
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_facility_popup_names_every_condition_by_its_label_at_zooms_15_to_19(browser, base_url, clicks_db, lang):  # noqa: F811
    labels = vocabulary("conditions").labels(lang)
    lights = _rows(
        clicks_db,
        LIGHTS_IN_JINLING + " ORDER BY code LIMIT 4",
    )
    assert {r[1] for r in lights} == set(labels)
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance" + _query(lang))
        seen = {}
        for i, (code, condition, lat, lon) in enumerate(lights):
            for zoom in (15, 17, 19) if i == 0 else (16 + i,):
                _show(page, lat, lon, zoom)
                text = popup_for(page, lat, lon, pick=code)
                assert code in text, (zoom, text)
                seen[condition] = _value(page)
        assert seen == {k: (k, v) for k, v in labels.items()}
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_zone_popup_names_every_phase_by_its_label(browser, base_url, clicks_db, lang):  # noqa: F811
    labels = vocabulary("phases").labels(lang)
    zones = _rows(
        clicks_db,
        "SELECT z.code, z.phase, ST_Y(p), ST_X(p) FROM zones z, LATERAL ST_PointOnSurface(z.geom) AS p ORDER BY z.code",
    )
    assert set(labels) <= {z[1] for z in zones}
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/remediation" + _query(lang))
        seen = {}
        for code, phase, lat, lon in zones:
            _show(page, lat, lon, 16)
            text = popup_for(page, lat, lon)
            assert f"({code})" in text
            seen[phase] = _value(page)
        assert seen == {k: (k, v) for k, v in labels.items() if k in seen} and set(seen) == set(labels)
        assert w.errors == []
    finally:
        w.close()


def _first(url: str, layer: str, zone: str = "jinling") -> tuple[str, float, float]:
    point = "geom" if layer != "green_plots" else "ST_PointOnSurface(geom)"
    rows = _rows(
        url,
        f"SELECT code, ST_Y({point}), ST_X({point}) FROM {layer} "  # noqa: S608
        "WHERE ST_Within(geom, (SELECT geom FROM zones WHERE code = %s)) ORDER BY code LIMIT 1",
        (zone,),
    )
    assert rows, layer
    code, lat, lon = rows[0]
    return str(code), float(lat), float(lon)


@pytest.mark.parametrize("path", ["/maps/maintenance", "/maps/zones/jinling"])
def test_a_click_opens_each_facility_layer_at_zooms_15_to_19(browser, base_url, clicks_db, path):  # noqa: F811
    w = Watched(browser)
    try:
        page = w.open(base_url + path)
        for i, layer in enumerate(("street_lights", "septic_tanks", "litter_bins", "green_plots")):
            code, lat, lon = _first(clicks_db, layer)
            for zoom in (15 + i, 19 - i):
                _show(page, lat, lon, zoom)
                text = popup_for(page, lat, lon, pick=code)
                assert code in text, (layer, zoom, text)
        assert w.errors == []
    finally:
        w.close()


def test_zone_page_clicks_open_the_section_the_zone_and_a_case(browser, base_url, clicks_db):  # noqa: F811
    section = _rows(
        clicks_db,
        "SELECT s.code, ST_Y(p), ST_X(p), s.name FROM contract_sections s, LATERAL ST_PointOnSurface(s.geom) p "
        "WHERE s.zone_code = 'jinling' ORDER BY s.code LIMIT 1",
    )[0]
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/zones/jinling")
        _show(page, section[1], section[2], 19)
        text = popup_for(page, section[1], section[2])
        # the section lies over the zone's outline: the topmost area answers alone, no list
        assert page.locator(".wuye-hits").count() == 0
        assert f"({section[0]})" in text
        # two cases reported at one spot: both under the pointer, a list names both; choose one
        lon, lat = 112.9570, 28.2412
        codes = []
        for _ in range(2):
            r = httpx.post(f"{base_url}/cases", json={"category": "light_out", "lon": lon, "lat": lat})
            assert r.status_code == 201
            codes.append(r.json()["properties"]["code"] if "properties" in r.json() else r.json()["code"])
        page.reload()
        page.wait_for_function(READY)
        lat, lon = page.evaluate(
            "(code) => { const l = wuye.state.layers.cases.getLayers().find(m => m.feature.properties.code === code);"
            " return [l.getLatLng().lat, l.getLatLng().lng]; }",
            codes[1],
        )
        _show(page, lat, lon, 18)
        page.evaluate("() => { wuye.map.closePopup(); }")
        page.wait_for_selector(".leaflet-popup", state="detached")
        click_at(page, lat, lon)
        page.wait_for_selector(".wuye-hits")
        entries = page.locator(".wuye-hits a").all_inner_texts()
        assert len(entries) >= 2 and all(any(c in e for e in entries) for c in codes), entries
        page.locator(".wuye-hits a", has_text=codes[1]).click()
        page.wait_for_selector(".leaflet-popup-content .wuye-value")
        assert codes[1] in page.inner_text(".leaflet-popup-content")
        assert w.errors == []
    finally:
        w.close()


def test_overview_symbol_click_shows_its_count_and_zooms_in(browser, base_url):  # noqa: F811
    w = Watched(browser)
    try:
        page = w.open(base_url + "/maps/maintenance")
        _show(page, 28.2406, 112.9565, 13)
        # the pixel of an overview symbol, read from the decoded tile (reading, not input)
        lat, lon, count = page.evaluate("""() => {
            const grid = wuye.state.layers.street_lights.getLayers()[0];
            for (const [key, r] of Object.entries(grid._vectorTiles)) {
              if (!grid._tiles[key] || !grid._tiles[key].current) continue;
              for (const f of Object.values(r._features)) {
                const c = grid._tiles[key].coords, s = grid.getTileSize();
                const o = f.feature.options, p = f.feature._point;
                const px = L.point(c.x * s.x + p.x + o.dx, c.y * s.y + p.y + o.dy);
                const ll = wuye.map.unproject(px, c.z);
                const cp = wuye.map.latLngToContainerPoint(ll), size = wuye.map.getSize();
                if (cp.x > 80 && cp.y > 80 && cp.x < size.x - 250 && cp.y < size.y - 250)
                  return [ll.lat, ll.lng, f.feature.properties.count];
              }
            }
            return [null, null, null]; }""")
        assert count
        click_at(page, lat, lon)
        page.wait_for_selector(".leaflet-popup-content")
        if page.locator(".wuye-hits").count():
            page.locator(".wuye-hits a", has_text="路灯").first.click()
        page.wait_for_selector(".wuye-overview-popup")
        assert str(count) in page.inner_text(".wuye-overview-popup") or "k" in page.inner_text(".wuye-overview-popup")
        page.locator(".wuye-zoom-in").click()
        page.wait_for_function("() => wuye.map.getZoom() === wuye.config.detailZoom")
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.parametrize("path", ["/maps/maintenance", "/maps/zones/jinling"])
def test_the_ready_signal_waits_for_the_tiles_of_a_new_view(browser, base_url, clicks_db, path):  # noqa: F811
    """A move to another zoom fetches new tiles: the page is not ready (for a click, a snapshot, a
    test) until they have drawn. The zone page stayed ready through a move, and a click made at once
    found only the section under the light (a failure seen in CI)."""
    w = Watched(browser)
    try:
        page = w.open(base_url + path)
        code, lat, lon = _first(clicks_db, "street_lights")
        ready_at_once = page.evaluate(
            "([lat, lon]) => { wuye.map.setView([lat, lon], 18, {animate: false}); return window.wuyeReady; }",
            [lat, lon],
        )
        assert ready_at_once is False
        page.wait_for_function(READY)
        assert code in popup_for(page, lat, lon, pick=code)
        assert w.errors == []
    finally:
        w.close()
