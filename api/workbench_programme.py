"""The programme's workbench pages (issue 21 points 1-3): the remediation board, the phase table and
publicity, server-rendered like the case desk (api/workbench.py ``page``), zh-CN first with ``lang=en``.

Thin routes: every rule is the domain's and is called, never restated. Moves and photos of a task are
geo/programme/remediation.py's ``act`` and ``add_photo`` (publicity first, who may verify, a redo's
note, a date not in the future); a zone's deadline is phases.py's ``set_deadline`` (administrators
only, with a reason: a non-administrator gets its Chinese refusal on the page); a publicity record
is publicity.py's ``record`` (its place within 50 m of the zone). Scope is the domain's too: a zone or
task outside the caller's zones is 404. A form the server refuses comes back with the reason in
Chinese and what was typed kept.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import PROGRAMME_PAGE_ROLES, CurrentUser, Guard
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, form_day, form_number, refused
from api.workbench import Lang, page
from geo.access.scope import UNSCOPED_ROLES, Principal
from geo.errors import InvalidInput, NotFound, WuyeError
from geo.io import photos
from geo.kept import kept as keep
from geo.programme import board, phases, publicity, redo, remediation
from geo.settings import Settings
from geo.spatial import reference
from geo.steps import run
from geo.workcal import today
from layers.catalogue import vocabulary
from maps import web, web_programme

router = APIRouter(tags=["workbench 工作台"])
PAGES = Guard(*PROGRAMME_PAGE_ROLES, description="staff working in zones and planners (their zones)")
ZONE_PAGES = Guard(
    *PROGRAMME_PAGE_ROLES, description="staff working in zones and planners (the zone in scope)", scoped="code"
)
TASK_WORKERS = Guard(
    *remediation.WORKERS, description="sub-district staff, property teams, administrators", scoped="code"
)
ZONE_PLANNERS = Guard(*remediation.STAFF, description="sub-district staff and administrators (their zones)")
# Sub-district staff may send the form: phases.set_deadline refuses them in Chinese (administrators only).
DEADLINE_FORM = Guard(*remediation.STAFF, description="administrators (sub-district staff get the refusal)")
PUBLICISTS = Guard(
    *remediation.WORKERS, description="sub-district staff, property teams, administrators", scoped="code"
)
# (the record is looked up in the zone, the zone in the caller's scope: 404 outside)
RECORD_PHOTOS = Guard(
    *remediation.WORKERS, description="sub-district staff, property teams, administrators", scoped="code"
)
FormText = Annotated[str | None, Form(max_length=2000)]
FormShort = Annotated[str | None, Form(max_length=40)]


def _texts(lang: str) -> dict[str, Any]:
    """The programme pages' texts and the vocabulary's labels in ``lang``."""
    return {
        "p": web_programme.TEXTS[lang],
        "state_labels": vocabulary("remediation_states").labels(lang),
        "item_labels": vocabulary("remediation_items").labels(lang),
        "stage_labels": vocabulary("photo_stages").labels(lang),
        "phase_labels": vocabulary("phases").labels(lang),
        "status_labels": vocabulary("phase_statuses").labels(lang),
        "kind_labels": vocabulary("publicity_kinds").labels(lang),
        "today": today().isoformat(),
    }


def _back(path: str, language: str, done: str, anchor: str = "") -> RedirectResponse:
    """Back to the page, which says what was done."""
    q = "?lang=en&done=" if language == "en" else "?done="
    return RedirectResponse(f"{path}{q}{done}{anchor}", status_code=303)


def _done_message(request: Request, language: str) -> str:
    done = request.query_params.get("done")
    if not done:
        return ""
    p = web_programme.TEXTS[language]
    if f"act_{done}" in p:  # a task's move: "已办理：完工"
        colon = "：" if language == "zh" else ": "
        return f"{web.TEXTS[language]['done']}{colon}{p[f'act_{done}']}"
    return str(p.get(done) or web.TEXTS[language]["done"])


# -- the remediation board ----------------------------------------------------------------------------------
def _task_row(feature: dict[str, Any], user: Principal) -> dict[str, Any]:
    """A task as the board shows it, with the moves the caller may make now (the workflow's table)."""
    p = feature["properties"]
    state = p["state"]
    moves = [a for a in remediation.MACHINE.allowed(state) if user.role in remediation.MOVES[a].roles]
    return {
        **p,
        "moves": moves,
        "can_photo": user.role in remediation.WORKERS and state != "verified",
        # the photo the task lacks first: before until it has one, then after
        "default_stage": "after" if p["before_photos"] else "before",
    }


def _blockers(features: list[dict[str, Any]], records: int, *, required: bool, lang: str) -> list[dict[str, Any]]:
    """What keeps a zone's remediation from going on: no publicity yet (while the publicise-first rule
    is on, no task of the zone can start), and the tasks whose photos are missing."""
    p = web_programme.TEXTS[lang]
    out: list[dict[str, Any]] = []
    if required and records == 0:
        out.append({"kind": "publicity", "text": p["no_publicity"], "tasks": []})
    missing = board.missing_photos(features)
    if missing:
        out.append({"kind": "photos", "text": p["photos_missing"], "tasks": missing})
    return out


@router.get(
    "/workbench/remediation", summary="整治看板（各小区）", dependencies=[Depends(PAGES)], response_class=HTMLResponse
)
def remediation_index(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The zones of the caller's scope: tasks by state, verified share, overdue tasks and what blocks each."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    zones = board.zones_in_scope(conn, user, district_code=district)
    shown = {z["code"] for z in zones}
    levels = remediation.progress(conn, district_code=district)
    progress = {r["zone_code"]: r for r in levels if r["level"] == "zone"}
    names = {z["subdistrict_code"]: z["subdistrict_name"] for z in zones}
    # the sub-districts' and the district's totals, for those who see the whole district
    totals = [
        {**r, "name": names.get(r["subdistrict_code"]) if r["level"] == "subdistrict" else None}
        for r in levels
        if r["level"] != "zone" and user.role in UNSCOPED_ROLES
    ]
    features: dict[str, list[dict[str, Any]]] = {code: [] for code in shown}
    for f in remediation.collection(conn, district_code=district)["features"]:
        if f["properties"]["zone_code"] in shown:
            features[f["properties"]["zone_code"]].append(f)
    required = settings.programme.publicity_required
    rows = [
        {
            **z,
            "progress": progress.get(z["code"]),
            "blockers": _blockers(features[z["code"]], z["publicity"], required=required, lang=language),
        }
        for z in zones
    ]
    # the zones something blocks, or with overdue tasks, first
    rows.sort(key=lambda r: (not (r["blockers"] or (r["progress"] or {}).get("overdue")),))
    return page(
        request,
        "remediation.html",
        principal=user,
        lang=language,
        current="board",
        rows=rows,
        totals=totals,
        **_texts(language),
    )


def _board(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    code: str,
    *,
    lang: str,
    form: FormState = BLANK,
) -> HTMLResponse:
    district = settings.district.district_code
    remediation.zone_in_scope(conn, user, code, district)
    body = remediation.zone_tasks(conn, code, district_code=district)
    records = run(conn, publicity.records(district_code=district, zone_code=code))
    zone_phases = run(conn, phases.zone(code, district_code=district))
    tasks = [_task_row(f, user) for f in body["features"]]
    progress = body.get("progress") or {}
    return page(
        request,
        "remediation_zone.html",
        principal=user,
        lang=lang,
        form=form,
        current="board",
        zone={"code": code, "name": progress.get("zone_name") or code},
        progress=progress,
        by_state={s: [t for t in tasks if t["state"] == s] for s in remediation.STATES},
        blockers=_blockers(body["features"], len(records), required=settings.programme.publicity_required, lang=lang),
        publicity_count=len(records),
        phases=zone_phases,
        # the zone's redo plan (补课整改, opened by an issued 补课 verdict): read here, worked on the acceptance desk
        redo_plan=redo.plan(conn, code, district_code=district),
        redo_states=vocabulary("redo_states").labels(lang),
        can_plan=user.role in remediation.STAFF,
        **_texts(lang),
    )


@router.get(
    "/workbench/remediation/{code}",
    summary="小区整治看板",
    dependencies=[Depends(ZONE_PAGES)],
    response_class=HTMLResponse,
)
def remediation_zone(
    code: str, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """One zone's tasks by state with their before/after photos and the moves the caller may make;
    its progress, phases and what blocks it (no publicity yet, photos missing)."""
    language = web.lang_of(lang)
    done = FormState(message=_done_message(request, language))
    return _board(request, conn, settings, user, code, lang=language, form=done)


def _refused_board(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    task_code: str,
    language: str,
    error: WuyeError,
    kept: dict[str, Any],
) -> HTMLResponse:
    """A task form the server refused: the zone's board again with the reason in Chinese and what was
    typed kept; a task outside the caller's zones (or none) is the 404 it is."""
    if isinstance(error, NotFound) and error.field == "code":
        raise error
    try:
        zone = remediation.task(conn, task_code, district_code=settings.district.district_code)["properties"][
            "zone_code"
        ]
    except NotFound:
        raise error from None
    return refused(
        error, partial(_board, request, conn, settings, user, zone, lang=language), {**kept, "task": task_code}
    )


@router.post(
    "/workbench/remediation/tasks/{code}/actions",
    summary="整治任务办理（页面表单）",
    dependencies=[Depends(TASK_WORKERS)],
)
def task_action(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    action: Annotated[str, Form(max_length=20)],
    on: Annotated[str | None, Form(alias="date", max_length=40)] = None,
    note: FormText = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """start / finish / verify / redo on the date entered (as ``POST /remediation/{code}/actions``)."""
    language = web.lang_of(lang)
    try:
        feature = remediation.act(
            conn,
            user,
            code,
            action,
            district_code=settings.district.district_code,
            note=note,
            on=form_day(on, "date"),
            publicity_required=settings.programme.publicity_required,
        )
    except WuyeError as error:
        kept = {"action": action, "date": on, "note": note}
        return _refused_board(request, conn, settings, user, code, language, error, kept)
    zone = feature["properties"]["zone_code"]
    return _back(f"/workbench/remediation/{zone}", language, action, f"#task-{code}")


def _photo_bytes(upload: UploadFile | None, settings: Settings, field: str, reason_zh: str) -> bytes:
    """The bytes of an uploaded file (up to the limit plus one, so the store can refuse a larger one);
    400 naming ``field`` when no file was chosen."""
    if upload is None or not upload.filename:
        raise InvalidInput(f"{field}: choose a photo to upload", field=field, reason_zh=reason_zh)
    return upload.file.read(settings.server.max_photo_bytes + 1)


@router.post(
    "/workbench/remediation/tasks/{code}/photos",
    summary="上传整治前后照片（页面表单）",
    dependencies=[Depends(TASK_WORKERS)],
)
def task_photo(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    stage: Annotated[str, Form(max_length=10)],
    photo: Annotated[UploadFile | None, File()] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """A before/after photo of the task (as ``POST /remediation/{code}/photos``), e.g. from the phone's camera."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    try:
        data = _photo_bytes(photo, settings, "photo", web_programme.TEXTS["zh"]["photo_required"])
        remediation.add_photo(
            conn,
            user,
            code,
            stage=stage,
            data=data,
            district_code=district,
            root=settings.db.home,
            max_bytes=settings.server.max_photo_bytes,
        )
    except WuyeError as error:
        return _refused_board(request, conn, settings, user, code, language, error, {"stage": stage, "form": "photo"})
    zone = remediation.task(conn, code, district_code=district)["properties"]["zone_code"]
    return _back(f"/workbench/remediation/{zone}", language, "photo_added", f"#task-{code}")


@router.post(
    "/workbench/remediation/{code}/tasks", summary="新增整治任务（页面表单）", dependencies=[Depends(ZONE_PLANNERS)]
)
def task_create(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    item: Annotated[str, Form(max_length=40)],
    title: Annotated[str | None, Form(max_length=200)] = None,
    planned_start: FormShort = None,
    planned_end: FormShort = None,
    note: FormText = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """A new task in the zone (as ``POST /zones/{code}/remediation``, without a geometry)."""
    language = web.lang_of(lang)
    try:
        remediation.create(
            conn,
            user,
            code,
            district_code=settings.district.district_code,
            item=item,
            title=title or None,
            planned_start=form_day(planned_start, "planned_start"),
            planned_end=form_day(planned_end, "planned_end"),
            note=note or None,
        )
    except WuyeError as error:
        kept = {
            "form": "create",
            "item": item,
            "title": title,
            "planned_start": planned_start,
            "planned_end": planned_end,
            "note": note,
        }
        return refused(
            error, partial(_board, request, conn, settings, user, code, lang=language), kept, not_found=("code",)
        )
    return _back(f"/workbench/remediation/{code}", language, "task_added")


# -- the phase table ----------------------------------------------------------------------------------------
def _phase_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    *,
    lang: str,
    form: FormState = BLANK,
) -> HTMLResponse:
    district = settings.district.district_code
    scope = {z["code"]: z for z in board.zones_in_scope(conn, user, district_code=district)}
    found = keep(conn, ("phases", district, today()), lambda: run(conn, phases.district(district_code=district)))
    # each zone with its sub-district's name (the table names it, not its code)
    zones = [
        {**z, "subdistrict_name": scope[z["zone_code"]]["subdistrict_name"]}
        for z in found["zones"]
        if z["zone_code"] in scope
    ]
    for z in zones:
        z["overdue"] = sum(1 for p in z["phases"] if p["status"] == "overdue")
        for p in z["phases"]:
            p["missing"] = [web_programme.in_lang(m, lang) for m in p["missing"]]
    # behind schedule first (the most overdue phases), then by sub-district and code
    zones.sort(key=lambda z: (-z["overdue"], z["subdistrict_code"] or "", z["zone_code"]))
    summary = {
        key: {
            s: sum(1 for z in zones for p in z["phases"] if p["phase"] == key and p["status"] == s)
            for s in ("done", "overdue")
        }
        for key in remediation.PHASES
    }
    return page(
        request,
        "phases.html",
        principal=user,
        lang=lang,
        form=form,
        current="phases",
        zones=zones,
        summary=summary,
        can_set=user.role in remediation.STAFF,
        **_texts(lang),
    )


@router.get("/workbench/phases", summary="阶段进度表", dependencies=[Depends(PAGES)], response_class=HTMLResponse)
def phase_table(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The zones of the caller's scope × the plan's phases: deadlines, status and what is missing,
    zones behind schedule first."""
    language = web.lang_of(lang)
    chosen = request.query_params.get("zone")  # a row's "set deadline" link chooses its zone in the form
    return _phase_page(
        request,
        conn,
        settings,
        user,
        lang=language,
        form=FormState(message=_done_message(request, language), kept={"zone": chosen} if chosen else {}),
    )


@router.post(
    "/workbench/phases/deadline", summary="调整小区阶段期限（页面表单，管理员）", dependencies=[Depends(DEADLINE_FORM)]
)
def phase_deadline(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    code: Annotated[str, Form(alias="zone", max_length=80)],
    phase: Annotated[str, Form(max_length=40)],
    due_on: FormShort = None,
    reason: FormText = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Give the zone its own deadline for a phase with a reason (phases.set_deadline: administrators
    only, audited); refused, the table again with the reason in Chinese and what was typed kept."""
    language = web.lang_of(lang)
    try:
        day = form_day(due_on, "due_on")
        if day is None:
            raise InvalidInput("due_on is required", field="due_on", reason_zh="请填写新的期限（年-月-日）")
        phases.set_deadline(
            conn, user, code, phase, day, reason=reason or "", district_code=settings.district.district_code
        )
    except WuyeError as error:
        kept = {"zone": code, "phase": phase, "due_on": due_on, "reason": reason}
        return refused(error, partial(_phase_page, request, conn, settings, user, lang=language), kept)
    return _back("/workbench/phases", language, "deadline_saved", f"#zone-{code}")


# -- publicity ----------------------------------------------------------------------------------------------
def _records(conn: psycopg.Connection, district: str, zone: str | None, lang: str) -> list[dict[str, Any]]:
    kinds = vocabulary("publicity_kinds").labels(lang)
    rows = run(conn, publicity.records(district_code=district, zone_code=zone))
    return [{**r, "kind_label": kinds.get(r["kind"], r["kind"])} for r in reversed(rows)]  # newest first


@router.get(
    "/workbench/publicity", summary="宣传记录（各小区）", dependencies=[Depends(PAGES)], response_class=HTMLResponse
)
def publicity_index(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The zones of the caller's scope with their publicity records, newest first."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    zones = board.zones_in_scope(conn, user, district_code=district)
    shown = {z["code"] for z in zones}
    records = [r for r in _records(conn, district, None, language) if r["zone_code"] in shown]
    return page(
        request,
        "publicity.html",
        principal=user,
        lang=language,
        current="publicity",
        zones=zones,
        records=records,
        zone=None,
        **_texts(language),
    )


def _publicity_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    code: str,
    *,
    lang: str,
    form: FormState = BLANK,
) -> HTMLResponse:
    district = settings.district.district_code
    remediation.zone_in_scope(conn, user, code, district)
    zone = next(z for z in board.zones_in_scope(conn, user, district_code=district) if z["code"] == code)
    return page(
        request,
        "publicity.html",
        principal=user,
        lang=lang,
        form=form,
        current="publicity",
        zone=zone,
        zones=[zone],
        records=_records(conn, district, code, lang),
        units=reference.units(conn, district),
        can_record=user.role in remediation.WORKERS,
        default_unit=user.unit_code or "",
        tolerance=int(publicity.PLACE_TOLERANCE_M),
        near=board.near_zone(conn, code, publicity.PLACE_TOLERANCE_M, district_code=district),
        **_texts(lang),
    )


@router.get(
    "/workbench/publicity/{code}",
    summary="小区宣传记录",
    dependencies=[Depends(ZONE_PAGES)],
    response_class=HTMLResponse,
)
def publicity_zone(
    code: str, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """A zone's publicity records (with their photos and places on a map) and the form to record one."""
    language = web.lang_of(lang)
    done = FormState(message=_done_message(request, language))
    return _publicity_page(request, conn, settings, user, code, lang=language, form=done)


def _attendance(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(
            "attendance must be a whole number", field="attendance", reason_zh="“参加人数”须为整数"
        ) from None


def _place(lon: str | None, lat: str | None) -> dict[str, Any]:
    x, y = form_number(lon, "lon"), form_number(lat, "lat")
    if x is None or y is None:
        raise InvalidInput("place: pick the place on the map", field="place", reason_zh="请在地图上点选宣传地点")
    return {"type": "Point", "coordinates": [x, y]}


@router.post("/workbench/publicity/{code}", summary="登记宣传记录（页面表单）", dependencies=[Depends(PUBLICISTS)])
def publicity_record(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    kind: Annotated[str, Form(max_length=40)],
    held_on: FormShort = None,
    lon: FormShort = None,
    lat: FormShort = None,
    unit_code: Annotated[str | None, Form(max_length=80)] = None,
    attendance: FormShort = None,
    note: FormText = None,
    photo: Annotated[list[UploadFile] | None, File(max_length=20)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Record a notice, meeting or visit with its place (picked on the map), attendance and photos: all
    of it or nothing (the photos are checked before the record is written, and written with it)."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    limit = settings.server.max_photo_bytes
    try:
        day = form_day(held_on, "held_on")
        if day is None:
            raise InvalidInput("held_on is required", field="held_on", reason_zh="请填写宣传日期（年-月-日）")
        place = _place(lon, lat)
        count = _attendance(attendance)
        shots = [u.file.read(limit + 1) for u in (photo or []) if u.filename]
        for data in shots:
            photos.checked(data, limit)  # every photo is checked before anything is written
        with conn.transaction():
            record_id = publicity.record(
                conn,
                user,
                code,
                district_code=district,
                kind=kind,
                held_on=day,
                place=place,
                place_crs=None,
                unit_code=unit_code or "",
                attendance=count,
                note=note or None,
            )
            for data in shots:
                publicity.add_photo(
                    conn, user, record_id, data=data, district_code=district, root=settings.db.home, max_bytes=limit
                )
    except WuyeError as error:
        kept = {
            "kind": kind,
            "held_on": held_on,
            "lon": lon,
            "lat": lat,
            "unit_code": unit_code,
            "attendance": attendance,
            "note": note,
        }
        again = partial(_publicity_page, request, conn, settings, user, code, lang=language)
        return refused(error, again, kept, not_found=("code",))
    return _back(f"/workbench/publicity/{code}", language, "recorded", f"#record-{record_id}")


@router.post(
    "/workbench/publicity/{code}/records/{record_id}/photos",
    summary="补充宣传照片（页面表单）",
    dependencies=[Depends(RECORD_PHOTOS)],
)
def publicity_photos(
    code: str,
    record_id: int,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[list[UploadFile] | None, File(max_length=20)] = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """More photos of a record of the zone (as ``POST /publicity/{record_id}/photos``), e.g. taken after
    the meeting: all of them or none (each checked before any is written)."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    limit = settings.server.max_photo_bytes
    try:
        remediation.zone_in_scope(conn, user, code, district)
        if record_id not in {r["id"] for r in run(conn, publicity.records(district_code=district, zone_code=code))}:
            raise NotFound(f"publicity record {record_id} of zone '{code}' does not exist", field="record_id")
        shots = [u.file.read(limit + 1) for u in (photo or []) if u.filename]
        if not shots:
            raise InvalidInput(
                "photo: choose a photo to upload", field="photo", reason_zh=web_programme.TEXTS["zh"]["choose_photo"]
            )
        for data in shots:
            photos.checked(data, limit)
        with conn.transaction():
            for data in shots:
                publicity.add_photo(
                    conn, user, record_id, data=data, district_code=district, root=settings.db.home, max_bytes=limit
                )
    except WuyeError as error:
        if isinstance(error, NotFound):  # the zone or the record: no page of it to show again
            raise
        return refused(error, partial(_publicity_page, request, conn, settings, user, code, lang=language))
    return _back(f"/workbench/publicity/{code}", language, "photo_added", f"#record-{record_id}")
