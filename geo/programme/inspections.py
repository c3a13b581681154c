"""Maintenance records (巡查/维护): inspections per facility.

A facility's ``condition`` is its latest inspection's (latest date, then latest
record): every write here updates the facility rows it touched, set-based, in
the same transaction. Closing a case linked to a facility records an
inspection (:func:`record_for_case`, passed to ``geo.cases.workflow.act`` by the API).

Scope: a zone-scoped caller records and reads inspections only of facilities
lying in a zone they act in (:func:`geo.access.area_scope` in the WHERE
clause); anything else is 404, as if it did not exist. Administrators (and the
``wuye`` command line, which acts as one) work district-wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from geo.access.scope import UNSCOPED_ROLES, Principal, area_scope
from geo.errors import InvalidInput, NotFound
from geo.io.tabular import blank, parse_date, read_table, rejection
from geo.spatial.validate import Problem
from geo.workcal import today
from layers.catalogue import OPEN_CASE_STATES, Catalogue, load_catalogue, vocabulary

CONDITIONS: dict[str, str] = vocabulary("conditions").zh  # key -> Chinese label (layers/vocabulary.toml)
# Column names survey and maintenance teams use, mapped to ours.
COLUMNS: dict[str, tuple[str, ...]] = {
    "facility_layer": ("facility_layer", "layer", "图层", "部件类型"),
    "facility_code": ("facility_code", "code", "部件编码", "编码"),
    "inspected_on": ("inspected_on", "date", "日期", "巡查日期"),
    "inspector": ("inspector", "巡查人", "检查人"),
    "condition": ("condition", "状况", "状态"),
    "note": ("note", "备注"),
    "photo": ("photo", "照片"),
    "defect": ("defect", "问题", "病害", "缺陷"),
}
DEFECT = "defect"  # a layer's own defect attribute (roads, manholes), set by inspections with the condition


@dataclass(frozen=True)
class Inspection:
    """One maintenance record, validated."""

    facility_layer: str
    facility_code: str
    inspected_on: date
    inspector: str
    condition: str
    note: str | None = None
    photo: str | None = None
    defect: str | None = None  # a key of the layer's defect vocabulary (or its Chinese label)


def defect_code(layer: str, value: str | None) -> tuple[str | None, str | None]:
    """(the defect key, None) for a defect of the layer given as key or Chinese label, (None, None) for
    none, or (None, the reason) when the layer has no defect attribute or the value is not one of its."""
    if value is None or not value.strip():
        return None, None
    spec = load_catalogue()[layer]
    if DEFECT not in spec.attribute_names:
        return None, f"layer '{layer}' records no defect"
    attr = spec.attribute(DEFECT)
    values = attr.values or {}
    value = value.strip()
    key = value if value in values else next((k for k, v in values.items() if v == value), None)
    if key is None:
        return None, f"defect '{value}' is not one of " + ", ".join(f"{k} ({v})" for k, v in values.items())
    return key, None


def facility_layers(catalogue: Catalogue | None = None) -> list[str]:
    """The catalogue's facility layers (部件)."""
    cat = catalogue or load_catalogue()
    return [name for name, spec in cat.items() if spec.facility]


def condition_code(value: str) -> str | None:
    """The condition key for a key or its Chinese label; None when neither."""
    value = value.strip()
    if value in CONDITIONS:
        return value
    return next((k for k, v in CONDITIONS.items() if v == value), None)


def _visible(principal: Principal, layer: str) -> tuple[sql.Composable, dict[str, Any]]:
    """``FROM layer f WHERE`` predicate: the facilities the caller may inspect."""
    predicate, params = area_scope(principal, sql.SQL("f.geom"))
    return sql.SQL("{t} f WHERE {p}").format(t=sql.Identifier(layer), p=predicate), params


def _check_one(conn: psycopg.Connection, principal: Principal, item: Inspection) -> Inspection:
    if item.facility_layer not in facility_layers():
        raise InvalidInput(
            f"layer '{item.facility_layer}' is not a facility layer; allowed: {', '.join(facility_layers())}",
            field="facility_layer",
        )
    condition = condition_code(item.condition)
    if condition is None:
        raise InvalidInput(
            f"condition '{item.condition}' is not one of " + ", ".join(f"{k} ({v})" for k, v in CONDITIONS.items()),
            field="condition",
        )
    defect, wrong = defect_code(item.facility_layer, item.defect)
    if wrong:
        raise InvalidInput(wrong, field="defect")
    if item.inspected_on > today():
        raise InvalidInput(f"inspected_on {item.inspected_on} is in the future", field="inspected_on")
    if not item.inspector.strip():
        raise InvalidInput("inspector is required", field="inspector")
    visible, params = _visible(principal, item.facility_layer)
    stmt = sql.SQL("SELECT 1 FROM {} AND f.code = %(code)s").format(visible)
    if conn.execute(stmt, {**params, "code": item.facility_code}).fetchone() is None:
        raise NotFound(f"{item.facility_layer} '{item.facility_code}' does not exist", field="facility_code")
    return Inspection(
        item.facility_layer,
        item.facility_code,
        item.inspected_on,
        item.inspector.strip(),
        condition,
        item.note,
        item.photo,
        defect,
    )


def record(
    conn: psycopg.Connection,
    principal: Principal,
    item: Inspection,
    *,
    district_code: str,
    actor: str,
    source: str = "api",
    case_id: int | None = None,
) -> dict[str, Any]:
    """Record one inspection of a facility in the caller's scope and refresh the facility's
    condition, in one transaction."""
    item = _check_one(conn, principal, item)
    with conn.transaction():
        _insert(conn, [item], district_code=district_code, actor=actor, source=source, case_id=case_id)
        _refresh(conn, item.facility_layer, [item.facility_code])
    return history(conn, principal, item.facility_layer, item.facility_code, limit=1)["inspections"][0]


def _insert(
    conn: psycopg.Connection,
    items: list[Inspection],
    *,
    district_code: str,
    actor: str,
    source: str,
    case_id: int | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO inspections (district_code, facility_layer, facility_code, inspected_on, inspector, "
            "condition, note, photo, case_id, source, actor, defect) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    district_code,
                    i.facility_layer,
                    i.facility_code,
                    i.inspected_on,
                    i.inspector,
                    i.condition,
                    i.note,
                    i.photo,
                    case_id,
                    source,
                    actor,
                    i.defect,
                )
                for i in items
            ],
        )


def _refresh(conn: psycopg.Connection, layer: str, codes: list[str]) -> None:
    """Set each facility's condition (its defect, for layers with one, and last_maintained) to its
    latest inspection's, bumping its version."""
    has_defect = DEFECT in load_catalogue()[layer].attribute_names
    defect = sql.SQL(", defect = l.defect" if has_defect else "")
    changed = sql.SQL(" OR f.defect IS DISTINCT FROM l.defect" if has_defect else "")
    stmt = sql.SQL(
        "UPDATE {t} f SET condition = l.condition{defect}, "
        " last_maintained = greatest(f.last_maintained, l.inspected_on), version = f.version + 1, updated_at = now() "
        "FROM (SELECT DISTINCT ON (facility_code) facility_code, condition, defect, inspected_on FROM inspections "
        "      WHERE facility_layer = %(layer)s AND facility_code = ANY(%(codes)s) "
        "      ORDER BY facility_code, inspected_on DESC, id DESC) l "
        "WHERE f.code = l.facility_code AND (f.condition IS DISTINCT FROM l.condition{changed} "
        " OR f.last_maintained IS DISTINCT FROM greatest(f.last_maintained, l.inspected_on))"
    ).format(t=sql.Identifier(layer), defect=defect, changed=changed)
    conn.execute(stmt, {"layer": layer, "codes": codes})


def history(
    conn: psycopg.Connection, principal: Principal, layer: str, code: str, *, limit: int = 100
) -> dict[str, Any]:
    """A facility's current condition and its inspections, newest first (facilities in the caller's scope)."""
    if layer not in facility_layers():
        raise NotFound(f"layer '{layer}' is not a facility layer", field="layer")
    visible, params = _visible(principal, layer)
    stmt = sql.SQL("SELECT f.condition FROM {} AND f.code = %(code)s").format(visible)
    row = conn.execute(stmt, {**params, "code": code}).fetchone()
    if row is None:
        raise NotFound(f"{layer} '{code}' does not exist", field="code")
    rows = conn.execute(
        "SELECT i.id, i.inspected_on, i.inspector, i.condition, i.note, i.photo, c.code, i.source, i.created_at, "
        "i.defect "
        "FROM inspections i LEFT JOIN cases c ON c.id = i.case_id "
        "WHERE i.facility_layer = %s AND i.facility_code = %s ORDER BY i.inspected_on DESC, i.id DESC LIMIT %s",
        [layer, code, limit],
    ).fetchall()
    return {
        "facility_layer": layer,
        "facility_code": code,
        "condition": row[0],
        "condition_zh": CONDITIONS.get(row[0]),
        "inspections": [
            {
                "id": r[0],
                "inspected_on": r[1].isoformat(),
                "inspector": r[2],
                "condition": r[3],
                "condition_zh": CONDITIONS[r[3]],
                "note": r[4],
                "photo": r[5],
                "case_code": r[6],
                "source": r[7],
                "recorded_at": r[8].isoformat(),
                "defect": r[9],
            }
            for r in rows
        ],
    }


def record_for_case(conn: psycopg.Connection, case_id: int, *, district_code: str, actor: str) -> bool:
    """Closing (verifying) a case linked to a facility records a 'normal' inspection of it, in the
    caller's transaction. Returns whether one was recorded."""
    row = conn.execute("SELECT facility_layer, facility_code, code FROM cases WHERE id = %s", [case_id]).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return False
    layer, code, case_code = row
    item = Inspection(layer, code, today(), actor, "normal", note=f"事件 {case_code} 核查结案 (case verified)")
    _insert(conn, [item], district_code=district_code, actor=actor, source="case", case_id=case_id)
    _refresh(conn, layer, [code])
    return True


def case_recorder(*, district_code: str, actor: str) -> Callable[[psycopg.Connection, int], bool]:
    """The ``on_verified`` hook of :func:`geo.cases.workflow.act`: records the closing inspection."""
    return lambda conn, case_id: record_for_case(conn, case_id, district_code=district_code, actor=actor)


def import_file(conn: psycopg.Connection, principal: Principal, path: Path, *, district_code: str, actor: str) -> int:
    """Import a CSV/XLSX of inspections: every row validated first; one bad row rejects the file
    (``ImportRejected`` with row-level problems), a facility outside the caller's zones too.
    Returns the number recorded."""
    frame = read_table(path, COLUMNS)
    items, problems = _validate_frame(conn, principal, frame)
    if problems:
        raise rejection("inspections", problems, len(frame))
    with conn.transaction():
        _insert(conn, items, district_code=district_code, actor=actor, source="import")
        for layer in {i.facility_layer for i in items}:
            _refresh(conn, layer, sorted({i.facility_code for i in items if i.facility_layer == layer}))
    return len(items)


def _validate_frame(
    conn: psycopg.Connection, principal: Principal, frame: pd.DataFrame
) -> tuple[list[Inspection], list[Problem]]:
    problems: list[Problem] = []
    layers = facility_layers()
    known: dict[str, set[str]] = {}
    for layer in set(frame["facility_layer"].dropna().astype(str).str.strip()) & set(layers):
        rows = frame["facility_layer"].astype(str).str.strip() == layer
        codes = [c.strip() for c in frame.loc[rows, "facility_code"].dropna().astype(str)]
        visible, params = _visible(principal, layer)
        stmt = sql.SQL("SELECT f.code FROM {} AND f.code = ANY(%(codes)s)").format(visible)
        known[layer] = {r[0] for r in conn.execute(stmt, {**params, "codes": codes})}
    # Not "outside your zones": a scoped caller learns nothing about facilities beyond their scope.
    missing = "does not exist" if principal.role in UNSCOPED_ROLES else "does not exist in the zones you act in"
    items = []
    now = today()
    for i, values in enumerate(frame.to_dict("records"), start=1):
        layer = "" if blank(values["facility_layer"]) else str(values["facility_layer"]).strip()
        code = "" if blank(values["facility_code"]) else str(values["facility_code"]).strip()
        before = len(problems)
        if layer not in layers:
            problems.append(Problem(i, "facility_layer", f"'{layer}' is not a facility layer ({', '.join(layers)})"))
        elif not code:
            problems.append(Problem(i, "facility_code", "missing"))
        elif code not in known.get(layer, set()):
            problems.append(Problem(i, "facility_code", f"{layer} '{code}' {missing}"))
        on = parse_date(values["inspected_on"], i, "inspected_on", problems, not_after=now)
        inspector = "" if blank(values["inspector"]) else str(values["inspector"]).strip()
        if not inspector:
            problems.append(Problem(i, "inspector", "missing"))
        defect: str | None = None
        if layer in layers and not blank(values.get("defect")):
            defect, wrong = defect_code(layer, str(values["defect"]))
            if wrong:
                problems.append(Problem(i, "defect", wrong))
        raw = "" if blank(values["condition"]) else str(values["condition"])
        condition = condition_code(raw)
        if condition is None:
            problems.append(Problem(i, "condition", f"'{raw}' is not one of {', '.join(CONDITIONS.values())}"))
        if len(problems) == before and on is not None and condition is not None:
            items.append(
                Inspection(
                    layer,
                    code,
                    on,
                    inspector,
                    condition,
                    None if blank(values["note"]) else str(values["note"]),
                    None if blank(values["photo"]) else str(values["photo"]),
                    defect,
                )
            )
    return items, problems


def condition_counts(
    conn: psycopg.Connection, *, district_code: str, zone_code: str | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """zone → facility layer → condition → count: points and polygons by spatial join (facility inside
    the zone), line features by their one zone (``zone_code``: a wall on two zones counts once)."""
    cat = load_catalogue()
    by_code = "f.zone_code = z.code"
    by_place = "ST_Intersects(f.geom, z.geom)"
    parts = [
        sql.SQL(
            "SELECT z.code, {name}::text, f.condition, count(*) FROM zones z JOIN {t} f "
            "ON {on} WHERE z.district_code = %(district)s "
            "AND (%(zone)s::text IS NULL OR z.code = %(zone)s) GROUP BY 1, 2, 3"
        ).format(
            name=sql.Literal(layer),
            t=sql.Identifier(layer),
            on=sql.SQL(by_code if cat[layer].zone_attribute else by_place),
        )
        for layer in facility_layers(cat)
    ]
    out: dict[str, dict[str, dict[str, int]]] = {}
    for zone, layer, condition, n in conn.execute(
        sql.SQL(" UNION ALL ").join(parts), {"district": district_code, "zone": zone_code}
    ):
        out.setdefault(zone, {}).setdefault(layer, {})[condition] = int(n)
    return out


FAULTS = ("faulty", "repairing")  # what the facility-faults page lists (故障、维修中)


def faults(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    layer: str | None = None,
    condition: str | None = None,
    limit: int = 300,
    after: str | None = None,
) -> dict[str, Any]:
    """The faulty and under-repair facilities in the caller's area (:func:`area_scope`), by layer then
    code: each with its zone, a point to show it on a map, its last inspection and the codes of the
    open cases linked to it. ``layer`` and ``condition`` narrow the list (400 naming the field when
    unknown); at most ``limit`` rows from the one after ``after`` (``layer/code`` of the last row of the
    previous page; ``next_after`` names the next page's), with the total and the count of each layer."""
    layers = facility_layers()
    if layer is not None and layer not in layers:
        raise InvalidInput(f"layer '{layer}' is not a facility layer; allowed: {', '.join(layers)}", field="layer")
    if condition is not None and condition not in FAULTS:
        raise InvalidInput(f"condition '{condition}' is not one of {', '.join(FAULTS)}", field="condition")
    after_order, after_code = _cursor(after, layers)
    wanted = [condition] if condition else list(FAULTS)
    # Every layer's faulty facilities first (a plain union), then the caller's area once over them: the
    # area predicate planned in each branch of the union cost ~20 ms of planning per layer
    # (bench/supervision.py); then the last inspection and open cases of the rows shown only.
    scope, scope_params = area_scope(principal, sql.SQL("x.geom"))
    parts = [_faults_of(name) for name in ([layer] if layer else layers)]
    stmt = sql.SQL(
        "WITH x AS MATERIALIZED ({parts}), "
        "shown AS MATERIALIZED (SELECT * FROM x WHERE {scope}), "
        "per_layer AS (SELECT json_object_agg(layer, n) AS n FROM (SELECT layer, count(*) AS n FROM shown "
        " GROUP BY layer) l), "
        "page AS (SELECT * FROM shown WHERE %(after_order)s::int IS NULL "
        " OR (layer_order, code) > (%(after_order)s::int, %(after_code)s::text) "
        " ORDER BY layer_order, code LIMIT %(limit)s + 1) "
        "SELECT p.layer_order, p.layer, p.code, p.condition, "
        " coalesce(p.zone, (SELECT z.code FROM zones z WHERE ST_Intersects(z.geom, p.geom) ORDER BY z.code LIMIT 1)), "
        " ST_X(ST_PointOnSurface(p.geom)), ST_Y(ST_PointOnSurface(p.geom)), i.inspected_on, i.inspector, i.condition, "
        " (SELECT array_agg(c.code ORDER BY c.id DESC) FROM cases c WHERE c.facility_layer = p.layer "
        "  AND c.facility_code = p.code AND c.state = ANY(%(open)s)), "
        " (SELECT n FROM per_layer) "
        "FROM page p LEFT JOIN LATERAL (SELECT inspected_on, inspector, condition FROM inspections "
        " WHERE facility_layer = p.layer AND facility_code = p.code ORDER BY inspected_on DESC, id DESC LIMIT 1) i "
        "ON true ORDER BY p.layer_order, p.code"
    ).format(parts=sql.SQL(" UNION ALL ").join(parts), scope=scope)
    params = {
        **scope_params,
        "district": district_code,
        "wanted": wanted,
        "open": list(OPEN_CASE_STATES),
        "limit": limit,
        "after_order": after_order,
        "after_code": after_code,
    }
    rows = conn.execute(stmt, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows and after is not None:  # past the end: the counts all the same
        counted = faults(conn, principal, district_code=district_code, layer=layer, condition=condition, limit=1)
        return {**counted, "items": [], "next_after": None}
    cat = load_catalogue()
    by_layer: dict[str, int] = rows[0][-1] if rows else {}
    return {
        "total": sum(by_layer.values()),
        "next_after": f"{rows[-1][1]}/{rows[-1][2]}" if more else None,
        "by_layer": {name: by_layer[name] for name in layers if name in by_layer},
        "items": [
            {
                "layer": r[1],
                "layer_zh": cat[r[1]].title_zh,
                "layer_en": cat[r[1]].title_en,
                "code": r[2],
                "condition": r[3],
                "zone": r[4],
                "lon": r[5],
                "lat": r[6],
                "last_inspected_on": r[7].isoformat() if r[7] else None,
                "last_inspector": r[8],
                "last_condition": r[9],
                "open_cases": list(r[10] or []),
            }
            for r in rows
        ],
    }


def _cursor(after: str | None, layers: list[str]) -> tuple[int | None, str | None]:
    """``layer/code`` of the previous page's last row as (layer order, code); 400 naming ``after``."""
    if after is None:
        return None, None
    layer, _, code = after.partition("/")
    if layer not in layers or not code:
        raise InvalidInput(
            "after must be 'layer/code' of the last row of the previous page",
            field="after",
            reason_zh="翻页参数 after 应为上一页最后一行的“图层/编码”",
        )
    return load_catalogue()[layer].order, code


def _faults_of(layer: str) -> sql.Composed:
    """One layer's faulty facilities for :func:`faults` (order, layer, code, condition, its zone when the
    layer records one, geometry)."""
    spec = load_catalogue()[layer]
    zone = sql.SQL("f.zone_code") if spec.zone_attribute else sql.SQL("NULL::text")
    return sql.SQL(
        "SELECT {order}::int AS layer_order, {name}::text AS layer, f.code, f.condition, {zone} AS zone, f.geom "
        "FROM {t} f WHERE f.district_code = %(district)s AND f.condition = ANY(%(wanted)s)"
    ).format(order=sql.Literal(spec.order), name=sql.Literal(layer), zone=zone, t=sql.Identifier(layer))


def facility_place(conn: psycopg.Connection, principal: Principal, layer: str, code: str) -> dict[str, Any]:
    """A facility in the caller's area: its condition, a point on it (lon, lat) and the open cases
    linked to it; 404 as if it did not exist otherwise."""
    if layer not in facility_layers():
        raise NotFound(f"layer '{layer}' is not a facility layer", field="layer")
    visible, params = _visible(principal, layer)
    row = conn.execute(
        sql.SQL(
            "SELECT f.condition, ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom)), "
            "(SELECT array_agg(c.code ORDER BY c.id DESC) FROM cases c WHERE c.facility_layer = %(layer)s "
            " AND c.facility_code = f.code AND c.state = ANY(%(open)s)) FROM {} AND f.code = %(code)s"
        ).format(visible),
        {**params, "layer": layer, "code": code, "open": list(OPEN_CASE_STATES)},
    ).fetchone()
    if row is None:
        raise NotFound(f"{layer} '{code}' does not exist", field="code")
    return {"condition": row[0], "lon": row[1], "lat": row[2], "open_cases": list(row[3] or [])}
