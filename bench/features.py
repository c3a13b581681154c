"""Benchmark: our OGC API Features/Tiles server against tipg, same database, same load generator.

One bench database (never ``wuye``): the demo district, 1,000,000 street
lights (the import benchmark's generator, loaded through geo.importer) and
2,000 zone-like polygons in ``green_plots``. The servers run under uvicorn
with one worker each on this machine; ``wrk`` drives each scenario for a
fixed time, the servers taking turns in an order that rotates over the rounds.
With ``--base DIR`` (a checkout of an earlier commit, e.g. ``git worktree add
--detach /tmp/premove 63651cd``) that commit's server runs beside ours, on
the same database, as the named baseline. Results: ``bench/results/features.md``.

    .venv/bin/python bench/features.py [--seconds 10] [--rounds 2] [--connections 16] [--base DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from bench._common import RESULTS, ROOT, bench_database, git_revision, machine, server_versions
from bench.import_bench import _points

DISTRICT = "430104"
LIGHTS = 1_000_000
POLYGONS = 2_000
CRS4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"


# -- data ------------------------------------------------------------------------------------------------
def _polygons(url: str, n: int, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` 24-vertex polygons (~60 m across) centred inside the demo zones."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()
    assert row is not None
    zones = shapely.from_wkb(bytes(row[0]))
    shapely.prepare(zones)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = zones.bounds
    centres: list[tuple[float, float]] = []
    while len(centres) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(zones, x, y):
            centres.append((x, y))
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    geoms = [
        shapely.Polygon(np.column_stack([x + 0.0003 * np.cos(angles), y + 0.0003 * np.sin(angles)])) for x, y in centres
    ]
    frame = pd.DataFrame({"code": [f"GP-{i:05d}" for i in range(n)], "condition": "normal"})
    return frame, np.asarray(geoms, dtype=object)


def prepare(url: str) -> None:
    """Migrate, load the demo district, then 1M lights and the polygons (our importer, mode replace)."""
    from geo.demo.load import load_demo
    from geo.io.importer import frame_data, import_data
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    catalogue = load_catalogue()
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, catalogue)
    with psycopg.connect(url) as conn:
        load_demo(conn, catalogue, district_code=DISTRICT)
    lights = _points(url, LIGHTS, seed=2024)
    data = frame_data(lights.drop(columns="geometry"), np.asarray(lights.geometry.values, dtype=object))
    frame, geoms = _polygons(url, POLYGONS)
    with psycopg.connect(url) as conn:
        import_data(
            conn,
            catalogue["street_lights"],
            data,
            source="bench",
            district_code=DISTRICT,
            mode="replace",
            actor="bench",
        )
        import_data(
            conn,
            catalogue["green_plots"],
            frame_data(frame, geoms),
            source="bench",
            district_code=DISTRICT,
            mode="replace",
            actor="bench",
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _bbox_of_about(url: str, target: int = 1000) -> tuple[float, float, float, float]:
    """A square around the lights' median point holding about ``target`` lights."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM street_lights ORDER BY id OFFSET 500000 LIMIT 1"
        ).fetchone()
        assert row is not None
        cx, cy = row
        lo, hi = 1e-5, 0.05
        for _ in range(30):
            half = (lo + hi) / 2
            n = conn.execute(
                "SELECT count(*) FROM street_lights WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)",
                [cx - half, cy - half, cx + half, cy + half],
            ).fetchone()
            assert n is not None
            if abs(n[0] - target) <= target * 0.02:
                break
            lo, hi = (half, hi) if n[0] < target else (lo, half)
    return (round(cx - half, 7), round(cy - half, 7), round(cx + half, 7), round(cy + half, 7))


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


# -- servers -----------------------------------------------------------------------------------------
def _free_port() -> int:
    """A port nobody listens on now (other sessions run servers on this machine too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(which: str, url: str, port: int, base: Path | None = None) -> subprocess.Popen[bytes]:
    common = ["--host", "127.0.0.1", "--workers", "1", "--log-level", "warning", "--no-access-log"]
    cwd = ROOT
    if which in ("ours", "base"):
        env = {**os.environ, "WUYE_DATABASE_URL": url, "WUYE_DISTRICT_CODE": DISTRICT}
        cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
        if which == "base":  # the earlier commit's code first on the path; same interpreter and packages
            assert base is not None
            cwd = base
            env["PYTHONPATH"] = str(base)
    else:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public"]',
        }
        cmd = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--port", str(port)]
    # The same allocator setting for both: glibc's per-thread arenas otherwise keep
    # freed multi-megabyte response buffers mapped (RSS) long after a request.
    env["MALLOC_ARENA_MAX"] = "2"
    proc = subprocess.Popen(cmd + common, env=env, cwd=cwd)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/collections", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{which} server did not start")
        time.sleep(0.3)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int, pid: int) -> dict[str, float]:
    """Run wrk against ``url``; req/s, p50/p99 ms, non-2xx count, the server's peak RSS and the
    server process's CPU time per request (which other load on the machine changes far less than
    throughput: the fairer A/B figure on a shared machine)."""
    peak = [0.0]
    cpu_before = _cpu_s(pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib(pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "20s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _cpu_s(pid) - cpu_before
    done.set()
    sampler.join()
    if "Requests/sec:" not in out or re.search(r"Requests/sec:\s+0\.00", out):
        print(out, file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*timeout (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "cpu_ms": 1000 * cpu / max(1, requests),
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": float(bad.group(1)) if bad else 0.0,
        "timeouts": float(errors.group(1)) if errors else 0.0,
        "rss": peak[0],
    }


# -- run ------------------------------------------------------------------------------------------------
def scenarios(url: str) -> list[dict[str, Any]]:
    box = _bbox_of_about(url)
    bbox = ",".join(str(v) for v in box)
    x, y = _tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 15)
    return [
        {
            "id": "a",
            "what": f"items limit=100, {POLYGONS:,} 24-vertex polygons (green_plots)",
            "ours": "/collections/green_plots/items?limit=100",
            "tipg": "/collections/public.green_plots/items?limit=100",
        },
        {
            "id": "b",
            "what": f"items limit=1000 of {LIGHTS:,} street lights, EPSG:4326",
            "ours": f"/collections/street_lights/items?limit=1000&crs={CRS4326}",
            "tipg": "/collections/public.street_lights/items?limit=1000",
        },
        {
            "id": "c",
            "what": f"bbox {bbox} (~1,000 lights), limit=1000",
            "ours": f"/collections/street_lights/items?limit=1000&bbox={bbox}",
            "tipg": f"/collections/public.street_lights/items?limit=1000&bbox={bbox}",
        },
        {
            "id": "d",
            "what": f"MVT tile 15/{x}/{y} over the lights",
            "ours": f"/collections/street_lights/tiles/WebMercatorQuad/15/{x}/{y}",
            "tipg": f"/collections/public.street_lights/tiles/WebMercatorQuad/15/{x}/{y}",
        },
        {
            "id": "e",
            "what": f"items limit=100 of the demo's {_count(url, 'zones')} zones (small pages: per-request overhead)",
            "ours": "/collections/zones/items?limit=100",
            "tipg": "/collections/public.zones/items?limit=100",
        },
    ]


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def drain(port: int, probe: str, pid: int, url: str) -> None:
    """Wait until the server has finished the requests wrk abandoned.

    wrk closes its connections when a run ends, but requests already inside
    the server (seconds each for a dense tile) still run to completion; the
    next run must not pay for them. Done when a one-feature page answers
    quickly, the server process is idle (under 5 % of a core over half a
    second) and no other statement runs in the bench database: an async
    server (tipg) answers the probe while its abandoned tile queries still
    run in PostgreSQL.
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.perf_counter()
        httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=120)
        quick = time.perf_counter() - started < 0.2
        before = _cpu_s(pid)
        time.sleep(0.5)
        idle = _cpu_s(pid) - before < 0.025
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND pid <> pg_backend_pid()"
            ).fetchone()
        if quick and idle and row is not None and row[0] == 0:
            return


def _check(which: str, port: int, path: str) -> tuple[int, str]:
    r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=60)
    r.raise_for_status()
    detail = ""
    if "json" in r.headers.get("content-type", ""):
        body = r.json()
        detail = f"{len(body['features'])} features"
    return len(r.content), detail


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


LOAD: list[str] = []


def main() -> None:
    LOAD.append(_load())
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reuse", action="store_true", help="keep the bench database of a previous run")
    parser.add_argument("--base", type=Path, help="checkout of the baseline commit, served beside ours")
    parser.add_argument(
        "--case", action="append", choices=list("abcde"), help="run only these cases (results printed, not written)"
    )
    args = parser.parse_args()
    name = "wuye_bench_features"
    if args.reuse:
        from geo.settings import DatabaseSettings

        base = DatabaseSettings().database_url
        if base:
            url = base.rsplit("/", 1)[0] + "/" + name
        else:
            from geo.store import embedded

            cluster = embedded.locate(DatabaseSettings().home)
            embedded.start(cluster, tcp=True)
            url = embedded.url_with_password(cluster, name)
    else:
        url = bench_database(name)
        started = time.perf_counter()
        prepare(url)
        print(f"prepared in {time.perf_counter() - started:.0f} s", flush=True)
    cases = [c for c in scenarios(url) if not args.case or c["id"] in args.case]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    sizes: dict[tuple[str, str], tuple[int, str]] = {}
    servers = ["ours", "base", "tipg"] if args.base else ["ours", "tipg"]
    ports = {which: _free_port() for which in servers}
    procs = {which: _start(which, url, ports[which], args.base) for which in servers}
    paths = {which: ("tipg" if which == "tipg" else "ours") for which in servers}
    probes = {
        w: "/collections/public.zones/items?limit=1" if w == "tipg" else "/collections/zones/items?limit=1"
        for w in servers
    }
    try:
        for case in cases:
            for which in servers:
                url_of = f"http://127.0.0.1:{ports[which]}{case[paths[which]]}"
                sizes[(case["id"], which)] = _check(which, ports[which], case[paths[which]])
                wrk(url_of, 2, args.connections, procs[which].pid)  # warm-up
                drain(ports[which], probes[which], procs[which].pid, url)
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]  # who goes first rotates
            for case in cases:
                for which in order:
                    seconds = args.seconds * (3 if case["id"] == "d" else 1)  # a dense tile takes ~1 s
                    res = wrk(
                        f"http://127.0.0.1:{ports[which]}{case[paths[which]]}",
                        seconds,
                        args.connections,
                        procs[which].pid,
                    )
                    drain(ports[which], probes[which], procs[which].pid, url)
                    results.setdefault((case["id"], which), []).append(res)
                    print(case["id"], which, res, flush=True)
                if case["id"] == "d":
                    # tipg does not come back from the dense tile's abandoned requests (its next
                    # case ran at 6 req/s, p99 6.7 s, though idle and its database idle): every
                    # server starts afresh, and is warmed up, before the next case.
                    for which in servers:
                        procs[which].terminate()
                        procs[which].wait(timeout=20)
                        procs[which] = _start(which, url, ports[which], args.base)
                    nxt = cases[(cases.index(case) + 1) % len(cases)]
                    for which in servers:
                        wrk(
                            f"http://127.0.0.1:{ports[which]}{nxt[paths[which]]}", 2, args.connections, procs[which].pid
                        )
                        drain(ports[which], probes[which], procs[which].pid, url)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=20)
    if args.case:
        for (case_id, which), runs in sorted(results.items()):
            rps = statistics.median(r["rps"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            print(f"{case_id} {which}: {rps:.1f} req/s, p99 {p99:.1f} ms (median of {len(runs)})")
        return
    write(url, cases, results, sizes, args, servers)


def write(
    url: str,
    cases: list[dict[str, Any]],
    results: dict[tuple[str, str], list[dict[str, float]]],
    sizes: dict[tuple[str, str], tuple[int, str]],
    args: argparse.Namespace,
    servers: list[str],
) -> None:
    def med(case: str, which: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(case, which)])

    lines = [
        "# Features benchmark: our OGC API vs tipg" + (" and the baseline commit" if "base" in servers else ""),
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()} (ours, with uncommitted changes "
        "if any)" + (f"; base: commit {git_revision(args.base)} from {args.base}, same venv" if args.base else ""),
        f"- machine: {machine()}",
        f"- database: {server_versions(url)} (embedded cluster, one bench database for both)",
        f"- data: demo district + {LIGHTS:,} street lights + {POLYGONS:,} polygons in green_plots",
        f"- servers: uvicorn, 1 worker each, same machine; load: wrk -t2 -c{args.connections}, "
        f"{args.seconds} s per run ({3 * args.seconds} s for the tile), {args.rounds} rounds, the servers taking "
        "turns in an order that rotates each round "
        "(after a 2 s warm-up); between runs each server is left to finish the requests wrk abandoned; "
        "after the dense tile (d) both servers are restarted and warmed up again",
        "- both servers run with MALLOC_ARENA_MAX=2 and uvicorn's httptools + uvloop (uvicorn[standard])",
        '- tipg: `uvicorn tipg.main:app` with TIPG_DB_SCHEMAS=["public"] (collections `public.*`), default settings',
        "- figures are medians over the rounds; memory is the server process's peak RSS under load",
        f"- load average (1 min) at the start and the end: {LOAD[0]} / {_load()} (other sessions share "
        "this machine; A/B alternation spreads their load over both servers)",
        "",
        "| case | what | server | req/s | p50 ms | p99 ms | server CPU ms/req | bytes | non-2xx | peak RSS MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in cases:
        for which in servers:
            size, detail = sizes[(case["id"], which)]
            lines.append(
                f"| {case['id']} | {case['what']} | {which} | {med(case['id'], which, 'rps'):,.1f} | "
                f"{med(case['id'], which, 'p50'):,.1f} | {med(case['id'], which, 'p99'):,.1f} | "
                f"{med(case['id'], which, 'cpu_ms'):,.2f} | {size:,}{' (' + detail + ')' if detail else ''} | "
                f"{sum(r['non2xx'] for r in results[(case['id'], which)]):.0f} | "
                f"{max(r['rss'] for r in results[(case['id'], which)]):,.0f} |"
            )
    lines += ["", "| case | throughput ours/tipg | p99 tipg/ours | goal | met |", "| --- | ---: | ---: | --- | --- |"]
    for case in cases:
        ratio = med(case["id"], "ours", "rps") / med(case["id"], "tipg", "rps")
        p99 = med(case["id"], "tipg", "p99") / med(case["id"], "ours", "p99")
        if case["id"] == "d":
            goal, met = "≥ 1.1× throughput", ratio >= 1.1
        elif case["id"] == "e":
            goal, met = "≥ 4× throughput and p99 ≤ 1/4 (issue 12)", ratio >= 4 and p99 >= 4
        else:
            goal, met = "≥ 8× throughput and p99 ≤ 1/8", ratio >= 8 and p99 >= 8
        lines.append(f"| {case['id']} | {ratio:.1f}× | {p99:.1f}× | {goal} | {'yes' if met else 'NO'} |")
    if "base" in servers:
        lines += [
            "",
            f"Against the baseline commit {git_revision(args.base)} (goal: no case below 0.95× its throughput):",
            "",
            "| case | req/s ours | req/s base | ours/base | p50 ours/base | p99 ours/base "
            "| server CPU/req ours/base | met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for case in cases:
            c = case["id"]
            ratio = med(c, "ours", "rps") / med(c, "base", "rps")
            lines.append(
                f"| {c} | {med(c, 'ours', 'rps'):,.1f} | {med(c, 'base', 'rps'):,.1f} | {ratio:.2f}× | "
                f"{med(c, 'ours', 'p50') / med(c, 'base', 'p50'):.2f} | "
                f"{med(c, 'ours', 'p99') / med(c, 'base', 'p99'):.2f} | "
                f"{med(c, 'ours', 'cpu_ms') / med(c, 'base', 'cpu_ms'):.2f} | "
                f"{'yes' if ratio >= 0.95 else 'NO'} |"
            )
    peak = max(r["rss"] for (c, w), rs in results.items() if w == "ours" for r in rs)
    lines += [
        "",
        f"Our server's peak memory under load: {peak:,.0f} MiB (goal ≤ 500 MiB: "
        f"{'met' if peak <= 500 else 'NOT met'}).",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "features.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
