"""Benchmark: the maintenance map page against a plain folium page embedding the same features.

With ``wuye demo --scale 30`` (about 100,000 facilities) in a bench database:
(1) the HTML bytes of ``/maps/maintenance`` and of a plain folium page with the
same four facility layers embedded as GeoJSON (circle markers by condition,
polygons for green plots, canvas renderer on both); (2) the time from
navigation start until the facilities are drawn in headless Chromium (ours:
the page's ready signal after its vector tiles have drawn; baseline: the first
frame after the load event, when folium's inline script has added every
feature), fresh browser context (empty cache) per run, runs alternating;
(3) the time from navigation until the first mouse click on a street light opens its popup at
zoom 17: ``/maps/maintenance#17/lat/lon`` (a link to that view), the page drawn, a real
``page.mouse.click`` at the light's pixel, the popup with the light's code in the DOM; fresh
context per run;
(4) a zone snapshot PNG (first one including the browser launch, then warm).
Results go to ``bench/results/maps.md``.

With ``--base DIR`` (an earlier commit's files, e.g. ``git archive REV | tar -x -C DIR`` with
``maps/static/node_modules`` linked in), that commit's app is served beside ours on the same
database and its page timed in the same alternation, as the named baseline of this change.

    .venv/bin/python bench/maps.py [--scale 30] [--runs 5] [--base DIR]

``--edit`` times saving one edited zone on ``/maps/plan`` instead (``bench/results/maps-edit.md``):

    .venv/bin/python bench/maps.py --edit [--scale 30] [--runs 7]
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import folium
import httpx
import psycopg

from bench._common import RESULTS, bench_database, git_revision, machine, server_versions
from bench._load import free_port, our_server, wait_ready
from maps import snapshot, styles

DISTRICT = "430104"
LOAD_START = [os.getloadavg()[0]]
LAYERS = ["street_lights", "septic_tanks", "litter_bins", "green_plots"]


def _prepare(scale: int) -> tuple[str, dict[str, int]]:
    from geo.demo.load import load_demo
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    url = bench_database("wuye_bench_maps")
    catalogue = load_catalogue()
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, catalogue)
    with psycopg.connect(url) as conn:
        load_demo(conn, catalogue, district_code=DISTRICT, scale=scale)
    counts = {}
    with psycopg.connect(url) as conn:
        for layer in LAYERS:
            row = conn.execute(f"SELECT count(*) FROM {layer}").fetchone()  # noqa: S608 - fixed names
            counts[layer] = int(row[0]) if row else 0
    return url, counts


def _all_items(base: str, layer: str) -> dict[str, Any]:
    """Every feature of a layer through our items endpoint (limit 10000, following next)."""
    features: list[dict[str, Any]] = []
    url: str | None = f"{base}/collections/{layer}/items?limit=10000"
    with httpx.Client(timeout=120) as client:
        while url:
            page = client.get(url).json()
            features += page["features"]
            url = next((lk["href"] for lk in page.get("links", []) if lk["rel"] == "next"), None)
    return {"type": "FeatureCollection", "features": features}


def _baseline_page(base: str, bounds: list[float]) -> str:
    """The plain folium page: same layers, same colours, every feature embedded as GeoJSON."""
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=12,
        tiles=None,
        max_zoom=19,
        prefer_canvas=True,
    )
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        colour = styles.CONDITION_COLOURS.get(feature["properties"].get("condition"), "#888")
        return {"fillColor": colour, "color": "#333", "weight": 1, "fillOpacity": 0.9}

    for layer in LAYERS:
        folium.GeoJson(
            _all_items(base, layer), name=layer, style_function=style, marker=folium.CircleMarker(radius=4, fill=True)
        ).add_to(m)
    folium.LayerControl().add_to(m)
    # Our served copies of Leaflet (maps.assets points folium at /static/...), absolute for this page.
    return m.get_root().render().replace('"/static/', f'"{base}/static/')


@contextmanager
def _base_server(database_url: str, base: Path | None) -> Iterator[str | None]:
    """The earlier commit's app (its files first on the path, same interpreter and packages), or None."""
    if base is None:
        yield None
        return
    port = free_port()
    env = {**os.environ, "WUYE_DATABASE_URL": database_url, "PYTHONPATH": str(base)}
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--log-level", "warning", "--no-access-log"], cwd=base, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/health", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def _static_server(html: str) -> Iterator[str]:
    """Serve the baseline page from another loopback port (same machine, same browser)."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/baseline.html"
    finally:
        httpd.shutdown()


def _time_to_drawn(browser: Any, url: str, ours: bool) -> float:
    """Milliseconds from navigation start until the facilities are drawn (fresh context: empty cache)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        page.goto(url, wait_until="load", timeout=600_000)
        if ours:
            page.wait_for_function("() => window.wuyeReady === true", timeout=600_000)
            drawn = page.evaluate("() => wuye.readyAt")
            counts = page.evaluate(f"() => {LAYERS!r}.map(n => wuye.drawn(n))")
            assert all(c > 0 for c in counts), counts
        else:
            drawn = page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(performance.now())))")
        return float(drawn)
    finally:
        context.close()


# Records when a popup naming the light appears (set before the page's own scripts run).
POPUP_WATCH = """(code) => { new MutationObserver((_, obs) => {
  const el = document.querySelector('.leaflet-popup-content');
  if (el && el.textContent.includes(code)) { window.benchPopupAt = performance.now(); obs.disconnect(); }
}).observe(document, { childList: true, subtree: true, characterData: true }); }"""


def _time_to_popup(browser: Any, url: str, light: tuple[str, float, float]) -> float:
    """Milliseconds from navigation start until a real mouse click on ``light`` at zoom 17 has opened
    its popup (fresh context: empty cache)."""
    code, lat, lon = light
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.add_init_script(f"({POPUP_WATCH})({code!r})")
    page = context.new_page()
    try:
        page.goto(f"{url}#17/{lat:.7f}/{lon:.7f}", wait_until="commit", timeout=600_000)
        page.wait_for_function("() => window.wuyeReady === true", timeout=600_000)
        x, y = page.evaluate(
            "(ll) => { const p = wuye.map.latLngToContainerPoint(ll);"
            " const r = wuye.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon],
        )
        page.mouse.click(x, y)
        page.wait_for_function("() => window.benchPopupAt !== undefined", timeout=600_000)
        return float(page.evaluate("() => window.benchPopupAt"))
    finally:
        context.close()


def _a_light(url: str) -> tuple[str, float, float]:
    """A street light with no other facility within 5 m (one answer under the pointer, no list)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT l.code, ST_Y(l.geom), ST_X(l.geom) FROM street_lights l, zones z "
            "WHERE z.code = 'jinling' AND ST_Within(l.geom, z.geom) AND NOT EXISTS (SELECT 1 FROM street_lights o "
            " WHERE o.code <> l.code AND ST_DWithin(o.geom::geography, l.geom::geography, 5)) ORDER BY l.code LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0]), float(row[1]), float(row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base", type=Path, help="files of the baseline commit, served beside ours")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    url, counts = _prepare(args.scale)
    print(
        f"bench database ready ({sum(counts.values()):,} facilities) in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    with our_server(url) as base, _base_server(url, args.base) as earlier:
        ours_html = httpx.get(f"{base}/maps/maintenance").content
        earlier_ms: list[float] = []
        earlier_bytes = len(httpx.get(f"{earlier}/maps/maintenance").content) if earlier else 0
        bounds = httpx.get(f"{base}/collections").json()["collections"][0]["extent"]["spatial"]["bbox"][0]
        baseline_html = _baseline_page(base, bounds)
        ours_ms: list[float] = []
        base_ms: list[float] = []
        with _static_server(baseline_html) as baseline_url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=snapshot.CHROMIUM, args=snapshot.CHROMIUM_ARGS)
            # The first load after the server starts computes the overview tiles (kept 60 s after).
            cold_ms = _time_to_drawn(browser, f"{base}/maps/maintenance", ours=True)
            print(f"cold: ours {cold_ms:.0f} ms", flush=True)
            if earlier:
                _time_to_drawn(browser, f"{earlier}/maps/maintenance", ours=True)  # its overview tiles cached too
            for run in range(args.runs):
                ours_ms.append(_time_to_drawn(browser, f"{base}/maps/maintenance", ours=True))
                base_ms.append(_time_to_drawn(browser, baseline_url, ours=False))
                if earlier:
                    earlier_ms.append(_time_to_drawn(browser, f"{earlier}/maps/maintenance", ours=True))
                print(
                    f"run {run + 1}: ours {ours_ms[-1]:.0f} ms, folium+GeoJSON {base_ms[-1]:.0f} ms"
                    + (f", base {earlier_ms[-1]:.0f} ms" if earlier_ms else ""),
                    flush=True,
                )
            light = _a_light(url)
            popup_ms = []
            for run in range(args.runs):
                popup_ms.append(_time_to_popup(browser, f"{base}/maps/maintenance", light))
                print(f"run {run + 1}: navigation → popup after a click at zoom 17 {popup_ms[-1]:.0f} ms", flush=True)
            browser.close()
        t0 = time.perf_counter()
        png = snapshot.render_zone_png(base, "jinling", 1200, 800)
        first_snapshot = time.perf_counter() - t0
        warm: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            snapshot.render_zone_png(base, "jinling", 1200, 800)
            warm.append(time.perf_counter() - t0)
        snapshot.close()
    _write(
        args,
        url,
        counts,
        len(ours_html),
        len(baseline_html.encode()),
        ours_ms,
        base_ms,
        first_snapshot,
        warm,
        len(png),
        cold_ms,
        popup_ms,
        (args.base.name, earlier_bytes, earlier_ms) if args.base else None,
    )


def _write(
    args: argparse.Namespace,
    url: str,
    counts: dict[str, int],
    ours_bytes: int,
    base_bytes: int,
    ours_ms: list[float],
    base_ms: list[float],
    first_snapshot: float,
    warm: list[float],
    png_bytes: int,
    cold_ms: float,
    popup_ms: list[float],
    earlier: tuple[str, int, list[float]] | None,
) -> None:
    o, b = statistics.median(ours_ms), statistics.median(base_ms)
    load_start = LOAD_START[0]
    lines = [
        "# Map page benchmark (`bench/maps.py`)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, revision {git_revision()}",
        f"- machine: {machine()}; load average at the start {load_start:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f} (a shared machine: "
        "other benchmarks and test suites ran at the same time, so absolute times are noisy)",
        f"- database: {server_versions(url)}; `wuye demo --scale {args.scale}` in a bench database",
        f"- facilities: {sum(counts.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + ")",
        "- browser: system Chromium, headless, via Playwright; fresh context (empty cache) per run, "
        f"{args.runs} alternating runs, medians; viewport 1200×800, the page's opening view "
        "(the programme zones' extent)",
        "- baseline: a plain folium page with the same four layers embedded as GeoJSON (circle markers "
        "coloured by condition, canvas renderer), served from a loopback port with Leaflet from our server",
        "",
        "| page | HTML bytes | time until the facilities are drawn (median) | runs (ms) |",
        "| --- | ---: | ---: | --- |",
        f"| ours `/maps/maintenance` (overview tiles, cached) | {ours_bytes:,} | {o:,.0f} ms | "
        + ", ".join(f"{v:.0f}" for v in ours_ms)
        + " |",
        f"| ours, first load after the server started (overview tiles computed, not cached) | {ours_bytes:,} | "
        f"{cold_ms:,.0f} ms | {cold_ms:.0f} |",
        f"| folium + embedded GeoJSON | {base_bytes:,} | {b:,.0f} ms | "
        + ", ".join(f"{v:.0f}" for v in base_ms)
        + " |",
    ]
    if earlier:
        rev, e_bytes, e_ms = earlier
        lines.append(
            f"| the commit before this change ({rev}), same run | {e_bytes:,} | {statistics.median(e_ms):,.0f} ms | "
            + ", ".join(f"{v:.0f}" for v in e_ms)
            + " |"
        )
    lines += [
        "",
        f"Ours is {base_bytes / ours_bytes:,.0f}× lighter and drawn {b / o:,.1f}× sooner "
        f"({b / cold_ms:,.1f}× on the cold first load); goal: under 300 kB and at least 10× sooner.",
        "Below zoom 15 the page draws overview tiles (per layer one symbol per 64-px cell with its count, "
        "coloured by the cell's most frequent condition); from zoom 15 every feature from the OGC tiles. The "
        "baseline draws every feature at once (and its HTML was built before the clock started). What "
        "limits the ratio: the baseline's time is mostly parsing 25 MB and drawing 67 k shapes, ours is "
        "Leaflet's start, the district's base layers (three paged GeoJSON requests) and a tile round trip "
        "per layer and zoom (two grids per layer), each a few tens of ms on this 2-core machine under load.",
        "",
        "| first mouse click on a street light at zoom 17 | median | runs (ms) |",
        "| --- | ---: | --- |",
        f"| navigation to `/maps/maintenance#17/lat/lon` → drawn → `page.mouse.click` → popup shown | "
        f"{statistics.median(popup_ms):,.0f} ms | " + ", ".join(f"{v:.0f}" for v in popup_ms) + " |",
        "",
        (
            f"Against the commit before this change: {statistics.median(earlier[2]) / o:.2f}× its time to draw "
            f"(ours / before: {o / statistics.median(earlier[2]):.2f}), {ours_bytes / earlier[1]:.2f}× its HTML "
            "(the navigation bar, the vocabularies' display order, the kind legend). It opened on the whole "
            "district, ours on the programme zones."
            if earlier
            else ""
        ),
        "",
        "Goal: under 1.5 s at 67 k facilities. The click is answered by the page itself from the decoded "
        "vector tile under the pointer (no request): the popup opens at once with the tile's code and "
        "condition, then reads the feature for its last maintenance "
        "(`GET /collections/street_lights/items/{code}`).",
        "",
        "| zone snapshot PNG (`render_zone_png`, jinling, 1200×800) | seconds |",
        "| --- | ---: |",
        f"| first (includes launching Chromium) | {first_snapshot:.2f} |",
        f"| warm (median of {len(warm)}) | {statistics.median(warm):.2f} |",
        f"| PNG bytes | {png_bytes:,} |",
        "",
        "Goal: a snapshot PNG in under 5 s.",
        "",
    ]
    out = RESULTS / "maps.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


# -- saving one edited zone on /maps/plan (``bench/maps.py --edit``; results in maps-edit.md) ----------
EDIT_ZONE = "bench-edit"


def _planner_token(url: str) -> str:
    from datetime import timedelta

    from geo.access import users

    with psycopg.connect(url, autocommit=True) as conn:
        name = f"bench-planner-{os.getpid()}"
        user = users.create_user(
            conn, username=name, password="bench-pass", role="planner", district_code=DISTRICT, actor="bench"
        )
        token, _ = users.issue_token(conn, user, ttl=timedelta(hours=2))
    return token


def _edit_zone(url: str) -> tuple[str, list[tuple[float, float]]]:
    """A 200 m square zone of its own (nothing inside it to keep inside), 400 m from the others."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "WITH z AS (SELECT ST_Transform(ST_Union(geom), 4547) AS g FROM zones), "
            "s AS (SELECT code, ST_Transform(geom, 4547) AS g FROM subdistricts), "
            "free AS (SELECT s.code, ST_Difference(ST_Buffer(s.g, -400), ST_Buffer(z.g, 400)) AS g FROM s, z) "
            "SELECT code, ST_X(p), ST_Y(p) FROM free, LATERAL ST_PointOnSurface(free.g) AS p "
            "WHERE NOT ST_IsEmpty(free.g) ORDER BY ST_Area(free.g) DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        sub, x, y = row
        corners = []
        for dx, dy in ((-100, -100), (100, -100), (100, 100), (-100, 100)):
            p = conn.execute(
                "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4547), 4490) p",
                (x + dx, y + dy),
            ).fetchone()
            assert p is not None
            corners.append((float(p[0]), float(p[1])))
    return str(sub), corners


def _save_once(browser: Any, base: str, token: str, corner: tuple[float, float], step: int) -> dict[str, float]:
    """Open /maps/plan, select the zone, drag its corner ``step`` px with the mouse, click 保存.

    Returns the PATCH's own duration (the browser's resource timing) and the time from the click
    until the page says 已保存, both in ms."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(f"localStorage.setItem('wuye_token', {token!r});")
    page = context.new_page()
    try:
        page.goto(f"{base}/maps/plan")
        page.wait_for_function("() => window.wuyeReady === true", timeout=120_000)
        page.evaluate(
            "(c) => wuye.map.setView(wuye.toDisplay(c[0], c[1]), 17, {animate: false})",
            [corner[0], corner[1]],
        )
        box = page.locator(".folium-map").bounding_box()

        def px(lon: float, lat: float) -> tuple[float, float]:
            c = page.evaluate(
                "(p) => { const c = wuye.map.latLngToContainerPoint(wuye.toDisplay(p[0], p[1])); return [c.x, c.y]; }",
                [lon, lat],
            )
            return box["x"] + c[0], box["y"] + c[1]

        x, y = px(*corner)
        page.mouse.click(x - 40, y + 40)  # inside the zone (south-west of its north-east corner): select it
        page.locator(".leaflet-pm-icon-edit").click()
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + step, y - step, steps=4)
        page.mouse.up()
        clicked = page.evaluate("() => performance.now()")
        page.locator("#p-save").click()
        page.wait_for_selector("#p-msg.wuye-ok, #p-msg.wuye-error", timeout=60_000)
        text = page.inner_text("#p-msg")
        assert "已保存" in text and "未保存" not in text, text
        confirmed = page.evaluate("() => wuye.plan.savedAt")
        request = page.evaluate(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/collections/zones/items/'))"
            ".map(e => e.duration).pop()"
        )
        return {"request": float(request), "confirmed": float(confirmed - clicked)}
    finally:
        context.close()


def _patch_directly(client: httpx.Client, base: str, token: str) -> float:
    """The baseline: the same PATCH (the zone's current geometry) sent by a plain HTTP client, ms."""
    item = client.get(f"{base}/collections/zones/items/{EDIT_ZONE}")
    body = {"geometry": item.json()["geometry"]}
    headers = {
        "Authorization": f"Bearer {token}",
        "If-Match": item.headers["ETag"],
        "Content-Type": "application/merge-patch+json",
    }
    t0 = time.perf_counter()
    r = client.patch(f"{base}/collections/zones/items/{EDIT_ZONE}", json=body, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200, r.text
    return elapsed


def edit_main(argv: list[str]) -> None:
    """Time saving one edited zone on /maps/plan against the same PATCH sent directly."""
    parser = argparse.ArgumentParser(description="save one edited zone on /maps/plan")
    parser.add_argument("--edit", action="store_true")
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    url, counts = _prepare(args.scale)
    token = _planner_token(url)
    subdistrict, corners = _edit_zone(url)
    page_runs: list[dict[str, float]] = []
    direct: list[float] = []
    with our_server(url) as base, httpx.Client(timeout=60) as client, sync_playwright() as pw:
        ring = [[list(c) for c in [*corners, corners[0]]]]
        created = client.post(
            f"{base}/collections/zones/items",
            json={
                "type": "Feature",
                "properties": {
                    "code": EDIT_ZONE,
                    "name": "基准测试小区",
                    "kind": "resettlement",
                    "phase": "survey",
                    "subdistrict_code": subdistrict,
                },
                "geometry": {"type": "MultiPolygon", "coordinates": [ring]},
            },
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"},
        )
        assert created.status_code == 201, created.text
        browser = pw.chromium.launch(executable_path=snapshot.CHROMIUM, args=snapshot.CHROMIUM_ARGS)

        def north_east() -> tuple[float, float]:  # where the corner is now (it moves by turns)
            ring = client.get(f"{base}/collections/zones/items/{EDIT_ZONE}").json()["geometry"]["coordinates"][0][0]
            lon, lat = max(ring, key=lambda c: c[0] + c[1])
            return float(lon), float(lat)

        _save_once(browser, base, token, north_east(), 6)  # warm-up (not counted)
        for run in range(args.runs):
            step = -6 if run % 2 == 0 else 6  # in, then out again
            page_runs.append(_save_once(browser, base, token, north_east(), step))
            direct.append(_patch_directly(client, base, token))
            print(f"run {run + 1}: page {page_runs[-1]}, direct PATCH {direct[-1]:.0f} ms", flush=True)
        browser.close()
    _write_edit(args, url, counts, page_runs, direct)


def _write_edit(
    args: argparse.Namespace, url: str, counts: dict[str, int], page_runs: list[dict[str, float]], direct: list[float]
) -> None:
    request = [r["request"] for r in page_runs]
    confirmed = [r["confirmed"] for r in page_runs]
    req, conf, base = statistics.median(request), statistics.median(confirmed), statistics.median(direct)
    lines = [
        "# Saving one edited zone on the planner page (`bench/maps.py --edit`)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, revision {git_revision()}",
        f"- machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} "
        f"(1, 5, 15 min: {', '.join(f'{v:.1f}' for v in os.getloadavg())}; a shared machine)",
        f"- database: {server_versions(url)}; `wuye demo --scale {args.scale}` "
        f"({sum(counts.values()):,} facilities) in a bench database; one uvicorn worker",
        "- each run: a fresh browser context opens `/maps/plan` with a planner's token, clicks the zone, "
        "clicks the edit tool, drags a corner 6 px (mouse down/move/up), clicks 保存; a square zone of its "
        f"own ({EDIT_ZONE}); {args.runs} runs after one warm-up, alternating with the baseline",
        "- baseline, in the same run: the same `PATCH` with `If-Match` (the zone's geometry) sent by a "
        "plain HTTP client (httpx), without the page",
        "",
        "| measure | median | runs (ms) | goal |",
        "| --- | ---: | --- | --- |",
        f"| the page's `PATCH` request (browser resource timing) | {req:,.0f} ms | "
        + ", ".join(f"{v:.0f}" for v in request)
        + " | < 500 ms |",
        f"| click on 保存 until the page says 已保存 | {conf:,.0f} ms | "
        + ", ".join(f"{v:.0f}" for v in confirmed)
        + " | < 1 s |",
        f"| baseline: the same `PATCH` from httpx | {base:,.0f} ms | " + ", ".join(f"{v:.0f}" for v in direct) + " | |",
        "",
        f"The page's request takes {req / base:.2f}× the direct one; the confirmation comes {conf - req:,.0f} ms "
        "after the request's own time (reading the answer, drawing the notes). Goals "
        + ("met" if req < 500 and conf < 1000 else "NOT met")
        + ".",
        "",
    ]
    out = RESULTS / "maps-edit.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    if "--edit" in sys.argv[1:]:
        edit_main(sys.argv[1:])
    else:
        main()
