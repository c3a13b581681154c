"""Benchmark: case intake (`POST /cases`) at rising concurrency, against our own server.

Each report runs the whole intake: validation, GCJ-02 conversion for half of
them, the spatial-join assignment and routing, nearest facility, duplicate
lookup, the event row and an idempotency record. Afterwards every 2xx answer's
case must be in the database. Results go to ``bench/results/cases.md``
(intake section).

The load generator is wrk (C, one thread, bench/post.lua): each request carries
a fresh Idempotency-Key, and the script keeps the id of every 2xx answer, so
that afterwards each one is looked up in the database.

    .venv/bin/python bench/intake.py [--seconds 10] [--levels 1,4,8,16,32]
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import psycopg
import shapely

from bench._common import RESULTS, demo_database, git_revision, machine, sample_points, server_versions
from bench._load import WrkResult, our_server, wrk_post

DISTRICT = "430104"
CATEGORIES = ["garbage_pile", "light_out", "drain_blocked", "stairwell_clutter", "illegal_parking", "road_uneven"]


def _prepare() -> str:
    return demo_database("wuye_bench_intake")


def _bodies(url: str, n: int, seed: int = 5) -> list[dict]:
    from geo.spatial.coords import wgs84_to_gcj02

    with psycopg.connect(url) as conn:
        wkb = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()
    assert wkb is not None
    zones = shapely.from_wkb(bytes(wkb[0]))
    rng = np.random.default_rng(seed)
    x, y = sample_points(zones, n, rng, batch=n * 20)  # the zones cover little of their bounding box
    gx, gy = wgs84_to_gcj02(x, y)
    bodies = []
    for i in range(n):
        phone = i % 2 == 0  # half come from phones in GCJ-02
        bodies.append(
            {
                "category": CATEGORIES[i % len(CATEGORIES)],
                "lon": float(gx[i] if phone else x[i]),
                "lat": float(gy[i] if phone else y[i]),
                "coord_sys": "gcj02" if phone else "cgcs2000",
                "description": f"基准测试 {i}",
            }
        )
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--levels", default="1,4,8,16,32")
    args = parser.parse_args()
    url = _prepare()
    args.load_start = os.getloadavg()[0]
    levels = [int(v) for v in args.levels.split(",")]
    results: list[tuple[int, WrkResult, int]] = []
    with our_server(url, extra_env={"WUYE_POOL_MAX_SIZE": "16"}) as base:
        wrk_post(base + "/cases", _bodies(url, 500, seed=99), concurrency=4, seconds=3)  # warm-up
        for level in levels:
            res = wrk_post(base + "/cases", _bodies(url, 4000, seed=level), concurrency=level, seconds=args.seconds)
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM cases WHERE code = ANY(%s)", [res.ids]).fetchone()
            results.append((level, res, int(stored[0]) if stored else 0))
            print(
                f"concurrency {level:3}: {res.rps:7.0f} req/s p50 {res.p50_ms:6.1f} ms p99 {res.p99_ms:6.1f} ms "
                f"errors {res.errors}; 2xx {res.ok}, in database {results[-1][2]}",
                flush=True,
            )
    _write(args, url, results)


def _write(args: argparse.Namespace, url: str, results: list[tuple[int, WrkResult, int]]) -> None:
    lines = [
        "## Intake: `POST /cases` at rising concurrency",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}",
        f"- machine: {machine()}; load average (1 min) at the start {args.load_start:.1f} and the end "
        f"{os.getloadavg()[0]:.1f} (the goal is absolute: other sessions on this machine lower it)",
        f"- database: {server_versions(url)}; server: uvicorn, one worker, pool of 16 connections; "
        "reports accumulate from level to level (the duplicate lookup sees all of them)",
        f"- load: wrk, one thread, {args.seconds:g} s per level, a fresh Idempotency-Key on every report; "
        "half the reports in GCJ-02; the server, PostgreSQL and wrk share the machine's cores",
        "",
        "| concurrency | reports/s | p50 ms | p90 ms | p99 ms | errors | 2xx answers | of them in the database |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level, res, stored in results:
        lines.append(
            f"| {level} | {res.rps:,.0f} | {res.p50_ms:.1f} | {res.p90_ms:.1f} | {res.p99_ms:.1f} | "
            f"{res.errors} | {res.ok} | {stored} |"
        )
    met = [r for r in results if r[1].rps >= 500 and r[1].p99_ms < 30]
    best = max(results, key=lambda r: r[1].rps)
    lines += [
        "",
        f"Best: {best[1].rps:,.0f} reports/s at concurrency {best[0]} with p99 {best[1].p99_ms:.1f} ms. "
        f"Goal ≥ 500/s with p99 < 30 ms: "
        + (f"met at concurrency {', '.join(str(r[0]) for r in met)}." if met else "NOT met."),
        "",
    ]
    path = RESULTS / "cases.md"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Cases benchmarks\n\n"
    head = old.split("## Intake:")[0].rstrip() + "\n\n"
    path.write_text(head + "\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
