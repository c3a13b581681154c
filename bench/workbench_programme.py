"""The programme's pages under load (issue 21's benchmark), run by ``python -m bench.workbench --part
programme``: at the programme benchmark's scale (100,000 households in 2,000 buildings, 20,000 survey
answers, the ten demo zones; with 20,000 cases over the district and a year of fee bills so that every
chart has figures), a bureau administrator's

- server time of the acceptance desk (``/workbench/acceptance``), the phases table (``/workbench/phases``)
  and the statistics JSON (``/workbench/stats/data``) under ``--users`` closed-loop clients (wrk), the
  first two against ``GET /acceptance`` and ``GET /phases``, the same figures as JSON, in the same run,
  alternating;
- time in Chromium from navigation until the statistics page's charts are drawn
  (``window.wuyeStatsReady``), against the same figures (the page's own JSON, fetched by the browser)
  drawn as plain tables by a plain template, in the same browser and run.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import date
from typing import Any

import httpx
import psycopg

from bench._load import LoadResult

DISTRICT = "430104"
DB_NAME = "wuye_bench_wb_programme"
USERNAME = "bench-bureau"
PASSWORD = "Bench-bureau-2026"
ROUND = "2026首次验收"
CASE_STATES = ("reported", "registered", "dispatched", "in_progress", "handled", "closed", "closed", "closed")


def prepare(*, buildings: int, per_building: int, answers: int, n_cases: int, months: int) -> tuple[str, dict]:
    """The bench database and what it holds."""
    from bench.programme import ADMIN, GRACE, _prepare
    from geo.access import users
    from geo.programme import fees

    started = time.monotonic()
    os.environ["WUYE_BENCH_DB"] = DB_NAME
    url = _prepare(buildings, per_building)  # the demo district and the households (bench/programme.py)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO survey_rounds (district_code, label, kind, zone_codes, starts_on, ends_on, created_by) "
            "SELECT %s, %s, 'first', array_agg(code ORDER BY code), DATE '2026-06-01', DATE '2026-06-30', 'bench' "
            "FROM zones WHERE district_code = %s",
            [DISTRICT, ROUND, DISTRICT],
        )
        # answers: the first households of each zone's buildings, one answer each, nine in ten satisfied
        conn.execute(
            "INSERT INTO survey_answers (district_code, round, zone_code, building, household, answered_on, "
            " surveyor, satisfied, score_public_order, score_sanitation, score_public_safety, "
            " score_public_facilities, score_greening, score_other, actor) "
            "SELECT %(d)s, %(round)s, b.zone_code, b.code, b.code || '-' || h.unit || '-' || h.room, "
            " DATE '2026-06-01' + (h.id %% 30)::int, 'bench', h.id %% 10 <> 0, 1 + h.id %% 5, 1 + (h.id / 2) %% 5, "
            " 1 + (h.id / 3) %% 5, 1 + (h.id / 5) %% 5, 1 + (h.id / 7) %% 5, 1 + (h.id / 11) %% 5, 'bench' "
            "FROM (SELECT h.*, row_number() OVER (ORDER BY h.id) AS n FROM households h) h "
            "JOIN buildings b ON b.code = h.building_code WHERE h.n <= %(n)s",
            {"d": DISTRICT, "round": ROUND, "n": answers},
        )
        # cases: random points in the zones, the states in turn (closed ones with a close time, some late)
        conn.execute(
            "INSERT INTO cases (code, district_code, category, description, geom, state, zone_code, subdistrict_code,"
            " unit_code, due_at, created_at, updated_at, closed_at) "
            "SELECT 'WP-' || lpad(g::text, 6, '0'), %(d)s, "
            " (ARRAY['garbage_pile','road_uneven','light_out'])[1 + g %% 3],"
            " '程序基准事件 ' || g, p.geom, (%(states)s::text[])[1 + g %% %(n_states)s], p.zone, p.sub,"
            " CASE WHEN g %% 8 >= 2 THEN 'contractor-xiangjiang' END,"
            " now() - make_interval(hours => (g %% 4000)::int) + interval '72 hours',"
            " now() - make_interval(hours => (g %% 4000)::int), now(),"
            " CASE WHEN g %% 8 >= 5 THEN now() - make_interval(hours => (g %% 4000)::int) "
            "   + make_interval(hours => (4 + g %% 90)::int) END "
            "FROM (SELECT row_number() OVER () AS g, d.geom, d.zone, d.sub FROM ("
            "   SELECT (ST_Dump(ST_GeneratePoints(z.geom, greatest(1, ceil(%(n)s::numeric * ST_Area(z.geom) "
            "     / sum(ST_Area(z.geom)) OVER ())::int), 11))).geom AS geom, z.code AS zone, z.subdistrict_code AS sub "
            "   FROM zones z WHERE z.district_code = %(d)s) d) p "
            "WHERE g <= %(n)s",
            {"d": DISTRICT, "n": n_cases, "states": list(CASE_STATES), "n_states": len(CASE_STATES)},
        )
        conn.commit()
        bills = 0
        for m in range(months):
            period = date(2025 + (m // 12), 1 + m % 12, 1)
            bills += fees.generate_bills(conn, ADMIN, period, district_code=DISTRICT, grace_months=GRACE)["created"]
            conn.commit()
        # payments: four households in five pay each bill
        conn.execute(
            "INSERT INTO fee_payments (district_code, household_id, period, amount, paid_on, source, actor) "
            "SELECT district_code, household_id, period, amount, period + 20, 'import', 'bench' FROM fee_bills "
            "WHERE household_id % 5 <> 0 AND amount > 0"
        )
        users.create_user(
            conn,
            username=USERNAME,
            password=PASSWORD,
            role="admin",
            district_code=DISTRICT,
            actor="bench",
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("survey_answers", "cases", "fee_bills", "fee_payments"):
            conn.execute(f"VACUUM ANALYZE {table}")
        held = {
            "households": conn.execute("SELECT count(*) FROM households").fetchone()[0],  # type: ignore[index]
            "buildings": conn.execute("SELECT count(*) FROM buildings").fetchone()[0],  # type: ignore[index]
            "answers": conn.execute("SELECT count(*) FROM survey_answers").fetchone()[0],  # type: ignore[index]
            "zones": conn.execute("SELECT count(*) FROM zones").fetchone()[0],  # type: ignore[index]
            "cases": conn.execute("SELECT count(*) FROM cases").fetchone()[0],  # type: ignore[index]
            "bills": bills,
            "payments": conn.execute("SELECT count(*) FROM fee_payments").fetchone()[0],  # type: ignore[index]
            "seconds": time.monotonic() - started,
        }
    print(f"prepared in {held['seconds']:.0f} s: {held}", flush=True)
    return url, held


def _cookie(base: str) -> str:
    r = httpx.post(f"{base}/login", data={"username": USERNAME, "password": PASSWORD}, timeout=120)
    assert r.status_code == 303, r.text
    return str(r.cookies["wuye_session"])


def serve_times(base: str, *, users: int, seconds: float, rounds: int, serial: float) -> tuple[dict, dict]:
    from bench.workbench import _wrk_load

    cookie = {"Cookie": f"wuye_session={_cookie(base)}"}
    page, json_ = {**cookie, "Accept": "text/html"}, {**cookie, "Accept": "application/json"}
    targets = {
        "acceptance desk `/workbench/acceptance`": (f"{base}/workbench/acceptance", page),
        "JSON `GET /acceptance`": (f"{base}/acceptance", json_),
        "phases table `/workbench/phases`": (f"{base}/workbench/phases", page),
        "JSON `GET /phases`": (f"{base}/phases", json_),
        "statistics JSON `/workbench/stats/data`": (f"{base}/workbench/stats/data", json_),
    }
    for name, (url, h) in targets.items():  # each answers, and answers 200, before it is timed
        r = httpx.get(url, headers=h, timeout=120)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
    out: dict[str, list[LoadResult]] = {k: [] for k in targets}
    for r in range(rounds):
        for name, (url, h) in targets.items() if r % 2 == 0 else reversed(targets.items()):
            result = _wrk_load(url, h, users=users, seconds=seconds)
            out[name].append(result)
            print(f"  {name}: p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms errors {result.errors}", flush=True)
    alone = {name: _wrk_load(url, h, users=1, seconds=serial) for name, (url, h) in targets.items()}
    return out, alone


_PLAIN = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>统计（表格）</title></head><body>
<h1>统计</h1><div id="out"></div><script>
fetch('/workbench/stats/data', {headers: {Accept: 'application/json'}}).then(r => r.json()).then(charts => {
  const out = document.getElementById('out');
  for (const c of charts) {
    const t = document.createElement('table'), h = t.createTHead().insertRow();
    for (const col of c.columns) { const th = document.createElement('th'); th.textContent = col; h.appendChild(th); }
    const b = t.createTBody();
    for (const row of c.rows) { const tr = b.insertRow(); for (const v of row) tr.insertCell().textContent = v; }
    const cap = t.createCaption(); cap.textContent = c.title; out.appendChild(t);
  }
  requestAnimationFrame(() => { window.plainReady = true; });
});
</script></body></html>"""


def browser_times(base: str, *, views: int) -> dict[str, list[float]]:
    """Navigation → charts drawn on the statistics page, and → the same figures drawn as plain tables
    (a plain page served at the same origin by the browser itself, fetching the same JSON), fresh
    contexts, alternating."""
    from playwright.sync_api import sync_playwright

    from maps import snapshot

    cookie = _cookie(base)
    host = base.split("//", 1)[1].split(":")[0]
    out: dict[str, list[float]] = {"charts": [], "plain": [], "charts_drawn": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=snapshot.CHROMIUM, args=snapshot.CHROMIUM_ARGS)
        for i in range(2 * views):
            which = "charts" if i % 2 == 0 else "plain"
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies([{"name": "wuye_session", "value": cookie, "domain": host, "path": "/"}])
            page = context.new_page()
            if which == "plain":
                page.route(f"{base}/bench-plain", lambda route: route.fulfill(body=_PLAIN, content_type="text/html"))
            start = time.perf_counter()
            if which == "charts":
                page.goto(f"{base}/workbench/stats")
                page.wait_for_function("() => window.wuyeStatsReady === true", timeout=60_000)
                out["charts_drawn"].append(page.locator("canvas").count())
            else:
                page.goto(f"{base}/bench-plain")
                page.wait_for_function("() => window.plainReady === true", timeout=60_000)
            out[which].append((time.perf_counter() - start) * 1000)
            context.close()
        browser.close()
    return out


def computed(url: str, *, n: int = 5) -> dict[str, float]:
    """Median ms, in this process, of what the pages keep between views when it is computed afresh (the
    first view after a change): every zone's acceptance figures and the statistics page's charts."""
    from geo.access.scope import Principal
    from geo.programme import acceptance, charts
    from geo.settings import Settings

    settings = Settings()
    who = Principal(username=USERNAME, role="admin")
    steps = {
        "figures": lambda conn: acceptance.district_figures(
            conn,
            district_code=DISTRICT,
            rules=settings.acceptance,
            with_conditions=False,
            fee_grace_months=settings.programme.fee_grace_months,
        ),
        "charts": lambda conn: charts.figures(
            conn, who, district_code=DISTRICT, lang="zh", survey_round=settings.acceptance.survey_round
        ),
    }
    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, step in steps.items():
            step(conn)
            times = []
            for _ in range(n):
                started = time.perf_counter()
                step(conn)
                times.append((time.perf_counter() - started) * 1000)
            out[name] = statistics.median(times)
    return out


def section(args: Any, loads: dict[str, str]) -> list[str]:
    """Prepare, measure and return the markdown section."""
    from bench._common import git_revision, machine, server_versions
    from bench._load import our_server
    from bench.workbench import _row

    url, held = prepare(
        buildings=args.buildings,
        per_building=args.per_building,
        answers=args.answers,
        n_cases=args.cases_all,
        months=args.months,
    )
    loads["start"] = _loadavg()
    with our_server(url) as base:
        times, alone = serve_times(base, users=args.users, seconds=args.seconds, rounds=args.rounds, serial=args.serial)
        loads["mid"] = _loadavg()
        view = browser_times(base, views=args.views)
    fresh = computed(url)
    loads["end"] = _loadavg()

    def p99(name: str) -> float:
        return statistics.median(r.p99_ms for r in times[name])

    def p50(name: str) -> float:
        return statistics.median(r.p50_ms for r in times[name])

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    desk, phases, stats = (
        "acceptance desk `/workbench/acceptance`",
        "phases table `/workbench/phases`",
        "statistics JSON `/workbench/stats/data`",
    )
    charts_ms, plain_ms = statistics.median(view["charts"]), statistics.median(view["plain"])
    return [
        "## The programme's pages (issue 21)",
        "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, commit {git_revision()}.",
        f"Machine: {machine()}; {server_versions(url)}.",
        f"Load average (1/5/15 min): before preparing {loads['before']}; at the start of the measurements "
        f"{loads['start']}; after the server timings {loads['mid']}; at the end {loads['end']}.",
        "",
        f"Data (prepared in {held['seconds']:.0f} s): the demo district's {held['zones']} zones; "
        f"{held['households']:,} households in {held['buildings']:,} buildings (bench/programme.py's); "
        f"{held['answers']:,} survey answers of one round; {held['cases']:,} cases over the district (a third "
        f"closed, some late); {held['bills']:,} fee bills of {args.months} months and {held['payments']:,} "
        "payments. The caller is a bureau administrator (role admin, the whole district) signed in with the "
        "pages' session cookie (the JSON requests carry the same cookie). One uvicorn process; load by wrk "
        "(C, one thread) on the same two cores.",
        "",
        "### Goals",
        "",
        f"- Under {args.users} concurrent users, p99: acceptance desk **{p99(desk):.0f} ms**, phases table "
        f"**{p99(phases):.0f} ms**, statistics JSON **{p99(stats):.0f} ms** (goal < 200 ms each: "
        f"{met(p99(desk) < 200)}, {met(p99(phases) < 200)}, {met(p99(stats) < 200)}).",
        f"- Against the same figures as JSON in the same run (medians): the acceptance desk "
        f"{p50(desk) / p50('JSON `GET /acceptance`'):.2f}× `GET /acceptance`, the phases table "
        f"{p50(phases) / p50('JSON `GET /phases`'):.2f}× `GET /phases`.",
        "- The acceptance figures and the charts are kept between views until a row under them changes "
        f"(geo/kept.py; at most 10 s): the first view after a change computes them afresh, "
        f"{fresh['figures']:.0f} ms for every zone's acceptance figures and {fresh['charts']:.0f} ms for the "
        "charts (in-process medians), which the timings under load above mostly do not include: nothing is "
        "written during them.",
        f"- Navigation → the statistics page's charts drawn (`wuyeStatsReady`, {view['charts_drawn'][0]} charts), "
        f"median of {len(view['charts'])} fresh views: **{charts_ms:.0f} ms** (goal < 1.5 s: "
        f"{met(charts_ms < 1500)}); the same figures drawn as plain tables by a plain template (the same JSON, "
        f"fetched by the browser): {plain_ms:.0f} ms, so the charts take **{charts_ms / plain_ms:.2f}×** the "
        "plain tables.",
        "",
        f"### Server time, {args.users} closed-loop users, no think time",
        "",
        f"{args.rounds} rounds × {args.seconds:g} s per target (after a 1 s warm-up), the targets alternating; "
        "medians over the rounds of each round's p50 / p99.",
        "",
        "| target | p50 ms | p99 ms | req/s | kB per answer | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(name, results) for name, results in times.items()),
        "",
        f"The same targets from one client, {args.serial:g} s each:",
        "",
        "| target | p50 ms | p99 ms | req/s | kB per answer | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(name, [result]) for name, result in alone.items()),
        "",
        "Browser views (ms, in order): charts "
        + ", ".join(f"{v:.0f}" for v in view["charts"])
        + "; plain tables "
        + ", ".join(f"{v:.0f}" for v in view["plain"])
        + ".",
        "",
    ]


def _loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
