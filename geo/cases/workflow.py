"""Problem reports (事件) and their workflow, after GB/T 30428's stages.

Intake validates, converts coordinates once (GCJ-02/BD-09 → CGCS2000), and in
one transaction inserts the case, assigns it by spatial join (sub-district,
community, zone, section, responsible unit, nearest facility) and appends the
first event. Every later move is a ``case_events`` row. Scope is a WHERE
clause (``geo.access.scope.case_scope``), so callers never see what they may not.
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

from geo.access.scope import ANONYMOUS, Principal, case_scope
from geo.cases import notices
from geo.cases.categories import FACILITY_RADIUS_M as DEFAULT_FACILITY_RADIUS_M
from geo.cases.categories import Category, categories, category
from geo.cases.idempotency import CLAIM_CONSTRAINT, Claim, Claimed
from geo.cases.shapes import CaseAction, Report
from geo.errors import InvalidInput, NotFound
from geo.spatial.coords import to_storage
from geo.spatial.crs import METRIC_SRID
from geo.steps import Statement, Steps, one, run
from geo.workcal import calendar
from geo.workflow import Move, StateMachine
from layers.catalogue import CLOSED_CASE_STATES, OPEN_CASE_STATES, vocabulary

FACILITY_RADIUS_M = DEFAULT_FACILITY_RADIUS_M  # categories may say otherwise (facility_radius_m)
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_DAYS = 7
MAX_DESCRIPTION = 2000
PUBLIC_ROUNDING_M = 50.0
# How far a candidate duplicate can be from a report: the exact radius, or (the public view) a cell
# centre 1.5 cells away from the report's cell centre, each point up to half a cell diagonal from its own.
DUPLICATE_REACH_M = PUBLIC_ROUNDING_M * 1.5 + PUBLIC_ROUNDING_M * math.sqrt(2) + 1.0
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


# The nearest facility of the category's layers (or the named one), for intake.sql's CTE facility:
# the nearest of each layer, then the nearest of those; distances in metres to the point or the line.
_NO_FACILITY = sql.SQL("SELECT NULL::text AS layer, NULL::text AS code, NULL::float8 AS distance_m WHERE false")
_FACILITY = (
    "(SELECT {layer}::text AS layer, f.code::text AS code, "
    "ST_Distance(ST_Transform(f.geom, %(metric)s), ST_Transform(t.geom, %(metric)s)) AS distance_m "
    "FROM {table} f CROSS JOIN target t WHERE {where} ORDER BY distance_m, f.code LIMIT 1)"
)
# A box of the radius in degrees at the point's latitude (+20%), then the distance in metres.
_FACILITY_NEAR = (
    "f.geom && ST_Expand(t.geom, %(radius)s / (111320.0 * cos(radians(ST_Y(t.geom)))) * 1.2, "
    "%(radius)s / 110574.0 * 1.2) AND "
    "ST_DWithin(ST_Transform(f.geom, %(metric)s), ST_Transform(t.geom, %(metric)s), %(radius)s)"
)


def _nearest(layers: tuple[str, ...], where: str) -> sql.Composable:
    """SELECT layer, code, distance_m: the nearest facility of any of ``layers`` meeting ``where``."""
    if not layers:
        return _NO_FACILITY
    each = [
        sql.SQL(_FACILITY).format(layer=sql.Literal(name), table=sql.Identifier(name), where=sql.SQL(where))
        for name in layers
    ]
    return sql.SQL("SELECT n.layer, n.code, n.distance_m FROM ({}) n ORDER BY n.distance_m, n.layer LIMIT 1").format(
        sql.SQL(" UNION ALL ").join(each)
    )


@cache
def _intake_sql(facility_layers: tuple[str, ...], by_code: bool) -> tuple[bytes, tuple[str, ...]]:
    """intake.sql composed for a category's facility layers (none, the named facility, or the nearest),
    with its named placeholders turned into PostgreSQL's $n once, and the names in $n order.
    (psycopg re-parses a query longer than 4 kB on every execution: ~0.3 ms here.)"""
    facility = _nearest(facility_layers, "f.code = %(facility_code)s" if by_code else _FACILITY_NEAR)
    text = (
        sql.SQL(_sql_file("intake.sql"))
        .format(
            routed=sql.SQL(_sql_file("route_points.sql")),
            decided=sql.SQL(_sql_file("route_decide.sql")),
            facility=facility,
            feature=_select(_visibility(None), source=sql.Identifier("ins")),
            # the same text for every caller; the caller's scope comes in its parameters
            dup_scope=case_scope(ANONYMOUS, "o")[0],
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


def trimmed_text(value: str | None, field: str, limit: int) -> str | None:
    """``value`` without surrounding blanks, None when empty; 400 naming ``field`` beyond ``limit``."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value or None


def _nearest_facility(conn: psycopg.Connection, cat: Category, case_id: int) -> None:
    """Link the case to the nearest facility of the category's layers within its radius (after a
    recategorisation; intake does the same inside intake.sql)."""
    if not cat.facility_layers:
        return
    conn.execute(
        sql.SQL(
            "UPDATE cases c SET facility_layer = n.layer, facility_code = n.code, facility_distance_m = n.distance_m "
            "FROM (WITH target AS (SELECT geom FROM cases WHERE id = %(id)s) {nearest}) n WHERE c.id = %(id)s"
        ).format(nearest=_nearest(cat.facility_layers, _FACILITY_NEAR)),
        {"metric": METRIC_SRID, "radius": cat.facility_radius_m, "id": case_id},
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
    description = trimmed_text(new.description, "description", MAX_DESCRIPTION)
    reporter_name = trimmed_text(new.reporter_name, "reporter_name", 100)
    reporter_phone = trimmed_text(new.reporter_phone, "reporter_phone", 40)
    facility_code = trimmed_text(new.facility_code, "facility_code", 80)
    if not cat.facility_layers and facility_code:
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
        "metric": METRIC_SRID,
        "radius": cat.facility_radius_m,
        "open": list(OPEN_STATES),
        "days": DUPLICATE_DAYS,
        "dup_radius": DUPLICATE_RADIUS_M,
        "dup_reach": DUPLICATE_REACH_M,
        "cell": PUBLIC_ROUNDING_M,
        "dup_work": principal.role in WORK_ROLES,
        **case_scope(principal, "o")[1],
        "state_names": Jsonb(STATE_NAMES),
        "key": claim.key if claim else None,
        "caller": claim.caller if claim else None,
        "hash": claim.digest if claim else None,
    }
    stmt, names = _intake_sql(cat.facility_layers, facility_code is not None)
    return _Intake(
        stmt=stmt,
        values=[params[name] for name in names],
        claim=claim,
        lon=lon,
        lat=lat,
        district_code=district_code,
        facility_code=facility_code,
        facility_layer="/".join(cat.facility_layers) or None,
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
    principal: Principal, new: Report, *, district_code: str, claim: Claim | None = None
) -> Steps[dict[str, Any]]:
    """Take a report: validate, convert, then insert, assign, link the facility, append the first
    event, find possible duplicates and (with ``claim``) record the Idempotency-Key's answer, all in
    one statement (geo/cases/sql/intake.sql). Raises ``Claimed`` when the key already has an answer."""
    intake = _intake(principal, new, district_code=district_code, claim=claim)
    try:
        rows = yield Statement(intake.stmt, intake.values, raw=True)
    except psycopg.errors.UniqueViolation as e:
        raise _claimed(intake, e) or e from e
    return _answer(intake, one(rows))


# Public form: location coarsened to a 50 m grid (in EPSG:4547), no reporter.
# Where the public sees a case: its point snapped to a 50 m grid in EPSG:4547 (SQL, table alias c).
PUBLIC_POSITION = "ST_Transform(ST_SnapToGrid(ST_Transform(c.geom, 4547), 50), 4490)"  # intake.sql's cells too
# (GeoJSON option 0: no "crs" member; coordinates are CGCS2000 lon/lat, CRS84 at map scale)
_PUBLIC_POINT = f"ST_AsGeoJSON({PUBLIC_POSITION}, 6, 0)::json"
_FULL_POINT = "ST_AsGeoJSON(c.geom, 7, 0)::json"


# Who sees what of a case (issue 13's table; README "Personal data"): ``full`` is the exact position,
# the description, the photos, the events and the facility link; ``pii`` the reporter's name and whole
# phone number. Work roles in scope see the case in full with the phone masked (``138****0000``) and
# may reveal it through the audited "call" action; survey teams, residents and the public see the
# public view (50 m cell). Each case's reporter sees it all.
WORK_ROLES = ("admin", "planner", "subdistrict_staff", "property_team", "contractor")
PII_ROLES = ("admin", "subdistrict_staff")
CALL_ROLES = ("admin", "subdistrict_staff", "property_team", "contractor")


@dataclass(frozen=True)
class _Visibility:
    """SQL predicates over a case (alias c) for one caller, and their parameters."""

    scope: sql.Composable  # the case lies in the caller's area
    mine: sql.Composable  # the caller reported it
    work: bool  # a case in scope is seen in full
    sees_pii: bool  # a case in scope is seen with the reporter's name and whole phone number
    params: dict[str, Any]

    def _granted(self, scope: sql.Composable, granted: bool) -> sql.Composable:
        return sql.SQL("({} OR {})").format(scope, self.mine) if granted else self.mine

    @property
    def seen(self) -> sql.Composable:
        """The case is in the caller's list: in their area, or theirs (``scope OR full``, written as a
        filter on ``c`` alone, so that it is applied before :meth:`lateral`'s per-row work)."""
        return self._granted(self.scope, True)

    @property
    def full(self) -> sql.Composable:
        """The caller sees the case in full."""
        return self._granted(self.scope, self.work)

    @property
    def pii(self) -> sql.Composable:
        """The caller sees the reporter's name and whole phone number."""
        return self._granted(self.scope, self.sees_pii)

    def lateral(self) -> sql.Composed:
        """``full`` and ``pii`` as the columns of a LATERAL subquery over ``c``, the scope predicate
        written (and evaluated) once per row. ``OFFSET 0`` keeps PostgreSQL from pulling the
        subquery up into the statement: pulled up, every use of a column is the whole predicate again
        (its two sub-selects each time), and the desk's list, which uses ``full`` a dozen times, took
        longer to plan than to run, on every request."""
        in_scope = sql.SQL("s.scope")
        return sql.SQL("(SELECT {full} AS full, {pii} AS pii FROM (SELECT {scope} AS scope OFFSET 0) s)").format(
            full=self._granted(in_scope, self.work), pii=self._granted(in_scope, self.sees_pii), scope=self.scope
        )


def _visibility(principal: Principal | None) -> _Visibility:
    """How much of each case the caller sees (see WORK_ROLES)."""
    if principal is None:
        return _Visibility(sql.SQL("true"), sql.SQL("false"), True, True, {})
    scope, params = case_scope(principal, "c")
    if principal.role in ("resident", "anonymous"):
        scope = sql.SQL("false")
    mine = sql.SQL("(c.reporter_user IS NOT NULL AND c.reporter_user = %(me)s)")
    return _Visibility(
        scope, mine, principal.role in WORK_ROLES, principal.role in PII_ROLES, {**params, "me": principal.username}
    )


_CASES = sql.Identifier("cases")
# A phone number as work roles see it: the first three and the last four digits (138****0000).
_MASKED_PHONE = (
    "CASE WHEN length(c.reporter_phone) >= 8 THEN left(c.reporter_phone, 3) || '****' || right(c.reporter_phone, 4) "
    "ELSE repeat('*', length(c.reporter_phone)) END"
)


def _select(vis: _Visibility, source: sql.Composable = _CASES) -> sql.Composed:
    # ``full`` and ``pii`` are evaluated once per row (see _Visibility.lateral), not once per private field.
    return sql.SQL(
        "SELECT json_build_object('type', 'Feature', 'id', c.code, "
        " 'geometry', CASE WHEN v.full THEN " + _FULL_POINT + " ELSE " + _PUBLIC_POINT + " END, "
        " 'properties', json_strip_nulls(json_build_object("
        "  'code', c.code, 'category', c.category, 'category_zh', cat.name, 'state', c.state, "
        "  'description', CASE WHEN v.full THEN c.description END, "
        "  'reporter_name', CASE WHEN v.pii THEN c.reporter_name END, "
        "  'reporter_phone', CASE WHEN v.pii THEN c.reporter_phone WHEN v.full THEN " + _MASKED_PHONE + " END, "
        "  'reporter_phone_masked', CASE WHEN v.full AND NOT v.pii AND c.reporter_phone IS NOT NULL THEN true END, "
        "  'location_precision_m', CASE WHEN v.full THEN NULL ELSE 50 END, "
        "  'subdistrict_code', c.subdistrict_code, 'community_code', c.community_code, "
        "  'zone_code', c.zone_code, 'section_code', c.section_code, 'unit_code', c.unit_code, "
        "  'unit_name', u.name, 'routing_rule', c.routing_rule, 'assigned', c.zone_code IS NOT NULL, "
        # the facility's code and distance would pin the reporter within metres: in full only
        "  'facility_layer', c.facility_layer, 'facility_code', CASE WHEN v.full THEN c.facility_code END, "
        "  'facility_distance_m', CASE WHEN v.full THEN round(c.facility_distance_m::numeric, 1) END, "
        "  'reported_at', c.created_at, 'due_at', c.due_at, 'closed_at', c.closed_at, "
        "  'overdue', c.due_at < coalesce(c.closed_at, now()), 'escalated_at', c.escalated_at, "
        # 督办: that the bureau supervises the case is public; its deadline and note in full only
        "  'supervised', c.supervised_at IS NOT NULL, "
        "  'supervised_at', CASE WHEN v.full THEN c.supervised_at END, "
        "  'supervised_by', CASE WHEN v.full THEN c.supervised_by END, "
        "  'supervision_due', CASE WHEN v.full THEN c.supervision_due END, "
        "  'supervision_note', CASE WHEN v.full THEN c.supervision_note END, "
        "  'supervision_escalated_at', CASE WHEN v.full THEN c.supervision_escalated_at END, "
        "  'version', c.version, 'full', v.full))), c.id "
        "FROM {source} c CROSS JOIN LATERAL {v} v "
        "JOIN case_categories cat ON cat.code = c.category LEFT JOIN units u ON u.code = c.unit_code "
    ).format(v=vis.lateral(), source=source)


def not_in_your_area(code: str) -> NotFound:
    """The one answer for a case outside the caller's area and for a code that does not exist (the
    body is the same, so it reveals nothing about which cases exist)."""
    del code  # not echoed either: the body is the same whatever was asked
    return NotFound("the case is not in your area", field="code", reason_zh="该事件不在您的辖区")


def case_detail(code: str, *, principal: Principal | None, district_code: str) -> Steps[dict[str, Any]]:
    """One case as a GeoJSON feature, in full when the caller may, with its events when in full."""
    vis = _visibility(principal)
    stmt = _select(vis) + sql.SQL("WHERE c.code = %(code)s AND c.district_code = %(district)s")
    rows = yield Statement(stmt, {**vis.params, "code": code, "district": district_code})
    if not rows:
        raise NotFound(f"case '{code}' does not exist", field="code")
    feature: dict[str, Any] = rows[0][0]
    if feature["properties"].get("full"):
        events = yield Statement(
            "SELECT e.at, e.actor, e.action, e.from_state, e.to_state, e.note, e.details FROM case_events e "
            "JOIN cases c ON c.id = e.case_id WHERE c.code = %s ORDER BY e.at, e.id",
            [code],
        )
        feature["properties"]["events"] = [
            {
                "at": r[0].isoformat(),
                "actor": r[1],
                "action": r[2],
                "from_state": r[3],
                "to_state": r[4],
                "note": r[5],
                "details": r[6],
            }
            for r in events
        ]
    else:  # what anyone may follow: the states and when, without actors or notes
        feature["properties"]["history"] = yield from public_history(code)
    return feature


def case_exists(code: str, *, district_code: str) -> Steps[bool]:
    """Whether the district has a case with this number."""
    rows = yield Statement(
        "SELECT EXISTS (SELECT 1 FROM cases WHERE code = %s AND district_code = %s)", [code, district_code]
    )
    return bool(rows and rows[0][0])


def public_history(code: str) -> Steps[list[dict[str, Any]]]:
    """A case's public history: each state it entered and when (no actor, note or details)."""
    rows = yield Statement(
        "SELECT e.at, e.to_state FROM case_events e JOIN cases c ON c.id = e.case_id "
        "WHERE c.code = %s AND e.to_state IS NOT NULL ORDER BY e.at, e.id",
        [code],
    )
    return [{"at": r[0].isoformat(), "state": r[1]} for r in rows]


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
    subdistrict: str | None = None
    supervised: bool | None = None
    limit: int = 100
    after: int | None = None  # keyset: the last id of the previous page
    # The case desk's order: open supervised cases first (督办置顶), then the rest, each newest first;
    # ``after_pinned`` says the ``after`` case was one of the first.
    pin_supervised: bool = False
    after_pinned: bool = False


def _where(
    principal: Principal, flt: CaseFilter, *, district_code: str, scoped_only: bool
) -> tuple[_Visibility, list[sql.Composable], dict[str, Any]]:
    """What the caller sees of each case, and the WHERE terms and values of ``flt`` (the list and its
    counts filter alike)."""
    vis = _visibility(principal)
    where: list[sql.Composable] = [sql.SQL("c.district_code = %(district)s")]
    if scoped_only:
        where.append(vis.seen)
    if flt.state is not None and flt.state not in STATE_NAMES:
        raise InvalidInput(f"state '{flt.state}' is unknown; allowed: {', '.join(STATE_NAMES)}", field="state")
    if flt.category is not None:
        category(flt.category)
    for column, value in (
        ("zone_code", flt.zone),
        ("unit_code", flt.unit),
        ("category", flt.category),
        ("state", flt.state),
        ("subdistrict_code", flt.subdistrict),
    ):
        if value is not None:
            where.append(sql.SQL("c.{} = %({})s").format(sql.Identifier(column), sql.SQL(column)))
    if flt.overdue is not None:
        where.append(sql.SQL("(c.due_at < coalesce(c.closed_at, now())) = %(overdue)s"))
    if flt.unassigned is not None:
        where.append(sql.SQL("(c.zone_code IS NULL) = %(unassigned)s"))
    if flt.supervised is not None:
        where.append(sql.SQL("(c.supervised_at IS NOT NULL) = %(supervised)s"))
    if flt.since is not None:
        where.append(sql.SQL("c.created_at >= %(since)s"))
    if flt.until is not None:
        where.append(sql.SQL("c.created_at < %(until)s"))
    values = {
        **vis.params,
        "district": district_code,
        "zone_code": flt.zone,
        "unit_code": flt.unit,
        "subdistrict_code": flt.subdistrict,
        "category": category(flt.category).code if flt.category else None,
        "state": flt.state,
        "overdue": flt.overdue,
        "unassigned": flt.unassigned,
        "supervised": flt.supervised,
        "since": flt.since,
        "until": flt.until,
    }
    return vis, where, values


def list_cases(
    principal: Principal, flt: CaseFilter, *, district_code: str, scoped_only: bool
) -> Steps[dict[str, Any]]:
    """A page of cases (GeoJSON). ``scoped_only``: staff lists hold only their scope's cases."""
    vis, where, values = _where(principal, flt, district_code=district_code, scoped_only=scoped_only)
    if flt.pin_supervised:
        query = _pinned_first(vis, where, flt)
    else:
        if flt.after is not None:
            where.append(sql.SQL("c.id < %(after)s"))
        query = _select(vis) + sql.SQL("WHERE {} ORDER BY c.id DESC LIMIT %(limit)s").format(
            sql.SQL(" AND ").join(where)
        )
    rows = yield Statement(query, {**values, "after": flt.after, "limit": flt.limit + 1, "open": list(OPEN_STATES)})
    page = rows[: flt.limit]
    more = len(rows) > flt.limit and page
    answer = {
        "type": "FeatureCollection",
        "features": [r[0] for r in page],
        "numberReturned": len(page),
        "next_after": page[-1][1] if more else None,
    }
    if flt.pin_supervised:  # the desk's cursor says in which of its two parts the page ended
        answer["next_pinned"] = bool(more and pinned(page[-1][0]["properties"]))
    return answer


_PINNED = sql.SQL("(c.supervised_at IS NOT NULL AND c.state = ANY(%(open)s))")


def pinned(props: dict[str, Any]) -> bool:
    """Whether the desk pins this case on top: supervised and still open."""
    return bool(props.get("supervised")) and props.get("state") in OPEN_STATES


def _pinned_first(vis: _Visibility, where: list[sql.Composable], flt: CaseFilter) -> sql.Composed:
    """Open supervised cases first, then the others, each newest first, as two keyset scans in one
    statement (the second runs only when the first leaves room on the page), the GeoJSON built once
    over the page they make (one projection to plan, not one per scan)."""
    after_id = sql.SQL("c.id < %(after)s")
    first = [*where, _PINNED]
    rest = [*where, sql.SQL("NOT {}").format(_PINNED)]
    if flt.after is not None and flt.after_pinned:
        first.append(after_id)
    elif flt.after is not None:
        first.append(sql.SQL("false"))
        rest.append(after_id)
    part = sql.SQL("(SELECT c.*, {} AS pin FROM cases c WHERE {} ORDER BY c.id DESC LIMIT %(limit)s)")
    page = sql.SQL("({} UNION ALL {} LIMIT %(limit)s)").format(
        part.format(sql.SQL("true"), sql.SQL(" AND ").join(first)),
        part.format(sql.SQL("false"), sql.SQL(" AND ").join(rest)),
    )
    return _select(vis, source=page) + sql.SQL("ORDER BY c.pin DESC, c.id DESC")


def case_counts(
    principal: Principal, flt: CaseFilter, *, district_code: str, scoped_only: bool
) -> Steps[dict[str, int]]:
    """How many cases of ``flt`` are in each state (the state filter itself left out, so the counts
    show where else the list could go), and ``overdue`` and ``supervised`` among the open ones; the same scope as
    :func:`list_cases`."""
    flt = CaseFilter(**{**flt.__dict__, "state": None, "after": None})
    _, where, values = _where(principal, flt, district_code=district_code, scoped_only=scoped_only)
    query = sql.SQL(
        "SELECT c.state, count(*), count(*) FILTER (WHERE c.due_at < now() AND c.closed_at IS NULL), "
        "count(*) FILTER (WHERE c.supervised_at IS NOT NULL) "
        "FROM cases c WHERE {where} GROUP BY c.state"
    ).format(where=sql.SQL(" AND ").join(where))
    rows = yield Statement(query, values)
    counts = {str(r[0]): int(r[1]) for r in rows}
    counts["overdue"] = sum(int(r[2]) for r in rows if r[0] in OPEN_STATES)
    counts["supervised"] = sum(int(r[3]) for r in rows if r[0] in OPEN_STATES)
    return counts


def locked_case(conn: psycopg.Connection, principal: Principal, code: str, district_code: str) -> tuple[Any, ...]:
    """The case row, locked, if it lies in the caller's area; 404 "not in your area" otherwise, the same
    answer as for a code that does not exist (no leak of existence)."""
    predicate, params = case_scope(principal, "c")
    stmt = sql.SQL(
        "SELECT c.id, c.state, c.category, c.unit_code, c.zone_code FROM cases c "
        "WHERE c.code = %(code)s AND c.district_code = %(district)s AND {} FOR UPDATE OF c"
    ).format(predicate)
    row = conn.execute(stmt, {**params, "code": code, "district": district_code}).fetchone()
    if row is None:
        raise not_in_your_area(code)
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
    note = trimmed_text(request.note, "note", MAX_DESCRIPTION)
    with conn.transaction():
        case_id, state, _, old_unit, _ = locked_case(conn, principal, code, district_code)
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
        if action in ("dispatch", "reopen"):  # the unit that must act now is told (geo/cases/notices.py)
            unit = conn.execute("SELECT unit_code FROM cases WHERE id = %s", [case_id]).fetchone()
            kind = {"dispatch": "dispatched", "reopen": "reopened"}[action]
            notices.notify(conn, case_id, unit[0] if unit else None, kind, note=note)
    return run(conn, case_detail(code, principal=principal, district_code=district_code))


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
            raise InvalidInput(
                f"case '{duplicate_of}' does not exist", field="duplicate_of", reason_zh=f"原事件 {duplicate_of} 不存在"
            )
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
            for unit in {old, new} - {None}:
                notices.notify(conn, case_id, unit, "overdue")
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
            "facility_layers": list(c.facility_layers),
            "facility_radius_m": c.facility_radius_m,
        }
        for c in categories().values()
    ]


def case_for_photos(conn: psycopg.Connection, principal: Principal, code: str, *, district_code: str) -> int:
    """The id of a case whose photos the caller may see and add (work roles in scope, its reporter);
    404 "not in your area" otherwise."""
    vis = _visibility(principal)
    stmt = sql.SQL("SELECT c.id FROM cases c WHERE c.code = %(code)s AND c.district_code = %(district)s AND {}").format(
        vis.full
    )
    row = conn.execute(stmt, {**vis.params, "code": code, "district": district_code}).fetchone()
    if row is None:
        raise not_in_your_area(code)
    return int(row[0])


def full_view(principal: Principal) -> tuple[sql.Composable, dict[str, Any]]:
    """The condition (on ``cases c``) and its values under which ``principal`` sees a case whole
    (photos included): :func:`case_for_photos`'s rule, for statements of other rooms."""
    vis = _visibility(principal)
    return vis.full, vis.params


def reveal_phone(conn: psycopg.Connection, principal: Principal, code: str, *, district_code: str) -> dict[str, Any]:
    """The "call" action: the reporter's whole phone number for a work role in scope, with an audit row
    saying who saw whose number and when (one transaction); 404 "not in your area" otherwise."""
    vis = _visibility(principal)
    with conn.transaction():
        row = conn.execute(
            sql.SQL(
                "SELECT c.code, c.reporter_phone FROM cases c "
                "WHERE c.code = %(code)s AND c.district_code = %(district)s AND {}"
            ).format(vis.full),
            {**vis.params, "code": code, "district": district_code},
        ).fetchone()
        if row is None:
            raise not_in_your_area(code)
        if row[1] is None:
            raise NotFound(f"case '{code}' has no reporter phone number", field="code", reason_zh="该事件未留电话")
        conn.execute(
            "INSERT INTO audit_log (district_code, actor, action, table_name, record_code, details) "
            "VALUES (%s, %s, 'case.call', 'cases', %s, %s)",
            [district_code, principal.actor, code, Jsonb({"role": principal.role})],
        )
    return {"code": code, "reporter_phone": row[1]}


def actions_for(principal: Principal, state: str) -> list[tuple[str, Move]]:
    """The moves ``principal`` may make on a case in ``state`` now (the same table :func:`act`
    checks), in table order."""
    return [(a, MOVES[a]) for a in MACHINE.allowed(state) if principal.role in MOVES[a].roles]
