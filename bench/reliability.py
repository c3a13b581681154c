"""Reliability under a crowd and through faults (issue 12), against a real `wuye serve` on a free port.

Cases (one section each in bench/results/reliability.md; ``--case`` picks them):

- (b) 50 racing edits of one feature with one ``If-Match``: outcome counts and wall time
  (goal 1 × 200 + 49 × 412 within 5 s).
- (c) intake at concurrency 8 for 60 s with the embedded database stopped (``wuye db stop``) for
  10 s at t = 20 s and started again (``wuye db start``): every 2xx present afterwards, what was
  answered while it was down, seconds from ``wuye db start`` to serving again (goal ≤ 10).

Both run against their own embedded cluster (``var/bench-reliability``), migrated and loaded with the
demo district, so stopping it disturbs nobody's database. The goals are absolute (no baseline
server takes part): the machine's load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from bench._common import RESULTS, ROOT, git_revision, machine
from geo.store import embedded

HOME = ROOT / "var" / "bench-reliability"
DISTRICT = "430104"
RESULT = RESULTS / "reliability.md"
INSIDE = (112.952, 28.232)


def _wuye(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "api.cli", *args]
    return subprocess.run(cmd, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, check=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/collections", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("wuye serve did not start")
        time.sleep(0.2)


def _token(db_url: str, role: str) -> dict[str, str]:
    from datetime import timedelta

    from geo.access import users

    with psycopg.connect(db_url, autocommit=True) as conn:
        name = f"bench-{role}-{os.getpid()}-{time.time_ns()}"
        user = users.create_user(
            conn, username=name, password="Bench-pass-1", role=role, district_code=DISTRICT, actor="bench"
        )
        token, _ = users.issue_token(conn, user, ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


# -- (b) racing edits ------------------------------------------------------------------------------------
def case_b(url: str, db_url: str, clients: int = 50) -> dict[str, Any]:
    """``clients`` concurrent PATCHes of one feature, all with the If-Match of version 1."""
    planner = _token(db_url, "planner")
    code = f"BENCH-RACE-{time.time_ns()}"
    light = {
        "type": "Feature",
        "properties": {"code": code, "condition": "normal", "power_w": 60},
        "geometry": {"type": "Point", "coordinates": list(INSIDE)},
    }
    r = httpx.post(f"{url}/collections/street_lights/items", json=light, headers=planner, timeout=30)
    r.raise_for_status()

    async def one(http: httpx.AsyncClient, i: int) -> int:
        try:
            r = await http.patch(
                f"{url}/collections/street_lights/items/{code}",
                json={"properties": {"power_w": 100 + i}},
                headers={**planner, "If-Match": '"1"'},
            )
        except httpx.HTTPError:
            return 0  # no answer within the client's 120 s
        return r.status_code

    async def race() -> tuple[Counter[int], float]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
            started = time.perf_counter()
            answers = await asyncio.gather(*(one(http, i) for i in range(clients)))
            return Counter(answers), time.perf_counter() - started

    counts, wall = asyncio.run(race())
    return {"clients": clients, "counts": dict(sorted(counts.items())), "wall_s": wall}


def _section_b(result: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} × {status or 'no answer'}" for status, n in result["counts"].items())
    ok = result["counts"] == {200: 1, 412: result["clients"] - 1}
    return (
        f'{result["clients"]} concurrent PATCH of one feature, each with `If-Match: "1"`.\n\n'
        f"| outcome | wall time | goal (1 × 200 + {result['clients'] - 1} × 412 within 5 s) |\n|---|---|---|\n"
        f"| {counts} | {result['wall_s']:.2f} s | {'met' if ok and result['wall_s'] <= 5 else 'NOT met'} |\n"
    )


# -- (c) intake through a database outage ----------------------------------------------------------------
def case_c(
    url: str, env: dict[str, str], *, duration: float = 60, down_at: float = 20, down_for: float = 10, workers: int = 8
) -> dict[str, Any]:
    """Intake at concurrency ``workers`` with the database stopped for ``down_for`` s at ``down_at``."""
    log: list[tuple[float, float, int, str | None]] = []  # start, end (s from t0), status, case id
    cluster = embedded.locate(HOME)
    marks: dict[str, float] = {}

    async def run() -> None:
        t0 = time.monotonic()
        stop = asyncio.Event()

        async def worker(w: int, http: httpx.AsyncClient) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                body = {"category": "garbage_pile", "lon": INSIDE[0] + w * 1e-5, "lat": INSIDE[1] + n * 1e-7}
                began = time.monotonic() - t0
                try:
                    r = await http.post(f"{url}/cases", json=body, headers={"Idempotency-Key": f"b{t0}-{w}-{n}"})
                    status, case = r.status_code, (r.json().get("id") if r.status_code == 201 else None)
                except httpx.HTTPError:
                    status, case = 0, None
                log.append((began, time.monotonic() - t0, status, case))
                if status != 201:
                    await asyncio.sleep(0.1)

        async with httpx.AsyncClient(timeout=30) as http:
            tasks = [asyncio.create_task(worker(w, http)) for w in range(workers)]
            await asyncio.sleep(down_at)
            # What `wuye db stop` / `wuye db start` call, in this process: on a loaded machine the
            # CLI's own start-up (seconds of imports) would blur the timings.
            marks["stop_issued"] = time.monotonic() - t0
            await asyncio.to_thread(embedded.stop, cluster)
            marks["stopped"] = time.monotonic() - t0
            await asyncio.sleep(max(0.0, down_at + down_for - (time.monotonic() - t0)))
            marks["start_issued"] = time.monotonic() - t0
            await asyncio.to_thread(embedded.start, cluster)
            marks["started"] = time.monotonic() - t0
            # run on to ``duration``, and at least 20 s past the start
            await asyncio.sleep(
                max(0.0, duration - (time.monotonic() - t0), marks["started"] + 20 - (time.monotonic() - t0))
            )
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(run())
    created = [c for _, _, s, c in log if s == 201 and c]
    db_url = embedded.server_url(embedded.locate(HOME), "wuye")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM cases WHERE code = ANY(%s)", [created]).fetchone()
    present = int(row[0]) if row else 0
    # every request in flight at some moment while the database was down
    down = [e for e in log if e[0] < marks["start_issued"] and e[1] > marks["stopped"]]
    back = [e for e in log if e[0] >= marks["start_issued"] and e[2] == 201]
    first_ok_after = min((e[1] for e in back), default=float("nan"))
    return {
        "requests": len(log),
        "created": len(created),
        "present": present,
        "down_counts": dict(sorted(Counter(e[2] for e in down).items())),
        "down_latency_max_s": max((e[1] - e[0] for e in down), default=0.0),
        "down_latency_median_s": statistics.median([e[1] - e[0] for e in down]) if down else 0.0,
        "serving_again_s": first_ok_after - marks["started"],
        "marks": marks,
        "workers": workers,
        "duration": duration,
    }


def _section_c(r: dict[str, Any]) -> str:
    m = r["marks"]
    down = ", ".join(f"{n} × {'no answer' if s == 0 else s}" for s, n in r["down_counts"].items()) or "none"
    return (
        f"{r['duration']:.0f} s of intake (POST /cases with Idempotency-Key) at concurrency {r['workers']}; "
        "the database stopped (`embedded.stop`, what `wuye db stop` runs) "
        f"from {m['stop_issued']:.1f} s (down at {m['stopped']:.1f} s), "
        f"started again (`embedded.start`) at {m['start_issued']:.1f} s (returned at {m['started']:.1f} s). "
        "'While down' counts every request in flight at some moment of the outage, and how it ended.\n\n"
        "| requests | 201 answered | 201 present afterwards | answered while down | latency while down "
        "(median / max) | serving again after `wuye db start` (goal ≤ 10 s) |\n|---|---|---|---|---|---|\n"
        f"| {r['requests']} | {r['created']} | {r['present']} | {down} | "
        f"{r['down_latency_median_s']:.2f} s / {r['down_latency_max_s']:.2f} s | {r['serving_again_s']:.1f} s |\n"
    )


# -- results ----------------------------------------------------------------------------------------------
def _update_section(title: str, body: str, header: str) -> None:
    """Replace (or add) the ``## title`` section of the results file, leaving the other sections be."""
    text = RESULT.read_text() if RESULT.exists() else "# Reliability (issue 12)\n"
    sections = text.split("\n## ")
    head, rest = sections[0], sections[1:]
    rest = [s for s in rest if s.split("\n", 1)[0] != title]
    rest.append(f"{title}\n\n{header}\n{body}")
    RESULT.write_text("\n## ".join([head.rstrip() + "\n", *(s.rstrip() + "\n" for s in rest)]))


def _prepare() -> tuple[dict[str, str], str]:
    env = {"WUYE_HOME": str(HOME), "WUYE_DISTRICT_CODE": DISTRICT, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}
    _wuye(env, "db", "start")
    _wuye(env, "demo", "--if-empty")
    return env, embedded.server_url(embedded.locate(HOME), "wuye")


def main() -> None:
    """Run the chosen cases and write their sections of bench/results/reliability.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["b", "c"], action="append", help="default: b and c")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--down-at", type=float, default=20)
    parser.add_argument("--down-for", type=float, default=10)
    parser.add_argument("--pool-max-size", type=int, help="WUYE_POOL_MAX_SIZE of the server (default: its own)")
    args = parser.parse_args()
    cases = args.case or ["b", "c"]
    env, db_url = _prepare()
    pool_note = ""
    if args.pool_max_size:
        env["WUYE_POOL_MAX_SIZE"] = str(args.pool_max_size)
        pool_note = f", WUYE_POOL_MAX_SIZE={args.pool_max_size}"
    proc, url = _serve(env)
    try:
        for case in cases:
            load = os.getloadavg()[0]
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if case == "b":
                result = case_b(url, db_url)
                title, body = f"(b) 50 racing edits with one If-Match{pool_note}", _section_b(result)
            else:
                result = case_c(url, env, duration=args.duration, down_at=args.down_at, down_for=args.down_for)
                title, body = f"(c) intake through a database outage{pool_note}", _section_c(result)
            header = (
                f"- run {when}, revision {git_revision()}; machine: {machine()}\n"
                f"- load average (1 min) at the start {load:.1f} and the end {os.getloadavg()[0]:.1f} "
                "(shared machine; the goals are absolute)\n"
                f"- `wuye serve` (default settings{pool_note}) on a free port, its own embedded cluster with the "
                "demo district\n"
            )
            print(title, result, flush=True)
            _update_section(title, body, header)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        _wuye(env, "db", "stop")


if __name__ == "__main__":
    main()
