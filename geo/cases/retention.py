"""What is kept, and for how long (issue 13 point 9, 等保 2.0): reporters' names and phone numbers are
erased a while after their case is closed; the audit trail is kept at least its retention period and
purged after it (the database refuses earlier deletes, layers/migrations/0011_guarded.sql)."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from layers.catalogue import CLOSED_CASE_STATES

AUDIT_FLOOR_DAYS = 180  # the trigger's floor: no audit row is deleted younger than this


def erase_reporters(conn: psycopg.Connection, *, district_code: str, days: int, actor: str = "system") -> list[str]:
    """Erase the reporter's name and phone of every case closed more than ``days`` ago, with one audit
    row naming the cases (one transaction); the codes of the cases erased."""
    with conn.transaction():
        codes = [
            r[0]
            for r in conn.execute(
                "UPDATE cases SET reporter_name = NULL, reporter_phone = NULL, pii_erased_at = now() "
                "WHERE district_code = %s AND state = ANY(%s) AND closed_at < now() - make_interval(days => %s) "
                "AND (reporter_name IS NOT NULL OR reporter_phone IS NOT NULL) RETURNING code",
                [district_code, list(CLOSED_CASE_STATES), days],
            )
        ]
        if codes:
            conn.execute(
                "INSERT INTO audit_log (district_code, actor, action, table_name, record_code, details) "
                "VALUES (%s, %s, 'case.erase_reporter', 'cases', NULL, %s)",
                [district_code, actor, Jsonb({"cases": sorted(codes), "count": len(codes), "after_days": days})],
            )
    return codes


def purge_audit(conn: psycopg.Connection, *, district_code: str, days: int, actor: str = "system") -> int:
    """Delete audit rows older than ``days`` (at least 180), with an audit row saying how many."""
    days = max(days, AUDIT_FLOOR_DAYS)
    with conn.transaction():
        row = conn.execute(
            "WITH gone AS (DELETE FROM audit_log WHERE district_code = %s AND at < now() - make_interval(days => %s) "
            "RETURNING 1) SELECT count(*) FROM gone",
            [district_code, days],
        ).fetchone()
        n = int(row[0]) if row else 0
        if n:
            conn.execute(
                "INSERT INTO audit_log (district_code, actor, action, table_name, record_code, details) "
                "VALUES (%s, %s, 'audit.purge', 'audit_log', NULL, %s)",
                [district_code, actor, Jsonb({"deleted": n, "older_than_days": days})],
            )
    return n
