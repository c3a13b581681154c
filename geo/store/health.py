"""What ``/health`` reports: database reachable, PostGIS version, migrations applied, the photo
directory writable and enough free disk."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from geo.steps import Statement, Steps, run_async
from geo.store.migrate import plan
from layers.catalogue import Catalogue


def health() -> Steps[dict[str, Any]]:
    """Database, PostGIS and migration state, as a JSON-ready dict (``migrations.pending`` is
    filled in by :func:`check`, which knows the catalogue)."""
    rows = yield Statement(
        "SELECT postgis_lib_version(), current_setting('server_version'), to_regclass('wuye_migrations') IS NOT NULL"
    )
    postgis, server, recorded = rows[0]
    done = {r[0] for r in (yield Statement("SELECT name FROM wuye_migrations"))} if recorded else set()
    return {"database": "reachable", "postgresql": server, "postgis": postgis, "applied": done}


async def _database(url: str, catalogue: Catalogue, timeout_s: float) -> tuple[dict[str, Any], list[str]]:
    # Its own short connection, not the shared pool: a full pool must not make the service
    # look dead, and a dead database must not make /health wait for the pool's timeout. Async,
    # in the event loop: no worker thread to wait for when a crowd holds them all.
    ms = max(100, int(timeout_s * 1000))
    try:
        async with asyncio.timeout(timeout_s):
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(timeout_s)), options=f"-c statement_timeout={ms}"
            )
            async with conn:
                body = await run_async(conn, health())
    except TimeoutError:
        return {"database": "no answer"}, [f"database did not answer within {timeout_s:g} s"]
    except psycopg.Error as e:
        return {"database": "unreachable", "database_error": str(e).strip()[:300]}, ["database unreachable"]
    done = body.pop("applied")
    waiting = [s.name for s in plan(catalogue) if s.name not in done]
    body["migrations"] = {"applied": not waiting, "pending": waiting}
    return body, (["migrations pending: " + ", ".join(waiting)] if waiting else [])


def _photos(root: Path, min_free_mb: int) -> tuple[dict[str, Any], list[str]]:
    folder = root / "photos"
    problems = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".health-"):
            pass  # a real write: permission bits say nothing to root, a read-only mount does
        writable = True
    except OSError:
        writable = False
        problems.append(f"photo directory {folder} is not writable")
    free_mb = shutil.disk_usage(folder if folder.exists() else root).free // (1024 * 1024)
    if free_mb < min_free_mb:
        problems.append(f"free disk {free_mb} MB is below {min_free_mb} MB (WUYE_MIN_FREE_DISK_MB)")
    return {"photos": {"directory": str(folder), "writable": writable}, "disk": {"free_mb": free_mb}}, problems


async def check(
    url: str, catalogue: Catalogue, *, photo_root: Path, min_free_mb: int, timeout_s: float
) -> dict[str, Any]:
    """Everything ``/health`` checks, on a connection of its own, within ``timeout_s``: ``status``
    is ``ok``, or ``unavailable`` with ``problems`` naming each thing that is wrong."""
    body, problems = await _database(url, catalogue, timeout_s)
    files, more = _photos(photo_root, min_free_mb)
    problems += more
    return {"status": "unavailable" if problems else "ok", **body, **files, "problems": problems}
