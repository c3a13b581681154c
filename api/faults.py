"""Facility faults (issue 20 point 6): for sub-district staff, property teams and contractors (and the
bureau), the faulty and under-repair facilities of their area by layer — a list and a map, each with
its last inspection and its open cases — and, from a row, a facility's page to report a case on it or
record an inspection. Thin routes on the workbench's pages (api/workbench.py); the facilities, their
scope and the inspection rules are geo/programme/inspections.py's, intake is geo/cases'.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import FAULT_ROLES, CurrentUser, Guard
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, form_day, refused
from api.workbench import Lang, page
from geo.access.scope import Principal
from geo.cases import workflow as cases
from geo.cases.categories import categories
from geo.cases.shapes import Report
from geo.errors import InvalidInput, WuyeError
from geo.programme import inspections
from geo.spatial import reference
from geo.steps import run
from geo.workcal import today
from layers.catalogue import load_catalogue, vocabulary
from maps import web

router = APIRouter(tags=["workbench 工作台"])
FAULTS = Guard(*FAULT_ROLES, description="maintenance staff: their area's facilities")
FACILITY = Guard(*FAULT_ROLES, description="maintenance staff, the facility in their area", scoped="code")
Text = Annotated[str | None, Query(max_length=40)]


def _layers(lang: str) -> list[dict[str, str]]:
    cat = load_catalogue()
    return [
        {"name": n, "title": cat[n].title_zh if lang == "zh" else cat[n].title_en}
        for n in inspections.facility_layers(cat)
    ]


@router.get(
    "/workbench/facilities",
    summary="设施故障（列表与地图）",
    dependencies=[Depends(FAULTS)],
    response_class=HTMLResponse,
)
def faults_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    layer: Text = None,
    condition: Text = None,
    after: Annotated[
        str | None, Query(max_length=120, description="layer/code of the previous page's last row")
    ] = None,
    lang: Lang = None,
) -> HTMLResponse:
    """The faulty and under-repair facilities of the caller's area by layer, on a list and a map, with
    their last inspection, their open cases and links to report a case or record an inspection; a page
    of 300 rows at a time (``after``: the previous page's last row)."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    listed = inspections.faults(
        conn, user, district_code=district, layer=layer or None, condition=condition or None, after=after or None
    )
    zone_names = {z["code"]: z["name"] for z in run(conn, reference.lists(district))["zones"]}

    def link(**change: str | None) -> str:
        query = {"layer": layer, "condition": condition, "after": after, "lang": lang, **change}
        return "/workbench/facilities?" + urlencode({k: v for k, v in query.items() if v})

    conditions = vocabulary("conditions").labels(language)
    return page(
        request,
        "faults.html",
        principal=user,
        lang=language,
        current="faults",
        layers=_layers(language),
        conditions={k: conditions[k] for k in inspections.FAULTS},
        condition_labels=conditions,
        f={"layer": layer or "", "condition": condition or ""},
        rows=[
            {
                **r,
                "layer_title": r["layer_zh"] if language == "zh" else r["layer_en"],
                "zone_name": zone_names.get(r["zone"] or "", r["zone"]),
            }
            for r in listed["items"]
        ],
        total=listed["total"],
        by_layer=listed["by_layer"],
        layer_link=lambda name: link(layer=name, after=None),
        next_link=link(after=listed["next_after"]) if listed["next_after"] else None,
        first_link=link(after=None) if after else None,
    )


def _facility_page(
    request: Request,
    conn: psycopg.Connection,
    user: Principal,
    layer: str,
    code: str,
    *,
    lang: str,
    form: FormState = BLANK,
    new_case: str | None = None,
) -> HTMLResponse:
    place = inspections.facility_place(conn, user, layer, code)
    record = inspections.history(conn, user, layer, code, limit=20)
    spec = load_catalogue()[layer]
    return page(
        request,
        "facility.html",
        principal=user,
        lang=lang,
        form=form,
        current="faults",
        new_case=new_case,
        layer=layer,
        layer_title=spec.title_zh if lang == "zh" else spec.title_en,
        code=code,
        place=place,
        inspections=record["inspections"],
        conditions=vocabulary("conditions").labels(lang),
        categories=[
            {"code": c.code, "name": c.name if lang == "zh" else c.name_en}
            for c in categories().values()
            if layer in c.facility_layers
        ],
        today=today().isoformat(),
    )


@router.get(
    "/workbench/facilities/{layer}/{code}",
    summary="设施页面（报事、登记巡查）",
    dependencies=[Depends(FACILITY)],
    response_class=HTMLResponse,
)
def facility_page(
    layer: str,
    code: str,
    request: Request,
    conn: Connection,
    user: CurrentUser,
    lang: Lang = None,
    done: Text = None,
    case: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """One facility of the caller's area: its condition, position, inspections and open cases, with the
    forms to report a case on it and to record an inspection."""
    language = web.lang_of(lang)
    t = web.TEXTS[language]
    message = {"inspection": t["inspection_recorded"], "report": t["case_reported"]}.get(done or "", "")
    return _facility_page(
        request, conn, user, layer, code, lang=language, form=FormState(message=message), new_case=case
    )


@router.post(
    "/workbench/facilities/{layer}/{code}/inspections",
    summary="登记巡查（页面表单）",
    dependencies=[Depends(FACILITY)],
)
def facility_inspection(
    layer: str,
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    condition: Annotated[str, Form(max_length=20)] = "",
    inspected_on: Annotated[str | None, Form(max_length=20)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Record an inspection of the facility (as ``POST /facilities/{layer}/{code}/inspections``); its
    condition becomes the inspection's. Refused: the page again, the reason in Chinese, the form kept."""
    language = web.lang_of(lang)
    kept = {"form": "inspect", "condition": condition, "inspected_on": inspected_on, "note": note}
    try:
        item = inspections.Inspection(
            layer, code, form_day(inspected_on, "inspected_on", required=True), user.username, condition, note or None
        )
        inspections.record(conn, user, item, district_code=settings.district.district_code, actor=user.actor)
    except WuyeError as error:
        again = partial(_facility_page, request, conn, user, layer, code, lang=language)
        return refused(error, again, kept, not_found=("code", "layer"))
    q = "lang=en&" if language == "en" else ""
    return RedirectResponse(f"/workbench/facilities/{layer}/{code}?{q}done=inspection", status_code=303)


@router.post(
    "/workbench/facilities/{layer}/{code}/cases", summary="设施报事（页面表单）", dependencies=[Depends(FACILITY)]
)
def facility_report(
    layer: str,
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    category: Annotated[str, Form(max_length=40)] = "",
    description: Annotated[str | None, Form(max_length=2000)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Report a case on the facility (intake as ``POST /cases``, at a point on the facility, linked to
    it); back to the facility's page, which names the new case."""
    language = web.lang_of(lang)
    kept = {"form": "report", "category": category, "description": description}
    try:
        place = inspections.facility_place(conn, user, layer, code)
        if not category:
            raise InvalidInput("category is required", field="category", reason_zh="请选择事件类别")
        report = Report(category, place["lon"], place["lat"], description=description or None, facility_code=code)
        answer = run(conn, cases.report(user, report, district_code=settings.district.district_code))
    except WuyeError as error:
        again = partial(_facility_page, request, conn, user, layer, code, lang=language)
        return refused(error, again, kept, not_found=("code", "layer"))
    q = "lang=en&" if language == "en" else ""
    return RedirectResponse(f"/workbench/facilities/{layer}/{code}?{q}done=report&case={answer['id']}", status_code=303)
