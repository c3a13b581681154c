"""The figures of the statistics page (/workbench/stats, issue 21 point 7) as named tables: cases by
sub-district, category and state (geo/cases/stats.py, in the caller's scope), satisfaction per zone
with its 95% Wilson interval (geo/programme/surveys.py, each zone on its judged round) and
remediation progress per sub-district. Names, never codes: the page draws each table as a chart,
shows it as an HTML table and downloads it as CSV, all from these rows."""

from __future__ import annotations

import csv
import io
from typing import Any

import psycopg

from geo.access.scope import Principal
from geo.cases import workflow
from geo.cases.stats import case_stats
from geo.programme import surveys
from layers.catalogue import vocabulary

CHARTS = ("subdistrict", "category", "state", "satisfaction", "remediation")
TITLES = {
    "zh": {
        "subdistrict": "各街道事件数",
        "category": "各类别事件数",
        "state": "各状态事件数",
        "satisfaction": "各小区满意率（95% 置信区间）",
        "remediation": "各街道整治进度",
    },
    "en": {
        "subdistrict": "Cases by sub-district",
        "category": "Cases by category",
        "state": "Cases by state",
        "satisfaction": "Satisfaction per zone (95% interval)",
        "remediation": "Remediation progress by sub-district",
    },
}
# the verified tasks' column says the state's name from the one vocabulary
_VERIFIED = {lang: vocabulary("remediation_states").labels(lang)["verified"] for lang in ("zh", "en")}
COLUMNS = {
    "zh": {
        "cases": ["名称", "事件数", "未结", "超期"],
        "satisfaction": ["小区", "满意率(%)", "区间下限(%)", "区间上限(%)", "答卷数"],
        "remediation": ["街道", "整治任务", _VERIFIED["zh"], "完成率(%)"],
    },
    "en": {
        "cases": ["Name", "Cases", "Open", "Overdue"],
        "satisfaction": ["Zone", "Satisfied (%)", "Lower (%)", "Upper (%)", "Answers"],
        "remediation": ["Sub-district", "Tasks", _VERIFIED["en"], "Done (%)"],
    },
}
REMEDIATION_SQL = (
    "SELECT coalesce(s.name, z.subdistrict_code), count(t.id), count(t.id) FILTER (WHERE t.state = 'verified') "
    "FROM zones z LEFT JOIN subdistricts s ON s.code = z.subdistrict_code "
    "JOIN remediation_tasks t ON t.zone_code = z.code AND t.district_code = z.district_code "
    "WHERE z.district_code = %s GROUP BY 1 ORDER BY 1"
)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def figures(
    conn: psycopg.Connection, principal: Principal, *, district_code: str, lang: str, survey_round: str | None
) -> list[dict[str, Any]]:
    """Every chart of the page: ``{"id", "title", "columns", "rows"}`` with names in ``lang``."""
    cols = COLUMNS[lang]
    stats = case_stats(conn, principal, district_code=district_code)
    names = {
        "subdistrict": dict(
            conn.execute("SELECT code, name FROM subdistricts WHERE district_code = %s", [district_code])
        ),
        "category": {c["code"]: c["name"] if lang == "zh" else c["name_en"] for c in workflow.category_list()},
        "state": vocabulary("case_states").labels(lang),
    }
    unknown = "（未落点）" if lang == "zh" else "(not placed)"
    out = []
    for dim in ("subdistrict", "category", "state"):
        rows = [
            [names[dim].get(r["key"], r["key"]) if r["key"] else unknown, r["cases"], r["open"], r["overdue"]]
            for r in stats
            if r["dimension"] == dim
        ]
        out.append({"id": dim, "title": TITLES[lang][dim], "columns": cols["cases"], "rows": rows})
    zones: dict[str, str] = dict(conn.execute("SELECT code, name FROM zones WHERE district_code = %s", [district_code]))
    survey = surveys.zone_figures(conn, district_code=district_code, setting=survey_round)
    sat = []
    for code, f in sorted(survey.items(), key=lambda kv: zones.get(kv[0], kv[0])):
        if not f["answers"]:
            continue
        low, high = f["wilson_95"]
        sat.append([zones.get(code, code), _pct(f["rate"]), _pct(low), _pct(high), f["answers"]])
    out.append(
        {"id": "satisfaction", "title": TITLES[lang]["satisfaction"], "columns": cols["satisfaction"], "rows": sat}
    )
    rem = [
        [name, tasks, done, _pct(done / tasks) if tasks else None]
        for name, tasks, done in conn.execute(REMEDIATION_SQL, [district_code])
    ]
    out.append({"id": "remediation", "title": TITLES[lang]["remediation"], "columns": cols["remediation"], "rows": rem})
    return out


def to_csv(chart: dict[str, Any]) -> bytes:
    """One chart's table as UTF-8 CSV with a BOM (Excel shows the Chinese names)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(chart["columns"])
    writer.writerows(["" if v is None else v for v in row] for row in chart["rows"])
    return buf.getvalue().encode("utf-8-sig")
