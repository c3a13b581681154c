"""Publicity records (先宣传后实施, issue 19 point 2): what was done to tell a zone's residents before work
starts — a notice posted, door-to-door visits, a residents' meeting, the plan's March coordination and
deployment meetings, the May study visits — with its date, its place (a point within
:data:`PLACE_TOLERANCE_M` of the zone), the organising unit, the attendance, a note and photos.

A zone's remediation tasks cannot start before it has one dated on or before the start
(``WUYE_PUBLICITY_REQUIRED``, default true; the rule is checked in
:func:`geo.programme.remediation.act`). Reads are step generators (geo/steps.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.access.users import audit
from geo.errors import Forbidden, InvalidInput, NotFound
from geo.io import photos
from geo.programme.remediation import WORKERS, checked_geometry, zone_in_scope
from geo.spatial import crs as crsmod
from geo.steps import Statement, Steps
from geo.workcal import today
from layers.catalogue import vocabulary

KINDS: dict[str, str] = vocabulary("publicity_kinds").zh
# How far (metres, EPSG:4547) a publicity record's place may lie from its zone: a notice board at the
# gate or a meeting in the community centre across the street still belongs to the zone.
PLACE_TOLERANCE_M = 50.0


def _kind(value: str) -> str:
    key = vocabulary("publicity_kinds").key_of(value)
    if key is not None:
        return key
    raise InvalidInput(
        f"kind '{value}' is not a kind of publicity; allowed: " + ", ".join(f"{k} ({v})" for k, v in KINDS.items()),
        field="kind",
        reason_zh="宣传形式须为：" + "、".join(KINDS.values()),
    )


def record(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    kind: str,
    held_on: date,
    place: dict[str, Any],
    place_crs: str | None,
    unit_code: str,
    attendance: int | None,
    note: str | None,
) -> int:
    """Record a publicity activity in a zone of the caller's; everything is checked before anything is
    written (one transaction, audited). Returns its id."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not record publicity; needs one of: {', '.join(WORKERS)}")
    code = _kind(kind)
    if held_on > today():
        raise InvalidInput(f"held_on {held_on} is in the future", field="held_on")
    if attendance is not None and attendance < 0:
        raise InvalidInput(f"attendance {attendance} is negative", field="attendance")
    if not isinstance(place, dict) or place.get("type") != "Point":
        raise InvalidInput("place: a GeoJSON Point (lon/lat) is required", field="place", reason_zh="宣传地点须为点")
    wkb = checked_geometry(conn, place, place_crs, district_code=district_code, field="place")
    assert wkb is not None
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        row = conn.execute("SELECT 1 FROM units WHERE code = %s AND district_code = %s", [unit_code, district_code])
        if row.fetchone() is None:
            raise InvalidInput(
                f"unit_code: unit '{unit_code}' does not exist", field="unit_code", reason_zh="组织单位不存在"
            )
        _check_near(conn, wkb, zone_code, district_code)
        found = conn.execute(
            "INSERT INTO publicity_records (district_code, zone_code, kind, held_on, place, unit_code, attendance, "
            "note, recorded_by) VALUES (%s, %s, %s, %s, ST_GeomFromWKB(%s, %s), %s, %s, %s, %s) RETURNING id",
            [
                district_code,
                zone_code,
                code,
                held_on,
                wkb,
                crsmod.STORAGE_SRID,
                unit_code,
                attendance,
                note,
                principal.actor,
            ],
        ).fetchone()
        assert found is not None
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="publicity.record",
            table="publicity_records",
            code=str(found[0]),
            details={"zone": zone_code, "kind": code, "held_on": held_on.isoformat(), "unit": unit_code},
        )
    return int(found[0])


def _check_near(conn: psycopg.Connection, wkb: bytes, zone_code: str, district_code: str) -> None:
    row = conn.execute(
        "SELECT round(ST_Distance(ST_Transform(z.geom, %(metric)s), ST_Transform(ST_GeomFromWKB(%(wkb)s, %(srid)s), "
        "%(metric)s))) FROM zones z WHERE z.code = %(zone)s AND z.district_code = %(district)s",
        {
            "metric": crsmod.METRIC_SRID,
            "wkb": wkb,
            "srid": crsmod.STORAGE_SRID,
            "zone": zone_code,
            "district": district_code,
        },
    ).fetchone()
    assert row is not None  # the zone was found in scope just before
    if float(row[0]) > PLACE_TOLERANCE_M:
        raise InvalidInput(
            f"place: {int(row[0])} m from zone '{zone_code}'; a publicity record's place must lie within "
            f"{PLACE_TOLERANCE_M:g} m of its zone",
            field="place",
            reason_zh=f"宣传地点距小区 {int(row[0])} 米，须在小区 {PLACE_TOLERANCE_M:g} 米范围内",
        )


_LIST = (
    "SELECT coalesce(json_agg(json_build_object('id', r.id, 'zone_code', r.zone_code, 'kind', r.kind, "
    " 'kind_zh', k.name, 'held_on', r.held_on, 'lon', round(ST_X(r.place)::numeric, 7), "
    " 'lat', round(ST_Y(r.place)::numeric, 7), 'unit_code', r.unit_code, 'unit_name', u.name, "
    " 'attendance', r.attendance, 'note', r.note, 'recorded_by', r.recorded_by, "
    " 'photos', (SELECT coalesce(json_agg('/publicity/' || r.id || '/photos/' || p.id ORDER BY p.id), '[]') "
    "  FROM publicity_photos p WHERE p.district_code = r.district_code AND p.record_id = r.id)) "
    " ORDER BY r.held_on, r.id), '[]') "
    "FROM publicity_records r JOIN units u ON u.code = r.unit_code "
    "JOIN unnest(%(kinds)s::text[], %(names)s::text[]) AS k(code, name) ON k.code = r.kind "
    "WHERE r.district_code = %(district)s AND (%(zone)s::text IS NULL OR r.zone_code = %(zone)s)"
)


def records(*, district_code: str, zone_code: str | None = None) -> Steps[list[dict[str, Any]]]:
    """The publicity records of a zone (or the district), oldest first; 404 for an unknown zone."""
    if zone_code is not None:
        found = yield Statement(
            "SELECT 1 FROM zones WHERE code = %s AND district_code = %s", [zone_code, district_code]
        )
        if not found:
            raise NotFound(f"zone '{zone_code}' does not exist", field="code")
    rows = yield Statement(
        _LIST,
        {"kinds": list(KINDS), "names": list(KINDS.values()), "district": district_code, "zone": zone_code},
    )
    out: list[dict[str, Any]] = rows[0][0]
    return out


def add_photo(
    conn: psycopg.Connection,
    principal: Principal,
    record_id: int,
    *,
    data: bytes,
    district_code: str,
    root: Path,
    max_bytes: int,
) -> dict[str, Any]:
    """Attach a photo to a publicity record of the caller's zones (checked as every photo is)."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not add publicity photos; needs one of: {', '.join(WORKERS)}")
    content_type, suffix = photos.checked(data, max_bytes)
    predicate, params = zone_scope(principal, sql.SQL("r.zone_code"))
    with ExitStack() as keep, conn.transaction():
        stmt = sql.SQL(
            "SELECT r.id FROM publicity_records r WHERE r.id = %(id)s AND r.district_code = %(district)s AND {} "
            "FOR UPDATE"
        ).format(predicate)
        if conn.execute(stmt, {**params, "id": record_id, "district": district_code}).fetchone() is None:
            raise NotFound(f"publicity record {record_id} does not exist", field="record_id")
        path = photos.new_path(root, "publicity", str(record_id), suffix=suffix)
        keep.enter_context(photos.saved(path, data))
        row = conn.execute(
            "INSERT INTO publicity_photos (district_code, record_id, path, content_type, bytes, actor) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [district_code, record_id, str(path.relative_to(root)), content_type, len(data), principal.actor],
        ).fetchone()
        assert row is not None
    return {
        "id": int(row[0]),
        "url": f"/publicity/{record_id}/photos/{row[0]}",
        "content_type": content_type,
        "bytes": len(data),
    }


def photo_file(
    conn: psycopg.Connection, record_id: int, photo_id: int, *, district_code: str, root: Path
) -> tuple[Path, str]:
    """The stored file and content type of a publicity photo (publicity is public: 404 only when absent)."""
    row = conn.execute(
        "SELECT path, content_type FROM publicity_photos WHERE id = %s AND record_id = %s AND district_code = %s",
        [photo_id, record_id, district_code],
    ).fetchone()
    if row is None:
        raise NotFound(f"photo {photo_id} of publicity record {record_id} does not exist", field="photo_id")
    return photos.existing(root, row[0], photo_id), str(row[1])
