"""Shared bits of the benchmarks: the machine description and the bench database."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.settings import DatabaseSettings
from geo.store import embedded

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    """CPU, cores, memory, OS and Python, for the results header."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        mem = "?"
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM; {platform.platform()}; Python {platform.python_version()}"


def server_versions(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('server_version'), postgis_lib_version()").fetchone()
    assert row is not None
    return f"PostgreSQL {row[0]}, PostGIS {row[1]}"


def bench_database(name: str = "wuye_bench") -> str:
    """A fresh database for a benchmark: in WUYE_DATABASE_URL's server or the embedded cluster."""
    settings = DatabaseSettings()
    if settings.database_url:
        admin = settings.database_url
        base = admin.rsplit("/", 1)[0]
    else:
        # Loopback TCP with the password in the URL: tipg (asyncpg) reads no libpq passfile.
        cluster = embedded.locate(settings.home)
        embedded.start(cluster, tcp=True)
        admin = embedded.url_with_password(cluster, "postgres")
        base = admin.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{base}/{name}"


def git_revision(where: Path | None = None) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=where or ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM).

    Not ``ru_maxrss``: Linux carries that over ``execve`` from the forking
    parent, so a worker started by a large parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def demo_database(name: str) -> str:
    """A fresh bench database, migrated and loaded with the demo district (seed 2023, scale 1)."""
    from geo.demo.load import load_demo
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    url = bench_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_catalogue())
    with psycopg.connect(url) as conn:
        load_demo(conn, load_catalogue(), district_code="430104")
    return url


def sample_points(area: Any, n: int, rng: Any, *, batch: int) -> tuple[Any, Any]:
    """``n`` uniform random points inside ``area`` (rejection sampling, ``batch`` draws a round),
    as (x, y) numpy arrays; the same rng and batch give the same points."""
    import numpy as np
    import shapely

    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    xs: list[Any] = []
    ys: list[Any] = []
    have = 0
    while have < n:
        x, y = rng.uniform(minx, maxx, batch), rng.uniform(miny, maxy, batch)
        keep = shapely.contains_xy(area, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
