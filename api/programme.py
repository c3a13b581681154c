"""The programme's records (issue 19): phases that follow the work, a zone's baseline and service start.

Thin routes: every rule and SQL statement lives in geo/programme/.
"""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api import models
from api.auth import PUBLIC, STAFF_ROLES, CurrentUser, Guard
from api.deps import AppSettings, Connection, read
from api.inputs import Day, Happened, Lang, Money, saved_upload
from geo.errors import InvalidInput
from geo.programme import fees, phases, publicity, remediation, responsibility
from geo.steps import run
from geo.workcal import today
from layers.catalogue import vocabulary

router = APIRouter(tags=["programme"])
ADMINS = Guard("admin", description="administrators")
PLANNERS = Guard(*remediation.STAFF, description="sub-district staff and administrators (their zones)")
PUBLICISTS = Guard(*remediation.WORKERS, description="sub-district staff, property teams, administrators (their zones)")
STAFF = Guard(*STAFF_ROLES, description="signed-in staff")


class Deadline(BaseModel):
    """A zone's own deadline for a phase, and why it differs from the programme calendar."""

    due_on: Day
    reason: str = Field(min_length=1, max_length=2000, description="why the zone's deadline moves (audited)")


class Baseline(BaseModel):
    """A zone's baseline survey (调查摸底): a dated record with its checklist."""

    surveyed_on: Happened
    households_inventoried: bool = False
    buildings_inventoried: bool = False
    facilities_inventoried: bool = False
    problems: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=500, description="the problems found (问题清单)"
    )
    unit_code: str | None = Field(default=None, max_length=80, description="the responsible unit")
    note: str | None = Field(default=None, max_length=2000)


class ServiceStart(BaseModel):
    """When property service starts in a zone and which property-service unit provides it."""

    starts_on: Day
    unit_code: str = Field(min_length=1, max_length=80)
    monthly_cost: Annotated[Money, Field(ge=0)] | None = Field(
        default=None, description="the service's cost per month (元)"
    )


class NewPublicity(BaseModel):
    """A publicity activity in a zone (先宣传后实施)."""

    kind: str = Field(max_length=40, description="kind code or Chinese name (公告张贴, 入户宣传, 居民会, …)")
    held_on: Happened
    place: dict[str, Any] = Field(
        description="GeoJSON Point, CRS84 lon/lat unless the Content-Crs header names another; within 50 m of the zone"
    )
    unit_code: str = Field(min_length=1, max_length=80, description="the organising unit")
    attendance: int | None = Field(default=None, ge=0, le=1_000_000)
    note: str | None = Field(default=None, max_length=2000)


@router.get("/phases", response_model=models.PhaseTable, summary="各小区阶段进度表", dependencies=[Depends(PUBLIC)])
async def get_phase_table(request: Request, settings: AppSettings) -> dict[str, Any]:
    """The district table: every zone × the plan's phases, each done / in progress / overdue / upcoming
    as its records say, with what is missing and the zone's publicity records by kind."""
    return await read(request, phases.district(district_code=settings.district.district_code))


@router.get(
    "/zones/{code}/phases", response_model=list[models.Phase], summary="小区阶段日程", dependencies=[Depends(PUBLIC)]
)
async def get_phases(code: str, request: Request, settings: AppSettings) -> list[dict[str, Any]]:
    """The plan's phases for the zone: status derived from its records, deadlines from the programme
    calendar (or the zone's own), and what is missing."""
    return await read(request, phases.zone(code, district_code=settings.district.district_code))


@router.put(
    "/zones/{code}/phases/{phase}",
    response_model=list[models.Phase],
    summary="设定小区阶段期限（管理员）",
    dependencies=[Depends(ADMINS)],
)
def put_phase(
    code: str, phase: str, body: Deadline, conn: Connection, settings: AppSettings, user: CurrentUser
) -> list[dict[str, Any]]:
    """Give the zone its own deadline for a phase, with a reason (administrators only; audited)."""
    district = settings.district.district_code
    phases.set_deadline(conn, user, code, phase, body.due_on, reason=body.reason, district_code=district)
    return run(conn, phases.zone(code, district_code=district))


@router.put(
    "/zones/{code}/baseline",
    response_model=list[models.Phase],
    summary="登记小区调查摸底记录",
    dependencies=[Depends(PLANNERS)],
)
def put_baseline(
    code: str, body: Baseline, conn: Connection, settings: AppSettings, user: CurrentUser
) -> list[dict[str, Any]]:
    """Record (or redo) the zone's baseline survey; answers the zone's phases."""
    district = settings.district.district_code
    phases.record_baseline(conn, user, code, district_code=district, **body.model_dump())
    return run(conn, phases.zone(code, district_code=district))


@router.put(
    "/zones/{code}/service",
    response_model=list[models.Phase],
    summary="登记物业服务开始日期与服务单位",
    dependencies=[Depends(PLANNERS)],
)
def put_service(
    code: str, body: ServiceStart, conn: Connection, settings: AppSettings, user: CurrentUser
) -> list[dict[str, Any]]:
    """Record when property service starts in the zone and which unit provides it; answers its phases."""
    district = settings.district.district_code
    phases.record_service(conn, user, code, district_code=district, **body.model_dump())
    return run(conn, phases.zone(code, district_code=district))


# ------------------------------------------------------------------ publicity (先宣传后实施)


@router.post(
    "/zones/{code}/publicity",
    status_code=201,
    response_model=models.PublicityRecord,
    summary="登记宣传记录",
    dependencies=[Depends(PUBLICISTS)],
)
def post_publicity(
    code: str,
    body: NewPublicity,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    content_crs: Annotated[str | None, Header(alias="Content-Crs", description="CRS of the place")] = None,
) -> dict[str, Any]:
    """Record a publicity activity in a zone of the caller's: kind, date, place (within 50 m of the
    zone), organising unit, attendance and note; photos go to POST /publicity/{record_id}/photos."""
    district = settings.district.district_code
    record_id = publicity.record(
        conn,
        user,
        code,
        district_code=district,
        kind=body.kind,
        held_on=body.held_on,
        place=body.place,
        place_crs=content_crs,
        unit_code=body.unit_code,
        attendance=body.attendance,
        note=body.note,
    )
    rows = run(conn, publicity.records(district_code=district, zone_code=code))
    return next(r for r in rows if r["id"] == record_id)


@router.get(
    "/zones/{code}/publicity",
    response_model=list[models.PublicityRecord],
    summary="小区宣传记录",
    dependencies=[Depends(PUBLIC)],
)
async def get_zone_publicity(code: str, request: Request, settings: AppSettings) -> list[dict[str, Any]]:
    """The zone's publicity records, oldest first."""
    return await read(request, publicity.records(district_code=settings.district.district_code, zone_code=code))


@router.get(
    "/publicity", response_model=list[models.PublicityRecord], summary="宣传记录", dependencies=[Depends(PUBLIC)]
)
async def get_publicity(request: Request, settings: AppSettings) -> list[dict[str, Any]]:
    """Every publicity record of the district, oldest first."""
    return await read(request, publicity.records(district_code=settings.district.district_code))


@router.post(
    "/publicity/{record_id}/photos",
    status_code=201,
    response_model=models.PublicityPhoto,
    summary="上传宣传照片",
    dependencies=[Depends(PUBLICISTS)],
)
def post_publicity_photo(
    record_id: int,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    """Attach a JPEG/PNG/WebP photo to a publicity record of the caller's zones (size: WUYE_MAX_PHOTO_BYTES)."""
    data = photo.file.read(settings.server.max_photo_bytes + 1)
    return publicity.add_photo(
        conn,
        user,
        record_id,
        data=data,
        district_code=settings.district.district_code,
        root=settings.db.home,
        max_bytes=settings.server.max_photo_bytes,
    )


@router.get("/publicity/{record_id}/photos/{photo_id}", summary="宣传照片", dependencies=[Depends(STAFF)])
def get_publicity_photo(record_id: int, photo_id: int, conn: Connection, settings: AppSettings) -> FileResponse:
    """One publicity photo's bytes (signed-in staff: residents may be in it)."""
    path, content_type = publicity.photo_file(
        conn, record_id, photo_id, district_code=settings.district.district_code, root=settings.db.home
    )
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------ the responsibility table (责任分工)


@router.get("/units", response_model=list[models.Unit], summary="责任单位及职责", dependencies=[Depends(PUBLIC)])
async def get_units(request: Request, settings: AppSettings, lang: Lang = "zh") -> list[dict[str, Any]]:
    """Every unit of the district with its kind (``kind_label`` in the page's language: the planner's
    form shows it) and its duty from the plan's responsibility table."""
    kinds = vocabulary("unit_kinds").labels(lang)
    found = await read(request, responsibility.units(district_code=settings.district.district_code))
    return [{**u, "kind_label": kinds.get(u["kind"], u["kind"])} for u in found]


# ------------------------------------------------------------------ fees (先服务后收费)


class NewStandard(BaseModel):
    """A fee standard approved by the development-and-reform bureau (发改局)."""

    basis: str = Field(max_length=20, description="household (元/户·月) or area (元/m²·月)")
    amount: Money = Field(description="yuan per household (or m²) per month")
    starts_on: Day
    ends_on: Day | None = Field(default=None, description="last day it applies (inclusive); none: open-ended")
    document_number: str = Field(min_length=1, max_length=200, description="the approving document's number")
    approved_by: str = Field(default="bureau-fgj", max_length=80, description="the approving unit")
    reductions: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(
        default_factory=dict, description='fee category → percent off, e.g. {"dibao": 50}'
    )


class BillRun(BaseModel):
    """Generate a month's bills."""

    period: str = Field(max_length=10, description="YYYY-MM")
    zone_code: str | None = Field(default=None, max_length=80, description="one zone (default: every zone, admins)")


class NewPayment(BaseModel):
    """A household's payment for a month, or a building's monthly total."""

    period: str = Field(max_length=10, description="YYYY-MM")
    amount: Money
    paid_on: Happened
    household_id: int | None = None
    building_code: str | None = Field(default=None, max_length=80)
    households_paid: int | None = Field(default=None, ge=0, description="with building_code: households covered")


def _months(start: str | None, end: str | None) -> tuple[date, date]:
    last = fees.period_of(end, field="end") if end else today().replace(day=1)
    first = fees.period_of(start, field="start") if start else last.replace(month=1)
    if first > last:
        raise InvalidInput(f"start {first:%Y-%m} is after end {last:%Y-%m}", field="start")
    return first, last


@router.post("/households/import", summary="导入住户登记表 (CSV/XLSX)", dependencies=[Depends(PUBLICISTS)])
def post_households_import(
    file: Annotated[UploadFile, File()], conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, int]:
    """The household register: all rows or none (400 with every row's problems)."""
    with tempfile.TemporaryDirectory() as folder:
        path = saved_upload(file, file.file.read(), folder)
        return fees.import_households(conn, user, path, district_code=settings.district.district_code)


@router.post("/zones/{code}/fee-standards", status_code=201, summary="登记收费标准", dependencies=[Depends(ADMINS)])
def post_fee_standard(
    code: str, body: NewStandard, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """A fee standard for the zone (administrators): overlapping another's dates is 409 naming it."""
    return fees.add_standard(conn, user, code, district_code=settings.district.district_code, **body.model_dump())


@router.get("/fee-standards", summary="收费标准", dependencies=[Depends(PUBLIC)])
async def get_fee_standards(
    request: Request, settings: AppSettings, zone: Annotated[str | None, Query(max_length=80)] = None
) -> list[dict[str, Any]]:
    """Every fee standard (of a zone) with its approving document."""
    return await read(request, fees.standards(district_code=settings.district.district_code, zone_code=zone))


@router.post("/bills/generate", summary="生成月度账单", dependencies=[Depends(PLANNERS)])
def post_bills(body: BillRun, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """The month's bills, one set-based statement, idempotent; a month before a zone may be charged is 409."""
    return fees.generate_bills(
        conn,
        user,
        fees.period_of(body.period),
        district_code=settings.district.district_code,
        grace_months=settings.programme.fee_grace_months,
        zone_code=body.zone_code,
    )


@router.post("/payments", status_code=201, summary="登记缴费", dependencies=[Depends(PUBLICISTS)])
def post_payment(body: NewPayment, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """A household's payment, or a building's monthly total; refused before charging may start (409)."""
    return fees.record_payment(
        conn,
        user,
        district_code=settings.district.district_code,
        grace_months=settings.programme.fee_grace_months,
        period=fees.period_of(body.period),
        amount=body.amount,
        paid_on=body.paid_on,
        household_id=body.household_id,
        building_code=body.building_code,
        households_paid=body.households_paid,
    )


@router.post("/payments/import", summary="导入缴费记录 (CSV/XLSX)", dependencies=[Depends(PUBLICISTS)])
def post_payments_import(
    file: Annotated[UploadFile, File()], conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, int]:
    """Payments all-or-nothing (400 with every row's problems)."""
    with tempfile.TemporaryDirectory() as folder:
        path = saved_upload(file, file.file.read(), folder)
        return fees.import_payments(
            conn,
            user,
            path,
            district_code=settings.district.district_code,
            grace_months=settings.programme.fee_grace_months,
        )


@router.get("/fees/collection", summary="收费率（楼栋、小区、街道）", dependencies=[Depends(STAFF)])
async def get_collection(
    request: Request,
    settings: AppSettings,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
) -> list[dict[str, Any]]:
    """Collection rate per building, zone and sub-district, by households and by amount (default: this year)."""
    first, last = _months(start, end)
    steps = fees.collection(district_code=settings.district.district_code, start=first, end=last, zone_code=zone)
    return await read(request, steps)


@router.get("/fees/arrears", summary="欠费住户", dependencies=[Depends(STAFF)])
async def get_arrears(
    request: Request, settings: AppSettings, zone: Annotated[str | None, Query(max_length=80)] = None
) -> list[dict[str, Any]]:
    """Households owing money, with the months owed."""
    return await read(request, fees.arrears(district_code=settings.district.district_code, zone_code=zone))


@router.get("/fees/income", summary="收费收入与服务成本", dependencies=[Depends(STAFF)])
async def get_income(
    request: Request,
    settings: AppSettings,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> list[dict[str, Any]]:
    """Per zone: fee income against the service cost (the finance bureau's subsidy is the difference)."""
    first, last = _months(start, end)
    return await read(request, fees.income(district_code=settings.district.district_code, start=first, end=last))
