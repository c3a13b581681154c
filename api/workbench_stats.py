"""The statistics page (issue 21 point 7): ``/workbench/stats`` draws charts in the browser with
Apache ECharts (npm, served by us under /static/vendor) from ``/workbench/stats/data`` (our own
JSON, names not codes), each chart with its table, ``/workbench/stats/{chart}.csv`` and ``.xlsx``. Signed-in
staff only, as the acceptance figures; the case counts keep the caller's scope (geo/cases/stats.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from api.acceptance import REVIEWERS
from api.auth import CurrentUser
from api.cases import XLSX
from api.deps import AppSettings, Connection
from api.workbench import Lang, page
from geo.programme import charts
from geo.store.kept import kept
from geo.workcal import today
from maps import web

router = APIRouter(tags=["workbench 工作台"])
ECHARTS_JS = web.vendor("echarts/dist/echarts.min.js")


def _figures(
    conn: Connection, settings: AppSettings, user: CurrentUser, lang: str, only: str | None = None
) -> list[dict[str, Any]]:
    scope = (user.username, user.role, user.subdistrict_code, user.zone_codes, user.unit_code)
    district, survey_round = settings.district.district_code, settings.acceptance.survey_round
    return kept(  # kept until a row under them changes (geo/store/kept.py): 180 ms at 20,000 cases
        conn,
        ("charts", district, scope, lang, survey_round, only, today()),
        lambda: charts.figures(conn, user, district_code=district, lang=lang, survey_round=survey_round, only=only),
    )


@router.get("/workbench/stats", summary="统计图表", dependencies=[Depends(REVIEWERS)], response_class=HTMLResponse)
def stats_page(request: Request, user: CurrentUser, lang: Lang = None) -> HTMLResponse:
    """Charts drawn in the browser from ``/workbench/stats/data``, each with its table, CSV and XLSX."""
    language = web.lang_of(lang)
    return page(
        request,
        "stats.html",
        principal=user,
        lang=language,
        current="stats",
        charts=[{"id": c, "title": charts.TITLES[language][c]} for c in charts.CHARTS],
        echarts_js=ECHARTS_JS,
    )


@router.get("/workbench/stats/data", summary="统计图表数据（名称，非编码）", dependencies=[Depends(REVIEWERS)])
def stats_data(conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None) -> list[dict[str, Any]]:
    """Every chart of the statistics page: ``id``, ``title``, ``columns`` and ``rows`` with names."""
    return _figures(conn, settings, user, web.lang_of(lang))


Chart = Annotated[Literal[charts.CHARTS], Path(description="图表")]  # type: ignore[valid-type]


def _chart(conn: Connection, settings: AppSettings, user: CurrentUser, chart: str, lang: str | None) -> dict[str, Any]:
    (found,) = _figures(conn, settings, user, web.lang_of(lang), only=chart)
    return found


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/workbench/stats/{chart}.csv", summary="统计图表的表格 (CSV)", dependencies=[Depends(REVIEWERS)])
def stats_csv(chart: Chart, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None) -> Response:
    """One chart's table as CSV (UTF-8 with BOM), the rows the page shows."""
    found = _chart(conn, settings, user, chart, lang)
    return _download(charts.to_csv(found), "text/csv; charset=utf-8", f"stats-{chart}.csv")


@router.get("/workbench/stats/{chart}.xlsx", summary="统计图表的表格 (XLSX)", dependencies=[Depends(REVIEWERS)])
def stats_xlsx(chart: Chart, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None) -> Response:
    """One chart's table as an Excel workbook, the rows the page shows (numbers as numbers)."""
    found = _chart(conn, settings, user, chart, lang)
    return _download(charts.to_xlsx(found), XLSX, f"stats-{chart}.xlsx")
