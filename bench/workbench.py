"""The case desk under load (issue 20's benchmark): 20,000 open cases in one sub-district's scope, the
demo district at ``--scale``.

- server time of the desk's first page (``/workbench/cases``) and of a case page under ``--users``
  concurrent signed-in users (closed loop, no think time), against ``GET /cases`` and
  ``GET /cases/{code}`` JSON for the same caller and filter in the same run (what rendering adds);
  rounds alternate page / JSON so both share the machine's noise;
- bytes transferred for the desk's first view in Chromium (scripts, styles, the zones drawn on its
  map), and for a second view with the browser's cache warm;
- time in Chromium from navigation until the list's rows are shown (``performance.mark
  ("wuye-rows-shown")``, set by maps/static/app/wuye-desk.js in the first frame with the rows).

Run: ``python -m bench.workbench [--scale 30] [--cases 20000] [--reuse] [--workers N] [--base DIR]``; writes
bench/results/workbench.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench._common import RESULTS, bench_database, git_revision, machine, server_versions
from bench._load import LoadResult, our_server, wrk_get

DISTRICT = "430104"
DB_NAME = "wuye_bench_workbench"
USERNAME = "bench-desk"
PASSWORD = "Bench-desk-2026"
OPEN_STATES = ("reported", "registered", "dispatched", "in_progress", "handled", "reopened")


def _load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def prepare(scale: int, n_cases: int, reuse: bool) -> tuple[str, str, str]:
    """The bench database: the demo district at ``scale``, ``n_cases`` open cases seeded in bulk (SQL)
    in the zones of the sub-district with the most zones, a staff user of that sub-district. The
    database URL, the sub-district and one case code in its scope."""
    from geo.access import users
    from geo.demo.load import load_demo
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    url = bench_database(DB_NAME) if not reuse else _existing_url()
    if not reuse:
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, load_catalogue())
        with psycopg.connect(url) as conn:
            load_demo(conn, load_catalogue(), district_code=DISTRICT, scale=scale)
            conn.commit()
        print(f"demo --scale {scale} loaded in {time.monotonic() - started:.0f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        sub = conn.execute(
            "SELECT s.code FROM subdistricts s JOIN zones z ON ST_Intersects(s.geom, ST_PointOnSurface(z.geom)) "
            "WHERE s.district_code = %s GROUP BY s.code ORDER BY count(*) DESC, s.code LIMIT 1",
            [DISTRICT],
        ).fetchone()[0]
        have = conn.execute("SELECT count(*) FROM cases WHERE subdistrict_code = %s", [sub]).fetchone()[0]
        if have < n_cases:
            _seed_cases(conn, sub, n_cases - have)
        if not conn.execute("SELECT 1 FROM users WHERE username = %s", [USERNAME]).fetchone():
            users.create_user(
                conn,
                username=USERNAME,
                password=PASSWORD,
                role="subdistrict_staff",
                district_code=DISTRICT,
                actor="bench",
                subdistrict_code=sub,
            )
        code = conn.execute(
            "SELECT code FROM cases WHERE subdistrict_code = %s ORDER BY id DESC LIMIT 1", [sub]
        ).fetchone()[0]
    return url, sub, code


def _existing_url() -> str:
    from geo.settings import DatabaseSettings
    from geo.store import embedded

    settings = DatabaseSettings()
    if settings.database_url:
        return settings.database_url.rsplit("/", 1)[0] + "/" + DB_NAME
    cluster = embedded.locate(settings.home)
    embedded.start(cluster, tcp=True)
    return embedded.url_with_password(cluster, "postgres").rsplit("/", 1)[0] + "/" + DB_NAME


def _seed_cases(conn: psycopg.Connection, sub: str, n: int) -> None:
    """``n`` open cases at random points of the sub-district's zones, routed as the workflow would
    (zone, sub-district, the zone's unit for dispatched ones), spread over the open states, a tenth
    overdue; in one INSERT … SELECT (the workflow, one case at a time, would take hours)."""
    started = time.monotonic()
    conn.execute(
        "INSERT INTO cases (code, district_code, category, description, geom, state, subdistrict_code, zone_code, "
        " unit_code, due_at, created_at, updated_at) "
        "SELECT 'WB-' || lpad(g::text, 6, '0'), %(d)s, (ARRAY['garbage_pile','road_uneven','light_out'])[1 + g %% 3], "
        " '工作台基准事件 ' || g, p.geom, (%(states)s::text[])[1 + g %% %(n_states)s], %(sub)s, p.zone, "
        " CASE WHEN g %% 6 IN (2, 3, 4) THEN 'contractor-xiangjiang' END, "
        " now() + make_interval(hours => CASE WHEN g %% 10 = 0 THEN -24 ELSE 72 END), "
        " now() - make_interval(mins => g::int), now() "
        "FROM (SELECT row_number() OVER () AS g, d.geom, d.zone FROM ("
        "   SELECT (ST_Dump(ST_GeneratePoints(z.geom, greatest(1, ceil(%(n)s::numeric * ST_Area(z.geom) "
        "     / sum(ST_Area(z.geom)) OVER ())::int), 7))).geom AS geom, z.code AS zone "
        "   FROM zones z JOIN subdistricts s ON ST_Intersects(s.geom, ST_PointOnSurface(z.geom)) "
        "   WHERE s.code = %(sub)s) d) p "
        "WHERE g <= %(n)s",
        {"d": DISTRICT, "sub": sub, "n": n, "states": list(OPEN_STATES), "n_states": len(OPEN_STATES)},
    )
    conn.execute("ANALYZE cases")
    print(f"{n} cases seeded in {time.monotonic() - started:.1f} s", flush=True)


def _cookie(base: str) -> str:
    r = httpx.post(f"{base}/login", data={"username": USERNAME, "password": PASSWORD}, timeout=60)
    assert r.status_code == 303, r.text
    return str(r.cookies["wuye_session"])


def _wrk_load(url: str, headers: dict[str, str], *, users: int, seconds: float) -> LoadResult:
    """``users`` closed-loop connections for ``seconds`` with wrk (C, one thread: the load generator
    takes little of the two cores the server and PostgreSQL share with it); the answer's size from one
    request."""
    size = len(httpx.get(url, headers=headers, timeout=60).content)
    wrk_get(url, headers=headers, concurrency=users, seconds=1)  # warm-up
    r = wrk_get(url, headers=headers, concurrency=users, seconds=seconds)
    return LoadResult(
        requests=r.requests,
        errors=r.errors,
        seconds=r.seconds,
        p50_ms=r.p50_ms,
        p99_ms=r.p99_ms,
        bytes_per_response=float(size),
    )


def serve_times(
    bases: dict[str, str], code: str, *, users: int, seconds: float, rounds: int, serial: float
) -> tuple[dict[str, dict[str, list[LoadResult]]], dict[str, LoadResult]]:
    """Each target on each server ``rounds`` times for ``seconds`` under ``users`` closed-loop clients,
    the servers taking turns and the targets alternating; then, on the first server, each target for
    ``serial`` seconds from one client (the time of a request with no queue before it)."""
    out: dict[str, dict[str, list[LoadResult]]] = {}
    plans = {}
    for server, base in bases.items():
        headers = {"Cookie": f"wuye_session={_cookie(base)}", "Accept": "text/html"}
        json_headers = {**headers, "Accept": "application/geo+json"}
        plans[server] = {
            "desk page `/workbench/cases`": (f"{base}/workbench/cases", headers),
            "JSON `GET /cases?limit=50`": (f"{base}/cases?limit=50", json_headers),
            f"case page `/workbench/cases/{code}`": (f"{base}/workbench/cases/{code}", headers),
            f"JSON `GET /cases/{code}`": (f"{base}/cases/{code}", json_headers),
        }
        out[server] = {k: [] for k in plans[server]}
    servers = list(bases)
    for r in range(rounds):
        for server in servers[r % len(servers) :] + servers[: r % len(servers)]:
            targets = plans[server]
            for name, (url, h) in targets.items() if r % 2 == 0 else reversed(targets.items()):
                result = _wrk_load(url, h, users=users, seconds=seconds)
                out[server][name].append(result)
                print(
                    f"  {server} · {name}: p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms "
                    f"{result.rps:.0f} req/s errors {result.errors}",
                    flush=True,
                )
    first = plans[servers[0]]
    alone = {name: _wrk_load(url, h, users=1, seconds=serial) for name, (url, h) in first.items()}
    return out, alone


def browser_view(base: str, *, views: int) -> dict[str, Any]:
    """Bytes on the wire for the desk's first view (fresh browser profile) and a second one (same
    profile, cache warm), and navigation → rows shown for ``views`` fresh views."""
    from playwright.sync_api import sync_playwright

    from maps import snapshot

    cookie = _cookie(base)
    host = base.split("//", 1)[1].split(":")[0]
    result: dict[str, Any] = {"rows_ms": [], "fcp_ms": [], "ready_ms": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=snapshot.CHROMIUM, args=snapshot.CHROMIUM_ARGS)
        for i in range(views):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies([{"name": "wuye_session", "value": cookie, "domain": host, "path": "/"}])
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            seen: dict[str, float] = {}
            cdp.on(
                "Network.loadingFinished", lambda e, seen=seen: seen.__setitem__(e["requestId"], e["encodedDataLength"])
            )
            for visit in ("first", "second"):
                seen.clear()
                start = time.perf_counter()
                page.goto(f"{base}/workbench/cases")
                page.wait_for_function("() => window.wuyeDeskReady === true", timeout=60_000)
                ready = (time.perf_counter() - start) * 1000
                page.wait_for_timeout(200)  # the last loadingFinished events
                if i == 0:
                    result[f"{visit}_bytes"] = sum(seen.values())
                    result[f"{visit}_requests"] = sum(1 for v in seen.values() if v > 0)  # over the network
                if visit == "first":
                    marks = page.evaluate(
                        "() => ({rows: performance.getEntriesByName('wuye-rows-shown')[0].startTime,"
                        " fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime})"
                    )
                    result["rows_ms"].append(marks["rows"])
                    result["fcp_ms"].append(marks["fcp"])
                    result["ready_ms"].append(ready)
                    result["rows_shown"] = page.locator("#case-list tr.case-row").count()
            context.close()
        browser.close()
    return result


def breakdown(url: str, sub: str, *, n: int = 30) -> dict[str, float]:
    """Median ms of the desk's two queries for the bench user, in this process (no HTTP): its page of
    50 (``list_cases``, the same as ``GET /cases``) and its counts per state (``case_counts``)."""
    from geo.access.scope import Principal
    from geo.cases import workflow as cases
    from geo.cases.counts import kept_case_counts
    from geo.steps import run

    with psycopg.connect(url, autocommit=True) as conn:
        uid = conn.execute("SELECT id FROM users WHERE username = %s", [USERNAME]).fetchone()[0]
        who = Principal(username=USERNAME, role="subdistrict_staff", user_id=uid, subdistrict_code=sub)
        flt = cases.CaseFilter(limit=50)
        steps = {
            "list": lambda: run(conn, cases.list_cases(who, flt, district_code=DISTRICT, scoped_only=True)),
            "counts": lambda: run(conn, cases.case_counts(who, flt, district_code=DISTRICT, scoped_only=True)),
            "kept": lambda: run(conn, kept_case_counts(who, flt, district_code=DISTRICT, scoped_only=True)),
        }
        out = {}
        for name, step in steps.items():
            step()
            times = []
            for _ in range(n):
                started = time.perf_counter()
                step()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = statistics.median(times)
    return out


def _p99(runs: dict[str, list[LoadResult]], name: str) -> float:
    return statistics.median(r.p99_ms for r in runs[name])


def _against(every: dict[str, dict[str, list[LoadResult]]], served: str, other: str) -> list[str]:
    """What ``served`` gives against ``other``, target by target (medians of the rounds)."""
    lines = [f"{served} against {other}, same run (ratios of the medians; req/s: higher is better):", ""]
    for name, results in every[served].items():
        base = every[other][name]
        p99 = statistics.median(r.p99_ms for r in results) / statistics.median(r.p99_ms for r in base)
        rps = statistics.median(r.rps for r in results) / statistics.median(r.rps for r in base)
        lines.append(
            f"- {name}: p99 {statistics.median(r.p99_ms for r in base):.0f} → "
            f"{statistics.median(r.p99_ms for r in results):.0f} ms (×{p99:.2f}), req/s ×{rps:.2f}"
        )
    return [*lines, ""]


def _row(name: str, results: list[LoadResult]) -> str:
    p50 = statistics.median(r.p50_ms for r in results)
    p99 = statistics.median(r.p99_ms for r in results)
    rps = statistics.median(r.rps for r in results)
    size = statistics.median(r.bytes_per_response for r in results) / 1024
    errors = sum(r.errors for r in results)
    return f"| {name} | {p50:.1f} | {p99:.1f} | {rps:.0f} | {size:.1f} | {errors} |"


TITLE = "# The workbench under load (issues 20 and 21)"


def write_section(part: str, lines: list[str]) -> None:
    """Write ``part``'s section of bench/results/workbench.md, keeping the other part's last figures."""
    path = RESULTS / "workbench.md"
    sections = {"desk": "", "programme": ""}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        for name in sections:
            start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
            if start in text and end in text:
                sections[name] = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    sections[part] = "\n".join(lines).strip("\n")
    body = [TITLE, ""]
    for name, text in sections.items():
        if text:
            body += [f"<!-- {name} -->", text, f"<!-- /{name} -->", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body), encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10, help="seconds per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serial", type=float, default=5, help="seconds per target from one client")
    parser.add_argument("--views", type=int, default=7, help="fresh browser views timed")
    parser.add_argument("--reuse", action="store_true", help="keep the bench database of a previous run")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes of the server measured (`wuye serve --workers`); above 1, one process is measured beside it",
    )
    parser.add_argument(
        "--base",
        type=Path,
        help="a checkout of an earlier commit (git worktree add), served beside ours in one process: the named "
        "baseline of a change",
    )
    parser.add_argument(
        "--part",
        choices=("desk", "programme"),
        default="desk",
        help="the case desk (20) or the programme (21)",
    )
    programme = parser.add_argument_group("--part programme")
    programme.add_argument("--buildings", type=int, default=2_000)
    programme.add_argument("--per-building", type=int, default=50, help="households per building")
    programme.add_argument("--answers", type=int, default=20_000, help="survey answers")
    programme.add_argument("--cases-all", type=int, default=20_000, help="cases over the whole district")
    programme.add_argument("--months", type=int, default=12, help="months of fee bills")
    args = parser.parse_args()

    load_before = _load_avg()
    if args.part == "programme":
        from bench import workbench_programme

        write_section("programme", workbench_programme.section(args, {"before": load_before}))
        return
    url, sub, code = prepare(args.scale, args.cases, args.reuse)
    with psycopg.connect(url) as conn:
        in_scope = conn.execute("SELECT count(*) FROM cases WHERE subdistrict_code = %s", [sub]).fetchone()[0]
        facilities = conn.execute("SELECT count(*) FROM street_lights").fetchone()[0]
        zones = conn.execute("SELECT count(*) FROM zones").fetchone()[0]
    load_start = _load_avg()
    served = f"`wuye serve`, {args.workers} process{'es' if args.workers > 1 else ''}"
    one = "one process (uvicorn, 1 worker)"
    before = f"commit {git_revision(args.base)[:7]}, one process" if args.base else ""
    with ExitStack() as stack:
        bases = {served: stack.enter_context(our_server(url, workers=args.workers))}
        if args.workers > 1:  # the named baseline: the same app in one process, in the same run
            bases[one] = stack.enter_context(our_server(url))
        if args.base:  # the code before a change, same database, same run
            bases[before] = stack.enter_context(our_server(url, root=args.base))
        every, alone = serve_times(
            bases, code, users=args.users, seconds=args.seconds, rounds=args.rounds, serial=args.serial
        )
        load_mid = _load_avg()
        view = browser_view(bases[served], views=args.views)
    default = served if args.workers == 1 else one  # what `wuye serve` runs unless told otherwise
    times = every[default]
    parts = breakdown(url, sub)
    load_end = _load_avg()
    page_alone = alone["desk page `/workbench/cases`"].p50_ms
    json_alone = alone["JSON `GET /cases?limit=50`"].p50_ms

    desk, desk_json = times["desk page `/workbench/cases`"], times["JSON `GET /cases?limit=50`"]
    page_key = next(k for k in times if k.startswith("case page"))
    desk_p99 = statistics.median(r.p99_ms for r in desk)
    case_p99 = statistics.median(r.p99_ms for r in times[page_key])
    ratio = statistics.median(r.p50_ms for r in desk) / statistics.median(r.p50_ms for r in desk_json)
    rows_ms = statistics.median(view["rows_ms"])
    first_kb, second_kb = view["first_bytes"] / 1024, view["second_bytes"] / 1024

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        "## The case desk (issue 20)",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}.",
        f"Machine: {machine()}; {server_versions(url)}.",
        f"Load average (1/5/15 min): before preparing {load_before}; at the start of the measurements {load_start}; "
        f"after the server timings {load_mid}; at the end {load_end} (the benchmark's own server, PostgreSQL and "
        "load generator count in these; anything above about 3 is other work on the machine). The load generator "
        "is wrk (C, one thread), on the same two cores as the server and PostgreSQL.",
        "",
        f"Data: demo district `--scale {args.scale}` ({zones} zones, {facilities:,} street lights among its "
        f"facilities); {in_scope:,} open cases in sub-district `{sub}`'s scope, seeded in bulk with one "
        "INSERT … SELECT (random points in its zones, the open states in turn, a tenth overdue). The caller is "
        "a sub-district staff user of that sub-district, signed in with the pages' session cookie (the JSON "
        f"requests carry the same cookie). The server: {served} (`WUYE_WORKERS={args.workers}`; the default is 1), "
        "each with the default pools"
        + (f"; beside it, taking turns round by round, the same app in {one}" if args.workers > 1 else "")
        + (
            f"; and, as the named baseline, commit {git_revision(args.base)} (from {args.base}, the same "
            "interpreter and packages) in one process"
            if args.base
            else ""
        )
        + ". The browser figures are of the first.",
        "",
        "### Goals",
        "",
        f"- Desk first page p99 under {args.users} concurrent users, {default} (the default): "
        f"**{desk_p99:.0f} ms** (goal < 150 ms: {met(desk_p99 < 150)}); case page p99 **{case_p99:.0f} ms** "
        f"({met(case_p99 < 150)})."
        + "".join(
            f" {server}: desk {_p99(runs, 'desk page `/workbench/cases`'):.0f} ms, case page "
            f"{_p99(runs, page_key):.0f} ms."
            for server, runs in every.items()
            if server != default
        ),
        f"- The desk page's median against `GET /cases?limit=50` JSON for the same caller and filter: "
        f"**{ratio:.2f}×** (the page also shows the cases per state, kept between views until a case changes "
        "(geo/cases/counts.py), and lists units, sub-districts and categories for its filters). From one "
        "client the page takes "
        f"{page_alone:.1f} ms against the JSON's {json_alone:.1f} ms; measured in-process, the page of 50 "
        f"(`list_cases`, as `GET /cases`) takes {parts['list']:.1f} ms and the counts per state over the "
        f"{in_scope:,} cases in scope (`case_counts`, which the JSON does not run) {parts['counts']:.1f} ms "
        f"when computed, {parts['kept']:.2f} ms when kept (one read of the `case_changes` sequence); "
        "besides these the page builds the filters' unit and sub-district lists and renders its template "
        "(the in-process figures are taken after the HTTP runs, so the two sets do not add up exactly on a "
        "loaded machine).",
        f"- Bytes transferred for the desk's first view (page, scripts, styles, the zones its map draws): "
        f"**{first_kb:.0f} kB** in {view['first_requests']} requests over the network "
        f"(goal < 300 kB: {met(first_kb < 300)}); second view, cache warm: **{second_kb:.0f} kB** in "
        f"{view['second_requests']} requests over the network (the page itself, `no-store`, and the zones; "
        "scripts and styles from the cache).",
        f"- Navigation → the list's rows shown (`wuye-rows-shown` mark), median of {len(view['rows_ms'])} fresh "
        f"views: **{rows_ms:.0f} ms** (goal < 1 s: {met(rows_ms < 1000)}); first contentful paint "
        f"{statistics.median(view['fcp_ms']):.0f} ms; until the map has drawn the rows and the zones "
        f"(`wuyeDeskReady`) {statistics.median(view['ready_ms']):.0f} ms. Rows on the first page: "
        f"{view['rows_shown']}.",
        "",
        f"### Server time, {args.users} closed-loop users, no think time",
        "",
        f"{args.rounds} rounds × {args.seconds:g} s per target (after a 1 s warm-up), the targets alternating; "
        "medians over the rounds of each round's p50 / p99.",
        "",
        "| server | target | p50 ms | p99 ms | req/s | kB per answer | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {server} " + _row(name, results) for server, runs in every.items() for name, results in runs.items()),
        "",
        *(_against(every, served, one) if args.workers > 1 else []),
        *(_against(every, default, before) if args.base else []),
        f"The same targets from one client, {args.serial:g} s each (no queue: the server's own time per "
        "request, on this shared machine):",
        "",
        "| target | p50 ms | p99 ms | req/s | kB per answer | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(name, [result]) for name, result in alone.items()),
        "",
        "Bytes are counted by Chromium (DevTools `Network.loadingFinished.encodedDataLength`: headers and "
        "body as received, nothing compressed by the server), for one fresh profile.",
        "",
    ]
    write_section("desk", lines)


if __name__ == "__main__":
    main()
