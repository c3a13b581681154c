"""A small load generator and server runner for the HTTP benchmarks (loopback only)."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import ROOT


@dataclass
class LoadResult:
    """What one load run measured."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bytes_per_response: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def our_server(
    database_url: str,
    *,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    root: Path = ROOT,
) -> Iterator[str]:
    """Run ``wuye``'s app with uvicorn (``workers`` processes, as ``wuye serve``'s ``WUYE_WORKERS``) in a
    subprocess; yield its base URL. ``root``: a checkout of another commit (a named baseline), its code
    first on the path, with this interpreter and its packages."""
    port = port or free_port()
    env = {**os.environ, "WUYE_DATABASE_URL": database_url, **(extra_env or {})}
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *(["--workers", str(workers)] if workers > 1 else []),
        ],
        cwd=root,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/health", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


async def _load(url: str, *, concurrency: int, count: int, headers: dict[str, str]) -> LoadResult:
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    issued = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers) as client:

        async def worker() -> None:
            nonlocal errors, issued
            while issued < count:
                issued += 1
                start = time.perf_counter()
                try:
                    response = await client.get(url)
                    body = response.content
                    ok = response.status_code < 300 or response.status_code == 204
                except httpx.HTTPError:
                    ok, body = False, b""
                latencies.append(time.perf_counter() - start)
                sizes.append(len(body))
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        bytes_per_response=statistics.fmean(sizes) if sizes else 0.0,
    )


def load(
    url: str, *, concurrency: int = 8, count: int = 400, headers: dict[str, str] | None = None, warmup: int = 20
) -> LoadResult:
    """GET ``url`` ``count`` times from ``concurrency`` connections (after a short warm-up)."""
    asyncio.run(_load(url, concurrency=min(concurrency, warmup), count=warmup, headers=headers or {}))
    return asyncio.run(_load(url, concurrency=concurrency, count=count, headers=headers or {}))


@dataclass
class WrkResult:
    """What one wrk POST run measured, and the ids of the 2xx answers."""

    requests: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    ids: list[str]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _wrk(url: str, script: str, env: dict[str, str], *, concurrency: int, seconds: float, threads: int) -> WrkResult:
    """Run wrk with ``bench/<script>`` (which writes its counts, the latency percentiles and the
    ids it collected to the file named by WRK_OUT, through bench/wrk_report.lua) and read them."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "out.txt")
        subprocess.run(
            [
                "wrk",
                f"-t{min(threads, concurrency)}",
                f"-c{concurrency}",
                f"-d{seconds:g}s",
                "--latency",
                "--timeout",
                "30s",
                "-s",
                str(ROOT / "bench" / script),
                url,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, **env, "WRK_OUT": out_file, "WRK_REPORT": str(ROOT / "bench" / "wrk_report.lua")},
        )
        values: dict[str, float] = {}
        ids: list[str] = []
        with open(out_file, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition(" ")
                if key == "id":
                    ids.append(value)
                else:
                    values[key] = float(value)
    return WrkResult(
        requests=int(values["requests"]),
        ok=int(values["ok"]),
        errors=int(values["bad"] + values["socket_errors"]),
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        ids=ids,
    )


def wrk_post(url: str, bodies: list[Any], *, concurrency: int, seconds: float, threads: int = 1) -> WrkResult:
    """POST the JSON ``bodies`` (cycled, each with a fresh Idempotency-Key) from ``concurrency``
    connections for ``seconds`` with wrk (C, one thread: it leaves the server the cores)."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        body_file = os.path.join(tmp, "bodies.jsonl")
        with open(body_file, "w", encoding="utf-8") as f:
            for body in bodies:
                f.write(json.dumps(body, ensure_ascii=False) + "\n")
        return _wrk(
            url, "post.lua", {"WRK_BODIES": body_file}, concurrency=concurrency, seconds=seconds, threads=threads
        )


def wrk_get(url: str, *, headers: dict[str, str], concurrency: int, seconds: float, threads: int = 1) -> WrkResult:
    """GET ``url`` from ``concurrency`` connections for ``seconds`` with wrk (C, one thread: it leaves
    the server the cores); non-200 answers are errors."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        header_file = os.path.join(tmp, "headers.txt")
        with open(header_file, "w", encoding="utf-8") as f:
            f.writelines(f"{k}: {v}\n" for k, v in headers.items())
        return _wrk(
            url, "get.lua", {"WRK_HEADERS": header_file}, concurrency=concurrency, seconds=seconds, threads=threads
        )
