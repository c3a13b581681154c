"""Benchmark: acceptance PDFs for all ten zones plus the district summary (PDF + XLSX).

District: the demo at ``--scale 10``, the plan's ten remediation items per zone (most verified),
20,000 survey answers across the zones, a few hundred cases. Two paths, same run, same database,
each measured in its own process (wall time; peak memory = the sum of the RSS of the process and
its children, sampled every 50 ms from /proc):

* plain: for each zone one after another, its own query set and a fresh renderer (WeasyPrint
  with a new font configuration), then the summary the same way;
* ours:  ``geo.report.write_all``: one query set for the district, HTML for every zone, renders
  in worker processes that keep their font configuration.

    .venv/bin/python bench/report.py [--rounds 2] [--answers 20000] [--scale 10]
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
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench._common import RESULTS, bench_database, git_revision, machine, server_versions

DISTRICT = "430104"
DISTRICT_NAME = "岳麓区"


def _prepare(scale: int, answers: int) -> str:
    from geo import remediation
    from geo.demo import load_demo
    from geo.migrate import migrate
    from layers.catalogue import load_catalogue

    url = bench_database("wuye_bench_report")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_catalogue())
    with psycopg.connect(url) as conn:
        load_demo(conn, load_catalogue(), district_code=DISTRICT, scale=scale)
        remediation.plan_items(conn, district_code=DISTRICT, actor="bench")
        # most items verified; one zone keeps two open so that its verdict is 补课
        conn.execute("UPDATE remediation_tasks SET state = 'verified', verified_on = DATE '2023-07-15' "
                     "WHERE NOT (zone_code = 'daopo' AND item IN ('walls', 'ditches'))")
        # answers spread over the zones by their households; satisfaction differs by zone (80%..95%)
        conn.execute(
            "INSERT INTO survey_answers (district_code, round, zone_code, building, household, answered_on, "
            " surveyor, satisfied, score_sanitation, score_greening, actor) "
            "SELECT %(d)s, '2023', z.code, (g %% 40 + 1) || '栋', z.code || '-' || g, DATE '2023-08-01' + (g %% 20), "
            " 'surveyor-' || (g %% 7), (hashtext(z.code || g) & 1023) < 1023 * (0.80 + 0.15 * z.n / 10.0), "
            " 1 + (g %% 5), 1 + ((g + 2) %% 5), 'bench' "
            "FROM (SELECT code, row_number() OVER (ORDER BY code) AS n, "
            "      greatest(1, round(%(answers)s * households / sum(households) OVER ()))::int AS k "
            "      FROM zones WHERE district_code = %(d)s) z, generate_series(1, z.k) g",
            {"d": DISTRICT, "answers": answers})
        # cases: some closed, some open; one zone has a case overdue past the grace period
        conn.execute(
            "INSERT INTO cases (code, district_code, category, geom, state, zone_code, subdistrict_code, due_at, "
            " closed_at, created_at) "
            "SELECT 'BENCH-' || z.code || '-' || g, %(d)s, 'garbage_pile', ST_PointOnSurface(z.geom), "
            " CASE WHEN g %% 3 = 0 THEN 'dispatched' ELSE 'closed' END, z.code, z.subdistrict_code, "
            " now() - make_interval(hours => CASE WHEN g %% 30 = 0 AND z.code = 'lichen' THEN 200 ELSE -48 END), "
            " CASE WHEN g %% 3 = 0 THEN NULL ELSE now() - interval '1 day' END, now() - interval '5 days' "
            "FROM zones z, generate_series(1, 40) g", {"d": DISTRICT})
        conn.commit()
        n = conn.execute("SELECT count(*) FROM survey_answers").fetchone()
        lights = conn.execute("SELECT count(*) FROM street_lights").fetchone()
    print(f"prepared: {n[0] if n else 0} answers, {lights[0] if lights else 0} street lights", flush=True)
    return url


def run_plain(url: str, out: Path) -> None:
    """The plain path: per zone, its own queries and a fresh renderer, one after another."""
    from geo import acceptance, report
    from geo.settings import AcceptanceSettings

    rules = AcceptanceSettings()
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url) as conn:
        for code in acceptance.zone_codes(conn, district_code=DISTRICT):
            pdf = report.zone_pdf(conn, code, district_code=DISTRICT, district_name=DISTRICT_NAME, rules=rules,
                                  fresh=True)
            (out / f"{code}.pdf").write_bytes(pdf)
        rows = [acceptance.zone_acceptance(conn, code, district_code=DISTRICT, rules=rules)
                for code in acceptance.zone_codes(conn, district_code=DISTRICT)]
    html = report.summary_html(rows, district_name=DISTRICT_NAME, rules=rules)
    (out / "summary.pdf").write_bytes(report.render_pdf(html, fresh=True))
    (out / "summary.xlsx").write_bytes(report.summary_xlsx(rows))


def run_ours(url: str, out: Path) -> None:
    """Our path: one query set, parallel renders with kept font configurations."""
    from geo import report
    from geo.settings import AcceptanceSettings

    with psycopg.connect(url) as conn:
        report.write_all(conn, out, district_code=DISTRICT, district_name=DISTRICT_NAME,
                         rules=AcceptanceSettings())


def _tree_rss(root: int) -> int:
    """Resident memory (bytes) of a process and all its descendants: the tree is walked through
    /proc/PID/task/TID/children (cheap; scanning all of /proc every sample would cost CPU that
    the measured paths need)."""
    total, stack, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(path: str, url: str) -> dict[str, float]:
    """Run one path in a fresh process: wall time, peak RSS of the process tree, files written."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--run", path, "--url", url, "--out", folder])
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        if code != 0:
            raise SystemExit(f"{path} path failed with exit code {code}")
        files = sorted(Path(folder).iterdir())
        size = sum(f.stat().st_size for f in files)
    return {"seconds": seconds, "peak_mib": peak / 2**20, "files": len(files), "mib": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--run", choices=["plain", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        (run_plain if args.run == "plain" else run_ours)(args.url, Path(args.out))
        return
    url = _prepare(args.scale, args.answers)
    args.load_start = os.getloadavg()[0]
    results: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
    for i in range(args.rounds):
        for path in ("plain", "ours") if i % 2 == 0 else ("ours", "plain"):  # alternate the order
            results[path].append(measure(path, url))
            print(path, json.dumps(results[path][-1]), flush=True)
    write_results(results, url, args)


def write_results(results: dict[str, list[dict[str, float]]], url: str, args: argparse.Namespace) -> None:
    med = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in results.items()}
    speedup = med["plain"]["seconds"] / med["ours"]["seconds"]
    lines = [
        "# Acceptance reports: ten zone PDFs + district summary (PDF + XLSX)", "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}.",
        f"Machine: {machine()}; {server_versions(url)}.",
        f"Load average (1 min) at the start / end of the measurements: {args.load_start:.1f} / "
        f"{os.getloadavg()[0]:.1f} (other sessions share this machine; the paths alternate to share the noise).", "",
        f"District: demo `--scale {args.scale}`, {args.answers:,} survey answers, ten remediation items per zone, "
        "400 cases. Each path runs in its own process; peak memory is the summed RSS of the process and its "
        f"children, sampled every 50 ms. Median of {args.rounds} rounds, order alternated.", "",
        "| path | what | total time (s) | peak memory (MiB) | files | output (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| plain | per zone: own query set + fresh WeasyPrint renderer, one after another | "
        f"{med['plain']['seconds']:.1f} | {med['plain']['peak_mib']:.0f} | {med['plain']['files']:.0f} | "
        f"{med['plain']['mib']:.1f} |",
        f"| ours | `geo.report.write_all`: one query set, {os.cpu_count()} render processes keeping their fonts | "
        f"{med['ours']['seconds']:.1f} | {med['ours']['peak_mib']:.0f} | {med['ours']['files']:.0f} | "
        f"{med['ours']['mib']:.1f} |", "",
        f"Speed-up: **{speedup:.2f}×** (goal ≥ 3×); ours under 60 s: "
        f"{'yes' if med['ours']['seconds'] < 60 else 'no'}; under 1 GiB: "
        f"{'yes' if med['ours']['peak_mib'] < 1024 else 'no'}.", "",
        "All rounds:", "",
        *[f"- {p} round {i + 1}: {r['seconds']:.2f} s, {r['peak_mib']:.0f} MiB"
          for p, rs in results.items() for i, r in enumerate(rs)], "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
