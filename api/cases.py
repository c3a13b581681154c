"""Cases (事件): intake, reading with scope, workflow actions, categories."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from api import models
from api.auth import ALL_ROLES, PUBLIC, CurrentUser, Guard
from api.deps import AppSettings, Connection, run_with_connection
from api.models import GeoJSONResponse
from geo.cases import idempotency
from geo.cases import workflow as cases
from geo.cases.shapes import CaseAction, Report
from geo.cases.stats import case_stats, to_csv, to_xlsx
from geo.io import photos
from geo.programme import inspections

router = APIRouter(tags=["cases"])
WORKERS = Guard(*cases.WORKERS, description="staff and assigned units, in scope", scoped="code")
CASE_PRIVATE = Guard(
    *(r for r in ALL_ROLES if r != "anonymous"), description="the reporter and staff in scope", scoped="code"
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAFF_LIST_ROLES = ("subdistrict_staff", "property_team", "contractor", "survey_team")


class PointGeometry(BaseModel):
    """A GeoJSON Point."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)


class NewCase(BaseModel):
    """A problem report."""

    category: str = Field(max_length=40, description="category code or Chinese name (GET /cases/categories)")
    geometry: PointGeometry | None = None
    lon: float | None = None
    lat: float | None = None
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
    lon: float | None = None
    lat: float | None = None
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
    async with request.app.state.async_pool.connection() as conn:  # one statement, in the event loop
        try:
            status, answer = (
                201,
                await cases.report_async(
                    conn, user, body.report(), district_code=settings.district.district_code, claim=claim
                ),
            )
        except idempotency.Claimed as e:
            (status, answer), replayed = await idempotency.replay_async(conn, e.claim), True
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
) -> Response:
    """Counts by sub-district, zone, category and state: open, overdue, closed on time, median
    hours to close. Staff see their scope; ``f=csv`` or ``f=xlsx`` downloads them."""
    rows = case_stats(conn, user, district_code=settings.district.district_code, since=since, until=until)
    if f == "csv":
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="case-stats.csv"'},
        )
    if f == "xlsx":
        return Response(
            to_xlsx(rows), media_type=XLSX, headers={"Content-Disposition": 'attachment; filename="case-stats.xlsx"'}
        )
    return JSONResponse(rows)


@router.get(
    "/cases",
    response_model=models.CaseCollection,
    response_class=GeoJSONResponse,
    summary="事件列表",
    dependencies=[Depends(PUBLIC)],
)
def get_cases(
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    unit: Annotated[str | None, Query(max_length=80)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    overdue: bool | None = None,
    unassigned: bool | None = None,
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
        since=since,
        until=until,
        limit=limit,
        after=after,
    )
    page = cases.list_cases(
        conn, user, flt, district_code=settings.district.district_code, scoped_only=user.role in STAFF_LIST_ROLES
    )
    return JSONResponse(page, media_type="application/geo+json")


@router.get(
    "/cases/{code}",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="事件详情",
    dependencies=[Depends(PUBLIC)],
)
def get_case(code: str, conn: Connection, settings: AppSettings, user: CurrentUser) -> JSONResponse:
    """One case; its events, reporter and exact position only for staff in scope and its reporter."""
    return JSONResponse(
        cases.case_detail(conn, code, principal=user, district_code=settings.district.district_code),
        media_type="application/geo+json",
    )


@router.post(
    "/cases/{code}/actions",
    response_model=models.CaseFeature,
    response_class=GeoJSONResponse,
    summary="事件处置（立案、派遣、处理、核查结案……）",
    dependencies=[Depends(WORKERS)],
)
def post_action(code: str, body: Action, conn: Connection, settings: AppSettings, user: CurrentUser) -> JSONResponse:
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


@router.post(
    "/cases/{code}/photos",
    status_code=201,
    response_model=models.CasePhoto,
    summary="上传照片",
    dependencies=[Depends(CASE_PRIVATE)],
)
async def post_photo(
    code: str,
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
def get_photos(code: str, conn: Connection, settings: AppSettings, user: CurrentUser) -> list[dict[str, Any]]:
    """Photos of a case (reporter or staff in scope)."""
    case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
    return photos.photo_list(conn, case_id)


@router.get("/cases/{code}/photos/{photo_id}", summary="照片", dependencies=[Depends(CASE_PRIVATE)])
def get_photo(code: str, photo_id: int, conn: Connection, settings: AppSettings, user: CurrentUser) -> FileResponse:
    """One photo's bytes (reporter or staff in scope)."""
    case_id = cases.case_for_photos(conn, user, code, district_code=settings.district.district_code)
    path, content_type = photos.photo_file(conn, case_id=case_id, photo_id=photo_id, root=settings.db.home)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})
