"""Problem reports (事件) and their workflow, after GB/T 30428's stages.

Intake validates, converts coordinates once (GCJ-02/BD-09 → CGCS2000), and in
one transaction inserts the case, assigns it by spatial join (sub-district,
community, zone, section, responsible unit, nearest facility) and appends the
first event. Every later move is a ``case_events`` row. Scope is a WHERE
clause (``geo.access.zone_scope``), so callers never see what they may not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from geo.access.scope import Principal, zone_scope
from geo.cases.categories import Category, categories, category
from geo.cases.idempotency import CLAIM_CONSTRAINT, Claim, Claimed
from geo.cases.shapes import CaseAction, Report
from geo.errors import InvalidInput, NotFound
from geo.spatial.coords import to_storage
from geo.spatial.crs import METRIC_SRID
from geo.workcal import calendar
from geo.workflow import Move, StateMachine
from layers.catalogue import CLOSED_CASE_STATES, OPEN_CASE_STATES, vocabulary

FACILITY_RADIUS_M = 30.0
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_DAYS = 7
MAX_DESCRIPTION = 2000
PUBLIC_ROUNDING_M = 50.0
OPEN_STATES = OPEN_CASE_STATES
CLOSED_STATES = CLOSED_CASE_STATES
STATE_NAMES = vocabulary("case_states").zh  # key -> Chinese label (layers/vocabulary.toml)
# The boundary layers whose features (and units) decide where a case goes.
ROUTING_LAYERS = ("subdistricts", "communities", "zones", "contract_sections")
STAFF = ("admin", "subdistrict_staff")
WORKERS = ("admin", "subdistrict_staff", "property_team", "contractor")


MOVES: dict[str, Move] = {
    "register": Move(("reported",), "registered", STAFF),
    "reject": Move(("reported",), "rejected", STAFF, note_required=True),
    "dispatch": Move(("registered", "reopened"), "dispatched", STAFF),
    "start": Move(("dispatched",), "in_progress", WORKERS),
    "handle": Move(("dispatched", "in_progress"), "handled", WORKERS, note_required=True),
    "verify": Move(("handled",), "closed", STAFF),
    "reopen": Move(("handled", "closed"), "reopened", STAFF, note_required=True),
    "mark_duplicate": Move(("reported", "registered"), "duplicate", STAFF),
    "recategorise": Move(OPEN_STATES, None, STAFF),
    "move": Move(OPEN_STATES, None, STAFF),
}
MACHINE = StateMachine(MOVES, STATE_NAMES, "a case")


FEW_CASES = 1000  # up to this many ids, each point looks up its polygons (assign_few.sql)


def _sql_file(name: str) -> str:
    return resources.files("geo.cases").joinpath("sql", name).read_text(encoding="utf-8")


@cache
def _assign_sql(few: bool = False) -> str:
    """The assignment statement: a head that finds each case's polygons, the shared routing tail."""
    head = _sql_file("assign_few.sql") + ",\n" + _sql_file("route_points.sql") if few else _sql_file("assign_cases.sql")
    return head + ",\n" + _sql_file("route_decide.sql") + "\n" + _sql_file("assign_update.sql")


# The nearest facility of the category's layer (or the named one), for intake.sql's CTE facility.
_NO_FACILITY = sql.SQL("SELECT NULL::text AS layer, NULL::text AS code, NULL::float8 AS distance_m WHERE false")
_FACILITY = (
    "SELECT %(layer)s::text AS layer, f.code::text AS code, "
    "ST_Distance(ST_Transform(f.geom, %(metric)s), ST_Transform(t.geom, %(metric)s)) AS distance_m "
    "FROM {table} f CROSS JOIN target t WHERE {where} ORDER BY f.geom <-> t.geom LIMIT 1"
)
# A box of the radius in degrees at the point's latitude (+20%), then the distance in metres.
_FACILITY_NEAR = (
    "f.geom && ST_Expand(t.geom, %(radius)s / (111320.0 * cos(radians(ST_Y(t.geom)))) * 1.2, "
    "%(radius)s / 110574.0 * 1.2) AND "
    "ST_DWithin(ST_Transform(f.geom, %(metric)s), ST_Transform(t.geom, %(metric)s), %(radius)s)"
)


@cache
def _intake_sql(facility_layer: str | None, by_code: bool) -> tuple[bytes, tuple[str, ...]]:
    """intake.sql composed for a category's facility layer (none, the named facility, or the nearest),
    with its named placeholders turned into PostgreSQL's $n once, and the names in $n order.
    (psycopg re-parses a query longer than 4 kB on every execution: ~0.3 ms here.)"""
    facility: sql.Composable = _NO_FACILITY
    if facility_layer is not None:
        where = sql.SQL("f.code = %(facility_code)s" if by_code else _FACILITY_NEAR)
        facility = sql.SQL(_FACILITY).format(table=sql.Identifier(facility_layer), where=where)
    text = (
        sql.SQL(_sql_file("intake.sql"))
        .format(
            routed=sql.SQL(_sql_file("route_points.sql")),
            decided=sql.SQL(_sql_file("route_decide.sql")),
            facility=facility,
            feature=_select(sql.SQL("true"), source=sql.Identifier("ins")),
        )
        .as_string(None)
    )
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, text).encode("utf-8"), tuple(names)


def _plausible(lon: float, lat: float) -> None:
    """Refuse what cannot be a longitude/latitude pair, naming swapped axes."""
    for name, value in (("lon", lon), ("lat", lat)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number, got {value!r}", field=name)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        if -90 <= lon <= 90 and -180 <= lat <= 180:
            raise InvalidInput(
                f"coordinates look swapped (lat, lon): got ({lon}, {lat}); put longitude first", field="geometry"
            )
        raise InvalidInput(f"({lon}, {lat}) is not a longitude/latitude pair", field="geometry")


def _inside(conn: psycopg.Connection, x: float, y: float, district_code: str) -> tuple[bool, bool]:
    """Whether the storage point lies in the district, and whether it would if its axes were swapped."""
    row = conn.execute(
        "SELECT bool_or(ST_Covers(geom, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4490))), "
        "bool_or(ST_Covers(geom, ST_SetSRID(ST_MakePoint(%(y)s, %(x)s), 4490))) "
        "FROM districts WHERE district_code = %(d)s",
        {"x": x, "y": y, "d": district_code},
    ).fetchone()
    inside, swapped = row or (None, None)
    return bool(inside), bool(swapped)


def _outside(lon: float, lat: float, district_code: str, swapped: bool) -> InvalidInput:
    if swapped:
        return InvalidInput(
            f"coordinates look swapped (lat, lon): got ({lon}, {lat}); put longitude first", field="geometry"
        )
    return InvalidInput(f"({lon}, {lat}) is outside district {district_code}", field="geometry")


def _checked_point(
    conn: psycopg.Connection, lon: float, lat: float, coord_sys: str, district_code: str
) -> tuple[float, float]:
    """Storage lon/lat of a reported point, refusing bad numbers, swapped axes and outside points."""
    _plausible(lon, lat)
    x, y = to_storage(lon, lat, coord_sys)
    inside, swapped = _inside(conn, float(x), float(y), district_code)
    if not inside:
        raise _outside(lon, lat, district_code, swapped)
    return float(x), float(y)


def _text(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value or None


def _nearest_facility(conn: psycopg.Connection, cat: Category, case_id: int) -> None:
    """Link the case to the nearest facility of the category's layer within 30 m (after a
    recategorisation; intake does the same inside intake.sql)."""
    if cat.facility_layer is None:
        return
    conn.execute(
        sql.SQL(
            "UPDATE cases c SET facility_layer = %(layer)s, facility_code = n.code, facility_distance_m = n.distance_m "
            "FROM (WITH target AS (SELECT geom FROM cases WHERE id = %(id)s) {nearest}) n WHERE c.id = %(id)s"
        ).format(
            nearest=sql.SQL(_FACILITY).format(table=sql.Identifier(cat.facility_layer), where=sql.SQL(_FACILITY_NEAR))
        ),
        {"layer": cat.facility_layer, "metric": METRIC_SRID, "radius": FACILITY_RADIUS_M, "id": case_id},
    )


def bulk_settings(conn: psycopg.Connection) -> None:
    """Planner settings of the bulk assignment, for the caller's transaction (SET LOCAL)."""
    conn.execute("SET LOCAL jit = off")
    conn.execute("SET LOCAL work_mem = '256MB'")
    # the points meet their grid cells by hash; a merge join would sort a million of them
    conn.execute("SET LOCAL enable_mergejoin = off")


def assign(
    conn: psycopg.Connection, *, district_code: str, ids: list[int] | None, initial: bool = False
) -> list[tuple[Any, ...]]:
    """(Re-)assign cases by spatial join; ``ids=None`` re-assigns every open case. Returns changes.

    Runs in the caller's transaction (SET LOCAL needs one, see ``bulk_settings``).
    """
    few = ids is not None and len(ids) <= FEW_CASES
    if not few:
        bulk_settings(conn)
    return conn.execute(_assign_sql(few), {"ids": ids, "district": district_code, "initial": initial}).fetchall()


def event(
    conn: psycopg.Connection,
    case_id: int,
    *,
    district_code: str,
    actor: str,
    action: str,
    from_state: str | None,
    to_state: str | None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one row to the case's history."""
    conn.execute(
        "INSERT INTO case_events (case_id, district_code, actor, action, from_state, to_state, note, details) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            case_id,
            district_code,
            actor,
            action,
            from_state,
            to_state,
            note,
            Jsonb(details) if details is not None else None,
        ],
    )


def reroute_events(
    conn: psycopg.Connection, changes: list[tuple[Any, ...]], *, district_code: str, actor: str, reason: str
) -> None:
    """One 'reroute' event per changed case (set-based)."""
    if not changes:
        return
    conn.execute(
        "INSERT INTO case_events (case_id, district_code, actor, action, from_state, to_state, note, details) "
        "SELECT c.id, %s, %s, 'reroute', c.state, c.state, %s, "
        "jsonb_build_object('from_unit', ch.old_unit, 'to_unit', ch.new_unit, 'from_zone', ch.old_zone, "
        "'to_zone', ch.new_zone, 'rule', ch.rule) "
        "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
        "AS ch(id, old_unit, new_unit, old_zone, new_zone, rule) JOIN cases c ON c.id = ch.id",
        [district_code, actor, reason, *[list(col) for col in zip(*changes, strict=True)]],
    )


@dataclass(frozen=True)
class _Intake:
    """A validated report, ready to run as intake.sql."""

    stmt: bytes
    values: list[Any]
    claim: Claim | None
    lon: float  # as given, for the error when it is outside the district
    lat: float
    district_code: str
    facility_code: str | None
    facility_layer: str | None


def _intake(principal: Principal, new: Report, *, district_code: str, claim: Claim | None) -> _Intake:
    """Validate and convert a report (400 naming the field), and bind intake.sql's parameters."""
    cat = category(new.category_code)
    description = _text(new.description, "description", MAX_DESCRIPTION)
    reporter_name = _text(new.reporter_name, "reporter_name", 100)
    reporter_phone = _text(new.reporter_phone, "reporter_phone", 40)
    facility_code = _text(new.facility_code, "facility_code", 80)
    if cat.facility_layer is None and facility_code:
        raise InvalidInput(f"category '{cat.code}' concerns no facility layer", field="facility_code")
    lon, lat, coord_sys, source = new.lon, new.lat, new.coord_sys, new.source
    _plausible(lon, lat)
    x, y = (float(v) for v in to_storage(lon, lat, coord_sys))
    created = datetime.now(UTC)
    params = {
        "x": x,
        "y": y,
        "category": cat.code,
        "district": district_code,
        "day": f"{created.astimezone(calendar().zone):%Y%m%d}",
        "description": description,
        "coord_sys": coord_sys,
        "source": source,
        "client": new.client_name,
        "user": None if principal.is_anonymous else principal.username,
        "name": reporter_name,
        "phone": reporter_phone,
        "created": created,
        "due": calendar().add(created, cat.deadline),
        "actor": principal.actor,
        "details": Jsonb({"source": source, "coord_sys": coord_sys}),
        "facility_code": facility_code,
        "layer": cat.facility_layer,
        "metric": METRIC_SRID,
        "radius": FACILITY_RADIUS_M,
        "open": list(OPEN_STATES),
        "days": DUPLICATE_DAYS,
        "dup_radius": DUPLICATE_RADIUS_M,
        "state_names": Jsonb(STATE_NAMES),
        "key": claim.key if claim else None,
        "caller": claim.caller if claim else None,
        "hash": claim.digest if claim else None,
    }
    stmt, names = _intake_sql(cat.facility_layer, facility_code is not None)
    return _Intake(
        stmt=stmt,
        values=[params[name] for name in names],
        claim=claim,
        lon=lon,
        lat=lat,
        district_code=district_code,
        facility_code=facility_code,
        facility_layer=cat.facility_layer,
    )


def _claimed(intake: _Intake, error: psycopg.errors.UniqueViolation) -> Claimed | None:
    """The statement failed on the Idempotency-Key's primary key: the key already has an answer."""
    if intake.claim is not None and error.diag.constraint_name == CLAIM_CONSTRAINT:
        return Claimed(intake.claim)
    return None


def _answer(intake: _Intake, row: tuple[Any, ...] | None) -> dict[str, Any]:
    """intake.sql's answer, or the 400 saying why nothing was written."""
    assert row is not None
    inside, swapped, answer = row
    if answer is None:
        if not inside:
            raise _outside(intake.lon, intake.lat, intake.district_code, swapped)
        raise InvalidInput(
            f"facility '{intake.facility_code}' is not in layer '{intake.facility_layer}'", field="facility_code"
        )
    body: dict[str, Any] = answer
    return body


def report(
    conn: psycopg.Connection, principal: Principal, new: Report, *, district_code: str, claim: Claim | None = None
) -> dict[str, Any]:
    """Take a report: validate, convert, then insert, assign, link the facility, append the first
    event, find possible duplicates and (with ``claim``) record the Idempotency-Key's answer, all in
    one statement (geo/cases/sql/intake.sql). Raises ``Claimed`` when the key already has an answer."""
    intake = _intake(principal, new, district_code=district_code, claim=claim)
    try:
        if conn.autocommit:  # one statement is its own transaction: no BEGIN/COMMIT round trips
            row = psycopg.RawCursor(conn).execute(intake.stmt, intake.values).fetchone()
        else:
            with conn.transaction():
                row = psycopg.RawCursor(conn).execute(intake.stmt, intake.values).fetchone()
    except psycopg.errors.UniqueViolation as e:
        raise _claimed(intake, e) or e from e
    return _answer(intake, row)


async def report_async(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    new: Report,
    *,
    district_code: str,
    claim: Claim | None = None,
) -> dict[str, Any]:
    """``report`` on an autocommit async connection (the API's intake: no thread hop)."""
    assert conn.autocommit, "intake.sql is its own transaction only in autocommit"
    intake = _intake(principal, new, district_code=district_code, claim=claim)
    try:
        cursor = await psycopg.AsyncRawCursor(conn).execute(intake.stmt, intake.values)
        row = await cursor.fetchone()
    except psycopg.errors.UniqueViolation as e:
        raise _claimed(intake, e) or e from e
    return _answer(intake, row)


# Public form: location coarsened to a 50 m grid (in EPSG:4547), no reporter.
# Where the public sees a case: its point snapped to a 50 m grid in EPSG:4547 (SQL, table alias c).
PUBLIC_POSITION = "ST_Transform(ST_SnapToGrid(ST_Transform(c.geom, 4547), 50), 4490)"
# (GeoJSON option 0: no "crs" member; coordinates are CGCS2000 lon/lat, CRS84 at map scale)
_PUBLIC_POINT = f"ST_AsGeoJSON({PUBLIC_POSITION}, 6, 0)::json"
_FULL_POINT = "ST_AsGeoJSON(c.geom, 7, 0)::json"


_CONTRACTOR_WORK = sql.SQL(
    "(c.unit_code = %(scope_unit)s OR c.section_code IN "
    "(SELECT code FROM contract_sections WHERE contractor_unit = %(scope_unit)s))"
)


def _full_visible(principal: Principal | None) -> tuple[sql.Composable, dict[str, Any]]:
    """Predicate: the caller sees the row in full (staff in scope, or its own reporter)."""
    if principal is None:
        return sql.SQL("true"), {}
    predicate, params = zone_scope(principal, sql.SQL("c.zone_code"))
    staff = principal.role not in ("resident", "anonymous")
    mine = sql.SQL("(c.reporter_user IS NOT NULL AND c.reporter_user = %(me)s)")
    if principal.role == "contractor":
        # a contractor's work: what is routed to it, and what lies in its own sections
        predicate = _CONTRACTOR_WORK
    full = sql.SQL("({} OR {})").format(predicate, mine) if staff else mine
    return full, {**params, "me": principal.username}


_CASES = sql.Identifier("cases")


def _select(full: sql.Composable, source: sql.Composable = _CASES) -> sql.Composed:
    # ``full`` is evaluated once per row (the LATERAL), not once per private field.
    return sql.SQL(
        "SELECT json_build_object('type', 'Feature', 'id', c.code, "
        " 'geometry', CASE WHEN v.full THEN " + _FULL_POINT + " ELSE " + _PUBLIC_POINT + " END, "
        " 'properties', json_strip_nulls(json_build_object("
        "  'code', c.code, 'category', c.category, 'category_zh', cat.name, 'state', c.state, "
        "  'description', CASE WHEN v.full THEN c.description END, "
        "  'reporter_name', CASE WHEN v.full THEN c.reporter_name END, "
        "  'reporter_phone', CASE WHEN v.full THEN c.reporter_phone END, "
        "  'location_precision_m', CASE WHEN v.full THEN NULL ELSE 50 END, "
        "  'subdistrict_code', c.subdistrict_code, 'community_code', c.community_code, "
        "  'zone_code', c.zone_code, 'section_code', c.section_code, 'unit_code', c.unit_code, "
        "  'unit_name', u.name, 'routing_rule', c.routing_rule, 'assigned', c.zone_code IS NOT NULL, "
        "  'facility_layer', c.facility_layer, 'facility_code', c.facility_code, "
        "  'facility_distance_m', round(c.facility_distance_m::numeric, 1), "
        "  'reported_at', c.created_at, 'due_at', c.due_at, 'closed_at', c.closed_at, "
        "  'overdue', c.due_at < coalesce(c.closed_at, now()), 'escalated_at', c.escalated_at, "
        "  'version', c.version, 'full', v.full))), c.id "
        "FROM {source} c CROSS JOIN LATERAL (SELECT {full} AS full) v "
        "JOIN case_categories cat ON cat.code = c.category LEFT JOIN units u ON u.code = c.unit_code "
    ).format(full=full, source=source)


def case_detail(
    conn: psycopg.Connection, code: str, *, principal: Principal | None, district_code: str
) -> dict[str, Any]:
    """One case as a GeoJSON feature, in full when the caller may, with its events when in full."""
    full, params = _full_visible(principal)
    stmt = _select(full) + sql.SQL("WHERE c.code = %(code)s AND c.district_code = %(district)s")
    row = conn.execute(stmt, {**params, "code": code, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(f"case '{code}' does not exist", field="code")
    feature: dict[str, Any] = row[0]
    if feature["properties"].get("full"):
        feature["properties"]["events"] = _events(conn, code)
    return feature


def _events(conn: psycopg.Connection, code: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT e.at, e.actor, e.action, e.from_state, e.to_state, e.note, e.details FROM case_events e "
        "JOIN cases c ON c.id = e.case_id WHERE c.code = %s ORDER BY e.at, e.id",
        [code],
    ).fetchall()
    return [
        {
            "at": r[0].isoformat(),
            "actor": r[1],
            "action": r[2],
            "from_state": r[3],
            "to_state": r[4],
            "note": r[5],
            "details": r[6],
        }
        for r in rows
    ]


@dataclass
class CaseFilter:
    """Filters of ``GET /cases``."""

    zone: str | None = None
    unit: str | None = None
    category: str | None = None
    state: str | None = None
    overdue: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    unassigned: bool | None = None
    limit: int = 100
    after: int | None = None  # keyset: the last id of the previous page


def list_cases(
    conn: psycopg.Connection, principal: Principal, flt: CaseFilter, *, district_code: str, scoped_only: bool
) -> dict[str, Any]:
    """A page of cases (GeoJSON). ``scoped_only``: staff lists hold only their scope's cases."""
    full, params = _full_visible(principal)
    where: list[sql.Composable] = [sql.SQL("c.district_code = %(district)s")]
    if scoped_only:
        where.append(sql.SQL("v.full"))
    if flt.state is not None and flt.state not in STATE_NAMES:
        raise InvalidInput(f"state '{flt.state}' is unknown; allowed: {', '.join(STATE_NAMES)}", field="state")
    if flt.category is not None:
        category(flt.category)
    for column, value in (
        ("zone_code", flt.zone),
        ("unit_code", flt.unit),
        ("category", flt.category),
        ("state", flt.state),
    ):
        if value is not None:
            where.append(sql.SQL("c.{} = %({})s").format(sql.Identifier(column), sql.SQL(column)))
    if flt.overdue is not None:
        where.append(sql.SQL("(c.due_at < coalesce(c.closed_at, now())) = %(overdue)s"))
    if flt.unassigned is not None:
        where.append(sql.SQL("(c.zone_code IS NULL) = %(unassigned)s"))
    if flt.since is not None:
        where.append(sql.SQL("c.created_at >= %(since)s"))
    if flt.until is not None:
        where.append(sql.SQL("c.created_at < %(until)s"))
    if flt.after is not None:
        where.append(sql.SQL("c.id < %(after)s"))
    query = _select(full) + sql.SQL("WHERE {} ORDER BY c.id DESC LIMIT %(limit)s").format(sql.SQL(" AND ").join(where))
    values = {
        **params,
        "district": district_code,
        "zone_code": flt.zone,
        "unit_code": flt.unit,
        "category": category(flt.category).code if flt.category else None,
        "state": flt.state,
        "overdue": flt.overdue,
        "unassigned": flt.unassigned,
        "since": flt.since,
        "until": flt.until,
        "after": flt.after,
        "limit": flt.limit + 1,
    }
    rows = conn.execute(query, values).fetchall()
    page = rows[: flt.limit]
    return {
        "type": "FeatureCollection",
        "features": [r[0] for r in page],
        "numberReturned": len(page),
        "next_after": page[-1][1] if len(rows) > flt.limit and page else None,
    }


def _locked(conn: psycopg.Connection, principal: Principal, code: str, district_code: str) -> tuple[Any, ...]:
    """The case row, locked, if the caller may act on it; 404 otherwise (no leak of existence)."""
    predicate, params = zone_scope(principal, sql.SQL("c.zone_code"))
    if principal.role == "contractor":
        predicate = _CONTRACTOR_WORK
    elif principal.role == "property_team":
        # a team acts in its zones, and on whatever is routed to its unit
        predicate = sql.SQL("(c.unit_code = %(my_unit)s OR {})").format(predicate)
    stmt = sql.SQL(
        "SELECT c.id, c.state, c.category, c.unit_code, c.zone_code FROM cases c "
        "WHERE c.code = %(code)s AND c.district_code = %(district)s AND {} FOR UPDATE OF c"
    ).format(predicate)
    row = conn.execute(
        stmt, {**params, "code": code, "district": district_code, "my_unit": principal.unit_code}
    ).fetchone()
    if row is None:
        raise NotFound(f"case '{code}' does not exist", field="code")
    return tuple(row)


def act(
    conn: psycopg.Connection,
    principal: Principal,
    code: str,
    request: CaseAction,
    *,
    district_code: str,
    on_verified: Callable[[psycopg.Connection, int], object] | None = None,
) -> dict[str, Any]:
    """Move a case through its workflow (one transaction, one event); 409 for an illegal move.

    ``on_verified(conn, case_id)`` runs inside the transaction when the move is ``verify``: the API
    passes the programme's inspection recorder (a case closed on a facility is an inspection of it),
    which lives above this room."""
    action = request.action
    MACHINE.move(action)  # an unknown action is 400 before anything is read
    note = _text(request.note, "note", MAX_DESCRIPTION)
    with conn.transaction():
        case_id, state, _, old_unit, _ = _locked(conn, principal, code, district_code)
        move = MACHINE.check(action, role=principal.role, state=state, note=note)
        details = _apply(conn, case_id, request, district_code=district_code)
        target = MACHINE.target(move, state)
        conn.execute(
            "UPDATE cases SET state = %s, version = version + 1, updated_at = now(), "
            "closed_at = CASE WHEN %s IN ('closed', 'rejected', 'duplicate') THEN now() ELSE NULL END "
            "WHERE id = %s",
            [target, target, case_id],
        )
        event(
            conn,
            case_id,
            district_code=district_code,
            actor=principal.actor,
            action=action,
            from_state=state,
            to_state=target,
            note=note,
            details={**details, "from_unit": old_unit},
        )
        if action == "verify" and on_verified is not None:
            on_verified(conn, case_id)
    return case_detail(conn, code, principal=principal, district_code=district_code)


def _apply(conn: psycopg.Connection, case_id: int, request: CaseAction, *, district_code: str) -> dict[str, Any]:
    """The side effects of an action other than the state change."""
    action, unit_code, duplicate_of = request.action, request.unit_code, request.duplicate_of
    category_code, lon, lat = request.category_code, request.lon, request.lat
    if action == "dispatch" and unit_code:
        if not conn.execute("SELECT 1 FROM units WHERE code = %s", [unit_code]).fetchone():
            raise InvalidInput(f"unit '{unit_code}' does not exist", field="unit_code")
        conn.execute("UPDATE cases SET unit_code = %s, routing_rule = 'manual' WHERE id = %s", [unit_code, case_id])
        return {"unit_code": unit_code}
    if action == "mark_duplicate":
        if not duplicate_of:
            raise InvalidInput("mark_duplicate needs duplicate_of (the original case's code)", field="duplicate_of")
        row = conn.execute(
            "SELECT id FROM cases WHERE code = %s AND district_code = %s AND id <> %s",
            [duplicate_of, district_code, case_id],
        ).fetchone()
        if row is None:
            raise InvalidInput(f"case '{duplicate_of}' does not exist", field="duplicate_of")
        conn.execute("UPDATE cases SET duplicate_of = %s WHERE id = %s", [row[0], case_id])
        return {"duplicate_of": duplicate_of}
    if action == "recategorise":
        cat = category(category_code or "")
        created = conn.execute(
            "UPDATE cases SET category = %s, facility_layer = NULL, facility_code = NULL, "
            "facility_distance_m = NULL WHERE id = %s RETURNING created_at",
            [cat.code, case_id],
        ).fetchone()
        assert created is not None
        conn.execute("UPDATE cases SET due_at = %s WHERE id = %s", [calendar().add(created[0], cat.deadline), case_id])
        _nearest_facility(conn, cat, case_id)
        changes = assign(conn, district_code=district_code, ids=[case_id], initial=True)
        return {"category": cat.code, "unit_code": changes[0][2] if changes else None}
    if action == "move":
        if lon is None or lat is None:
            raise InvalidInput("move needs lon and lat", field="geometry")
        x, y = _checked_point(conn, lon, lat, request.coord_sys, district_code)
        conn.execute("UPDATE cases SET geom = ST_SetSRID(ST_MakePoint(%s, %s), 4490) WHERE id = %s", [x, y, case_id])
        changes = assign(conn, district_code=district_code, ids=[case_id], initial=True)
        return {"lon": x, "lat": y, "unit_code": changes[0][2] if changes else None}
    return {}


def reassign_all(conn: psycopg.Connection, *, district_code: str, actor: str) -> int:
    """Re-assign every open case in one set-based statement; one event per changed case."""
    with conn.transaction():
        changes = assign(conn, district_code=district_code, ids=None)
        reroute_events(conn, changes, district_code=district_code, actor=actor, reason="wuye assign --all")
    return len(changes)


def reassign_within(conn: psycopg.Connection, area_wkb: bytes, *, district_code: str, actor: str, reason: str) -> int:
    """After a boundary edit: re-assign the open cases inside ``area_wkb`` (EPSG:4490), in the
    caller's transaction, with an event each."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM cases WHERE district_code = %s AND state <> ALL(%s) "
            "AND ST_Intersects(geom, ST_GeomFromWKB(%s, 4490))",
            [district_code, list(CLOSED_STATES), area_wkb],
        )
    ]
    if not ids:
        return 0
    changes = assign(conn, district_code=district_code, ids=ids)
    reroute_events(conn, changes, district_code=district_code, actor=actor, reason=reason)
    return len(changes)


def escalate_overdue(conn: psycopg.Connection, *, district_code: str, grace: timedelta, actor: str = "system") -> int:
    """Hand cases overdue past ``grace`` to their sub-district office, once, with an event each."""
    with conn.transaction():
        rows = conn.execute(
            "WITH late AS (SELECT c.id, c.unit_code, s.office_unit, c.state FROM cases c "
            " JOIN subdistricts s ON s.code = c.subdistrict_code "
            " WHERE c.district_code = %s AND c.state <> ALL(%s) AND c.escalated_at IS NULL "
            " AND c.due_at + %s < now() FOR UPDATE OF c) "
            "UPDATE cases c SET escalated_at = now(), unit_code = late.office_unit, routing_rule = 'escalated', "
            "version = c.version + 1 FROM late WHERE c.id = late.id RETURNING c.id, late.unit_code, late.office_unit, "
            "late.state",
            [district_code, list(CLOSED_STATES), grace],
        ).fetchall()
        for case_id, old, new, state in rows:
            event(
                conn,
                case_id,
                district_code=district_code,
                actor=actor,
                action="escalate",
                from_state=state,
                to_state=state,
                note="超期升级至街道办事处 (overdue past the grace period)",
                details={"from_unit": old, "to_unit": new},
            )
    return len(rows)


def category_list() -> list[dict[str, Any]]:
    """Categories for clients (intake forms, Open311 services)."""
    return [
        {
            "code": c.code,
            "name": c.name,
            "name_en": c.name_en,
            "kind": c.kind,
            "deadline": c.deadline,
            "facility_layer": c.facility_layer,
        }
        for c in categories().values()
    ]


def case_for_photos(conn: psycopg.Connection, principal: Principal, code: str, *, district_code: str) -> int:
    """The id of a case whose photos the caller may see and add (staff in scope, its reporter); 404 otherwise."""
    full, params = _full_visible(principal)
    stmt = sql.SQL("SELECT c.id FROM cases c WHERE c.code = %(code)s AND c.district_code = %(district)s AND {}").format(
        full
    )
    row = conn.execute(stmt, {**params, "code": code, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(f"case '{code}' does not exist", field="code")
    return int(row[0])
