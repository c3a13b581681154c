"""Remediation, maintenance records, the satisfaction survey and the acceptance review (issue 6).

Thin routes: every figure, rule and SQL statement lives in geo/ (remediation,
inspections, surveys, acceptance, report).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import models
from api.auth import PUBLIC, STAFF_ROLES, CurrentUser, Guard
from api.deps import AppSettings, Connection, read
from api.inputs import Day, Happened, saved_upload
from api.models import GeoJSONResponse
from api.ogc_common import base
from geo.errors import InvalidInput
from geo.programme import (
    acceptance,
    corrections,
    inspections,
    phases,
    redo,
    remediation,
    rewards,
    rounds,
    surveys,
    verdicts,
)
from geo.steps import run
from geo.workcal import today
from maps import report

router = APIRouter(tags=["acceptance"])
PLANNERS = Guard(*remediation.STAFF, description="sub-district staff and administrators")
# A task outside the caller's zones is 404 (its moves and photos).
REMEDIATORS = Guard(
    *remediation.WORKERS, description="sub-district staff, property teams, administrators", scoped="code"
)
# Staff who read what lies in their zones (remediation photos, maintenance records); planners district-wide.
ZONE_READERS = ("admin", "planner", "subdistrict_staff", "property_team", "contractor")
PHOTO_READERS = Guard(*ZONE_READERS, description="staff whose zones cover the task", scoped="code")
# Inspections are scoped by where the facility lies: 404 for one outside the caller's zones.
INSPECTORS = Guard(
    "admin", "subdistrict_staff", "property_team", "contractor", description="maintenance staff", scoped="code"
)
INSPECTION_READERS = Guard(*ZONE_READERS, description="maintenance staff and planners", scoped="code")
INSPECTION_IMPORTERS = Guard(*INSPECTORS.roles, description="maintenance staff (rows outside their zones refused)")
SURVEYORS = Guard(*surveys.ENTRY_ROLES, description="survey teams and administrators")
REVIEWERS = Guard(*STAFF_ROLES, description="signed-in staff")
ADMINS = Guard("admin", description="administrators")
# Redo plans (补课整改): staff read them district-wide as they read verdicts; the responsible staff move
# items, add evidence and (sub-district staff, administrators) set units and deadlines in their zones.
REDO_PLANNERS = Guard(*redo.STAFF, description="sub-district staff and administrators (their zones)")
REDO_WORKERS = Guard(*redo.WORKERS, description="sub-district staff, property teams, administrators", scoped="item_id")
REDO_PHOTO_READERS = Guard(
    "admin", "planner", "subdistrict_staff", "property_team", description="staff whose zones cover it", scoped="item_id"
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GEOJSON = "application/geo+json"


class NewTask(BaseModel):
    """A remediation task."""

    item: str = Field(max_length=40, description="item code or Chinese name (牛皮癣清理, 路灯, …)")
    title: str | None = Field(default=None, max_length=200)
    planned_start: Day | None = None
    planned_end: Day | None = None
    geometry: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON geometry, CRS84 lon/lat unless the Content-Crs header names another; "
        "it must touch the task's zone",
    )
    note: str | None = Field(default=None, max_length=2000)
    before_photo: str | None = Field(
        default=None, max_length=500, description="refused: upload the photo to POST /remediation/{code}/photos"
    )


class TaskAction(BaseModel):
    """A remediation move: start, finish, verify, redo."""

    action: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=2000)
    on: Happened | None = Field(default=None, alias="date", description="when it happened (default: today)")
    after_photo: str | None = Field(
        default=None, max_length=500, description="refused: upload the photo to POST /remediation/{code}/photos"
    )


def _no_typed_photo(name: str, value: str | None, stage: str) -> None:
    # A typed-in path pointed at no stored file; say where photos go now rather than drop it silently.
    if value is not None:
        raise InvalidInput(
            f"{name}: photos are uploaded, not referenced: POST /remediation/{{code}}/photos "
            f"(multipart 'photo', stage={stage})",
            field=name,
        )


class NewInspection(BaseModel):
    """One maintenance record."""

    inspected_on: Happened
    condition: str = Field(max_length=20, description="normal/faulty/repairing/removed or 正常/故障/维修中/已拆除")
    inspector: str | None = Field(default=None, max_length=100, description="default: the caller")
    note: str | None = Field(default=None, max_length=2000)
    photo: str | None = Field(default=None, max_length=500)
    defect: str | None = Field(
        default=None,
        max_length=80,
        description="layers with a defect (roads: broken/potholes/ponding 破损/坑洼/积水; manholes: "
        "cover_missing/cover_broken 缺失/破损); the facility's defect becomes this one (none when empty)",
    )


class NewAnswer(BaseModel):
    """One household's answer to the door-to-door questionnaire."""

    household: str = Field(min_length=1, max_length=80)
    building: str | None = Field(default=None, max_length=80)
    answered_on: Happened
    satisfied: bool
    surveyor: str | None = Field(default=None, max_length=100, description="default: the caller")
    round: str | None = Field(default=None, max_length=40, description="default: the answer date's year")
    round_kind: str | None = Field(
        default=None, max_length=10, description="kind of a round this answer creates: first (首次验收) or redo (补课)"
    )
    scores: dict[
        Literal["public_order", "sanitation", "public_safety", "public_facilities", "greening", "other"],
        Annotated[int, Field(ge=1, le=5)],
    ] = Field(default_factory=dict)
    remark: str | None = Field(default=None, max_length=2000)


# ------------------------------------------------------------------ remediation


@router.get(
    "/remediation",
    response_model=models.TaskCollection,
    response_class=GeoJSONResponse,
    summary="整治任务（GeoJSON）",
    dependencies=[Depends(PUBLIC)],
)
def get_remediation(
    conn: Connection,
    settings: AppSettings,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> JSONResponse:
    """Every remediation task as a GeoJSON FeatureCollection (read-only; changed through actions)."""
    body = remediation.collection(conn, district_code=settings.district.district_code, zone_code=zone, state=state)
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/remediation/progress",
    response_model=list[models.Progress],
    summary="整治进度（小区、街道）",
    dependencies=[Depends(PUBLIC)],
)
def get_progress(conn: Connection, settings: AppSettings) -> list[dict[str, Any]]:
    """Task counts by state per zone, per sub-district and for the district."""
    return remediation.progress(conn, district_code=settings.district.district_code)


@router.get(
    "/remediation/{code}",
    response_model=models.TaskFeature,
    response_class=GeoJSONResponse,
    summary="整治任务详情",
    dependencies=[Depends(PUBLIC)],
)
def get_task(code: str, conn: Connection, settings: AppSettings) -> JSONResponse:
    """One task with its history."""
    return JSONResponse(remediation.task(conn, code, district_code=settings.district.district_code), media_type=GEOJSON)


@router.post(
    "/remediation/{code}/actions",
    response_model=models.TaskFeature,
    response_class=GeoJSONResponse,
    summary="整治任务处置（开始、完成、验收、返工）",
    dependencies=[Depends(REMEDIATORS)],
)
def post_task_action(
    code: str, body: TaskAction, conn: Connection, settings: AppSettings, user: CurrentUser
) -> JSONResponse:
    """start, finish, verify (staff), redo (staff, with a note). Illegal moves answer 409, and so does
    start before the zone has a publicity record (先宣传后实施, WUYE_PUBLICITY_REQUIRED)."""
    _no_typed_photo("after_photo", body.after_photo, "after")
    feature = remediation.act(
        conn,
        user,
        code,
        body.action,
        district_code=settings.district.district_code,
        note=body.note,
        on=body.on,
        publicity_required=settings.programme.publicity_required,
    )
    return JSONResponse(feature, media_type=GEOJSON)


@router.post(
    "/remediation/{code}/photos",
    status_code=201,
    response_model=models.TaskPhoto,
    summary="上传整治前后照片",
    dependencies=[Depends(REMEDIATORS)],
)
def post_task_photo(
    code: str,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[UploadFile, File()],
    stage: Annotated[str, Form(max_length=10, description="before (整治前) or after (整治后)")],
) -> dict[str, Any]:
    """Attach a JPEG/PNG/WebP photo taken before or after the work (staff in the task's zone); the
    type is read from the content, the size limited by WUYE_MAX_PHOTO_BYTES, the name chosen by us."""
    data = photo.file.read(settings.server.max_photo_bytes + 1)
    return remediation.add_photo(
        conn,
        user,
        code,
        stage=stage,
        data=data,
        district_code=settings.district.district_code,
        root=settings.db.home,
        max_bytes=settings.server.max_photo_bytes,
    )


@router.get("/remediation/{code}/photos/{photo_id}", summary="整治照片", dependencies=[Depends(PHOTO_READERS)])
def get_task_photo(
    code: str, photo_id: int, conn: Connection, settings: AppSettings, user: CurrentUser
) -> FileResponse:
    """One photo's bytes, for staff whose zones cover the task (404 otherwise)."""
    path, content_type = remediation.photo_file(
        conn, user, code, photo_id, district_code=settings.district.district_code, root=settings.db.home
    )
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/zones/{code}/remediation",
    response_model=models.ZoneRemediation,
    response_class=GeoJSONResponse,
    summary="小区整治任务、进度与阶段",
    dependencies=[Depends(PUBLIC)],
)
def get_zone_remediation(code: str, conn: Connection, settings: AppSettings) -> JSONResponse:
    """The zone's tasks (GeoJSON), its progress and its phase calendar with overdue flags."""
    district = settings.district.district_code
    body = remediation.zone_tasks(conn, code, district_code=district)
    body["phases"] = run(conn, phases.zone(code, district_code=district))
    return JSONResponse(body, media_type=GEOJSON)


@router.post(
    "/zones/{code}/remediation",
    status_code=201,
    response_model=models.TaskFeature,
    response_class=GeoJSONResponse,
    summary="新增整治任务",
    dependencies=[Depends(PLANNERS)],
)
def post_zone_task(
    code: str,
    body: NewTask,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    content_crs: Annotated[str | None, Header(alias="Content-Crs", description="CRS of the geometry")] = None,
) -> JSONResponse:
    """Add a task to a zone in the caller's scope; its geometry is checked like a Part 4 edit."""
    _no_typed_photo("before_photo", body.before_photo, "before")
    feature = remediation.create(
        conn,
        user,
        code,
        district_code=settings.district.district_code,
        item=body.item,
        title=body.title,
        planned_start=body.planned_start,
        planned_end=body.planned_end,
        geometry=body.geometry,
        geometry_crs=content_crs.strip().strip("<>") if content_crs else None,
        note=body.note,
    )
    return JSONResponse(feature, status_code=201, media_type=GEOJSON)


# ------------------------------------------------------------------ inspections


@router.get(
    "/facilities/{layer}/{code}/inspections", summary="设施巡查记录", dependencies=[Depends(INSPECTION_READERS)]
)
def get_inspections(layer: str, code: str, conn: Connection, user: CurrentUser) -> dict[str, Any]:
    """The facility's condition (its latest inspection's) and its inspections, newest first
    (a facility in the caller's zones)."""
    return inspections.history(conn, user, layer, code)


@router.post(
    "/facilities/{layer}/{code}/inspections", status_code=201, summary="登记巡查", dependencies=[Depends(INSPECTORS)]
)
def post_inspection(
    layer: str, code: str, body: NewInspection, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Record an inspection of a facility in the caller's zones; the facility's condition becomes the
    latest inspection's."""
    item = inspections.Inspection(
        layer,
        code,
        body.inspected_on,
        body.inspector or user.username,
        body.condition,
        body.note,
        body.photo,
        body.defect,
    )
    return inspections.record(conn, user, item, district_code=settings.district.district_code, actor=user.actor)


@router.post("/inspections/import", summary="批量导入巡查记录 (CSV/XLSX)", dependencies=[Depends(INSPECTION_IMPORTERS)])
def post_inspections_import(
    file: Annotated[UploadFile, File()], conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """All rows or none: a bad row answers 400 with every row's problems."""
    with tempfile.TemporaryDirectory() as folder:
        path = saved_upload(file, file.file.read(), folder)
        n = inspections.import_file(conn, user, path, district_code=settings.district.district_code, actor=user.actor)
    return {"recorded": n}


# ------------------------------------------------------------------ survey


@router.post(
    "/zones/{code}/survey",
    status_code=201,
    response_model=models.SavedAnswer,
    response_model_exclude_unset=True,  # the answer as geo/ built it: no null for a member it left out
    summary="录入入户调查答卷",
    dependencies=[Depends(SURVEYORS)],
)
def post_answer(
    code: str, body: NewAnswer, conn: Connection, settings: AppSettings, user: CurrentUser, replace: bool = False
) -> dict[str, Any]:
    """One answer per household per round: a second is 409 naming the first, unless ``replace=true``."""
    answer = surveys.Answer(
        code,
        body.household,
        body.answered_on,
        body.surveyor or user.username,
        body.satisfied,
        round=body.round,
        building=body.building,
        scores={f"score_{k}": v for k, v in body.scores.items()},
        remark=body.remark,
        round_kind=body.round_kind,
    )
    return surveys.add(conn, user, answer, district_code=settings.district.district_code, replace=replace)


@router.get(
    "/zones/{code}/survey",
    response_model=models.ZoneSurvey,
    response_model_exclude_unset=True,  # the answer as geo/ built it: no null for a member it left out
    summary="小区调查答卷",
    dependencies=[Depends(SURVEYORS)],
)
def get_answers(
    code: str,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    round: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """The zone's figures and answers of a round (default: the round the zone is judged on)."""
    district = settings.district.district_code
    figures = surveys.zone_figures(
        conn, district_code=district, round_=round, zone_code=code, setting=settings.acceptance.survey_round
    ).get(code)
    answers = surveys.zone_answers(
        conn, user, code, district_code=district, round_=figures["round"] if figures else round
    )
    assert figures is not None  # zone_answers answered 404 for an unknown zone
    return {"zone_code": code, **figures, "items": answers}


@router.post(
    "/surveys/import",
    response_model=models.SurveyImport,
    response_model_exclude_unset=True,  # the answer as geo/ built it: no null for a member it left out
    summary="批量导入调查答卷 (CSV/XLSX)",
    dependencies=[Depends(SURVEYORS)],
)
def post_survey_import(
    file: Annotated[UploadFile, File()],
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    replace: bool = False,
    round: Annotated[str | None, Query(max_length=40, description="the round of every row (else each row's)")] = None,
    round_kind: Annotated[
        str | None, Query(max_length=10, description="kind of a round the import creates: first or redo (补课)")
    ] = None,
) -> dict[str, Any]:
    """All rows or none: a bad row (unknown zone, missing household, future date, household twice or
    already answered, a zone outside its round) answers 400 with every row's problems. The import is
    one batch (its id in ``batch``), which an administrator can withdraw."""
    with tempfile.TemporaryDirectory() as folder:
        path = saved_upload(file, file.file.read(), folder)
        return surveys.import_file(
            conn,
            user,
            path,
            district_code=settings.district.district_code,
            replace=replace,
            round_=round,
            round_kind=round_kind,
        )


class NewRound(BaseModel):
    """A survey round declared with the zones it covers."""

    label: str = Field(min_length=1, max_length=40, description="e.g. 2023补课")
    kind: str = Field(max_length=10, description="first (首次验收) or redo (补课)")
    zones: list[Annotated[str, Field(max_length=80)]] = Field(max_length=500, description="zone codes it covers")
    starts_on: Day | None = None
    ends_on: Day | None = None
    organiser: str | None = Field(default=None, max_length=200)


class ZoneRound(BaseModel):
    """The round an administrator fixes for a zone (null: back to its latest round)."""

    round: str | None = Field(max_length=40)
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/survey-rounds", summary="调查轮次", dependencies=[Depends(REVIEWERS)])
def get_rounds(conn: Connection, settings: AppSettings) -> list[dict[str, Any]]:
    """Every survey round (label, kind, zones, dates, organiser, counting answers per zone), latest first."""
    return rounds.rounds(conn, district_code=settings.district.district_code)


@router.post("/survey-rounds", status_code=201, summary="登记调查轮次", dependencies=[Depends(ADMINS)])
def post_round(body: NewRound, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """Declare a round with its zones before its answers come (answers for other zones are refused)."""
    return rounds.declare(
        conn,
        district_code=settings.district.district_code,
        label=body.label,
        kind=body.kind,
        zone_codes=body.zones,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        organiser=body.organiser,
        actor=user.actor,
    )


@router.put("/zones/{code}/survey-round", summary="指定小区评定轮次", dependencies=[Depends(ADMINS)])
def put_zone_round(
    code: str, body: ZoneRound, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Fix the round the zone is judged on, with a reason (``round: null`` returns it to its latest round)."""
    return rounds.fix_zone_round(
        conn,
        user.role,
        code,
        body.round,
        district_code=settings.district.district_code,
        reason=body.reason,
        actor=user.actor,
    )


# ------------------------------------------------------------------ acceptance


@router.get(
    "/zones/{code}/acceptance",
    response_model=models.Acceptance,
    response_model_exclude_unset=True,  # the answer as geo/ built it: no null for a member it left out
    summary="小区考核验收结论",
    dependencies=[Depends(REVIEWERS)],
)
def get_acceptance(code: str, conn: Connection, settings: AppSettings) -> dict[str, Any]:
    """Figures and the computed verdict: 通过, 补课 with every failed criterion, or no verdict without answers."""
    return acceptance.zone_acceptance(
        conn,
        code,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        fee_grace_months=settings.programme.fee_grace_months,
    )


@router.get("/zones/{code}/acceptance.pdf", summary="小区考核验收报告 (PDF)", dependencies=[Depends(REVIEWERS)])
def get_acceptance_pdf(code: str, request: Request, conn: Connection, settings: AppSettings) -> Response:
    """The zone's acceptance report as a PDF (Chinese, CJK font embedded), with the zone's map page as
    this server draws it in headless Chromium."""
    pdf = report.zone_pdf(
        conn,
        code,
        base_url=base(request),
        district_code=settings.district.district_code,
        district_name=settings.district.district_name,
        rules=settings.acceptance,
        fee_grace_months=settings.programme.fee_grace_months,
    )
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="acceptance-{code}.pdf"'}
    )


@router.get(
    "/acceptance",
    response_model=list[models.Acceptance],
    response_model_exclude_unset=True,  # the answer as geo/ built it: no null for a member it left out
    summary="全区考核验收汇总",
    dependencies=[Depends(REVIEWERS)],
)
def get_summary(
    conn: Connection, settings: AppSettings, f: Annotated[Literal["json", "pdf", "xlsx"], Query()] = "json"
) -> Response:
    """Every zone's figures and verdict; ``f=pdf`` or ``f=xlsx`` downloads the district summary."""
    rows = acceptance.kept_district_figures(
        conn,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        with_conditions=f == "json",
        fee_grace_months=settings.programme.fee_grace_months,
    )
    points = (
        rewards.points_of(conn, rows, district_code=settings.district.district_code, rules=settings.acceptance)
        if f != "json"
        else []
    )
    if f == "xlsx":
        return Response(
            report.summary_xlsx(rows, points),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="acceptance-summary.xlsx"'},
        )
    if f == "pdf":
        html = report.summary_html(
            rows, district_name=settings.district.district_name, rules=settings.acceptance, points=points
        )
        return Response(
            report.render_pdf(html),
            media_type="application/pdf",
            headers={"Content-Disposition": 'inline; filename="acceptance-summary.pdf"'},
        )
    return JSONResponse(rows)


@router.get(
    "/acceptance/points",
    response_model=models.Points,
    summary="街道绩效考核分值及奖励资金",
    dependencies=[Depends(REVIEWERS)],
)
def get_points(
    conn: Connection,
    settings: AppSettings,
    year: Annotated[int | None, Query(description="programme year (default: this year)")] = None,
) -> dict[str, Any]:
    """Each sub-district's performance points for the programme year from WUYE_POINTS_WEIGHTS, with
    their parts, and its zones' rewards (以奖代补) released, withheld (补课) and pending."""
    return rewards.points(
        conn,
        district_code=settings.district.district_code,
        year=today().year if year is None else year,
        rules=settings.acceptance,
    )


# ------------------------------------------------------------------ corrections


class Withdrawal(BaseModel):
    """Why an answer or a batch is withdrawn."""

    reason: str = Field(min_length=1, max_length=2000)
    new_version: bool = Field(default=False, description="required when the round's verdict was issued")


class Correction(BaseModel):
    """A correction of an answer, with its reason; only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    new_version: bool = Field(default=False, description="required when the round's verdict was issued")
    satisfied: bool | None = None
    building: str | None = Field(default=None, max_length=80)
    surveyor: str | None = Field(default=None, max_length=100)
    remark: str | None = Field(default=None, max_length=2000)
    scores: (
        dict[
            Literal["public_order", "sanitation", "public_safety", "public_facilities", "greening", "other"],
            Annotated[int, Field(ge=1, le=5)] | None,
        ]
        | None
    ) = None


@router.post("/survey/answers/{answer_id}/withdraw", summary="撤回调查答卷", dependencies=[Depends(ADMINS)])
def post_withdraw_answer(
    answer_id: int, body: Withdrawal, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Withdraw one answer with a reason: it stops counting and stays readable (history, audit log)."""
    return corrections.withdraw_answer(
        conn,
        user,
        answer_id,
        reason=body.reason,
        district_code=settings.district.district_code,
        new_version=body.new_version,
    )


@router.post("/survey/batches/{batch_id}/withdraw", summary="撤回导入批次", dependencies=[Depends(ADMINS)])
def post_withdraw_batch(
    batch_id: int, body: Withdrawal, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Withdraw every answer of an imported batch with a reason; the file can then be imported again."""
    return corrections.withdraw_batch(
        conn,
        user,
        batch_id,
        reason=body.reason,
        district_code=settings.district.district_code,
        new_version=body.new_version,
    )


@router.patch("/survey/answers/{answer_id}", summary="更正调查答卷", dependencies=[Depends(ADMINS)])
def patch_answer(
    answer_id: int, body: Correction, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Correct an answer with a reason; the answer as it was is kept in its history and the audit log."""
    sent = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in sent.items() if k not in ("reason", "scores", "new_version")}
    changes |= {f"score_{k}": v for k, v in (sent.get("scores") or {}).items()}
    return corrections.correct_answer(
        conn,
        user,
        answer_id,
        changes,
        reason=body.reason,
        district_code=settings.district.district_code,
        new_version=body.new_version,
    )


@router.get("/survey/answers/{answer_id}/history", summary="调查答卷更正记录", dependencies=[Depends(ADMINS)])
def get_answer_history(answer_id: int, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """The answer (withdrawn ones too) and each withdrawal and correction with who, when, why, before and after."""
    return corrections.history(conn, user, answer_id, district_code=settings.district.district_code)


# ------------------------------------------------------------------ issued verdicts


class NewVerdict(BaseModel):
    """Issue a zone's verdict for a round (default: the round it is judged on)."""

    round: str | None = Field(default=None, max_length=40)
    new_version: bool = Field(default=False, description="issue a corrected version of an issued verdict")
    reason: str | None = Field(default=None, max_length=2000, description="required with new_version")


@router.post("/zones/{code}/verdicts", status_code=201, summary="签发验收结论", dependencies=[Depends(ADMINS)])
def post_verdict(
    code: str, body: NewVerdict, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Freeze the zone's figures, criteria and PDF as a numbered acceptance document (its SHA-256, who, when)."""
    return verdicts.issue(
        conn,
        user,
        code,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        render=lambda figures: report.render_zone_pdf(
            figures, base_url=base(request), district_name=settings.district.district_name
        ),
        round_=body.round,
        new_version=body.new_version,
        reason=body.reason,
        fee_grace_months=settings.programme.fee_grace_months,
    )


@router.get("/zones/{code}/verdicts", summary="小区验收经过（已签发文书）", dependencies=[Depends(REVIEWERS)])
def get_verdicts(code: str, conn: Connection, settings: AppSettings) -> dict[str, Any]:
    """The zone's issue state for the round it is judged on, and every issued document, oldest first."""
    figures = acceptance.zone_acceptance(
        conn, code, district_code=settings.district.district_code, rules=settings.acceptance, with_conditions=False
    )
    return {"zone_code": code, "issue": figures["issue"], "items": figures["verdict_history"]}


class IssuedPdfs:
    """Issued PDFs kept in memory by (district, id), up to ``limit`` bytes, the least recently served
    dropped first. No expiry: an issued document never changes (a correction is a new document)."""

    def __init__(self, limit: int = 64 * 2**20) -> None:
        self.limit, self.size = limit, 0
        self._items: OrderedDict[tuple[str, int], tuple[bytes, str, str]] = OrderedDict()

    def get(self, key: tuple[str, int]) -> tuple[bytes, str, str] | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key: tuple[str, int], value: tuple[bytes, str, str]) -> None:
        if key in self._items or len(value[0]) > self.limit:
            return
        self._items[key] = value
        self.size += len(value[0])
        while self.size > self.limit:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped[0])


@router.get("/verdicts/{doc_id}.pdf", summary="验收文书 (PDF，签发原件)", dependencies=[Depends(REVIEWERS)])
async def get_verdict_pdf(
    doc_id: int,
    request: Request,
    settings: AppSettings,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The PDF as issued, byte for byte (a stored file, not a render); its SHA-256 in ``X-Content-SHA256``
    and as the ETag (``If-None-Match`` answers 304). Async, from memory once read: an issued document
    never changes; the caller's token is still checked on every request."""
    district = settings.district.district_code
    cache: IssuedPdfs | None = getattr(request.app.state, "issued_pdfs", None)
    if cache is None:  # one per app, made on first use (in the event loop: no race)
        cache = request.app.state.issued_pdfs = IssuedPdfs()
    found = cache.get((district, doc_id))
    if found is None:
        found = await read(request, verdicts.document_pdf(doc_id, district_code=district))
        cache.put((district, doc_id), found)
    pdf, digest, number = found
    headers = {
        "ETag": f'"{digest}"',
        "X-Content-SHA256": digest,
        "X-Document-Number": quote(number),  # percent-encoded UTF-8: headers are Latin-1
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    if if_none_match is not None and f'"{digest}"' in if_none_match:
        return Response(status_code=304, headers=headers)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={**headers, "Content-Disposition": f'inline; filename="verdict-{doc_id}.pdf"'},
    )


# after the .pdf route: /verdicts/{doc_id} would take '1.pdf' as its id
@router.get("/verdicts/{doc_id}", summary="验收文书（签发时的数据）", dependencies=[Depends(REVIEWERS)])
def get_verdict(doc_id: int, conn: Connection, settings: AppSettings) -> dict[str, Any]:
    """An issued document: number, version, what it replaces, SHA-256, who and when, the frozen figures."""
    return verdicts.document(conn, doc_id, district_code=settings.district.district_code)


@router.post(
    "/verdicts/issue-all",
    status_code=201,
    response_model=models.IssuedAll,
    summary="签发全部小区验收结论",
    dependencies=[Depends(ADMINS)],
)
def post_issue_all(request: Request, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """Issue every zone's verdict that can be issued (answers in its judged round, not issued yet, no redo
    items waiting) in one go: one query set, one browser drawing all the maps, one transaction. Zones left
    out are listed with the reason a single issue would give."""
    return verdicts.issue_all(
        conn,
        user,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        render_all=lambda rows: report.render_zone_pdfs(
            rows, base_url=base(request), district_name=settings.district.district_name
        ),
        fee_grace_months=settings.programme.fee_grace_months,
    )


# ------------------------------------------------------------------ redo plans (补课整改)


class NewRedoItem(BaseModel):
    """An item added by hand to the open redo plan of a zone whose latest issued verdict is 补课."""

    model_config = ConfigDict(extra="forbid")

    criterion: models.CriterionKey
    title_zh: str | None = Field(default=None, max_length=200)
    unit: str | None = Field(default=None, max_length=80, description="unit code (default: the sub-district office)")
    due_on: date | None = Field(default=None, description="default: today + WUYE_REDO_DAYS")


class RedoUpdate(BaseModel):
    """A move of a redo item and the evidence it brings; only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "in_progress", "done"] | None = Field(
        default=None, description="open (待整改), in_progress (整改中), done (已完成: needs evidence)"
    )
    note: str | None = Field(default=None, max_length=2000, description="added as evidence")
    tasks: list[Annotated[str, Field(max_length=80)]] | None = Field(
        default=None, max_length=50, description="remediation task codes of the zone, linked as evidence"
    )
    cases: list[Annotated[str, Field(max_length=80)]] | None = Field(
        default=None, max_length=50, description="case codes of the zone, linked as evidence"
    )
    unit: str | None = Field(default=None, max_length=80, description="responsible unit code (staff)")
    due_on: date | None = Field(default=None, description="deadline (staff)")


@router.get(
    "/redo-items",
    response_model=models.RedoItems,
    summary="补课整改事项",
    dependencies=[Depends(REVIEWERS)],
)
def get_redo_items(
    conn: Connection,
    settings: AppSettings,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    state: Annotated[str | None, Query(max_length=20, description="open, in_progress or done")] = None,
    overdue: bool | None = None,
) -> dict[str, Any]:
    """Every zone's redo items with their evidence (filtered by zone, state, overdue), and their counts."""
    found = redo.items(
        conn, district_code=settings.district.district_code, zone_code=zone, state=state, overdue=overdue
    )
    return {**redo.counts(found), "items": found}


@router.get(
    "/zones/{code}/redo-plan",
    response_model=models.RedoPlan,
    summary="小区补课整改计划",
    dependencies=[Depends(REVIEWERS)],
)
def get_redo_plan(code: str, conn: Connection, settings: AppSettings) -> dict[str, Any]:
    """The zone's redo plan: one item per failed criterion of its issued 补课 verdicts, with evidence."""
    return redo.plan(conn, code, district_code=settings.district.district_code)


@router.post(
    "/zones/{code}/redo-items",
    status_code=201,
    response_model=models.RedoItem,
    summary="新增补课整改事项",
    dependencies=[Depends(REDO_PLANNERS)],
)
def post_redo_item(
    code: str, body: NewRedoItem, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Add an item to the open plan of a zone (in the caller's scope) whose latest issued verdict is 补课;
    a zone that passed answers 400 naming ``code``."""
    return redo.add(
        conn,
        user,
        code,
        district_code=settings.district.district_code,
        criterion=body.criterion,
        title_zh=body.title_zh,
        unit=body.unit,
        due=body.due_on,
        days=settings.acceptance.redo_days,
    )


@router.patch(
    "/redo-items/{item_id}",
    response_model=models.RedoItem,
    summary="更新补课整改事项（状态、证明材料、责任单位、期限）",
    dependencies=[Depends(REDO_WORKERS)],
)
def patch_redo_item(
    item_id: int, body: RedoUpdate, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Move an item in the caller's zones, add a note or links as evidence; ``done`` needs evidence."""
    return redo.update(
        conn, user, item_id, body.model_dump(exclude_unset=True), district_code=settings.district.district_code
    )


@router.post(
    "/redo-items/{item_id}/photos",
    status_code=201,
    response_model=models.RedoItem,
    summary="上传补课整改照片",
    dependencies=[Depends(REDO_WORKERS)],
)
def post_redo_photo(
    item_id: int,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[UploadFile, File()],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> dict[str, Any]:
    """Attach a JPEG/PNG/WebP photo as evidence (type read from the content, size limited by
    WUYE_MAX_PHOTO_BYTES, the name chosen by us)."""
    data = photo.file.read(settings.server.max_photo_bytes + 1)
    return redo.add_photo(
        conn,
        user,
        item_id,
        data=data,
        district_code=settings.district.district_code,
        root=settings.db.home,
        max_bytes=settings.server.max_photo_bytes,
        note=note,
    )


@router.get(
    "/redo-items/{item_id}/photos/{photo_id}", summary="补课整改照片", dependencies=[Depends(REDO_PHOTO_READERS)]
)
def get_redo_photo(
    item_id: int, photo_id: int, conn: Connection, settings: AppSettings, user: CurrentUser
) -> FileResponse:
    """One evidence photo's bytes, for staff whose zones cover the item (404 otherwise)."""
    path, content_type = redo.photo_file(
        conn, user, item_id, photo_id, district_code=settings.district.district_code, root=settings.db.home
    )
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})
