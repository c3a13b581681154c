"""What ``/health`` reports: database reachable, PostGIS version, migrations applied, the photo
directory writable and enough free disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from geo.errors import DatabaseUnavailable
from geo.store.db import connect
from geo.store.migrate import pending
from layers.catalogue import Catalogue


def health(conn: psycopg.Connection, catalogue: Catalogue) -> dict[str, Any]:
    """Database, PostGIS and migration state, as a JSON-ready dict."""
    row = conn.execute("SELECT postgis_lib_version(), current_setting('server_version')").fetchone()
    assert row is not None
    waiting = pending(conn, catalogue)
    return {
        "status": "ok" if not waiting else "degraded",
        "database": "reachable",
        "postgresql": row[1],
        "postgis": row[0],
        "migrations": {"applied": not waiting, "pending": waiting},
    }


def _database(url: str, catalogue: Catalogue, timeout_s: float) -> tuple[dict[str, Any], list[str]]:
    # Its own short connection, not the shared pool: a full pool must not make the service
    # look dead, and a dead database must not make /health wait for the pool's timeout.
    ms = max(100, int(timeout_s * 1000))
    try:
        with connect(
            url, autocommit=True, connect_timeout=max(1, round(timeout_s)), options=f"-c statement_timeout={ms}"
        ) as conn:
            body = health(conn, catalogue)
    except (DatabaseUnavailable, psycopg.Error) as e:
        return {"database": "unreachable", "database_error": str(e).strip()[:300]}, ["database unreachable"]
    problems = ["migrations pending: " + ", ".join(body["migrations"]["pending"])] if body["status"] != "ok" else []
    return body, problems


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


def check(url: str, catalogue: Catalogue, *, photo_root: Path, min_free_mb: int, timeout_s: float) -> dict[str, Any]:
    """Everything ``/health`` checks, on a connection of its own: ``status`` is ``ok``, or
    ``unavailable`` with ``problems`` naming each thing that is wrong."""
    body, problems = _database(url, catalogue, timeout_s)
    files, more = _photos(photo_root, min_free_mb)
    problems += more
    return {"status": "unavailable" if problems else "ok", **body, **files, "problems": problems}
