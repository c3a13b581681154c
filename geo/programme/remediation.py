"""Remediation (先整治后管理): the plan's clean-up items per zone, their workflow, progress,
and each zone's phase calendar.

A task moves planned → in_progress → done → verified, only through :func:`act`
(one transaction, one ``remediation_events`` row); ``redo`` sends a done or
verified task back with a note. Reads are one SQL statement each, GeoJSON
built in PostGIS. Scope is :func:`geo.access.zone_scope` in the WHERE clause.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.features.edits import parse_geometry
from geo.io import photos
from geo.spatial import crs as crsmod
from geo.spatial.crs import parse_crs
from geo.spatial.reference import district_boundary
from geo.spatial.validate import validate_geometry
from geo.workcal import today  # re-exported: remediation.today() is the module's clock
from geo.workflow import Move, StateMachine
from layers.catalogue import GeometryType, LayerSpec, vocabulary

# The plan's remediation items (三先三后: 先整治后管理) and a task's states, code → Chinese name, in
# display order; labels in layers/vocabulary.toml.
ITEMS: dict[str, str] = vocabulary("remediation_items").zh
STATES: dict[str, str] = vocabulary("remediation_states").zh
STAFF = ("admin", "subdistrict_staff")
# A task's geometry type → the layer geometry it is checked as (validate_geometry; a Polygon is
# promoted to a MultiPolygon, as on import).
GEOMETRY_TYPES: dict[str, GeometryType] = {
    "Point": "Point",
    "MultiPoint": "MultiPoint",
    "LineString": "LineString",
    "MultiLineString": "MultiLineString",
    "Polygon": "MultiPolygon",
    "MultiPolygon": "MultiPolygon",
}
# How far (metres, EPSG:4547) a task's geometry may lie from its own zone: a wall on the zone's edge
# or a drain running to the street main still belongs to the zone; a spot in another zone does not.
ZONE_TOLERANCE_M = 10.0
WORKERS = ("admin", "subdistrict_staff", "property_team")
PHOTO_STAGES: dict[str, str] = vocabulary("photo_stages").zh


def _phases() -> dict[str, tuple[str, int]]:
    out = {}
    for key, term in vocabulary("phases").items():
        if term.month is None:
            raise ValueError(f"layers/vocabulary.toml: phase '{key}' needs its month")
        out[key] = (term.zh, term.month)
    return out


# The plan's calendar: phase → (Chinese name, month of the programme year by which it is due).
PHASES: dict[str, tuple[str, int]] = _phases()


MOVES: dict[str, Move] = {
    "start": Move(("planned",), "in_progress", WORKERS),
    "finish": Move(("in_progress",), "done", WORKERS),
    "verify": Move(("done",), "verified", STAFF),
    "redo": Move(("done", "verified"), "in_progress", STAFF, note_required=True),
}
MACHINE = StateMachine(MOVES, STATES, "a remediation task")


def _item(value: str) -> str:
    if value in ITEMS:
        return value
    for code, name in ITEMS.items():
        if value == name:
            return code
    raise InvalidInput(
        f"item '{value}' is not a remediation item; allowed: " + ", ".join(f"{k} ({v})" for k, v in ITEMS.items()),
        field="item",
    )


def zone_in_scope(conn: psycopg.Connection, principal: Principal, zone_code: str, district_code: str) -> None:
    """404 unless the zone exists and the caller acts in it (no leak of existence)."""
    predicate, params = zone_scope(principal, sql.SQL("z.code"))
    stmt = sql.SQL("SELECT 1 FROM zones z WHERE z.code = %(zone)s AND z.district_code = %(district)s AND {}").format(
        predicate
    )
    if conn.execute(stmt, {**params, "zone": zone_code, "district": district_code}).fetchone() is None:
        raise NotFound(f"zone '{zone_code}' does not exist", field="code")


def _event(
    conn: psycopg.Connection,
    task_id: int,
    *,
    district_code: str,
    actor: str,
    action: str,
    from_state: str | None,
    to_state: str | None,
    note: str | None,
) -> None:
    conn.execute(
        "INSERT INTO remediation_events (task_id, district_code, actor, action, from_state, to_state, "
        "note) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [task_id, district_code, actor, action, from_state, to_state, note],
    )


def create(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    item: str,
    title: str | None = None,
    planned_start: date | None = None,
    planned_end: date | None = None,
    geometry: dict[str, Any] | None = None,
    geometry_crs: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Add a remediation task to a zone (staff in scope). Its optional geometry is GeoJSON in CRS84
    (or ``geometry_crs``), checked like a feature edit and required to touch the task's zone."""
    if principal.role not in STAFF:
        raise Forbidden(f"role '{principal.role}' may not plan remediation; needs one of: {', '.join(STAFF)}")
    item = _item(item)
    if planned_start and planned_end and planned_end < planned_start:
        raise InvalidInput(
            f"planned_end {planned_end} is before planned_start {planned_start}",
            field="planned_end",
            reason_zh=f"计划完成日期 {planned_end} 早于计划开始日期 {planned_start}",
        )
    wkb = checked_geometry(conn, geometry, geometry_crs, district_code=district_code)
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        if wkb is not None:
            _check_in_zone(conn, wkb, zone_code, district_code)
        task_id = _insert(
            conn,
            zone_code,
            district_code=district_code,
            item=item,
            title=title,
            planned_start=planned_start,
            planned_end=planned_end,
            wkb=wkb,
            note=note,
            actor=principal.actor,
        )
        _event(
            conn,
            task_id,
            district_code=district_code,
            actor=principal.actor,
            action="create",
            from_state=None,
            to_state="planned",
            note=note,
        )
    return task(conn, _code_of(conn, task_id), district_code=district_code)


def checked_geometry(
    conn: psycopg.Connection,
    geometry: dict[str, Any] | None,
    geometry_crs: str | None,
    *,
    district_code: str,
    field: str = "geometry",
) -> bytes | None:
    """A task's geometry (or a publicity record's place, named by ``field``) as EPSG:4490 WKB after the
    checks of a Part 4 edit (GeoJSON, CRS, type, validity with GEOS's reason, inside the district,
    swapped lat/lon named); None without one."""
    if geometry is None:
        return None
    if isinstance(geometry, dict) and "crs" in geometry:
        # RFC 7946 dropped the member; silently reading coordinates in some other CRS as lon/lat is worse.
        raise InvalidInput(
            f"{field}: a 'crs' member is not read (RFC 7946: GeoJSON is CRS84); "
            "send CRS84 lon/lat or name the CRS in the Content-Crs header",
            field=field,
        )
    crs = parse_crs(geometry_crs, field="Content-Crs")
    geom = parse_geometry(geometry, srid=crs.srid, lat_first=crs.lat_first, storage_srid=crsmod.STORAGE_SRID)
    kind = geom.geom_type
    if kind not in GEOMETRY_TYPES:
        raise InvalidInput(
            f"{field}: {kind} is not accepted for a remediation task; use one of {', '.join(GEOMETRY_TYPES)}",
            field=field,
        )
    spec = LayerSpec(
        name="remediation_tasks",
        title_zh="整治任务",
        title_en="remediation tasks",
        geometry=GEOMETRY_TYPES[kind],
        attributes=(),
    )
    geoms, problems = validate_geometry(
        spec, np.asarray([geom], dtype=object), district=district_boundary(conn, district_code)
    )
    if problems:
        reason = problems[0].reason
        if (
            reason.startswith("outside")
            and not crs.lat_first
            and crsmod.is_geographic(crs.srid)
            and (abs(geom.bounds[0]) > 180 or abs(geom.bounds[1]) > 90)
        ):
            reason += "; these look like projected metres, not longitude/latitude: name the CRS in Content-Crs"
        raise InvalidInput(f"{field}: {reason}", field=field)
    return bytes(shapely.to_wkb(geoms[0]))


def _check_in_zone(conn: psycopg.Connection, wkb: bytes, zone_code: str, district_code: str) -> None:
    """400 unless the geometry touches the task's zone (within ZONE_TOLERANCE_M), naming where it lies."""
    row = conn.execute(
        "SELECT ST_DWithin(ST_Transform(z.geom, %(metric)s), ST_Transform(g, %(metric)s), %(tol)s), "
        " round(ST_Distance(ST_Transform(z.geom, %(metric)s), ST_Transform(g, %(metric)s))), "
        " (SELECT string_agg(o.code, ', ' ORDER BY o.code) FROM zones o "
        "  WHERE o.district_code = z.district_code AND ST_Intersects(o.geom, g)) "
        "FROM zones z CROSS JOIN ST_GeomFromWKB(%(wkb)s, %(srid)s) g "
        "WHERE z.code = %(zone)s AND z.district_code = %(district)s",
        {
            "metric": crsmod.METRIC_SRID,
            "tol": ZONE_TOLERANCE_M,
            "wkb": wkb,
            "srid": crsmod.STORAGE_SRID,
            "zone": zone_code,
            "district": district_code,
        },
    ).fetchone()
    assert row is not None  # the zone was found in scope just before
    near, metres, others = row
    if not near:
        where = f"it lies in zone(s) {others}" if others else "it lies in no zone"
        raise InvalidInput(
            f"geometry: {int(metres)} m outside zone '{zone_code}' ({where}); a task's geometry "
            f"must touch its own zone (within {ZONE_TOLERANCE_M:g} m)",
            field="geometry",
        )


def _insert(
    conn: psycopg.Connection,
    zone_code: str,
    *,
    district_code: str,
    item: str,
    title: str | None,
    planned_start: date | None,
    planned_end: date | None,
    wkb: bytes | None,
    note: str | None,
    actor: str,
) -> int:
    row = conn.execute(
        "INSERT INTO remediation_tasks (code, district_code, zone_code, item, title, planned_start, "
        "planned_end, geom, note, created_by) VALUES (gen_random_uuid()::text, %s, %s, %s, "
        "%s, %s, %s, ST_GeomFromWKB(%s, 4490), %s, %s) RETURNING id",
        [district_code, zone_code, item, title or ITEMS[item], planned_start, planned_end, wkb, note, actor],
    ).fetchone()
    assert row is not None
    conn.execute(
        "UPDATE remediation_tasks SET code = zone_code || '-R' || lpad(id::text, 4, '0') WHERE id = %s", [row[0]]
    )
    return int(row[0])


def _code_of(conn: psycopg.Connection, task_id: int) -> str:
    row = conn.execute("SELECT code FROM remediation_tasks WHERE id = %s", [task_id]).fetchone()
    assert row is not None
    return str(row[0])


def plan_items(conn: psycopg.Connection, *, district_code: str, actor: str, zone_code: str | None = None) -> int:
    """Create the plan's ten items for every zone (or one) that has no tasks yet, due in the
    remediation month (April) of the zone's programme year. Returns the number created."""
    with conn.transaction():
        rows = conn.execute(
            "INSERT INTO remediation_tasks (code, district_code, zone_code, item, title, planned_start, planned_end, "
            " created_by) "
            "SELECT gen_random_uuid()::text, z.district_code, z.code, i.item, i.title, "
            " make_date(coalesce(z.programme_year, %(year)s), 4, 1), make_date(coalesce(z.programme_year, %(year)s), "
            " 4, 30), %(actor)s "
            "FROM zones z CROSS JOIN unnest(%(items)s::text[], %(titles)s::text[]) WITH ORDINALITY "
            " AS i(item, title, n) "
            "WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s) "
            " AND NOT EXISTS (SELECT 1 FROM remediation_tasks t WHERE t.zone_code = z.code) "
            "ORDER BY z.code, i.n RETURNING id",
            {
                "year": today().year,
                "actor": actor,
                "items": list(ITEMS),
                "titles": list(ITEMS.values()),
                "district": district_code,
                "zone": zone_code,
            },
        ).fetchall()
        ids = [r[0] for r in rows]
        conn.execute(
            "UPDATE remediation_tasks SET code = zone_code || '-R' || lpad(id::text, 4, '0') WHERE id = ANY(%s)", [ids]
        )
        conn.execute(
            "INSERT INTO remediation_events (task_id, district_code, actor, action, to_state, note) "
            "SELECT id, district_code, %s, 'create', 'planned', '按实施方案生成 from the plan' "
            "FROM remediation_tasks WHERE id = ANY(%s)",
            [actor, ids],
        )
    return len(ids)


def act(
    conn: psycopg.Connection,
    principal: Principal,
    code: str,
    action: str,
    *,
    district_code: str,
    note: str | None = None,
    on: date | None = None,
    publicity_required: bool = True,
) -> dict[str, Any]:
    """Move a task through its workflow (one transaction, one event); 409 names the legal moves.
    先宣传后实施: with ``publicity_required`` (WUYE_PUBLICITY_REQUIRED) a task starts only once its zone
    has a publicity record dated on or before the start (409 naming the rule otherwise)."""
    MACHINE.move(action)  # an unknown action is 400 before anything is read
    note = (note or "").strip() or None
    on = on or today()
    if on > today():
        raise InvalidInput(
            f"date {on} is in the future", field="date", reason_zh=f"日期 {on} 晚于今天，须填实际发生的日期"
        )
    with conn.transaction():
        task_id, state = _locked(conn, principal, code, district_code)
        move = MACHINE.check(action, role=principal.role, state=state, note=note)
        if action == "start" and publicity_required:
            _publicised(conn, task_id, on)
        conn.execute(
            "UPDATE remediation_tasks SET state = %(to)s, version = version + 1, updated_at = now(), "
            " actual_start = CASE WHEN %(action)s = 'start' THEN %(on)s ELSE actual_start END, "
            " actual_end = CASE WHEN %(action)s = 'finish' THEN %(on)s WHEN %(action)s = 'redo' THEN NULL "
            "  ELSE actual_end END, "
            " verified_on = CASE WHEN %(action)s = 'verify' THEN %(on)s WHEN %(action)s = 'redo' THEN NULL "
            "  ELSE verified_on END WHERE id = %(id)s",
            {"to": move.target, "action": action, "on": on, "id": task_id},
        )
        _event(
            conn,
            task_id,
            district_code=district_code,
            actor=principal.actor,
            action=action,
            from_state=state,
            to_state=move.target,
            note=note,
        )
    return task(conn, code, district_code=district_code)


def _publicised(conn: psycopg.Connection, task_id: int, on: date) -> None:
    """409 unless the task's zone has a publicity record dated on or before ``on`` (先宣传后实施)."""
    row = conn.execute(
        "SELECT t.zone_code, EXISTS (SELECT 1 FROM publicity_records r WHERE r.district_code = t.district_code "
        " AND r.zone_code = t.zone_code AND r.held_on <= %s) FROM remediation_tasks t WHERE t.id = %s",
        [on, task_id],
    ).fetchone()
    assert row is not None
    zone, publicised = row
    if not publicised:
        raise Conflict(
            f"publicity first (先宣传后实施, WUYE_PUBLICITY_REQUIRED): zone '{zone}' has no publicity record dated "
            f"on or before {on}; record one (POST /zones/{zone}/publicity) before starting its remediation",
            field="action",
            reason_zh=f"先宣传后实施：小区 {zone} 在 {on} 前无宣传记录，须先登记宣传再开工",
            rule="publicity_required",
        )


def add_photo(
    conn: psycopg.Connection,
    principal: Principal,
    code: str,
    *,
    stage: str,
    data: bytes,
    district_code: str,
    root: Path,
    max_bytes: int,
) -> dict[str, Any]:
    """Attach a before/after photo to a task in the caller's zones: checked like a case photo
    (content sniffed, size-limited, server-chosen name), its row, a ``photo`` event and the file
    written together. A verified task's evidence is frozen (409: redo it first)."""
    if stage not in PHOTO_STAGES:
        raise InvalidInput(f"stage '{stage}' must be one of {', '.join(PHOTO_STAGES)}", field="stage")
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not add remediation photos; needs one of: {', '.join(WORKERS)}")
    content_type, suffix = photos.checked(data, max_bytes)
    # The file is written (durably) before the row and removed if the transaction fails: the
    # ExitStack is left after the transaction block, so a failed commit removes it too.
    with ExitStack() as keep, conn.transaction():
        task_id, state = _locked(conn, principal, code, district_code)
        if state == "verified":
            raise Conflict(
                f"task '{code}' is verified ({STATES[state]}): its photos are the accepted evidence; "
                "'redo' it before adding more",
                field="code",
                state=state,
            )
        path = photos.new_path(root, "remediation", str(task_id), suffix=suffix)
        keep.enter_context(photos.saved(path, data))
        row = conn.execute(
            "INSERT INTO remediation_photos (task_id, district_code, stage, path, content_type, bytes, actor) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [task_id, district_code, stage, str(path.relative_to(root)), content_type, len(data), principal.actor],
        ).fetchone()
        assert row is not None
        conn.execute("UPDATE remediation_tasks SET version = version + 1, updated_at = now() WHERE id = %s", [task_id])
        _event(
            conn,
            task_id,
            district_code=district_code,
            actor=principal.actor,
            action="photo",
            from_state=state,
            to_state=state,
            note=f"{PHOTO_STAGES[stage]}照片 {stage} photo #{row[0]}",
        )
    return {
        "id": int(row[0]),
        "stage": stage,
        "url": f"/remediation/{code}/photos/{row[0]}",
        "content_type": content_type,
        "bytes": len(data),
    }


def photo_file(
    conn: psycopg.Connection, principal: Principal, code: str, photo_id: int, *, district_code: str, root: Path
) -> tuple[Path, str]:
    """The stored file and content type of a task's photo, for a caller whose zones cover the task (404 else)."""
    predicate, params = zone_scope(principal, sql.SQL("t.zone_code"))
    stmt = sql.SQL(
        "SELECT p.path, p.content_type FROM remediation_photos p JOIN remediation_tasks t "
        "ON t.id = p.task_id WHERE t.code = %(code)s AND p.id = %(photo)s "
        "AND t.district_code = %(district)s AND {}"
    ).format(predicate)
    row = conn.execute(stmt, {**params, "code": code, "photo": photo_id, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(f"photo {photo_id} of remediation task '{code}' does not exist", field="photo_id")
    return photos.existing(root, row[0], photo_id), str(row[1])


def _locked(conn: psycopg.Connection, principal: Principal, code: str, district_code: str) -> tuple[int, str]:
    predicate, params = zone_scope(principal, sql.SQL("t.zone_code"))
    stmt = sql.SQL(
        "SELECT t.id, t.state FROM remediation_tasks t WHERE t.code = %(code)s "
        "AND t.district_code = %(district)s AND {} FOR UPDATE"
    ).format(predicate)
    row = conn.execute(stmt, {**params, "code": code, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(f"remediation task '{code}' does not exist", field="code")
    return int(row[0]), str(row[1])


# A task's photos of one stage as URLs, oldest first (served by the task's own photo endpoint).
_PHOTO_URLS = (
    "(SELECT coalesce(json_agg('/remediation/' || t.code || '/photos/' || p.id ORDER BY p.id), '[]') "
    "FROM remediation_photos p WHERE p.task_id = t.id AND p.stage = '{stage}')"
)
_FEATURE = (
    "json_build_object('type', 'Feature', 'id', t.code, 'geometry', ST_AsGeoJSON(t.geom, 7, 0)::json, "
    "'properties', json_build_object('code', t.code, 'zone_code', t.zone_code, 'item', t.item, "
    "'item_zh', i.name, 'title', t.title, 'state', t.state, 'state_zh', s.name, "
    "'planned_start', t.planned_start, 'planned_end', t.planned_end, 'actual_start', t.actual_start, "
    "'actual_end', t.actual_end, 'verified_on', t.verified_on, "
    "'overdue', t.state IN ('planned', 'in_progress') AND t.planned_end < %(today)s, "
    "'before_photos', {before}, 'after_photos', {after}, 'note', t.note, 'version', t.version))"
).format(before=_PHOTO_URLS.format(stage="before"), after=_PHOTO_URLS.format(stage="after"))
_NAMES = (
    "FROM remediation_tasks t "
    "JOIN unnest(%(item_codes)s::text[], %(item_names)s::text[]) AS i(code, name) ON i.code = t.item "
    "JOIN unnest(%(state_codes)s::text[], %(state_names)s::text[]) AS s(code, name) ON s.code = t.state "
)


def _name_params() -> dict[str, Any]:
    return {
        "item_codes": list(ITEMS),
        "item_names": list(ITEMS.values()),
        "state_codes": list(STATES),
        "state_names": list(STATES.values()),
        "today": today(),
    }


def task(conn: psycopg.Connection, code: str, *, district_code: str) -> dict[str, Any]:
    """One task as a GeoJSON Feature, with its events."""
    stmt = sql.SQL(
        "SELECT {feature}, (SELECT coalesce(json_agg(json_build_object('at', e.at, 'actor', e.actor, "
        " 'action', e.action, 'from_state', e.from_state, 'to_state', e.to_state, 'note', e.note) ORDER BY e.id), "
        " '[]') FROM remediation_events e WHERE e.task_id = t.id), "
        "(SELECT coalesce(json_agg(json_build_object('id', p.id, 'stage', p.stage, 'url', '/remediation/' || t.code "
        " || '/photos/' || p.id, 'content_type', p.content_type, 'bytes', p.bytes, 'actor', p.actor, "
        " 'at', p.created_at) ORDER BY p.id), '[]') FROM remediation_photos p WHERE p.task_id = t.id) "
        "{names} WHERE t.code = %(code)s AND t.district_code = %(district)s"
    ).format(feature=sql.SQL(_FEATURE), names=sql.SQL(_NAMES))
    row = conn.execute(stmt, {**_name_params(), "code": code, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(f"remediation task '{code}' does not exist", field="code")
    feature: dict[str, Any] = row[0]
    feature["properties"]["events"] = row[1]
    feature["properties"]["photos"] = row[2]
    return feature


def collection(
    conn: psycopg.Connection, *, district_code: str, zone_code: str | None = None, state: str | None = None
) -> dict[str, Any]:
    """Tasks as a GeoJSON FeatureCollection (CGCS2000 lon/lat), built in one statement."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state '{state}' is not one of {', '.join(STATES)}", field="state")
    stmt = sql.SQL(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg({feature} "
        " ORDER BY t.zone_code, t.id), '[]'), 'numberReturned', count(*)) {names} "
        "WHERE t.district_code = %(district)s AND (%(zone)s::text IS NULL OR t.zone_code = %(zone)s) "
        "AND (%(state)s::text IS NULL OR t.state = %(state)s)"
    ).format(feature=sql.SQL(_FEATURE), names=sql.SQL(_NAMES))
    row = conn.execute(
        stmt, {**_name_params(), "district": district_code, "zone": zone_code, "state": state}
    ).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def zone_tasks(conn: psycopg.Connection, zone_code: str, *, district_code: str) -> dict[str, Any]:
    """A zone's tasks (FeatureCollection) with its progress; 404 for an unknown zone (the route adds its
    phases, geo/programme/phases.py)."""
    exists = conn.execute(
        "SELECT 1 FROM zones WHERE code = %s AND district_code = %s", [zone_code, district_code]
    ).fetchone()
    if exists is None:
        raise NotFound(f"zone '{zone_code}' does not exist", field="code")
    body = collection(conn, district_code=district_code, zone_code=zone_code)
    rows = progress(conn, district_code=district_code, zone_code=zone_code)
    body["progress"] = next((r for r in rows if r["level"] == "zone"), None)
    return body


def progress(conn: psycopg.Connection, *, district_code: str, zone_code: str | None = None) -> list[dict[str, Any]]:
    """Task counts by state per zone, per sub-district and for the district, with the verified share."""
    rows = conn.execute(
        "SELECT CASE WHEN GROUPING(z.code) = 0 THEN 'zone' WHEN GROUPING(z.subdistrict_code) = 0 "
        "  THEN 'subdistrict' ELSE 'district' END, z.subdistrict_code, z.code, max(z.name), count(t.id), "
        " count(t.id) FILTER (WHERE t.state = 'planned'), count(t.id) FILTER (WHERE t.state = 'in_progress'), "
        " count(t.id) FILTER (WHERE t.state = 'done'), count(t.id) FILTER (WHERE t.state = 'verified'), "
        " count(t.id) FILTER (WHERE t.state IN ('planned', 'in_progress') AND t.planned_end < %(today)s) "
        "FROM zones z LEFT JOIN remediation_tasks t ON t.zone_code = z.code "
        "WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s) "
        "GROUP BY GROUPING SETS ((z.subdistrict_code, z.code), (z.subdistrict_code), ()) ORDER BY 2 NULLS LAST, 3 "
        "NULLS FIRST",
        {"today": today(), "district": district_code, "zone": zone_code},
    ).fetchall()
    out = []
    for level, sub, zone, name, total, planned, running, done, verified, overdue in rows:
        out.append(
            {
                "level": level,
                "subdistrict_code": sub,
                "zone_code": zone,
                "zone_name": name if level == "zone" else None,
                "tasks": total,
                "planned": planned,
                "in_progress": running,
                "done": done,
                "verified": verified,
                "overdue": overdue,
                "verified_percent": (100 * verified // total) if total else None,
            }
        )
    return out
