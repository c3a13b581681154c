"""Cases (事件): intake, reading with scope, workflow actions, categories."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api import models
from api.auth import ALL_ROLES, PUBLIC, CurrentUser, Guard
from api.deps import AppSettings, Connection, read, run_with_connection
from api.inputs import Coordinate
from api.models import GeoJSONResponse
from geo.cases import idempotency, supervision
from geo.cases import workflow as cases
from geo.cases.shapes import CaseAction, Report
from geo.cases.stats import case_stats, to_csv, to_xlsx
from geo.features import edits
from geo.io import photos
from geo.programme import inspections

router = APIRouter(tags=["cases"])
WORKERS = Guard(*cases.WORKERS, description="staff and assigned units, in scope", scoped="code")
CASE_PRIVATE = Guard(
    *(r for r in ALL_ROLES if r != "anonymous"), description="the reporter and staff in scope", scoped="code"
)
CaseCode = Annotated[str, Path(max_length=80, description="case number, e.g. C20240501-000001")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAFF_LIST_ROLES = ("subdistrict_staff", "property_team", "contractor", "survey_team")
SUPERVISORS = Guard(*supervision.SUPERVISORS, description="the bureau (区城管局): administrators")
CALLERS = Guard(*cases.CALL_ROLES, description="staff and assigned units, in scope (audited)", scoped="code")


class PointGeometry(BaseModel):
    """A GeoJSON Point."""

    type: Literal["Point"]
    coordinates: list[Coordinate] = Field(min_length=2, max_length=3)

    @model_validator(mode="before")
    @classmethod
    def _no_crs_member(cls, data: Any) -> Any:
        edits.refuse_crs_member(data, "geometry")
        return data


class NewCase(BaseModel):
    """A problem report."""

    # A point inside the district (观沙岭街道), so that clients and API fuzzers try a real intake.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"category": "light_out", "lon": 112.952, "lat": 28.232, "description": "楼前那盏灯夜里黑着"}]
        }
    )

    category: str = Field(max_length=40, description="category code or Chinese name (GET /cases/categories)")
    geometry: PointGeometry | None = None
    lon: Coordinate | None = None
    lat: Coordinate | None = None
    coord_sys: Literal["cgcs2000", "wgs84", "gcj02", "bd09"] = "cgcs2000"
    description: str | None = Field(default=None, max_length=2000)
    facility_code: str | None = Field(default=None, max_length=80)
    reporter_name: str | None = Field(default=None, max_length=100)
    reporter_phone: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _one_position(self) -> NewCase:
        if self.geometry is not None:
            self.lon, self.lat = self.geometry.coordinates[0], self.geometry.coordinates[1]
        if self.lon is None or self.lat is None:
            raise ValueError("give a GeoJSON Point geometry or lon and lat")
        return self

    def report(self) -> Report:
        """The report as geo/ takes it."""
        assert self.lon is not None and self.lat is not None
        return Report(
            category_code=self.category,
            lon=self.lon,
            lat=self.lat,
            coord_sys=self.coord_sys,
            description=self.description,
            facility_code=self.facility_code,
            reporter_name=self.reporter_name,
            reporter_phone=self.reporter_phone,
        )


class Action(BaseModel):
    """A workflow move."""

    action: str = Field(max_length=40)
    note: str | None = Field(default=None, max_length=2000)
    unit_code: str | None = Field(default=None, max_length=80)
    duplicate_of: str | None = Field(default=None, max_length=80)
    category: str | None = Field(default=None, max_length=40)
    lon: Coordinate | None = None
    lat: Coordinate | None = None
    coord_sys: Literal["cgcs2000", "wgs84", "gcj02", "bd09"] = "cgcs2000"

    def case_action(self) -> CaseAction:
        """The move as geo/ takes it."""
        return CaseAction(
            action=self.action,
            note=self.note,
            unit_code=self.unit_code,
            duplicate_of=self.duplicate_of,
            category_code=self.category,
            lon=self.lon,
            lat=self.lat,
            coord_sys=self.coord_sys,
        )


@router.get(
    "/cases/categories", response_model=list[models.Category], summary="事件类别", dependencies=[Depends(PUBLIC)]
)
def get_categories() -> list[dict[str, Any]]:
    """Categories with their deadlines and facility layers."""
    return cases.category_list()


@router.post(
    "/cases",
    status_code=201,
    response_model=models.ReportedCase,
    response_class=GeoJSONResponse,
    summary="上报事件",
    dependencies=[Depends(PUBLIC)],
)
async def post_case(
    body: NewCase,
    request: Request,
    settings: AppSettings,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Report a problem; answers with its assignment and open cases nearby that may be the same."""
    claim = idempotency.claim_for(idempotency_key, caller=user.username, payload=body.model_dump())
    replayed = False
    try:  # one statement, in the event loop
        status, answer = (
            201,
            await read(
                request, cases.report(user, body.report(), district_code=settings.district.district_code, claim=claim)
            ),
        )
    except idempotency.Claimed as e:
        (status, answer), replayed = await read(request, idempotency.replay(e.claim)), True
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if status == 201:
        headers["Location"] = f"/cases/{answer['id']}"
    return Response(orjson.dumps(answer), status_code=status, headers=headers, media_type="application/geo+json")


@router.get("/cases/stats", response_model=list[models.CaseStats], summary="事件统计", dependencies=[Depends(PUBLIC)])
def get_stats(
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    since: datetime | None = None,
    until: datetime | None = None,
    f: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
    lang: Annotated[Literal["zh", "en"], Query(description="下载表格的语言 zh（默认）或 en")] = "zh",
) -> Response:
    """Counts by sub-district, zone, category, state and responsible unit: open, overdue, closed on time, median
    hours to close. Staff see their scope; ``f=csv`` or ``f=xlsx`` downloads them with names, not
    codes (``lang=en``: English names)."""
    district = settings.district.district_code
    rows = case_stats(conn, user, district_code=district, since=since, until=until)
    if f == "csv":
        return Response(
            to_csv(conn, rows, district_code=district, lang=lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="case-stats.csv"'},
        )
    if f == "xlsx":
        return Response(
            to_xlsx(conn, rows, district_code=district, lang=lang),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="case-stats.xlsx"'},
        )
    return JSONResponse(rows)


@router.get(
    "/cases",
    response_model=models.CaseCollection,
    response_class=GeoJSONResponse,
    summary="事件列表",
    dependencies=[Depends(PUBLIC)],
)
async def get_cases(
    request: Request,
    settings: AppSettings,
    user: CurrentUser,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    unit: Annotated[str | None, Query(max_length=80)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    overdue: bool | None = None,
    unassigned: bool | None = None,
    supervised: Annotated[bool | None, Query(description="督办: only supervised cases (true) or the others")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    """Cases, newest first. Staff see their scope's cases in full; the public sees every case
    anonymised (no reporter, location rounded to 50 m)."""
    flt = cases.CaseFilter(
        zone=zone,
        unit=unit,
        category=category,
        state=state,
        overdue=overdue,
        unassigned=unassigned,
        supervised=supervised,
        since=since,
        until=until,
        limit=limit,
        after=after,
    )
    page = await read(
        request,
        cases.list_cases(
            user, flt, district_code=settings.district.district_code, scoped_only=user.role in STAFF_LIST_ROLES
        ),
    )
    return JSONResponse(page, media_type="application/geo+json")


@router.get(
    "/cases/{code}",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="事件详情",
    dependencies=[Depends(PUBLIC)],
)
async def get_case(code: CaseCode, request: Request, settings: AppSettings, user: CurrentUser) -> JSONResponse:
    """One case; its events, reporter and exact position only for staff in scope and its reporter."""
    return JSONResponse(
        await read(request, cases.case_detail(code, principal=user, district_code=settings.district.district_code)),
        media_type="application/geo+json",
    )


@router.post(
    "/cases/{code}/actions",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="事件处置（立案、派遣、处理、核查结案……）",
    dependencies=[Depends(WORKERS)],
)
def post_action(
    code: CaseCode, body: Action, conn: Connection, settings: AppSettings, user: CurrentUser
) -> JSONResponse:
    """Move a case: register, reject, dispatch, start, handle, verify, reopen, mark_duplicate,
    recategorise, move. Illegal moves answer 409."""
    feature = cases.act(
        conn,
        user,
        code,
        body.case_action(),
        district_code=settings.district.district_code,
        on_verified=inspections.case_recorder(district_code=settings.district.district_code, actor=user.actor),
    )
    return JSONResponse(feature, media_type="application/geo+json")


class Supervision(BaseModel):
    """督办: the bureau's deadline (a day, today or later) and what it asks for."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"deadline": "2030-01-31", "note": "请尽快清运并回复"}]})

    deadline: date | None = Field(default=None, description="YYYY-MM-DD, today or later (Asia/Shanghai)")
    note: str | None = Field(default=None, max_length=2000, description="required")


@router.post(
    "/cases/{code}/supervise",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="督办（区城管局）",
    dependencies=[Depends(SUPERVISORS)],
)
def post_supervise(
    code: CaseCode, body: Supervision, conn: Connection, settings: AppSettings, user: CurrentUser
) -> JSONResponse:
    """Mark an open case as supervised by the bureau with a deadline and a note (again: a new deadline);
    the unit working it is notified, and past the deadline the case goes to its sub-district office."""
    feature = supervision.supervise(
        conn, user, code, deadline=body.deadline, note=body.note, district_code=settings.district.district_code
    )
    return JSONResponse(feature, media_type="application/geo+json")


class SupervisionWithdrawal(BaseModel):
    """撤销督办: why the bureau withdraws its supervision."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "误督办，已由街道另行处理"}]})

    note: str | None = Field(default=None, max_length=2000, description="required: why")


@router.post(
    "/cases/{code}/unsupervise",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="撤销督办（区城管局）",
    dependencies=[Depends(SUPERVISORS)],
)
def post_unsupervise(
    code: CaseCode, body: SupervisionWithdrawal, conn: Connection, settings: AppSettings, user: CurrentUser
) -> JSONResponse:
    """Withdraw the bureau's supervision of a case with a reason; the case's history keeps the
    supervision withdrawn (its deadline and note) in an ``unsupervise`` event. 409 when not supervised."""
    feature = supervision.unsupervise(conn, user, code, note=body.note, district_code=settings.district.district_code)
    return JSONResponse(feature, media_type="application/geo+json")


@router.post(
    "/cases/{code}/call",
    response_model=models.ReporterPhone,
    summary="联系报事人（查看完整电话，留痕）",
    dependencies=[Depends(CALLERS)],
)
def post_call(code: CaseCode, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """The reporter's whole phone number, for the staff and units working the case (who otherwise see it
    masked, ``138****0000``); every reveal is an audit row (``case.call``)."""
    return cases.reveal_phone(conn, user, code, district_code=settings.district.district_code)


@router.post(
    "/cases/{code}/photos",
    status_code=201,
    response_model=models.CasePhoto,
    summary="上传照片",
    dependencies=[Depends(CASE_PRIVATE)],
)
async def post_photo(
    code: CaseCode,
    request: Request,
    settings: AppSettings,
    user: CurrentUser,
    photo: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=20)] = "report",
) -> dict[str, Any]:
    """Attach a JPEG/PNG/WebP photo (reporter or staff in scope); type checked by content."""
    data = await photo.read(settings.server.max_photo_bytes + 1)

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
        return photos.store(
            conn,
            user,
            case_id=case_id,
            data=data,
            kind=kind,
            root=settings.db.home,
            max_bytes=settings.server.max_photo_bytes,
        )

    return await run_with_connection(request, work)


@router.get(
    "/cases/{code}/photos",
    response_model=list[models.CasePhoto],
    summary="照片列表",
    dependencies=[Depends(CASE_PRIVATE)],
)
def get_photos(code: CaseCode, conn: Connection, settings: AppSettings, user: CurrentUser) -> list[dict[str, Any]]:
    """Photos of a case (reporter or staff in scope)."""
    case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
    return photos.photo_list(conn, case_id)


@router.get("/cases/{code}/photos/{photo_id}", summary="照片", dependencies=[Depends(CASE_PRIVATE)])
def get_photo(
    code: CaseCode, photo_id: int, conn: Connection, settings: AppSettings, user: CurrentUser
) -> FileResponse:
    """One photo's bytes (reporter or staff in scope)."""
    case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
    path, content_type = photos.photo_file(conn, case_id=case_id, photo_id=photo_id, root=settings.db.home)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})
