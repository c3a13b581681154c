"""What the workbench's programme pages (issue 21 points 1-3) read besides the programme's own records:
the zones a caller acts in, and what blocks a zone's remediation as its records say.

The rules stay where they are: publicity first in :func:`geo.programme.remediation.act`, scope in
:func:`geo.access.scope.zone_scope`, phases in geo/programme/phases.py. This module only reads them
back for a page (which zones to list, which tasks lack their photos).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.spatial import crs as crsmod
from geo.steps import Statement, Steps

# Task states whose work has begun (a before photo is expected) and finished (an after photo too).
STARTED = ("in_progress", "done", "verified")
FINISHED = ("done", "verified")


def zones_in_scope(conn: psycopg.Connection, principal: Principal, *, district_code: str) -> list[dict[str, Any]]:
    """The zones the caller acts in (all for administrators and planners), by sub-district and code,
    with how many publicity records each has."""
    predicate, params = zone_scope(principal, sql.SQL("z.code"))
    stmt = sql.SQL(
        "SELECT z.code, z.name, z.subdistrict_code, s.name, (SELECT count(*) FROM publicity_records r "
        " WHERE r.district_code = z.district_code AND r.zone_code = z.code) "
        "FROM zones z LEFT JOIN subdistricts s ON s.code = z.subdistrict_code "
        "WHERE z.district_code = %(district)s AND {} ORDER BY z.subdistrict_code, z.code"
    ).format(predicate)
    rows = conn.execute(stmt, {**params, "district": district_code}).fetchall()
    return [
        {"code": c, "name": n, "subdistrict_code": s, "subdistrict_name": sn or s, "publicity": int(p)}
        for c, n, s, sn, p in rows
    ]


def due_this_week(principal: Principal, *, district_code: str, on: date) -> Steps[int]:
    """How many remediation tasks of the caller's zones are due in the week of ``on`` (Monday to Sunday,
    the programme's calendar week) and not finished yet (planned or in progress): the portal's "tasks
    due this week". A task past its day earlier in the week counts (it is still this week's work);
    one due in an earlier week is the board's overdue, not this."""
    predicate, params = zone_scope(principal, sql.SQL("t.zone_code"))
    monday = on - timedelta(days=on.weekday())
    rows = yield Statement(
        sql.SQL(
            "SELECT count(*) FROM remediation_tasks t WHERE t.district_code = %(district)s "
            "AND t.state IN ('planned', 'in_progress') AND t.planned_end BETWEEN %(monday)s AND %(sunday)s AND {}"
        ).format(predicate),
        {**params, "district": district_code, "monday": monday, "sunday": monday + timedelta(days=6)},
    )
    return int(rows[0][0])


def missing_photos(features: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The tasks (GeoJSON features of :func:`geo.programme.remediation.collection`) whose work has begun
    with no before photo, or finished with no after photo: ``{code, title, stage}`` each."""
    out = []
    for feature in features:
        p = feature["properties"]
        if p["state"] in STARTED and not p["before_photos"]:
            out.append({"code": p["code"], "title": p["title"], "stage": "before"})
        if p["state"] in FINISHED and not p["after_photos"]:
            out.append({"code": p["code"], "title": p["title"], "stage": "after"})
    return out


def near_zone(conn: psycopg.Connection, zone_code: str, metres: float, *, district_code: str) -> dict[str, Any] | None:
    """The area within ``metres`` of the zone (measured in EPSG:4547 as the publicity rule measures) as a
    GeoJSON geometry in CRS84, for the page to draw where a place may be picked; None for no such zone."""
    row = conn.execute(
        "SELECT ST_AsGeoJSON(ST_Transform(ST_Buffer(ST_Transform(geom, %s), %s, 8), %s), 7)::json "
        "FROM zones WHERE code = %s AND district_code = %s",
        [crsmod.METRIC_SRID, metres, crsmod.STORAGE_SRID, zone_code, district_code],
    ).fetchone()
    return row[0] if row else None
