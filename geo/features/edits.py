"""Single-feature edits (OGC API Features Part 4): create, replace, merge-patch, delete, restore.

Each write validates the whole resulting feature against the layer spec
(the import path's own checks), holds the row lock, compares the version the
caller saw (If-Match), writes the row and its ``feature_history`` entry in one
statement, then re-checks the spatial integrity rules; any refusal rolls the
transaction back, so bad input never half-writes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg
import shapely
import shapely.errors
from psycopg import sql
from shapely.geometry.base import BaseGeometry

from geo.access.scope import Principal, require_layer_editor
from geo.cases import workflow as cases
from geo.errors import (
    Conflict,
    InvalidInput,
    LayerNotWritable,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from geo.spatial import integrity
from geo.spatial.reference import district_boundary, reproject, unit_codes, zone_codes
from geo.spatial.validate import Problem, validate_attributes, validate_geometry
from layers.catalogue import Catalogue, LayerSpec

READ_ONLY_PROPERTIES = frozenset({"version", "updated_at"})
_ETAG = re.compile(r'^"?(\d{1,9})"?$')


@dataclass(frozen=True)
class Written:
    """The code and new version of a written feature."""

    code: str
    version: int


def check_writable(spec: LayerSpec) -> None:
    """405 for layers that Part 4 may not change, naming where their changes go."""
    if spec.change == "read-only":
        raise LayerNotWritable(
            f"图层 '{spec.name}'（{spec.title_zh}）只读：its data is loaded by an administrator with "
            "`wuye import` (or `wuye demo`), not edited through the API",
            field="collectionId",
        )
    if spec.change == "workflow":
        raise LayerNotWritable(
            f"图层 '{spec.name}'（{spec.title_zh}）由业务流程维护：change it through its workflow "
            "(cases: /cases and the Open311 API), not through feature edits",
            field="collectionId",
        )


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header names (None for '*'); 428 when the header is missing."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "this write needs If-Match with the feature's ETag (its version); GET the feature first",
            field="If-Match",
            reason_zh="修改须带上要素的版本标记（If-Match），请先读取该要素",
        )
    text = if_match.strip()
    if text == "*":
        return None
    tag = text.split(",")[0].strip()
    if tag.startswith("W/"):
        # RFC 9110 §13.1.1: If-Match uses the strong comparison, and a weak tag never matches
        raise PreconditionFailed(
            f"If-Match '{if_match}' is a weak ETag: If-Match compares strongly (RFC 9110); send the "
            "ETag as the feature's GET gave it",
            field="If-Match",
            reason_zh="If-Match 须用强校验的版本标记（不带 W/），请按读取要素时返回的 ETag 原样发送",
        )
    match = _ETAG.match(tag)
    if not match:
        raise InvalidInput(f"If-Match '{if_match}' is not an ETag of this service (e.g. \"3\")", field="If-Match")
    return int(match.group(1))


def expected_version_of(if_match: str | None, properties: Any) -> int | None:
    """The version a PUT or PATCH expects: If-Match's, else the body's ``version`` property.

    Desktop clients (QGIS's OGC API provider, for one) send no If-Match but send each feature back
    with the properties they read, ``version`` among them: that is the version they edited, so it
    guards the write as If-Match would (412 when stale). Without either the write stays 428."""
    if if_match is not None and if_match.strip():
        return expected_version(if_match)
    version = properties.get("version") if isinstance(properties, dict) else None
    if version is None:
        return expected_version(None)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 999_999_999:
        raise InvalidInput(
            f"properties.version {version!r} is not a version of this service (a whole number, e.g. 3)",
            field="properties.version",
            reason_zh="properties.version 须为要素的版本号（正整数），请按读取要素时的原值发送",
        )
    return version


# -- input --------------------------------------------------------------------------------------------
def _problems(spec: LayerSpec, problems: list[Problem]) -> InvalidInput:
    first = problems[0]
    return InvalidInput(
        f"{spec.name}: {first.field}: {first.reason}",
        field=first.field,
        problems=[{"field": p.field, "reason": p.reason} for p in problems],
    )


def _rings_closed(geometry: dict[str, Any]) -> None:
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for polygon in polygons or []:
        for ring in polygon or []:
            if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
                raise InvalidInput(
                    "geometry: every polygon ring needs at least 4 positions and must end where it starts (closed)",
                    field="geometry",
                )


def refuse_crs_member(obj: Any, field: str) -> None:
    """RFC 7946 removed GeoJSON's ``crs`` member; one sent is refused (it used to be ignored, and the
    coordinates read as CRS84), pointing at the Content-Crs header that names a CRS here."""
    if isinstance(obj, dict) and "crs" in obj:
        raise InvalidInput(
            f"{field}.crs: the GeoJSON 'crs' member is not part of RFC 7946; send CRS84 lon/lat, or name "
            "the CRS in the Content-Crs header (e.g. Content-Crs: <http://www.opengis.net/def/crs/EPSG/0/4490>)",
            field=f"{field}.crs",
            reason_zh="GeoJSON 不再支持 crs 成员（RFC 7946）：请用 CRS84 经纬度，或在 Content-Crs 请求头中注明坐标系",
        )


def check_positions(coordinates: Any, field: str = "geometry") -> None:
    """Every position of a GeoJSON ``coordinates`` array is 2 or 3 finite JSON numbers (not
    strings such as "112.95", not booleans), walked without recursion."""
    stack = [coordinates]
    while stack:
        item = stack.pop()
        if not isinstance(item, list):
            raise InvalidInput(
                f"{field} is not valid GeoJSON: coordinates {item!r} are not an array of positions", field=field
            )
        if item and all(not isinstance(v, list) for v in item):  # a position
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in item)
            if not numbers or not 2 <= len(item) <= 3:
                raise InvalidInput(
                    f"{field} is not valid GeoJSON: coordinates position {item!r} must be 2 or 3 numbers",
                    field=field,
                    reason_zh="坐标须为 2 或 3 个数字（不能是文字）",
                )
        else:
            stack.extend(item)


def parse_geometry(geometry: Any, *, srid: int, lat_first: bool, storage_srid: int) -> BaseGeometry:
    """A GeoJSON geometry object in ``srid`` → shapely in the storage CRS (lon/lat order)."""
    if not isinstance(geometry, dict) or "type" not in geometry:
        raise InvalidInput("geometry must be a GeoJSON geometry object", field="geometry")
    refuse_crs_member(geometry, "geometry")
    if geometry.get("type") == "GeometryCollection":
        for i, part in enumerate(geometry.get("geometries") or []):
            check_positions(part.get("coordinates") if isinstance(part, dict) else part, f"geometry.geometries.{i}")
    else:
        check_positions(geometry.get("coordinates"))
    _rings_closed(geometry)
    try:
        geom = shapely.from_geojson(orjson.dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError) as e:
        raise InvalidInput(f"geometry is not valid GeoJSON: {e}", field="geometry") from None
    if lat_first:
        geom = shapely.transform(geom, lambda c: c[:, ::-1])
    return reproject(np.asarray([geom], dtype=object), srid, storage_srid)[0]


def parse_feature(body: Any) -> tuple[dict[str, Any], Any]:
    """(properties, geometry object) of a GeoJSON Feature body."""
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidInput('the body must be a GeoJSON Feature ({"type": "Feature", …})', field="body")
    refuse_crs_member(body, "body")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidInput("properties must be an object", field="properties")
    return props, body.get("geometry")


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _validated(
    conn: psycopg.Connection, spec: LayerSpec, props: dict[str, Any], geom: BaseGeometry, district_code: str
) -> tuple[dict[str, Any], bytes]:
    """Normalised attribute values and the WKB geometry, or InvalidInput listing every problem."""
    unknown = sorted(set(props) - {"code", *spec.attribute_names, *READ_ONLY_PROPERTIES})
    if unknown:
        raise InvalidInput(
            f"{spec.name} has no properties {unknown}; known: {', '.join(['code', *spec.attribute_names])}",
            field="properties",
        )
    frame = pd.DataFrame([{k: v for k, v in props.items() if k not in READ_ONLY_PROPERTIES}])
    for attr in spec.attributes:  # list values must stay one cell, not spread by pandas
        if attr.name in frame and isinstance(props.get(attr.name), list):
            frame[attr.name] = pd.Series([props[attr.name]], dtype=object)
    values, problems = validate_attributes(
        spec,
        frame,
        unit_codes=unit_codes(conn, district_code),
        zone_codes=zone_codes(conn, district_code) if spec.zone_attribute else None,
    )
    geoms, geom_problems = validate_geometry(
        spec, np.asarray([geom], dtype=object), district=district_boundary(conn, district_code)
    )
    problems = sorted(problems + geom_problems)
    if problems:
        raise _problems(spec, problems)
    row = {str(k): _clean(v) for k, v in values.iloc[0].items()}
    return row, shapely.to_wkb(geoms[0])


# -- SQL pieces -------------------------------------------------------------------------------------
def properties_json(spec: LayerSpec, alias: str) -> sql.Composable:
    """A feature's properties (``code`` and every attribute) as one jsonb: the shape of
    ``feature_history``'s ``old_properties`` / ``new_properties`` (bulk imports write it too)."""
    return _props_json(spec, alias)


def _props_json(spec: LayerSpec, alias: str) -> sql.Composable:
    pairs = [sql.SQL("'code', {}").format(sql.Identifier(alias, "code"))]
    pairs += [sql.SQL("{}, {}").format(sql.Literal(a), sql.Identifier(alias, a)) for a in spec.attribute_names]
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))


def _value(spec: LayerSpec, name: str) -> sql.Composable:
    return sql.SQL("{}::{}").format(sql.Placeholder(name), sql.SQL(spec.attribute(name).sql_type))


_HISTORY_INSERT = sql.SQL(
    "INSERT INTO feature_history (district_code, layer, feature_id, feature_code, version, operation,"
    " old_geom, new_geom, old_properties, new_properties, actor) "
)


def _current(
    conn: psycopg.Connection, spec: LayerSpec, code: str, district_code: str, expected: int | None = None
) -> tuple[Any, ...]:
    """(id, version, properties, WKB) of the feature, locked for the write; 404 when there is none,
    412 when ``expected`` (If-Match) is not its version or names a version deleted since."""
    stmt = sql.SQL(
        "SELECT t.id, t.version, {props}, ST_AsBinary(t.geom) FROM {table} AS t "
        "WHERE t.code = %s AND t.district_code = %s FOR UPDATE"
    ).format(props=_props_json(spec, "t"), table=sql.Identifier(spec.table))
    row = conn.execute(stmt, [code, district_code]).fetchone()
    if row is None:
        _gone_since(conn, spec, code, district_code, expected)
        raise NotFound(f"collection '{spec.name}' has no feature '{code}'", field="featureId")
    _check_version(spec, code, int(row[1]), expected)
    return tuple(row)


def _gone_since(conn: psycopg.Connection, spec: LayerSpec, code: str, district_code: str, expected: int | None) -> None:
    """412, not 404, for a write whose If-Match names a version of a feature deleted since (the
    losers of a race with a DELETE wait on the row lock, then find the row gone: RFC 9110 13.1.1)."""
    if expected is None:
        return
    deleted = conn.execute(
        "SELECT version FROM feature_history WHERE district_code = %s AND layer = %s AND feature_code = %s "
        "AND operation = 'delete' ORDER BY id DESC LIMIT 1",
        [district_code, spec.name, code],
    ).fetchone()
    if deleted is not None:
        raise PreconditionFailed(
            f"{spec.name} '{code}' was deleted since version {expected}: GET the collection again",
            field="If-Match",
            current_version=int(deleted[0]),
        )


INSPECTED = "condition"  # a facility's condition is its latest inspection's, never a Part 4 edit's
# … and so is its defect (roads, manholes), which an inspection sets with the condition
INSPECTED_ATTRIBUTES = (INSPECTED, "defect")


def _keep_inspected(spec: LayerSpec, props: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """Facility layers: refuse a ``condition`` (or ``defect``) that differs from the inspected one, and
    keep that one; a new facility starts with the attribute's default."""
    if not spec.facility:
        return props
    kept = dict(props)
    for name in INSPECTED_ATTRIBUTES:
        if name not in spec.attribute_names:
            continue
        attr = spec.attribute(name)
        have = current.get(name) if current is not None else attr.default
        given = props.get(name)
        differs = given != have and (attr.values is None or attr.values.get(str(have)) != given)
        if name in props and differs and (given is not None or name != INSPECTED):
            raise InvalidInput(
                f"{name} follows the latest inspection (now '{have}'): record an inspection "
                "(POST /inspections or `wuye inspect record`) instead of editing it",
                field=name,
                reason_zh=f"{attr.title_zh}以最近一次巡查为准（现为「{have or '无'}」），请登记巡查，不能直接修改",
            )
        kept[name] = have
    return kept


def _check_version(spec: LayerSpec, code: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"{spec.name} '{code}' is at version {current}, not {expected}: "
            "someone changed it since you read it; GET it again",
            field="If-Match",
            reason_zh=f"{code} 已被他人修改（现为第 {current} 版），请刷新后重试",
            current_version=current,
        )


def _check_integrity(
    conn: psycopg.Connection, catalogue: Catalogue, spec: LayerSpec, code: str, district_code: str
) -> None:
    """Refuse (409) an edit that leaves this feature overlapping or outside its parent, or a child outside it."""
    found = integrity.outside_parent(conn, catalogue, spec, district_code=district_code, code=code)
    found += integrity.overlaps(conn, spec, district_code=district_code, code=code)
    for name in catalogue:
        child = catalogue[name]
        if child.parent is not None and child.parent.layer == spec.name:
            found += [
                v
                for v in integrity.outside_parent(conn, catalogue, child, district_code=district_code)
                if v.other_code == code
            ]
    if found:
        raise Conflict(
            "; ".join(v.describe() for v in found),
            field="geometry",
            reason_zh="图形冲突：" + "；".join(v.describe() for v in found),
            violations=[
                {
                    "kind": v.kind,
                    "layer": v.layer,
                    "code": v.code,
                    "other_layer": v.other_layer,
                    "other_code": v.other_code,
                    "area_m2": v.area_m2,
                }
                for v in found
            ],
        )


def _reroute(conn: psycopg.Connection, spec: LayerSpec, feature_id: int, *, district_code: str, actor: str) -> None:
    """After an edit of a layer that routing reads, re-assign the open cases in the old and new area."""
    if spec.name not in cases.ROUTING_LAYERS:
        return
    row = conn.execute(
        "SELECT ST_AsBinary(ST_Union(coalesce(old_geom, new_geom), coalesce(new_geom, old_geom))), feature_code "
        "FROM feature_history WHERE layer = %s AND feature_id = %s ORDER BY id DESC LIMIT 1",
        [spec.name, feature_id],
    ).fetchone()
    if row is not None and row[0] is not None:
        cases.reassign_within(
            conn,
            bytes(row[0]),
            district_code=district_code,
            actor=actor,
            reason=f"{spec.title_zh} {row[1]} 已修改 ({spec.name} edited)",
        )


def _assignments(spec: LayerSpec, values: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    names = [a for a in spec.attribute_names if a in values]
    return names, {n: values[n] for n in names}


# -- operations ---------------------------------------------------------------------------------------
def create(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    props: dict[str, Any],
    geom: BaseGeometry,
    *,
    district_code: str,
    principal: Principal,
) -> Written:
    """Insert a new feature (version 1) and its history row."""
    require_layer_editor(principal)
    check_writable(spec)
    with conn.transaction():
        values, wkb = _validated(conn, spec, _keep_inspected(spec, props, None), geom, district_code)
        names, params = _assignments(spec, values)
        stmt = sql.SQL(
            "WITH ins AS (INSERT INTO {table} AS t (code, district_code, {cols}, geom) "
            " VALUES (%(code)s, %(district)s, {vals}, ST_SetSRID(ST_GeomFromWKB(%(wkb)s), {srid})) "
            " ON CONFLICT (code) DO NOTHING RETURNING t.*), "
            "h AS ({history} SELECT %(district)s, %(layer)s, ins.id, ins.code, ins.version, 'insert',"
            " NULL, ins.geom, NULL, {props}, %(actor)s FROM ins) "
            "SELECT version, id FROM ins"
        ).format(
            table=sql.Identifier(spec.table),
            cols=sql.SQL(", ").join(map(sql.Identifier, names)),
            vals=sql.SQL(", ").join(_value(spec, n) for n in names),
            srid=sql.Literal(spec.srid),
            props=_props_json(spec, "ins"),
            history=_HISTORY_INSERT,
        )
        row = conn.execute(
            stmt,
            {
                **params,
                "code": values["code"],
                "district": district_code,
                "wkb": wkb,
                "layer": spec.name,
                "actor": principal.actor,
            },
        ).fetchone()
        if row is None:
            raise Conflict(f"{spec.name} already has a feature '{values['code']}'", field="code")
        _check_integrity(conn, catalogue, spec, values["code"], district_code)
        _reroute(conn, spec, int(row[1]), district_code=district_code, actor=principal.actor)
    return Written(values["code"], int(row[0]))


def _update(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    feature_id: int,
    code: str,
    values: dict[str, Any],
    wkb: bytes,
    *,
    district_code: str,
    actor: str,
    operation: str,
) -> int:
    names, params = _assignments(spec, values)
    assign = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), _value(spec, n)) for n in names)
    stmt = sql.SQL(
        "WITH old AS (SELECT t.id, t.geom, {old_props} AS props FROM {table} AS t WHERE t.id = %(id)s), "
        "upd AS (UPDATE {table} AS t SET {assign}, geom = ST_SetSRID(ST_GeomFromWKB(%(wkb)s), {srid}), "
        " version = t.version + 1, updated_at = now() FROM old WHERE t.id = old.id "
        " RETURNING t.id, t.code, t.version, t.geom, {new_props} AS props), "
        "h AS ({history} SELECT %(district)s, %(layer)s, upd.id, upd.code, upd.version, "
        " %(operation)s, old.geom, upd.geom, old.props, upd.props, %(actor)s FROM old, upd) "
        "SELECT version FROM upd"
    ).format(
        old_props=_props_json(spec, "t"),
        new_props=_props_json(spec, "t"),
        table=sql.Identifier(spec.table),
        assign=assign,
        srid=sql.Literal(spec.srid),
        history=_HISTORY_INSERT,
    )
    row = conn.execute(
        stmt,
        {
            **params,
            "id": feature_id,
            "wkb": wkb,
            "district": district_code,
            "layer": spec.name,
            "operation": operation,
            "actor": actor,
        },
    ).fetchone()
    assert row is not None
    _check_integrity(conn, catalogue, spec, code, district_code)
    _reroute(conn, spec, feature_id, district_code=district_code, actor=actor)
    return int(row[0])


def _rewrite(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    feature_id: int,
    code: str,
    props: dict[str, Any],
    geom: BaseGeometry,
    district_code: str,
    principal: Principal,
    operation: str = "update",
) -> Written:
    """The tail of PUT, PATCH and restore: validate the new state and write it as the next version."""
    values, wkb = _validated(conn, spec, props, geom, district_code)
    full = {a: values.get(a) for a in spec.attribute_names} | {"code": code}
    new = _update(
        conn,
        catalogue,
        spec,
        feature_id,
        code,
        full,
        wkb,
        district_code=district_code,
        actor=principal.actor,
        operation=operation,
    )
    return Written(code, new)


def replace(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    code: str,
    props: dict[str, Any],
    geom: BaseGeometry,
    *,
    expected: int | None,
    district_code: str,
    principal: Principal,
) -> Written:
    """PUT: the feature becomes exactly the body (absent optional attributes become empty)."""
    require_layer_editor(principal)
    check_writable(spec)
    if props.get("code", code) != code:
        raise InvalidInput(f"code '{props['code']}' in the body differs from '{code}' in the URL", field="code")
    with conn.transaction():
        feature_id, _, current, _ = _current(conn, spec, code, district_code, expected)
        props = _keep_inspected(spec, {**props, "code": code}, current)
        return _rewrite(conn, catalogue, spec, feature_id, code, props, geom, district_code, principal)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def update(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    code: str,
    patch: dict[str, Any],
    geom: BaseGeometry | None,
    *,
    expected: int | None,
    district_code: str,
    principal: Principal,
) -> Written:
    """PATCH (JSON merge patch): properties merged into the current ones; geometry replaced if given."""
    require_layer_editor(principal)
    check_writable(spec)
    patch_props = patch.get("properties") or {}
    if not isinstance(patch_props, dict):
        raise InvalidInput("properties must be an object", field="properties")
    if "code" in patch_props and patch_props["code"] != code:
        raise InvalidInput("code cannot be changed (it is the feature's id)", field="code")
    with conn.transaction():
        feature_id, _, current, wkb = _current(conn, spec, code, district_code, expected)
        # a null in a merge patch removes the member: say so to the check, which refuses clearing a defect
        cleared = {k: None for k in INSPECTED_ATTRIBUTES if k in patch_props and patch_props[k] is None}
        props = _keep_inspected(spec, {**merge_patch(current, patch_props), **cleared}, current)
        shape = geom if geom is not None else shapely.from_wkb(bytes(wkb))
        return _rewrite(conn, catalogue, spec, feature_id, code, props, shape, district_code, principal)


def delete(
    conn: psycopg.Connection,
    spec: LayerSpec,
    code: str,
    *,
    expected: int | None,
    district_code: str,
    principal: Principal,
) -> None:
    """Remove the feature; its history keeps the last state (operation 'delete')."""
    require_layer_editor(principal)
    check_writable(spec)
    with conn.transaction():
        feature_id, *_ = _current(conn, spec, code, district_code, expected)
        stmt = sql.SQL(
            "WITH del AS (DELETE FROM {table} AS t WHERE t.id = %(id)s "
            " RETURNING t.id, t.code, t.version, t.geom, {props} AS props) "
            "{history} SELECT %(district)s, %(layer)s, del.id, del.code, del.version + 1, 'delete', "
            " del.geom, NULL, del.props, NULL, %(actor)s FROM del"
        ).format(table=sql.Identifier(spec.table), props=_props_json(spec, "t"), history=_HISTORY_INSERT)
        conn.execute(stmt, {"id": feature_id, "district": district_code, "layer": spec.name, "actor": principal.actor})
        _reroute(conn, spec, feature_id, district_code=district_code, actor=principal.actor)


def restore(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    spec: LayerSpec,
    code: str,
    version: int,
    *,
    expected: int | None,
    district_code: str,
    principal: Principal,
) -> Written:
    """Make an earlier version current again, as a new version (operation 'restore')."""
    require_layer_editor(principal)
    check_writable(spec)
    with conn.transaction():
        feature_id, _, current, _ = _current(conn, spec, code, district_code, expected)
        # Version N is the new state of the edit that made it, or (for a version an import made,
        # which has no row of its own) the old state of the edit that came after it.
        row = conn.execute(
            "SELECT props, ST_AsBinary(geom) FROM ("
            " SELECT id, 0 AS pref, new_properties AS props, new_geom AS geom FROM feature_history"
            "  WHERE layer = %(layer)s AND feature_id = %(id)s AND version = %(v)s"
            " UNION ALL SELECT id, 1, old_properties, old_geom FROM feature_history"
            "  WHERE layer = %(layer)s AND feature_id = %(id)s AND version = %(v)s + 1) s "
            "WHERE geom IS NOT NULL ORDER BY pref, id DESC LIMIT 1",
            {"layer": spec.name, "id": feature_id, "v": version},
        ).fetchone()
        if row is None:
            raise NotFound(f"{spec.name} '{code}' has no recorded version {version}; see its history", field="version")
        props, wkb = row
        # an old version's geometry and attributes come back, not its condition (inspections own it)
        inspected = (
            {k: current.get(k) for k in INSPECTED_ATTRIBUTES if k in current} if spec.facility and current else {}
        )
        restored = {**dict(props), **inspected}
        props = _keep_inspected(spec, restored, current)
        shape = shapely.from_wkb(bytes(wkb))
        return _rewrite(conn, catalogue, spec, feature_id, code, props, shape, district_code, principal, "restore")


def history(conn: psycopg.Connection, spec: LayerSpec, code: str, *, district_code: str) -> bytes:
    """Every recorded version of a feature, oldest first, as JSON bytes (geometries in CRS84)."""
    row = conn.execute(
        "SELECT convert_to(coalesce(json_agg(json_build_object("
        " 'version', h.version, 'operation', h.operation, 'actor', h.actor, 'changed_at', h.changed_at,"
        " 'properties', h.new_properties, 'old_properties', h.old_properties,"
        " 'geometry', ST_AsGeoJSON(ST_Transform(h.new_geom, 4326), 7, 0)::json,"
        " 'old_geometry', ST_AsGeoJSON(ST_Transform(h.old_geom, 4326), 7, 0)::json)"
        " ORDER BY h.version, h.id), '[]'::json)::text, 'UTF8') "
        "FROM feature_history h WHERE h.layer = %s AND h.feature_code = %s AND h.district_code = %s",
        [spec.name, code, district_code],
        binary=True,
    ).fetchone()
    assert row is not None
    if bytes(row[0]) == b"[]":
        exists = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE code = %s AND district_code = %s").format(sql.Identifier(spec.table)),
            [code, district_code],
        ).fetchone()
        if exists is None:
            raise NotFound(f"collection '{spec.name}' has no feature '{code}'", field="featureId")
    return bytes(row[0])
