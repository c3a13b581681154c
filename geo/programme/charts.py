"""The figures of the statistics page (/workbench/stats, issue 21 point 7) as named tables: cases by
sub-district, category and state (geo/cases/stats.py, in the caller's scope), the closed cases'
on-time rate and median hours to close by responsible unit and by month (the same module's closure
figures), satisfaction per zone with its 95% Wilson interval (geo/programme/surveys.py, each zone
on its judged round), remediation progress per sub-district and fee collection per zone
(geo/programme/fees.py, every month billed up to this one). Names, never codes: the page draws each
table as a chart, shows it as an HTML table and downloads it as CSV or XLSX, all from these rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg

from geo.access.scope import Principal
from geo.cases.stats import case_stats, closure_stats, key_names, name_of
from geo.programme import fees, surveys
from geo.sheets import csv_bytes, xlsx_bytes
from geo.steps import run
from geo.workcal import today
from layers.catalogue import vocabulary

CHARTS = ("subdistrict", "category", "state", "unit", "month", "satisfaction", "remediation", "fees")
TITLES = {
    "zh": {
        "subdistrict": "各街道事件数",
        "category": "各类别事件数",
        "state": "各状态事件数",
        "unit": "各责任单位按期结案率与结案时长",
        "month": "各月按期结案率与结案时长",
        "satisfaction": "各小区满意率（95% 置信区间）",
        "remediation": "各街道整治进度",
        "fees": "各小区物业费收缴率（累计至本月）",
    },
    "en": {
        "subdistrict": "Cases by sub-district",
        "category": "Cases by category",
        "state": "Cases by state",
        "unit": "On-time closure and hours to close by unit",
        "month": "On-time closure and hours to close by month",
        "satisfaction": "Satisfaction per zone (95% interval)",
        "remediation": "Remediation progress by sub-district",
        "fees": "Fee collection per zone (to this month)",
    },
}
# the verified tasks' and the closed cases' columns say the state's name from the one vocabulary
_VERIFIED = {lang: vocabulary("remediation_states").labels(lang)["verified"] for lang in ("zh", "en")}
_CLOSED = {lang: vocabulary("case_states").labels(lang)["closed"] for lang in ("zh", "en")}
COLUMNS = {
    "zh": {
        "cases": ["名称", "事件数", "未结", "超期"],
        "closure": [_CLOSED["zh"], "按期结案", "按期结案率(%)", "结案时长中位数(小时)"],
        "unit": ["责任单位"],
        "month": ["结案月份"],
        "satisfaction": ["小区", "满意率(%)", "区间下限(%)", "区间上限(%)", "答卷数"],
        "remediation": ["街道", "整治任务", _VERIFIED["zh"], "完成率(%)"],
        "fees": ["小区", "应缴户次", "已缴户次", "按户收缴率(%)", "应收(元)", "实收(元)", "按金额收缴率(%)"],
    },
    "en": {
        "cases": ["Name", "Cases", "Open", "Overdue"],
        "closure": [_CLOSED["en"], "Closed on time", "On time (%)", "Median hours to close"],
        "unit": ["Unit"],
        "month": ["Month closed"],
        "satisfaction": ["Zone", "Satisfied (%)", "Lower (%)", "Upper (%)", "Answers"],
        "remediation": ["Sub-district", "Tasks", _VERIFIED["en"], "Done (%)"],
        "fees": ["Zone", "Bills", "Bills paid", "By households (%)", "Billed (yuan)", "Paid (yuan)", "By amount (%)"],
    },
}
REMEDIATION_SQL = (
    "SELECT coalesce(s.name, z.subdistrict_code), count(t.id), count(t.id) FILTER (WHERE t.state = 'verified') "
    "FROM zones z LEFT JOIN subdistricts s ON s.code = z.subdistrict_code "
    "JOIN remediation_tasks t ON t.zone_code = z.code AND t.district_code = z.district_code "
    "WHERE z.district_code = %s GROUP BY 1 ORDER BY 1"
)
FEES_SINCE = date(2000, 1, 1)  # every month billed (the acceptance standards read the same span)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _chart(chart: str, lang: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"id": chart, "title": TITLES[lang][chart], "columns": columns, "rows": rows}


def _case_charts(
    conn: psycopg.Connection, principal: Principal, names: dict[str, dict[str, str]], district_code: str, lang: str
) -> list[dict[str, Any]]:
    stats = case_stats(conn, principal, district_code=district_code)
    return [
        _chart(
            dim,
            lang,
            COLUMNS[lang]["cases"],
            [
                [name_of(names, dim, r["key"], lang), r["cases"], r["open"], r["overdue"]]
                for r in stats
                if r["dimension"] == dim
            ],
        )
        for dim in ("subdistrict", "category", "state")
    ]


def _closure_charts(
    conn: psycopg.Connection, principal: Principal, names: dict[str, dict[str, str]], district_code: str, lang: str
) -> list[dict[str, Any]]:
    """On-time rate and median hours to close by unit (a case with no unit under the placeholder) and by month."""
    stats = closure_stats(conn, principal, district_code=district_code)
    out = []
    for dim in ("unit", "month"):
        rows = [
            [
                name_of(names, dim, r["key"], lang),
                r["closed"],
                r["closed_on_time"],
                _pct(r["on_time_rate"]),
                r["median_hours_to_close"],
            ]
            for r in stats
            if r["dimension"] == dim
        ]
        out.append(_chart(dim, lang, COLUMNS[lang][dim] + COLUMNS[lang]["closure"], rows))
    return out


def _satisfaction(
    conn: psycopg.Connection, zones: dict[str, str], district_code: str, lang: str, survey_round: str | None
) -> dict[str, Any]:
    survey = surveys.zone_figures(conn, district_code=district_code, setting=survey_round)
    rows = []
    for code, f in sorted(survey.items(), key=lambda kv: zones.get(kv[0], kv[0])):
        if not f["answers"]:
            continue
        low, high = f["wilson_95"]
        rows.append([zones.get(code, code), _pct(f["rate"]), _pct(low), _pct(high), f["answers"]])
    return _chart("satisfaction", lang, COLUMNS[lang]["satisfaction"], rows)


def _remediation(conn: psycopg.Connection, district_code: str, lang: str) -> dict[str, Any]:
    rows = [
        [name, tasks, done, _pct(done / tasks) if tasks else None]
        for name, tasks, done in conn.execute(REMEDIATION_SQL, [district_code])
    ]
    return _chart("remediation", lang, COLUMNS[lang]["remediation"], rows)


def _fees(conn: psycopg.Connection, zones: dict[str, str], district_code: str, lang: str) -> dict[str, Any]:
    """Collection per zone by households and by amount, every month billed up to this one (fees.collection)."""
    figures = run(conn, fees.collection(district_code=district_code, start=FEES_SINCE, end=today().replace(day=1)))
    rows = [
        [
            zones.get(f["zone_code"], f["zone_code"]),
            f["bills"],
            f["bills_paid"],
            f["rate_by_households"],
            float(f["billed"]),
            float(f["paid"]),
            f["rate_by_amount"],
        ]
        for f in sorted(
            (f for f in figures if f["level"] == "zone"), key=lambda f: zones.get(f["zone_code"], f["zone_code"])
        )
    ]
    return _chart("fees", lang, COLUMNS[lang]["fees"], rows)


def figures(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    lang: str,
    survey_round: str | None,
    only: str | None = None,
) -> list[dict[str, Any]]:
    """Every chart of the page: ``{"id", "title", "columns", "rows"}`` with names in ``lang``, in
    ``CHARTS`` order; ``only``: just that chart (a download reads only the query it needs)."""
    names = key_names(conn, district_code=district_code, lang=lang)
    builders: list[tuple[tuple[str, ...], Callable[[], list[dict[str, Any]]]]] = [
        (("subdistrict", "category", "state"), lambda: _case_charts(conn, principal, names, district_code, lang)),
        (("unit", "month"), lambda: _closure_charts(conn, principal, names, district_code, lang)),
        (("satisfaction",), lambda: [_satisfaction(conn, names["zone"], district_code, lang, survey_round)]),
        (("remediation",), lambda: [_remediation(conn, district_code, lang)]),
        (("fees",), lambda: [_fees(conn, names["zone"], district_code, lang)]),
    ]
    out = [chart for ids, build in builders if only is None or only in ids for chart in build()]
    return [chart for chart in out if only is None or chart["id"] == only]


def to_csv(chart: dict[str, Any]) -> bytes:
    """One chart's table as UTF-8 CSV with a BOM (Excel shows the Chinese names)."""
    return csv_bytes(chart["columns"], chart["rows"])


def to_xlsx(chart: dict[str, Any]) -> bytes:
    """One chart's table as an Excel workbook, its sheet named after the chart."""
    return xlsx_bytes(chart["title"], chart["columns"], chart["rows"])
