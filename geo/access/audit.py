"""The audit trail: administrative actions, feature edits, case moves and imports, read as one list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

AUDIT_SQL = """
SELECT at, actor, action, table_name, record_code, details FROM (
    SELECT at, actor, action, table_name, record_code, details, district_code FROM audit_log
  UNION ALL
    SELECT changed_at, actor, 'feature.' || operation, layer, feature_code,
           jsonb_build_object('version', version, 'batch_id', batch_id), district_code
    FROM feature_history
  UNION ALL
    SELECT e.at, e.actor, 'case.' || e.action, 'cases', c.code,
           jsonb_build_object('from_state', e.from_state, 'to_state', e.to_state, 'note', e.note), e.district_code
    FROM case_events e JOIN cases c ON c.id = e.case_id
  UNION ALL
    SELECT started_at, actor, 'import.' || mode, layer, NULL,
           jsonb_build_object('batch_id', id, 'source', source, 'inserted', rows_inserted,
                              'updated', rows_updated, 'deleted', rows_deleted), district_code
    FROM import_batches
) AS a
WHERE district_code = %(district)s
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(table)s::text IS NULL OR table_name = %(table)s)
  AND (%(action)s::text IS NULL OR action = %(action)s OR starts_with(action, %(action)s || '.'))
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
ORDER BY at DESC
LIMIT %(limit)s
"""


def audit_entries(
    conn: psycopg.Connection,
    *,
    district_code: str,
    actor: str | None = None,
    table: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, filtered by who, which table, what (an action, or its kind: ``user`` takes
    ``user.add``, ``user.update`` …) and when."""
    cur = conn.execute(
        AUDIT_SQL,
        {
            "district": district_code,
            "actor": actor,
            "table": table,
            "action": action,
            "since": since,
            "until": until,
            "limit": limit,
        },
    )
    return [
        {"at": r[0].isoformat(), "actor": r[1], "action": r[2], "table": r[3], "code": r[4], "details": r[5]}
        for r in cur
    ]
