"""Security patrols by checkpoint (公共安全防范, 电子巡更; issue 18). Thin routes over geo.programme.patrols."""

from __future__ import annotations

import tempfile
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from pydantic import BaseModel, Field

from api import models
from api.auth import CurrentUser, Guard
from api.deps import AppSettings, Connection
from api.inputs import Day, saved_upload
from api.models import GeoJSONResponse
from geo.programme import patrols
from geo.workcal import today

router = APIRouter(tags=["patrols"])
RECORDERS = Guard(*patrols.RECORDERS, description="property teams, sub-district staff, administrators (their zones)")
READERS = Guard(*patrols.READERS, description="staff and planners")


class NewScan(BaseModel):
    """One checkpoint scanned."""

    point_code: str = Field(max_length=80, description="a patrol_points code of the round's zone")
    scanned_at: datetime = Field(description="ISO 8601; without an offset: local time")


class NewRound(BaseModel):
    """One patrol round: who, where, from when to when, the checkpoints scanned, and optionally a track."""

    zone_code: str = Field(max_length=80)
    patroller: str = Field(max_length=100, description="who patrolled (巡逻人)")
    started_at: datetime
    ended_at: datetime
    scans: list[NewScan] = Field(max_length=patrols.MAX_SCANS)
    track_gpx: str | None = Field(
        default=None,
        max_length=patrols.MAX_GPX_BYTES,
        description="the phone's track as GPX text (<trkpt> with <time>)",
    )
    track_coord_sys: Literal["wgs84", "gcj02"] = Field(
        default="wgs84", description="gcj02 when the phone's map app recorded the track (converted on the way in)"
    )


@router.post("/patrols/rounds", status_code=201, summary="登记巡更", dependencies=[Depends(RECORDERS)])
def post_round(body: NewRound, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """Record a round in one of the caller's zones: every scan a checkpoint of that zone, within the
    round and in time order; a track's implausible jumps are dropped with a warning naming them."""
    rnd = patrols.Round(
        zone_code=body.zone_code,
        patroller=body.patroller,
        started_at=body.started_at,
        ended_at=body.ended_at,
        scans=[patrols.Scan(s.point_code, s.scanned_at) for s in body.scans],
        track_gpx=body.track_gpx.encode("utf-8") if body.track_gpx is not None else None,
        track_coord_sys=body.track_coord_sys,
    )
    return patrols.record(conn, user, rnd, district_code=settings.district.district_code, actor=user.actor)


@router.post("/patrols/import", summary="导入巡更记录 (CSV/XLSX)", dependencies=[Depends(RECORDERS)])
def post_import(
    file: Annotated[UploadFile, File()], conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """A patrol system's export, one row per scan (巡更编号, 小区, 巡更人, 开始时间, 结束时间, 巡更点,
    打卡时间): all rows or none; a bad row answers 400 naming every row and field."""
    with tempfile.TemporaryDirectory() as folder:
        path = saved_upload(file, file.file.read(), folder)
        return patrols.import_file(conn, user, path, district_code=settings.district.district_code, actor=user.actor)


@router.get(
    "/patrols/coverage",
    response_model=list[models.PatrolCoverage],
    summary="巡更覆盖率",
    dependencies=[Depends(READERS)],
)
def get_coverage(
    conn: Connection,
    settings: AppSettings,
    period: Annotated[Literal["day", "week"], Query(description="the day, or the week (Mon–Sun) holding it")] = "week",
    on: Annotated[Day | None, Query(description="default: today")] = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
) -> list[dict[str, Any]]:
    """Per zone: rounds, hours and the share of checkpoint-days scanned at least WUYE_PATROL_MIN_SCANS
    times; flagged below WUYE_MIN_PATROL_COVERAGE."""
    start, end = patrols.period_of(on or today(), period)
    rules = settings.acceptance
    return patrols.coverage(
        conn,
        district_code=settings.district.district_code,
        start=start,
        end=end,
        min_scans=rules.patrol_min_scans,
        min_coverage=rules.min_patrol_coverage,
        zone_code=zone,
    )


@router.get(
    "/patrols/checkpoints",
    response_class=GeoJSONResponse,
    summary="巡更点覆盖（漏巡点）",
    dependencies=[Depends(READERS)],
)
def get_checkpoints(
    conn: Connection,
    settings: AppSettings,
    on: Annotated[Day | None, Query(description="a day of the week (Mon–Sun) shown; default: today")] = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
) -> dict[str, Any]:
    """The week's scans per checkpoint and the checkpoints missed (fewer than WUYE_PATROL_MIN_SCANS scans
    on some day), as GeoJSON for the map."""
    start, end = patrols.period_of(on or today(), "week")
    features = patrols.missed(
        conn,
        district_code=settings.district.district_code,
        start=start,
        end=end,
        min_scans=settings.acceptance.patrol_min_scans,
        zone_code=zone,
    )
    return {"type": "FeatureCollection", "features": features, "from": start.isoformat(), "days": (end - start).days}
