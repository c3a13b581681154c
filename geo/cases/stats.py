"""Case statistics by sub-district, zone, category and state, in one grouped query (scoped)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal, case_scope
from geo.cases.workflow import CLOSED_STATES
from layers.catalogue import vocabulary

STATS_SQL = """
SELECT CASE WHEN GROUPING(c.subdistrict_code) = 0 THEN 'subdistrict'
            WHEN GROUPING(c.zone_code) = 0 THEN 'zone'
            WHEN GROUPING(c.category) = 0 THEN 'category'
            WHEN GROUPING(c.state) = 0 THEN 'state' ELSE 'total' END AS dimension,
       coalesce(c.subdistrict_code, c.zone_code, c.category, c.state) AS key,
       count(*) AS cases,
       count(*) FILTER (WHERE c.state <> ALL(%(closed)s)) AS open,
       count(*) FILTER (WHERE c.due_at < coalesce(c.closed_at, now()) AND c.state <> ALL(%(ended)s)) AS overdue,
       count(*) FILTER (WHERE c.state = 'closed') AS closed,
       count(*) FILTER (WHERE c.state = 'closed' AND c.closed_at <= c.due_at) AS closed_on_time,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.closed_at - c.created_at) / 3600.0)
           FILTER (WHERE c.state = 'closed') AS median_hours_to_close
FROM cases c
WHERE c.district_code = %(district)s AND {scope}
  AND (%(since)s::timestamptz IS NULL OR c.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR c.created_at < %(until)s)
GROUP BY GROUPING SETS ((c.subdistrict_code), (c.zone_code), (c.category), (c.state), ())
ORDER BY 1, 2 NULLS FIRST
"""
COLUMNS = (
    "dimension",
    "key",
    "cases",
    "open",
    "overdue",
    "closed",
    "closed_on_time",
    "on_time_rate",
    "median_hours_to_close",
)


def case_stats(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Rows of (dimension, key, counts, on-time closure rate, median hours to close)."""
    scope, params = case_scope(principal, "c")
    if principal.role in ("resident", "anonymous"):
        scope = sql.SQL("true")  # public counts: no personal data in them
    stmt = sql.SQL(STATS_SQL).format(scope=scope)
    rows = conn.execute(
        stmt,
        {
            **params,
            "district": district_code,
            "closed": list(CLOSED_STATES),
            "ended": ["rejected", "duplicate"],
            "since": since,
            "until": until,
        },
    ).fetchall()
    out = []
    for dim, key, n, open_, overdue, closed, on_time, median in rows:
        out.append(
            {
                "dimension": dim,
                "key": key,
                "cases": n,
                "open": open_,
                "overdue": overdue,
                "closed": closed,
                "closed_on_time": on_time,
                "on_time_rate": round(on_time / closed, 4) if closed else None,
                "median_hours_to_close": round(float(median), 2) if median is not None else None,
            }
        )
    return out


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """UTF-8 CSV with a BOM, so that Excel shows the Chinese keys."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[dict[str, Any]]) -> bytes:
    """An Excel workbook with one sheet of the figures."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "事件统计"
    closed = vocabulary("case_states")["closed"].zh
    sheet.append(["维度", "名称", "事件数", "未结", "超期", closed, "按期结案", "按期结案率", "结案时长中位数(小时)"])
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
