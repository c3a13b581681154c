"""What ``/health`` reports: database reachable, PostGIS version, migrations applied."""

from __future__ import annotations

from typing import Any

import psycopg

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
