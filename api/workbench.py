"""The workbench: the portal at ``/`` for browsers, sign-in with a session cookie, the case desk,
and the API documentation served offline. Thin routes: pages come from maps/web.py, data and rules
from geo/ (the case desk calls the same workflow functions as ``/cases``: scope, allowed moves and
their checks live there once).

Sign-in sets the ``wuye_session`` cookie to a bearer token of ``/auth/token``'s kind (HttpOnly,
SameSite=Lax); api/deps.py reads it when a request has no Authorization header, and takes a write
signed by it only from our own pages (Origin or Referer naming this host).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import StringConstraints

from api.auth import (
    ADMIN_PAGES,
    FAULT_ROLES,
    PROGRAMME_PAGE_ROLES,
    PUBLIC,
    SIGNED_IN,
    STAFF_ROLES,
    CurrentUser,
    Guard,
    change_own_password,
    sign_in,
)
from api.cases import STAFF_LIST_ROLES
from api.deps import SESSION_COOKIE, AppSettings, Connection, read
from api.forms import BLANK, FormState, form_day, form_number, refused
from geo.access import users
from geo.access.scope import ANONYMOUS, Principal
from geo.cases import notices, supervision
from geo.cases import workflow as cases
from geo.cases.counts import kept_case_counts
from geo.cases.shapes import CaseAction
from geo.errors import InvalidInput, NotFound, WuyeError
from geo.io import photos
from geo.kept import CASE_CHANGES, DATA_CHANGES, counters
from geo.programme import board, inspections, surveys
from geo.programme.remediation import WORKERS as FEE_ROLES  # the fees pages' (api/fees_pages.py)
from geo.settings import Settings
from geo.spatial import reference
from geo.steps import Steps, run
from geo.workcal import today
from layers.catalogue import vocabulary
from maps import web

router = APIRouter(tags=["workbench 工作台"])
DESK = Guard(*cases.WORKERS, description="case workers: staff, property teams, contractors")
DESK_CASE = Guard(*cases.WORKERS, description="case workers, the case in their scope", scoped="code")
DISPATCHERS = Guard(*cases.STAFF, description="staff who dispatch")
SUPERVISING = Guard(*supervision.SUPERVISORS, description="the bureau (区城管局): administrators")
PAGE_SIZE = 50
# Who sees the facility-faults page (api/faults.py): maintenance staff, as inspections.
Lang = Annotated[str | None, Query(max_length=5, description="页面语言 zh（默认）或 en")]
# Who opens the survey entry pages (api/workbench_survey.py): as POST /zones/{code}/survey allows.
SURVEY_PAGES = surveys.ENTRY_ROLES
# Where an error answers with a page rather than the JSON body (the error page names reason_zh).
PAGE_PREFIXES = ("/workbench", "/login", "/logout", "/docs")


# -- rendering --------------------------------------------------------------------------------------------
def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _lang_switch(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    if lang == "zh":
        params.append(("lang", "en"))
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def page(
    request: Request,
    name: str,
    *,
    principal: Principal,
    lang: str,
    status: int = 200,
    form: FormState | None = None,
    **context: Any,
) -> HTMLResponse:
    """A workbench page with the navigation bar of ``principal`` (no caching: it names the caller); a
    form's state (api/forms.py) gives the status and what the form says back."""
    if form is not None:
        status, context = form.status, {**form.context(), **context}
    body = web.render(
        name,
        lang=lang,
        principal=principal,
        here=_here(request),
        lang_switch=_lang_switch(request, lang),
        desk=principal.role in cases.WORKERS,
        faults=principal.role in FAULT_ROLES,
        admin_pages=principal.role in ADMIN_PAGES.roles,
        stats=principal.role in STAFF_ROLES,
        surveys=principal.role in SURVEY_PAGES,
        acceptance=principal.role in STAFF_ROLES,
        programme=principal.role in PROGRAMME_PAGE_ROLES,
        fees=principal.role in FEE_ROLES,
        **context,
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, body: dict[str, Any]) -> HTMLResponse | None:
    """The page of an error on a workbench route (api/errors.py asks): the error's ``reason_zh``."""
    if not request.url.path.startswith(PAGE_PREFIXES):
        return None
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    lang = web.lang_of(request.query_params.get("lang"))
    return page(
        request,
        "error.html",
        principal=principal,
        lang=lang,
        status=status,
        code=status,
        reason_zh=body.get("reason_zh", ""),
        reason=body.get("reason", ""),
    )


# -- API documentation, offline ------------------------------------------------------------------------
@router.get("/docs", include_in_schema=False, dependencies=[Depends(PUBLIC)])
def docs() -> HTMLResponse:
    """Swagger UI from our own copy of swagger-ui-dist, drawing /api (the OpenAPI 3.0 document)."""
    return HTMLResponse(web.render("docs.html", lang="zh", principal=ANONYMOUS, spec_url="/api"))


# -- sign-in --------------------------------------------------------------------------------------------
def _safe_next(value: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/login", response_class=HTMLResponse, summary="登录页面", dependencies=[Depends(PUBLIC)])
def login_page(
    request: Request, user: CurrentUser, lang: Lang = None, next: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    """The sign-in page (with password change); a signed-in visitor sees who they are in its bar."""
    return page(
        request, "login.html", principal=user, lang=web.lang_of(lang), next=_safe_next(next), username="", message=""
    )


def _set_session(response: Response, request: Request, token: str, ttl: timedelta) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/login", summary="登录（页面表单，设置会话 Cookie）", dependencies=[Depends(PUBLIC)])
def login_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form(max_length=500)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Sign in from the page: a session cookie and back to ``next``; refused, the page again with
    the reason in Chinese and the username kept."""
    try:
        user = sign_in(conn, request, settings, username, password)
    except WuyeError as error:
        return page(
            request,
            "login.html",
            principal=ANONYMOUS,
            lang=web.lang_of(lang),
            form=FormState.refused(error),
            next=_safe_next(next),
            username=username,
        )
    ttl = timedelta(minutes=settings.auth.token_minutes)
    with conn.transaction():
        token, _ = users.issue_token(conn, user, ttl=ttl)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session(response, request, token, ttl)
    return response


@router.post("/login/password", summary="修改密码（页面表单）", dependencies=[Depends(PUBLIC)])
def password_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    old_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Change a password knowing the old one; every session of the user ends (sign in again)."""
    form = FormState(message=web.TEXTS[web.lang_of(lang)]["password_changed"])
    try:
        change_own_password(conn, request, settings, username, old_password, new_password)
    except WuyeError as error:
        form = FormState.refused(error)
    response = page(
        request,
        "login.html",
        principal=ANONYMOUS,
        lang=web.lang_of(lang),
        form=form,
        next="/",
        username=username,
        change_open=not form.ok,
    )
    if form.ok:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/logout", summary="退出登录（页面表单）", dependencies=[Depends(PUBLIC)])
def logout_form(request: Request, conn: Connection) -> Response:
    """End the page session (its token revoked) and go to the portal."""
    token = getattr(request.state, "session", None)
    if token:
        with conn.transaction():
            users.revoke_token(conn, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the portal ---------------------------------------------------------------------------------------------
def _portal_reads(
    user: Principal, district: str
) -> Steps[tuple[dict[str, int] | None, int | None, dict[str, Any] | None]]:
    """What the portal counts for the caller, on one connection: the cases per state (kept, as the
    desk's: geo/cases/counts.py) for those who work cases, the remediation tasks due this week for
    those with the board, the unit's notices for those of a unit; None for what the role has not."""
    by_state = None
    if user.role in cases.WORKERS:
        by_state = yield from kept_case_counts(
            user, cases.CaseFilter(), district_code=district, scoped_only=user.role in STAFF_LIST_ROLES
        )
    tasks_due = None
    if user.role in PROGRAMME_PAGE_ROLES:  # those who see the remediation board
        tasks_due = yield from board.due_this_week(user, district_code=district, on=today())
    inbox = (yield from notices.notices_for(user)) if user.unit_code else None
    return by_state, tasks_due, inbox


async def portal(request: Request, user: Principal, settings: Settings) -> HTMLResponse:
    """The home page a browser gets at ``/`` (api/ogc.py's landing route negotiates)."""
    lang = web.lang_of(request.query_params.get("lang"))
    by_state, tasks_due, inbox = None, None, None
    if user.role in cases.WORKERS or user.role in PROGRAMME_PAGE_ROLES or user.unit_code:
        by_state, tasks_due, inbox = await read(request, _portal_reads(user, settings.district.district_code))
    counts = None
    if by_state is not None:
        counts = {
            "new": by_state.get("reported", 0),
            "overdue": by_state.get("overdue", 0),
            "supervised": by_state.get("supervised", 0),
            "working": by_state.get("dispatched", 0) + by_state.get("in_progress", 0),
            "handled": by_state.get("handled", 0),
        }
    return page(
        request,
        "portal.html",
        principal=user,
        lang=lang,
        current="home",
        counts=counts,
        tasks_due=tasks_due,
        inbox=inbox,
        district_name=settings.district.district_name,
    )


@router.post("/workbench/notices/read", summary="通知全部标为已读（页面表单）", dependencies=[Depends(SIGNED_IN)])
def notices_read(
    conn: Connection, user: CurrentUser, lang: Annotated[str | None, Form(max_length=5)] = None
) -> Response:
    """Mark the notices of the caller's unit read, back to the portal."""
    notices.mark_read(conn, user)
    return RedirectResponse("/?lang=en" if lang == "en" else "/", status_code=303)


@router.get("/workbench", summary="工作台", dependencies=[Depends(SIGNED_IN)], response_class=HTMLResponse)
def workbench(user: CurrentUser, lang: Lang = None) -> Response:
    """The workbench's front: the case desk for those who work cases, administration for the security
    and audit administrators, the portal for the others."""
    q = "?lang=en" if lang == "en" else ""
    front = "/workbench/admin" if user.role in ADMIN_PAGES.roles else "/"
    return RedirectResponse(("/workbench/cases" if user.role in cases.WORKERS else front) + q, status_code=303)


# -- the case desk ------------------------------------------------------------------------------------------
def _midnight(day: date | None) -> datetime | None:
    """The start of a day the desk's filter names (cases reported from then on)."""
    return datetime.combine(day, time()) if day else None


def _flag(value: str | None) -> bool | None:
    return True if value in ("true", "1", "on") else None


def _filter(params: dict[str, str]) -> tuple[cases.CaseFilter, dict[str, Any]]:
    """The desk's filter from its query string, and what the form shows back."""
    after = params.get("after")
    # the cursor: the last case id of the previous page, "s" before it when that case was pinned (督办置顶)
    after_pinned = bool(after and after.startswith("s"))
    if after_pinned:
        after = after[1:]  # type: ignore[index]
    if after is not None and not after.isdigit():
        raise InvalidInput("after must be a case id from the previous page", field="after")
    flt = cases.CaseFilter(
        zone=params.get("zone") or None,
        unit=params.get("unit") or None,
        category=params.get("category") or None,
        state=params.get("state") or None,
        subdistrict=params.get("subdistrict") or None,
        overdue=_flag(params.get("overdue")),
        unassigned=_flag(params.get("unassigned")),
        supervised=_flag(params.get("supervised")),
        since=_midnight(form_day(params.get("since"), "since")),
        until=_midnight(form_day(params.get("until"), "until")),
        limit=PAGE_SIZE,
        after=int(after) if after else None,
        pin_supervised=True,
        after_pinned=after_pinned,
    )
    shown = {**flt.__dict__, "since_text": params.get("since", ""), "until_text": params.get("until", "")}
    return flt, shown


@lru_cache(maxsize=4096)
def _row_html(row: tuple[tuple[str, Any], ...], lang: str, can_dispatch: bool) -> Markup:
    """One row of the desk's table (maps/templates/web/case_row.html), rendered once for each distinct
    row (its values are the key, so a changed case is a new row): the rows were over half of the
    desk's rendering, and most views show the rows the view before showed."""
    return web.fragment(
        "case_row.html",
        lang=lang,
        r=dict(row),
        can_dispatch=can_dispatch,
        states=vocabulary("case_states").labels(lang),
        dispatchable=cases.MOVES["dispatch"].sources,
    )


@lru_cache(maxsize=1024)
def _options(items: tuple[tuple[str, str], ...], selected: str | None) -> Markup:
    """The ``<option>``s of one of the desk's filter lists (maps/templates/web/options.html), rendered
    once for each list and choice: five lists of up to a few dozen entries were a tenth of the desk's
    rendering, and the lists change only when a unit, zone or sub-district does."""
    return web.fragment("options.html", lang="zh", items=items, selected=selected)


def _pairs(entries: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((e["code"], e["name"]) for e in entries)


def _row(feature: dict[str, Any], lang: str, zone_names: dict[str, str]) -> dict[str, Any]:
    p = feature["properties"]
    lon, lat = (feature.get("geometry") or {}).get("coordinates", [None, None])[:2]
    return {
        "code": p["code"],
        "category_label": p.get("category_zh") if lang == "zh" else p.get("category"),
        "state": p["state"],
        "zone": zone_names.get(p.get("zone_code") or "", p.get("zone_code")),
        "unit": p.get("unit_name") or p.get("unit_code"),
        "due": web.local_time(p.get("due_at")),
        "overdue": bool(p.get("overdue")) and p["state"] in cases.OPEN_STATES,
        "supervised": bool(p.get("supervised")),
        "pinned": cases.pinned(p),
        "supervision_due": p.get("supervision_due"),
        "lat": lat,
        "lon": lon,
    }


def _link(params: dict[str, str], **change: str | None) -> str:
    merged = {**params, **change}
    query = urlencode({k: v for k, v in merged.items() if v})
    return "/workbench/cases" + (f"?{query}" if query else "")


def _desk(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    params: dict[str, str],
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    """The desk after a form's work on ``conn`` (the batch dispatch): read on the same connection."""
    flt, shown = _filter(params)
    read_all = _desk_reads(user, flt, settings.district.district_code)
    return _desk_page(request, user, params, flt, shown, *run(conn, read_all), form=form)


def _desk_reads(
    user: Principal, flt: cases.CaseFilter, district: str
) -> Steps[tuple[dict[str, Any], dict[str, int], dict[str, list[dict[str, str]]]]]:
    """What the desk shows: its page of cases, the (kept) counts per state and the (kept) lists of
    units, zones and sub-districts, read on one connection."""
    scoped = user.role in STAFF_LIST_ROLES
    listed = yield from cases.list_cases(user, flt, district_code=district, scoped_only=scoped)
    changes = yield from counters(CASE_CHANGES, DATA_CHANGES)
    counts = yield from kept_case_counts(user, flt, district_code=district, scoped_only=scoped, counters=changes)
    refs = yield from reference.lists(district, counters=changes)
    return listed, counts, refs


def _desk_page(
    request: Request,
    user: Principal,
    params: dict[str, str],
    flt: cases.CaseFilter,
    shown: dict[str, Any],
    listed: dict[str, Any],
    counts: dict[str, int],
    listed_refs: dict[str, list[dict[str, str]]],
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    lang = web.lang_of(params.get("lang"))
    states = vocabulary("case_states").labels(lang)
    total = sum(v for k, v in counts.items() if k in states) if not flt.state else counts.get(flt.state, 0)
    next_after = listed.get("next_after")
    cursor = ("s" if listed.get("next_pinned") else "") + str(next_after)
    zones = listed_refs["zones"]
    zone_names = {z["code"]: z["name"] for z in zones}
    rows = [_row(f, lang, zone_names) for f in listed["features"]]
    can_dispatch = user.role in cases.STAFF
    units = _pairs(listed_refs["units"])
    return page(
        request,
        "cases.html",
        principal=user,
        lang=lang,
        form=form,
        current="desk",
        f=shown,
        states=states,
        counts=counts,
        total=total,
        rows=rows,
        rows_html=Markup("").join(_row_html(tuple(r.items()), lang, can_dispatch) for r in rows),
        options={
            "state": _options(tuple(states.items()), flt.state),
            "category": _options(
                tuple((c["code"], c["name"] if lang == "zh" else c["name_en"]) for c in cases.category_list()),
                flt.category,
            ),
            "subdistrict": _options(_pairs(listed_refs["subdistricts"]), flt.subdistrict),
            "zone": _options(_pairs(zones), flt.zone),
            "unit": _options(units, flt.unit),
            "batch_unit": _options(units, None),
        },
        can_dispatch=can_dispatch,
        dispatchable=cases.MOVES["dispatch"].sources,
        state_link=lambda s: _link(params, state=s, after=None),
        supervised_link=_link(params, supervised="true", after=None),
        next_link=_link(params, after=cursor) if next_after else None,
        first_link=_link(params, after=None) if flt.after else None,
    )


@router.get("/workbench/cases", summary="事件办理台（列表）", dependencies=[Depends(DESK)], response_class=HTMLResponse)
async def desk(request: Request, settings: AppSettings, user: CurrentUser) -> HTMLResponse:
    """The cases of the caller's scope with filters, counts per state, overdue marked, a map beside
    them and pages of 50 (keyset: fast however many cases there are).

    In the event loop, on one connection of the async pool (no worker thread: under a crowd of desk
    users the threads' hand-offs cost more than the page's reads)."""
    params = dict(request.query_params)
    flt, shown = _filter(params)
    read_all = await read(request, _desk_reads(user, flt, settings.district.district_code))
    return _desk_page(request, user, params, flt, shown, *read_all)


@router.post("/workbench/cases/dispatch", summary="批量派遣（页面表单）", dependencies=[Depends(DISPATCHERS)])
def batch_dispatch(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    unit_code: Annotated[str, Form(max_length=80)],
    codes: Annotated[list[Annotated[str, StringConstraints(max_length=40)]], Form(max_length=200)],
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> HTMLResponse:
    """Dispatch several cases to one unit: each its own move (as ``POST /cases/{code}/actions``);
    the page says which went and why the others did not."""
    t = web.TEXTS[web.lang_of(lang)]
    done, failed = [], []
    for code in codes:
        try:
            cases.act(
                conn,
                user,
                code,
                CaseAction(action="dispatch", unit_code=unit_code),
                district_code=settings.district.district_code,
            )
            done.append(code)
        except WuyeError as error:
            failed.append(f"{code}：{FormState.refused(error).message}")
    message = t["dispatched_n"].format(n=len(done))
    if failed:
        message += "；" + t["failed"] + "：" + "；".join(failed)
    params = {"lang": "en"} if lang == "en" else {}
    return _desk(request, conn, settings, user, params, form=FormState(message=message, ok=not failed))


def _case_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    code: str,
    *,
    lang: str,
    form: FormState = BLANK,
) -> HTMLResponse:
    """The case page after a form's work on ``conn`` (a move refused): read on the same connection."""
    read_all = _case_reads(user, code, settings.district.district_code)
    return _case_html(request, user, code, *run(conn, read_all), lang=lang, form=form)


def _case_reads(
    user: Principal, code: str, district: str
) -> Steps[tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[dict[str, str]]]]]:
    """What a case page shows: the case (404 outside the caller's scope, as the API), its photos and
    the (kept) lists of units and zones, read on one connection."""
    feature = yield from cases.case_detail(code, principal=user, district_code=district)
    if not feature["properties"].get("full"):  # outside the caller's scope: as if it did not exist
        raise NotFound(f"case '{code}' does not exist", field="code")
    shots = yield from photos.case_photos(user, code, district_code=district)
    refs = yield from reference.lists(district)
    return feature, shots, refs


def _case_html(
    request: Request,
    user: Principal,
    code: str,
    feature: dict[str, Any],
    shots: list[dict[str, Any]],
    refs: dict[str, list[dict[str, str]]],
    *,
    lang: str,
    form: FormState = BLANK,
) -> HTMLResponse:
    props = feature["properties"]
    lon, lat = feature["geometry"]["coordinates"][:2]
    zone_names = {z["code"]: z["name"] for z in refs["zones"]}
    return page(
        request,
        "case.html",
        principal=user,
        lang=lang,
        form=form,
        current="desk",
        case={
            **props,
            "reported": web.local_time(props.get("reported_at")),
            "due": web.local_time(props.get("due_at")),
            "overdue": bool(props.get("overdue")) and props["state"] in cases.OPEN_STATES,
            "supervised_when": web.local_time(props.get("supervised_at")),
            "zone_name": zone_names.get(props.get("zone_code") or ""),
        },
        lat=lat,
        lon=lon,
        states=vocabulary("case_states").labels(lang),
        actions=[
            {"name": name, "note_required": move.note_required}
            for name, move in cases.actions_for(user, props["state"])
        ],
        units=refs["units"],
        categories=[
            {"code": c["code"], "name": c["name"] if lang == "zh" else c["name_en"]} for c in cases.category_list()
        ],
        photos=[{**p, "url": f"/cases/{code}/photos/{p['id']}"} for p in shots],
        can_supervise=user.role in supervision.SUPERVISORS and props["state"] in cases.OPEN_STATES,
        can_unsupervise=user.role in supervision.SUPERVISORS and bool(props.get("supervised")),
        photo_kinds=web.PHOTO_KINDS[lang],
        default_photo_kind="handled" if user.role in ("property_team", "contractor") else "report",
        events=[{**e, "at": web.local_time(e["at"])} for e in props.get("events", [])],
    )


@router.get(
    "/workbench/cases/{code}", summary="事件办理页", dependencies=[Depends(DESK_CASE)], response_class=HTMLResponse
)
async def case_page(
    code: str, request: Request, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """One case: its position, photos, full history and only the moves the caller may make now.

    In the event loop, on one connection of the async pool (as the desk)."""
    language = web.lang_of(lang)
    done = request.query_params.get("done")
    message = ""
    if done:
        named = web.ACTION_NAMES[language].get(done) or web.TEXTS[language]["upload_photo"]
        message = f"{web.TEXTS[language]['done']}：{named}"
    read_all = await read(request, _case_reads(user, code, settings.district.district_code))
    return _case_html(request, user, code, *read_all, lang=language, form=FormState(message=message))


@router.post("/workbench/cases/{code}/actions", summary="事件办理（页面表单）", dependencies=[Depends(DESK_CASE)])
def case_action(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    action: Annotated[str, Form(max_length=40)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
    unit_code: Annotated[str | None, Form(max_length=80)] = None,
    duplicate_of: Annotated[str | None, Form(max_length=80)] = None,
    category: Annotated[str | None, Form(max_length=40)] = None,
    lon: Annotated[str | None, Form(max_length=40)] = None,
    lat: Annotated[str | None, Form(max_length=40)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """A move of the case (the workflow of ``POST /cases/{code}/actions``); refused, the page again
    with the reason in Chinese and what was typed kept."""
    language = web.lang_of(lang)
    kept = {
        "action": action,
        "note": note,
        "unit_code": unit_code,
        "duplicate_of": duplicate_of,
        "category": category,
        "lon": lon,
        "lat": lat,
    }
    try:
        cases.act(
            conn,
            user,
            code,
            CaseAction(
                action=action,
                note=note or None,
                unit_code=unit_code or None,
                duplicate_of=duplicate_of or None,
                category_code=category or None,
                lon=form_number(lon, "lon"),
                lat=form_number(lat, "lat"),
            ),
            district_code=settings.district.district_code,
            on_verified=inspections.case_recorder(district_code=settings.district.district_code, actor=user.actor),
        )
    except WuyeError as error:
        return refused(
            error, partial(_case_page, request, conn, settings, user, code, lang=language), kept, not_found=("code",)
        )
    return _done(code, language, action)


def _done(code: str, language: str, what: str) -> RedirectResponse:
    """Back to the case page, which says what was done."""
    q = "?lang=en&done=" if language == "en" else "?done="
    return RedirectResponse(f"/workbench/cases/{code}{q}{what}", status_code=303)


@router.post("/workbench/cases/{code}/supervise", summary="督办（页面表单）", dependencies=[Depends(SUPERVISING)])
def case_supervise(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    deadline: Annotated[str | None, Form(max_length=40)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """The bureau supervises the case (as ``POST /cases/{code}/supervise``); refused, the page again with
    the reason in Chinese and what was typed kept."""
    language = web.lang_of(lang)
    try:
        supervision.supervise(
            conn,
            user,
            code,
            deadline=form_day(deadline, "deadline"),
            note=note,
            district_code=settings.district.district_code,
        )
    except WuyeError as error:
        kept = {"action": "supervise", "deadline": deadline, "note": note}
        return refused(
            error, partial(_case_page, request, conn, settings, user, code, lang=language), kept, not_found=("code",)
        )
    return _done(code, language, "supervise")


@router.post("/workbench/cases/{code}/unsupervise", summary="撤销督办（页面表单）", dependencies=[Depends(SUPERVISING)])
def case_unsupervise(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """The bureau withdraws its supervision (as ``POST /cases/{code}/unsupervise``); refused, the page
    again with the reason in Chinese and the note kept."""
    language = web.lang_of(lang)
    try:
        supervision.unsupervise(conn, user, code, note=note, district_code=settings.district.district_code)
    except WuyeError as error:
        kept = {"action": "unsupervise", "note": note}
        return refused(
            error, partial(_case_page, request, conn, settings, user, code, lang=language), kept, not_found=("code",)
        )
    return _done(code, language, "unsupervise")


@router.post("/workbench/cases/{code}/photos", summary="上传照片（页面表单）", dependencies=[Depends(DESK_CASE)])
def case_photo(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=20)] = "handled",
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """A photo of the case (as ``POST /cases/{code}/photos``), e.g. from the phone's camera."""
    language = web.lang_of(lang)
    data = photo.file.read(settings.server.max_photo_bytes + 1)
    try:
        case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
        photos.store(
            conn,
            user,
            case_id=case_id,
            data=data,
            kind=kind,
            root=settings.db.home,
            max_bytes=settings.server.max_photo_bytes,
        )
    except WuyeError as error:
        return refused(
            error, partial(_case_page, request, conn, settings, user, code, lang=language), not_found=("code",)
        )
    return _done(code, language, "photo")
