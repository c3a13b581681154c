"""Benchmark: acceptance PDFs for all ten zones plus the district summary (PDF + XLSX).

District: the demo at ``--scale 10``, the plan's ten remediation items per zone (most verified),
20,000 survey answers across the zones, a few hundred cases. Two paths, same run, same database,
each measured in its own process, which serves our app in-process on a loopback port for Chromium
to load the zone map pages from. Wall time; the process and its children (Chromium's among them)
sampled every 50 ms from /proc: CPU of every process, and peak memory as the PSS sum and, as an
upper bound, the RSS sum.

* plain (the issue's baseline): one zone after another, each with a fresh Chromium (launch, draw
  its map page, capture it, close), its own query set and its own WeasyPrint render (a new font
  configuration); then the summary the same way;
* ours: ``maps.report.write_all``: one query set for the district, one browser (a few pages, each
  moving on to the next zone), each map handed to a render process as it is drawn; this is
  ``wuye report acceptance --all``, the baseline of issue 15;
* issue (issue 15): ``wuye report acceptance --all --issue``: every zone's verdict issued (签发) as a
  frozen document with its map (``geo.programme.verdicts.issue_all``: one query set, one browser for
  all the maps, one transaction), the issued PDFs written out as stored, then the summary (PDF +
  XLSX, with the new numbers). The documents are deleted before each issue round (not timed).

Then serving an issued zone PDF (a stored file, not a render): ``GET /verdicts/{id}.pdf`` from a
uvicorn server process under 20 concurrent clients, beside the live zone PDF (a render per request,
one client) in the same run.

    .venv/bin/python bench/report.py [--rounds 2] [--answers 20000] [--scale 10] [--paths plain,ours,issue]
Results: bench/results/report.md. Never touches the database named ``wuye``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench._common import RESULTS, bench_database, git_revision, machine, server_versions

DISTRICT = "430104"
DISTRICT_NAME = "岳麓区"


def _prepare(scale: int, answers: int) -> str:
    from geo.demo.load import load_demo
    from geo.programme import remediation
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    url = bench_database("wuye_bench_report")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_catalogue())
    with psycopg.connect(url) as conn:
        load_demo(conn, load_catalogue(), district_code=DISTRICT, scale=scale)
        remediation.plan_items(conn, district_code=DISTRICT, actor="bench")
        # most items verified; one zone keeps two open so that its verdict is 补课
        conn.execute(
            "UPDATE remediation_tasks SET state = 'verified', verified_on = DATE '2023-07-15' "
            "WHERE NOT (zone_code = 'daopo' AND item IN ('walls', 'ditches'))"
        )
        # answers spread over the zones by their households; satisfaction differs by zone (80%..95%);
        # every answer belongs to a round (issue 15): the first acceptance survey 2023 of all ten zones
        conn.execute(
            "INSERT INTO survey_rounds (district_code, label, kind, zone_codes, starts_on, ends_on, created_by) "
            "SELECT %(d)s, '2023', 'first', array_agg(code ORDER BY code), DATE '2023-08-01', DATE '2023-08-20', "
            "'bench' FROM zones WHERE district_code = %(d)s",
            {"d": DISTRICT},
        )
        conn.execute(
            "INSERT INTO survey_answers (district_code, round, zone_code, building, household, answered_on, "
            " surveyor, satisfied, score_sanitation, score_greening, actor) "
            "SELECT %(d)s, '2023', z.code, (g %% 40 + 1) || '栋', z.code || '-' || g, DATE '2023-08-01' + (g %% 20), "
            " 'surveyor-' || (g %% 7), (hashtext(z.code || g) & 1023) < 1023 * (0.80 + 0.15 * z.n / 10.0), "
            " 1 + (g %% 5), 1 + ((g + 2) %% 5), 'bench' "
            "FROM (SELECT code, row_number() OVER (ORDER BY code) AS n, "
            "      greatest(1, round(%(answers)s * households / sum(households) OVER ()))::int AS k "
            "      FROM zones WHERE district_code = %(d)s) z, generate_series(1, z.k) g",
            {"d": DISTRICT, "answers": answers},
        )
        # cases: some closed, some open; one zone has a case overdue past the grace period
        conn.execute(
            "INSERT INTO cases (code, district_code, category, geom, state, zone_code, subdistrict_code, due_at, "
            " closed_at, created_at) "
            "SELECT 'BENCH-' || z.code || '-' || g, %(d)s, 'garbage_pile', ST_PointOnSurface(z.geom), "
            " CASE WHEN g %% 3 = 0 THEN 'dispatched' ELSE 'closed' END, z.code, z.subdistrict_code, "
            " now() - make_interval(hours => CASE WHEN g %% 30 = 0 AND z.code = 'lichen' THEN 200 ELSE -48 END), "
            " CASE WHEN g %% 3 = 0 THEN NULL ELSE now() - interval '1 day' END, now() - interval '5 days' "
            "FROM zones z, generate_series(1, 40) g",
            {"d": DISTRICT},
        )
        conn.commit()
        n = conn.execute("SELECT count(*) FROM survey_answers").fetchone()
        lights = conn.execute("SELECT count(*) FROM street_lights").fetchone()
    print(f"prepared: {n[0] if n else 0} answers, {lights[0] if lights else 0} street lights", flush=True)
    return url


def _settings(url: str) -> Any:
    from geo.settings import DatabaseSettings, DistrictSettings, Settings

    return Settings(
        db=DatabaseSettings(database_url=url),
        district=DistrictSettings(district_code=DISTRICT, district_name=DISTRICT_NAME),
    )


def run_plain(url: str, out: Path, phases: dict[str, float]) -> None:
    """The plain path: per zone a fresh browser, its own queries and a fresh renderer, one after another."""
    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from api.maps import local_server
    from geo.programme import acceptance
    from geo.settings import AcceptanceSettings
    from maps import report, snapshot

    rules = AcceptanceSettings()
    out.mkdir(parents=True, exist_ok=True)
    with local_server(create_app(_settings(url))) as base, sync_playwright() as pw, psycopg.connect(url) as conn:
        phases["setup"] = time.time() - phases.pop("started")
        codes = acceptance.zone_codes(conn, district_code=DISTRICT)
        for code in codes:
            with _phase(phases, "browser launch + close"):
                browser = pw.chromium.launch(executable_path=snapshot.CHROMIUM, args=snapshot.CHROMIUM_ARGS)
            with _phase(phases, "maps"):
                page = browser.new_page(viewport={"width": report.MAP_SIZE[0], "height": report.MAP_SIZE[1]})
                page.goto(snapshot.zone_url(base, code), wait_until="load")
                page.wait_for_function(snapshot.READY)
                image = page.screenshot(type="jpeg", quality=report.MAP_QUALITY)
            with _phase(phases, "browser launch + close"):
                browser.close()
            with _phase(phases, "queries"):
                figures = acceptance.zone_acceptance(conn, code, district_code=DISTRICT, rules=rules)
            with _phase(phases, "PDFs"):
                html = report.zone_html(figures, image, district_name=DISTRICT_NAME)
                (out / f"{code}.pdf").write_bytes(report.render_pdf(html, fresh=True))
        with _phase(phases, "queries"):
            rows = [acceptance.zone_acceptance(conn, code, district_code=DISTRICT, rules=rules) for code in codes]
    with _phase(phases, "PDFs"):
        html = report.summary_html(rows, district_name=DISTRICT_NAME, rules=rules)
        (out / "summary.pdf").write_bytes(report.render_pdf(html, fresh=True))
        (out / "summary.xlsx").write_bytes(report.summary_xlsx(rows))


def run_ours(
    url: str,
    out: Path,
    phases: dict[str, float],
    *,
    pages: int | None = None,
    workers: int | None = None,
    navigate: bool = False,
    apart: bool = False,
    no_collect: bool = False,
) -> None:
    """Our path, as ``wuye report acceptance --all`` runs it: the app served from a thread of this process
    (or, with ``apart``, by a uvicorn child process: ``bench.apart``)."""
    from geo.settings import AcceptanceSettings
    from maps import report

    if apart:
        from bench.apart import served_apart

        served = served_apart(_settings(url))
    else:
        from api.app import create_app
        from api.maps import local_server

        served = local_server(create_app(_settings(url)))
    with served as base, psycopg.connect(url) as conn:
        phases["setup"] = time.time() - phases.pop("started")
        with _phase(phases, "write_all"):
            report.write_all(
                conn,
                out,
                base_url=base,
                district_code=DISTRICT,
                district_name=DISTRICT_NAME,
                rules=AcceptanceSettings(),
                pages=pages or report.MAP_PAGES,
                workers=workers,
                switch=not navigate,
                collect=not no_collect,
            )


def run_issue(url: str, out: Path, phases: dict[str, float]) -> None:
    """Issue every zone's verdict with one browser for all the maps, write the issued PDFs as stored and
    the summary: what ``wuye report acceptance --all --issue`` does."""
    from api.app import create_app
    from api.maps import local_server
    from geo.access.scope import Principal
    from geo.programme import acceptance, verdicts
    from geo.settings import AcceptanceSettings
    from geo.steps import run
    from maps import report

    rules = AcceptanceSettings()
    with local_server(create_app(_settings(url))) as base, psycopg.connect(url) as conn:
        phases["setup"] = time.time() - phases.pop("started")
        with _phase(phases, "issue_all"):
            done = verdicts.issue_all(
                conn,
                Principal(username="bench", role="admin"),
                district_code=DISTRICT,
                rules=rules,
                render_all=lambda rows: report.render_zone_pdfs(rows, base_url=base, district_name=DISTRICT_NAME),
            )
            conn.commit()
        if len(done["issued"]) != 10:
            raise SystemExit(f"issued {len(done['issued'])} of 10 zones: {done['skipped']}")
        with _phase(phases, "PDFs out + summary"):
            out.mkdir(parents=True, exist_ok=True)
            for doc in done["issued"]:
                pdf, _, _ = run(conn, verdicts.document_pdf(doc["id"], district_code=DISTRICT))
                (out / f"{doc['zone_code']}.pdf").write_bytes(pdf)
            rows = acceptance.district_figures(conn, district_code=DISTRICT, rules=rules)
            report.write_summary(rows, out, district_name=DISTRICT_NAME, rules=rules)


def _unissue(url: str) -> None:
    """Delete the issued documents and their redo plans, so that the next issue round issues all ten."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM redo_evidence")
        conn.execute("DELETE FROM redo_items")
        conn.execute("DELETE FROM acceptance_documents")


def serve_issued(url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    """Serve an issued zone PDF from a uvicorn process under ``clients`` concurrent clients; beside it,
    the live zone PDF (a render per request) one client at a time."""
    from datetime import timedelta

    from bench._load import load, our_server, wrk_get
    from geo.access import users

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT id, zone_code, length(pdf) FROM acceptance_documents ORDER BY id LIMIT 1").fetchone()
        assert row is not None, "nothing issued to serve"
        conn.execute("DELETE FROM users WHERE username = 'bench-reader'")
        reader = users.create_user(
            conn, username="bench-reader", password="bench-pass-1", role="admin", district_code=DISTRICT, actor="bench"
        )
        token, _ = users.issue_token(conn, reader, ttl=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    env = {"WUYE_DISTRICT_CODE": DISTRICT, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}
    load_start = os.getloadavg()[0]
    with our_server(url, extra_env=env) as base:
        pdf_url = f"{base}/verdicts/{row[0]}.pdf"
        load(pdf_url, concurrency=2, count=20, headers=headers, warmup=2)  # warm: the first read fills the cache
        stored = wrk_get(pdf_url, headers=headers, concurrency=clients, seconds=seconds)
        # the floor of any signed-in request on this server and machine, same clients: the token lookup
        # and the framework, with a few hundred bytes of JSON instead of the PDF
        floor = wrk_get(f"{base}/auth/me", headers=headers, concurrency=clients, seconds=seconds)
        live = load(f"{base}/zones/{row[1]}/acceptance.pdf", concurrency=1, count=5, headers=headers, warmup=1)
    return {
        "doc": int(row[0]),
        "zone": row[1],
        "bytes": int(row[2]),
        "clients": clients,
        "stored": stored,
        "floor": floor,
        "live": live,
        "load": (load_start, os.getloadavg()[0]),
    }


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Add the block's wall time to ``phases[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def _tree_sample(root: int, cpu: dict[int, tuple[str, float]]) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over a process and all its descendants; ``cpu`` keeps each process's
    latest CPU seconds and kind. The tree is walked through /proc/PID/task/TID/children (cheap;
    scanning all of /proc every sample would cost CPU that the measured paths need). The RSS sum counts
    every shared page once per process that maps it (the Chromium binary and fonts, pages a forked
    process inherited): an upper bound. PSS (/proc/PID/smaps_rollup) splits each shared page among the
    processes sharing it, so its sum is the tree's footprint."""
    rss = pss = 0
    stack, page, tick = [root], os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                rss += int(fh.read().split()[1]) * page
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                pss += next(int(line.split()[1]) * 1024 for line in fh if line.startswith("Pss:"))
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            kind = cpu[pid][0] if pid in cpu else _kind(pid)
            cpu[pid] = (kind, (int(fields[11]) + int(fields[12])) / tick)
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError, StopIteration, IndexError):
            continue
    return rss, pss


_KINDS = [
    "python (app server, queries, PDFs)",
    "python app server process",
    "Playwright driver",
    "Chromium renderers",
    "Chromium GPU process",
    "Chromium browser and utilities",
]


def _kind(pid: int) -> str:
    """What a process of the tree is, for the CPU breakdown (Chromium rewrites its children's titles)."""
    with open(f"/proc/{pid}/cmdline") as fh:
        line = fh.read().replace("\0", " ")
    name = os.path.basename(line.split(" ", 1)[0])
    if name.startswith("python"):
        return "python app server process" if "bench.apart" in line else "python (app server, queries, PDFs)"
    if name == "node":
        return "Playwright driver"
    if "--renderer-client-id" in line:
        return "Chromium renderers"
    if "--gpu-preferences" in line:
        return "Chromium GPU process"
    return "Chromium browser and utilities"


def measure(path: str, url: str, options: list[str]) -> dict[str, float]:
    """Run one path in a fresh process: wall and CPU time, peak memory of the process tree, files written,
    and the path's own phase timings."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        timings = Path(folder) / "phases.json"
        out = Path(folder) / "out"
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--run",
                path,
                "--url",
                url,
                "--out",
                str(out),
                "--started",
                repr(time.time()),
                "--phases",
                str(timings),
                *options,
            ]
        )
        peak_rss = peak_pss = 0
        cpu: dict[int, tuple[str, float]] = {}
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_rss, peak_pss
            while not done.is_set():
                rss, pss = _tree_sample(proc.pid, cpu)
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, _ = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"{path} path failed with exit code {proc.returncode}")
        files = sorted(out.iterdir())
        size = sum(f.stat().st_size for f in files)
        phases = json.loads(timings.read_text())
    # CPU from the samples, not from wait4's rusage: Chromium's zygote children can outlive the
    # process that would reap them, and their time then never reaches our child's rusage.
    return {
        "seconds": seconds,
        "cpu_s": sum(c for _, c in cpu.values()),
        "peak_mib": peak_pss / 2**20,
        "peak_rss_mib": peak_rss / 2**20,
        "files": len(files),
        "mib": size / 2**20,
        **{f"cpu {kind}": sum(c for k, c in cpu.values() if k == kind) for kind in _KINDS},
        **{f"phase {k}": v for k, v in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--pages", type=int, help="ours: browser pages at once (default: maps.report.MAP_PAGES)")
    parser.add_argument(
        "--workers", type=int, help="ours: PDF render processes, 0 = a thread (default: maps.report.RENDER_WORKERS)"
    )
    parser.add_argument(
        "--navigate",
        action="store_true",
        help="ours: a navigation per zone instead of moving each page to its next zone in place",
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="ours: serve the app from a uvicorn child process instead of a thread of the measured process",
    )
    parser.add_argument(
        "--no-collect",
        action="store_true",
        help="ours: leave each page's garbage to V8 instead of collecting it between zones",
    )
    parser.add_argument("--paths", default="plain,ours,issue", help="which paths to measure (comma-separated)")
    parser.add_argument("--serve-clients", type=int, default=20)
    parser.add_argument("--serve-seconds", type=float, default=15.0)
    parser.add_argument("--run", choices=["plain", "ours", "issue"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--phases", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        phases = {"started": args.started}
        if args.run == "plain":
            run_plain(args.url, Path(args.out), phases)
        elif args.run == "issue":
            run_issue(args.url, Path(args.out), phases)
        else:
            run_ours(
                args.url,
                Path(args.out),
                phases,
                pages=args.pages,
                workers=args.workers,
                navigate=args.navigate,
                apart=args.apart,
                no_collect=args.no_collect,
            )
        Path(args.phases).write_text(json.dumps(phases))
        return
    url = _prepare(args.scale, args.answers)
    args.load_start = os.getloadavg()[0]
    paths = [p for p in ("plain", "ours", "issue") if p in args.paths.split(",")]
    results: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    for i in range(args.rounds):
        for path in paths if i % 2 == 0 else paths[::-1]:  # alternate the order
            options = [f"--{k}={v}" for k in ("pages", "workers") if (v := getattr(args, k)) is not None]
            options += [f"--{k.replace('_', '-')}" for k in ("navigate", "apart", "no_collect") if getattr(args, k)]
            if path == "issue":
                _unissue(url)
            results[path].append(measure(path, url, options if path == "ours" else []))
            print(path, json.dumps(results[path][-1]), flush=True)
    args.load_end = os.getloadavg()[0]
    served = None
    if "issue" in paths:
        served = serve_issued(url, clients=args.serve_clients, seconds=args.serve_seconds)
        print("served", served, flush=True)
    write_results(results, url, args, served)


def write_results(
    results: dict[str, list[dict[str, float]]], url: str, args: argparse.Namespace, served: dict[str, Any] | None
) -> None:
    from maps.report import MAP_PAGES, MAP_SIZE, RENDER_WORKERS

    pages = args.pages or MAP_PAGES
    workers = RENDER_WORKERS if args.workers is None else args.workers
    renders = f"in {workers} forked WeasyPrint processes" if workers else "in one WeasyPrint thread"
    moves = "by navigating" if args.navigate else "in place: `wuye.showZone`, no navigation"
    serving = (
        "plain from a thread of the measured process, ours from a uvicorn child process, `bench.apart`"
        if args.apart
        else "from a thread of the measured process"
    )

    med = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in results.items()}

    def met(flag: bool) -> str:
        return "met" if flag else "**not met**"

    what = {
        "plain": "per zone one after another: a fresh Chromium draws and captures its map page, its own "
        "query set, a fresh WeasyPrint renderer; then the summary the same way",
        "ours": f"`wuye report acceptance --all` (`maps.report.write_all`): one query set, one browser ({pages} "
        f"page{'s' * (pages != 1)} at once, each moving on from zone to zone {moves}), each PDF rendered as soon "
        f"as its map is drawn, {renders}",
        "issue": "`wuye report acceptance --all --issue` (`geo.programme.verdicts.issue_all`): every zone's "
        "verdict issued as a frozen, numbered document with its map (one query set, the same one-browser "
        "path, one transaction), the issued PDFs written out as stored, then the summary PDF + XLSX",
    }

    def row(path: str) -> str:
        m = med[path]
        return (
            f"| {path} | {what[path]} | {m['seconds']:.1f} | {m['cpu_s']:.1f} | {m['peak_mib']:.0f} | "
            f"{m['peak_rss_mib']:.0f} | {m['files']:.0f} | {m['mib']:.1f} |"
        )

    def phases(path: str) -> str:
        return "; ".join(f"{k[6:]} {v:.1f} s" for k, v in med[path].items() if k.startswith("phase "))

    def cpu(path: str) -> str:
        return "; ".join(f"{k[4:]} {v:.1f} s" for k, v in med[path].items() if k.startswith("cpu ") and v)

    goals = []
    if "issue" in med and "ours" in med:
        ratio = med["issue"]["seconds"] / med["ours"]["seconds"]
        goals.append(
            f"- Issuing all ten verdicts + the summary against `wuye report acceptance --all`, same run: "
            f"**{ratio:.2f}×** its time (medians {med['issue']['seconds']:.1f} s against "
            f"{med['ours']['seconds']:.1f} s; "
            f"goal ≤ 1.2×: {met(ratio <= 1.2)})."
        )
    if "plain" in med and "ours" in med:
        speedup = med["plain"]["seconds"] / med["ours"]["seconds"]
        goals.append(
            f"- `write_all` against the plain path (issue 6): speed-up **{speedup:.2f}×** (goal ≥ 3×: "
            f"{met(speedup >= 3)}); under 60 s: {met(med['ours']['seconds'] < 60)}; under 1 GiB (PSS): "
            f"{met(med['ours']['peak_mib'] < 1024)} (RSS sum {med['ours']['peak_rss_mib']:.0f} MiB)."
        )
    if served is not None:
        st, live = served["stored"], served["live"]
        goals.append(
            f"- Serving an issued zone PDF (`GET /verdicts/{served['doc']}.pdf`, {served['zone']}, "
            f"{served['bytes'] / 1024:.0f} KiB, a stored file) from one uvicorn process: {st.requests} requests "
            f"from {served['clients']} concurrent connections (wrk, one thread) in {st.seconds:.0f} s, p50 "
            f"**{st.p50_ms:.1f} ms**, p90 {st.p90_ms:.1f} ms, p99 **{st.p99_ms:.1f} ms** "
            f"(goal p99 < 50 ms: {met(st.p99_ms < 50)}), {st.rps:.0f} req/s, {st.errors} errors. Beside it, the "
            f"live zone PDF (`/zones/{served['zone']}/acceptance.pdf`, a render per request) one client at a time: "
            f"p50 {live.p50_ms:.0f} ms ({live.p50_ms / st.p50_ms:.0f}× the stored file's median, {live.errors} "
            f"errors). The floor of a signed-in request here (`/auth/me`, a few hundred bytes of JSON, the same "
            f"{served['clients']} connections): p50 {served['floor'].p50_ms:.1f} ms, p99 {served['floor'].p99_ms:.1f} "
            f"ms, {served['floor'].rps:.0f} req/s. Load average (1 min) at the start / end of the serving run: "
            f"{served['load'][0]:.1f} / "
            f"{served['load'][1]:.1f}."
        )

    lines = [
        "# Acceptance reports and issued verdicts: ten zones + the district summary",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}.",
        f"Machine: {machine()}; {server_versions(url)}.",
        f"Load average (1 min) at the start / end of the measurements: {args.load_start:.1f} / "
        f"{args.load_end:.1f} (other sessions share this machine; the paths alternate to share the noise).",
        "",
        "## Goals",
        "",
        *goals,
        "",
        "## Paths",
        "",
        f"District: demo `--scale {args.scale}`, {args.answers:,} survey answers, ten remediation items per zone, "
        f"400 cases; two zones fail (补课), so issuing them opens their redo plans. Each path runs in its own "
        f"process and serves our app on a loopback port ({serving}), "
        "from which Chromium loads the zone map pages (`/maps/zones/{code}?snapshot=true`, "
        f"{MAP_SIZE[0]}×{MAP_SIZE[1]} px, JPEG). Memory is sampled every 50 ms over the process and its "
        "children (Chromium, the Playwright driver, the app server process, render workers): PSS sum (the "
        "tree's footprint, shared pages "
        "split among their sharers) and RSS sum (an upper bound: a shared page counts once per process). CPU "
        "is user + system time of every process of the tree, as last sampled (a process's final 50 ms may be "
        f"missing). Median of {args.rounds} rounds, order alternated.",
        "",
        "| path | what | total time (s) | CPU (s) | peak PSS (MiB) | peak RSS sum (MiB) | files | output (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[row(p) for p in med],
        "",
        "Where the time goes (medians, wall seconds inside the measured process; setup = interpreter start, "
        "imports, app and in-process server):",
        "",
        *[f"- {p}: {phases(p)}" for p in med],
        "",
        "CPU seconds by process kind:",
        "",
        *[f"- {p}: {cpu(p)}" for p in med],
        "",
        "All rounds:",
        "",
        *[
            f"- {p} round {i + 1}: {r['seconds']:.2f} s, CPU {r['cpu_s']:.1f} s, PSS {r['peak_mib']:.0f} MiB, "
            f"RSS sum {r['peak_rss_mib']:.0f} MiB"
            for p, rs in results.items()
            for i, r in enumerate(rs)
        ],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
