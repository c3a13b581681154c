"""Case statistics by sub-district, zone, category, state and responsible unit, in one grouped query
(scoped); the closed cases' on-time rate and median hours to close by responsible unit and by month
of closing (the statistics page's charts). A case closed on time is one closed by its ``due_at``,
the deadline intake and recategorising count on the working calendar (geo/workcal.py,
layers/calendar.toml); its hours to close are clock hours from the report to the close.

Downloads (CSV, XLSX) say names, never codes: 观沙岭, not ``guanshaling``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal, case_scope
from geo.cases.workflow import CLOSED_STATES, category_list
from geo.sheets import csv_bytes, xlsx_bytes
from geo.workcal import calendar
from layers.catalogue import vocabulary

# What a closed case adds to a group: closed, closed by the deadline, and the median hours from the
# report to the close. One text for both queries, so that the page and /cases/stats count alike.
CLOSURE_COLUMNS = """
       count(*) FILTER (WHERE c.state = 'closed') AS closed,
       count(*) FILTER (WHERE c.state = 'closed' AND c.closed_at <= c.due_at) AS closed_on_time,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.closed_at - c.created_at) / 3600.0)
           FILTER (WHERE c.state = 'closed') AS median_hours_to_close"""
STATS_SQL = (
    """
SELECT CASE WHEN GROUPING(c.subdistrict_code) = 0 THEN 'subdistrict'
            WHEN GROUPING(c.zone_code) = 0 THEN 'zone'
            WHEN GROUPING(c.category) = 0 THEN 'category'
            WHEN GROUPING(c.state) = 0 THEN 'state'
            WHEN GROUPING(c.unit_code) = 0 THEN 'unit' ELSE 'total' END AS dimension,
       coalesce(c.subdistrict_code, c.zone_code, c.category, c.state, c.unit_code) AS key,
       count(*) AS cases,
       count(*) FILTER (WHERE c.state <> ALL(%(closed)s)) AS open,
       count(*) FILTER (WHERE c.due_at < coalesce(c.closed_at, now()) AND c.state <> ALL(%(ended)s)) AS overdue,"""
    + CLOSURE_COLUMNS
    + """
FROM cases c
WHERE c.district_code = %(district)s AND {scope}
  AND (%(since)s::timestamptz IS NULL OR c.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR c.created_at < %(until)s)
GROUP BY GROUPING SETS ((c.subdistrict_code), (c.zone_code), (c.category), (c.state), (c.unit_code), ())
ORDER BY 1, 2 NULLS FIRST
"""
)
# The closed cases by the unit responsible for them and by the month (local time) they were closed in.
CLOSURE_SQL = (
    """
SELECT CASE WHEN GROUPING(c.unit_code) = 0 THEN 'unit' ELSE 'month' END AS dimension,
       CASE WHEN GROUPING(c.unit_code) = 0 THEN c.unit_code
            ELSE to_char(c.closed_at AT TIME ZONE %(tz)s, 'YYYY-MM') END AS key,"""
    + CLOSURE_COLUMNS
    + """
FROM cases c
WHERE c.district_code = %(district)s AND {scope} AND c.state = 'closed'
GROUP BY GROUPING SETS ((c.unit_code), (to_char(c.closed_at AT TIME ZONE %(tz)s, 'YYYY-MM')))
ORDER BY 1 DESC, 2 NULLS FIRST
"""
)
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
# What the downloads call each dimension, and a group without a key (a case placed nowhere).
DIMENSIONS = {
    "zh": {
        "subdistrict": "街道",
        "zone": "小区",
        "category": "类别",
        "state": "状态",
        "unit": "责任单位",
        "month": "结案月份",
        "total": "合计",
    },
    "en": {
        "subdistrict": "Sub-district",
        "zone": "Zone",
        "category": "Category",
        "state": "State",
        "unit": "Responsible unit",
        "month": "Month closed",
        "total": "Total",
    },
}
UNKNOWN = {"zh": "（未落点）", "en": "(not placed)"}
NO_UNIT = {"zh": "（无责任单位）", "en": "(no unit)"}
ALL = {"zh": "全部", "en": "All"}


def _scope(principal: Principal) -> tuple[sql.Composable, dict[str, Any]]:
    scope, params = case_scope(principal, "c")
    if principal.role in ("resident", "anonymous"):
        return sql.SQL("true"), params  # public counts: no personal data in them
    return scope, params


def _closure(closed: int, on_time: int, median: Any) -> dict[str, Any]:
    return {
        "closed": closed,
        "closed_on_time": on_time,
        "on_time_rate": round(on_time / closed, 4) if closed else None,
        "median_hours_to_close": round(float(median), 2) if median is not None else None,
    }


def case_stats(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Rows of (dimension, key, counts, on-time closure rate, median hours to close)."""
    scope, params = _scope(principal)
    rows = conn.execute(
        sql.SQL(STATS_SQL).format(scope=scope),
        {
            **params,
            "district": district_code,
            "closed": list(CLOSED_STATES),
            "ended": ["rejected", "duplicate"],
            "since": since,
            "until": until,
        },
    ).fetchall()
    return [
        {
            "dimension": dim,
            "key": key,
            "cases": n,
            "open": open_,
            "overdue": overdue,
            **_closure(closed, on_time, median),
        }
        for dim, key, n, open_, overdue, closed, on_time, median in rows
    ]


def closure_stats(conn: psycopg.Connection, principal: Principal, *, district_code: str) -> list[dict[str, Any]]:
    """The closed cases in the caller's scope by responsible unit (``dimension`` unit, ``key`` its
    code, None for none) and by month closed (``month``, ``YYYY-MM`` local): how many, how many by
    their deadline, the on-time rate (0-1) and the median hours from report to close."""
    scope, params = _scope(principal)
    rows = conn.execute(
        sql.SQL(CLOSURE_SQL).format(scope=scope), {**params, "district": district_code, "tz": calendar().zone.key}
    ).fetchall()
    return [
        {"dimension": dim, "key": key, **_closure(closed, on_time, median)}
        for dim, key, closed, on_time, median in rows
    ]


def key_names(conn: psycopg.Connection, *, district_code: str, lang: str) -> dict[str, dict[str, str]]:
    """dimension → key → the name people read, in ``lang``: sub-districts, zones and units from their
    tables, categories from the category list, states from the vocabulary."""

    def table(name: str) -> dict[str, str]:
        query = sql.SQL("SELECT code, name FROM {} WHERE district_code = %s").format(sql.Identifier(name))
        return {str(code): str(label) for code, label in conn.execute(query, [district_code])}

    return {
        "subdistrict": table("subdistricts"),
        "zone": table("zones"),
        "unit": table("units"),
        "category": {c["code"]: c["name"] if lang == "zh" else c["name_en"] for c in category_list()},
        "state": vocabulary("case_states").labels(lang),
    }


def name_of(names: dict[str, dict[str, str]], dimension: str, key: str | None, lang: str) -> str:
    """A group's name: its key's name (the key itself where nothing names it: a month), a
    placeholder for a case placed nowhere or with no unit, "all" for the total."""
    if dimension == "total":
        return ALL[lang]
    if key is None:
        return NO_UNIT[lang] if dimension == "unit" else UNKNOWN[lang]
    return names.get(dimension, {}).get(key, key)


def _headers(lang: str) -> list[str]:
    closed = vocabulary("case_states")["closed"].label(lang)
    if lang == "en":
        return [
            "Dimension",
            "Name",
            "Cases",
            "Open",
            "Overdue",
            closed,
            "Closed on time",
            "On-time rate",
            "Median hours to close",
        ]
    return ["维度", "名称", "事件数", "未结", "超期", closed, "按期结案", "按期结案率", "结案时长中位数(小时)"]


def named_rows(
    conn: psycopg.Connection, rows: list[dict[str, Any]], *, district_code: str, lang: str = "zh"
) -> tuple[list[str], list[list[Any]]]:
    """``case_stats`` rows as the downloads show them: a header and each row with its dimension's
    and its key's names (never a code) in ``lang``."""
    names = key_names(conn, district_code=district_code, lang=lang)
    table = [
        [DIMENSIONS[lang][r["dimension"]], name_of(names, r["dimension"], r["key"], lang), *(r[c] for c in COLUMNS[2:])]
        for r in rows
    ]
    return _headers(lang), table


def to_csv(conn: psycopg.Connection, rows: list[dict[str, Any]], *, district_code: str, lang: str = "zh") -> bytes:
    """UTF-8 CSV with a BOM, so that Excel shows the Chinese names."""
    return csv_bytes(*named_rows(conn, rows, district_code=district_code, lang=lang))


def to_xlsx(conn: psycopg.Connection, rows: list[dict[str, Any]], *, district_code: str, lang: str = "zh") -> bytes:
    """An Excel workbook with one sheet of the figures, names not codes."""
    title = "事件统计" if lang == "zh" else "Case statistics"
    return xlsx_bytes(title, *named_rows(conn, rows, district_code=district_code, lang=lang))
