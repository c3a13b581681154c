"""CQL2 (text and JSON) filters to SQL with bound values, via pygeofilter's parsers.

pygeofilter parses; this module walks its AST and emits ``psycopg.sql``
pieces. Property names must be queryables of the layer (identifiers come
from the catalogue, never from the request); every literal is a bound value.
Spatial literals are in ``filter-crs`` (CRS84 by default) and transformed
to the storage CRS in SQL.

Custom function (listed at ``/functions``): ``distance_m(geometry, geometry)``
is the distance in metres, measured in EPSG:4547; compared with ``<`` or
``<=`` a number it becomes an index-assisted ``ST_DWithin``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import lark
import shapely
import shapely.errors
from psycopg import sql
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parse as parse_text

from geo.errors import InvalidInput
from geo.spatial.crs import METRIC_SRID, STORAGE_SRID, Crs, is_geographic

Add = Callable[..., sql.Composable]  # (value, cast=None) -> placeholder
GEOMETRY_NAMES = ("geometry", "geom")
# Degrees that surely cover a distance in metres at this latitude (1° of longitude ≈ 98 km at 28° N);
# only a bounding-box prefilter, the exact test is in metres.
_DEG_PER_M = 1 / 90_000
# Limits of a filter (issue 13: 200 OR terms overflowed Python's recursion, answering 500). A term is
# one comparison, LIKE, IN, BETWEEN, IS NULL or spatial test; depth counts nested AND/OR/NOT.
MAX_FILTER_CHARS = 10_000
MAX_TERMS = 100
MAX_DEPTH = 20
_INT4 = (-(2**31), 2**31 - 1)  # the integer columns' range
# Projected coordinates (metres) beyond this are no place on Earth in any CRS we offer.
_MAX_METRES = 2e7
FUNCTIONS: list[dict[str, Any]] = [
    {
        "name": "distance_m",
        "description": "两个几何之间的距离（米，EPSG:4547 计算）。Distance in metres between two geometries, "
        "measured in EPSG:4547. Example: distance_m(geometry, POINT(112.95 28.23)) < 100",
        "metadata": {"unit": "metre"},
        "arguments": [{"type": ["geometry"], "title": "a"}, {"type": ["geometry"], "title": "b"}],
        "returns": ["number"],
    }
]

_COMPARE = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}
_CAST = {
    "text": "text",
    "integer": "integer",
    "real": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(f"filter: {reason}", field="filter")


def _normalise_json(node: Any) -> Any:
    """CQL2 JSON 1.0 writes functions as {"op": name, "args": [...]}; pygeofilter wants the draft form."""
    if isinstance(node, list):
        return [_normalise_json(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("op") in {f["name"] for f in FUNCTIONS}:
        return {"function": {"name": node["op"], "arguments": _normalise_json(node.get("args", []))}}
    if "function" in node and isinstance(node["function"], dict) and "args" in node["function"]:
        fn = node["function"]
        return {"function": {"name": fn.get("name"), "arguments": _normalise_json(fn["args"])}}
    return {k: _normalise_json(v) for k, v in node.items()}


def _parse_tree(text: str, lang: str | None) -> Any:
    lang = (lang or ("cql2-json" if text.lstrip().startswith("{") else "cql2-text")).lower()
    if lang not in ("cql2-text", "cql2-json"):
        raise InvalidInput(f"filter-lang '{lang}' is not cql2-text or cql2-json", field="filter-lang")
    try:
        if lang == "cql2-json":
            return parse_json(_normalise_json(json.loads(text)))
        return parse_text(text)
    except lark.exceptions.LarkError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _bad(f"CQL2 text syntax error: {first}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, AssertionError) as e:
        raise _bad(f"not valid {lang}: {e}") from None
    except Exception as e:  # pygeofilter raises bare Exception for some inputs
        raise _bad(f"not valid {lang}: {e}") from None


def _nesting(text: str) -> int:
    """The deepest bracket nesting of ``text`` (quotes ignored: a bound, not a parse)."""
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _check_size(tree: Any) -> None:
    """At most :data:`MAX_TERMS` terms and :data:`MAX_DEPTH` levels of AND/OR/NOT, walked
    without recursion."""
    terms, stack = 0, [(tree, 0, type(None))]
    while stack:
        node, depth, parent = stack.pop()
        kind = type(node)
        # a run of one operator (a OR b OR c) is one level, however the parser nests it
        level = depth if kind is parent and kind is not ast.Not else depth + 1
        if isinstance(node, ast.And | ast.Or | ast.Not) and level > MAX_DEPTH:
            raise _bad(f"nested deeper than {MAX_DEPTH} levels of AND/OR/NOT")
        if isinstance(node, ast.And | ast.Or):
            stack += [(node.lhs, level, kind), (node.rhs, level, kind)]
        elif isinstance(node, ast.Not):
            stack.append((node.sub_node, level, kind))
        else:
            terms += 1
            if terms > MAX_TERMS:
                raise _bad(f"more than {MAX_TERMS} terms; split the query or use IN (...)")


@dataclass(frozen=True)
class Filter:
    """A parsed, checked filter, translated once: an SQL predicate and the values its placeholders name."""

    predicate: sql.Composable
    values: dict[str, Any]


def parse(text: str, lang: str | None, kinds: Mapping[str, str], *, filter_srid: Crs) -> Filter:
    """Parse and check a CQL2 filter against the layer's queryables (name -> type).

    The one translation to SQL happens here, so unknown properties and bad literals answer 400
    before any SQL runs; the placeholders are named ``cql0``, ``cql1``, … (no clash with the
    statement's own)."""
    if len(text) > MAX_FILTER_CHARS:
        raise _bad(f"longer than {MAX_FILTER_CHARS:,} characters")
    if _nesting(text) > 4 * MAX_DEPTH:  # before the parser recurses into it
        raise _bad(f"nested deeper than {MAX_DEPTH} levels")
    tree = _parse_tree(text, lang)
    _check_size(tree)
    values: dict[str, Any] = {}

    def add(value: Any, cast: str | None = None) -> sql.Composable:
        name = f"cql{len(values)}"
        values[name] = value
        holder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(holder, sql.SQL(cast)) if cast else holder

    predicate = _Translator(kinds, filter_srid.srid, add).predicate(tree)
    if filter_srid.lat_first:
        raise InvalidInput(
            "filter-crs: give geometry literals in CRS84 or a projected CRS (EPSG:4547, EPSG:3857)", field="filter-crs"
        )
    return Filter(predicate, values)


class _Translator:
    def __init__(self, kinds: Mapping[str, str], srid: int, add: Add) -> None:
        self.kinds = kinds
        self.srid = srid
        self.add = add

    # -- predicates ---------------------------------------------------------------------------------
    def predicate(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.And | ast.Or):
            op = sql.SQL(" AND " if isinstance(node, ast.And) else " OR ")
            return sql.SQL("({})").format(op.join([self.predicate(node.lhs), self.predicate(node.rhs)]))
        if isinstance(node, ast.Not):
            return sql.SQL("(NOT {})").format(self.predicate(node.sub_node))
        if isinstance(node, bool):
            return sql.SQL("true" if node else "false")
        if type(node) in _COMPARE:
            return self._compare(node)
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.In):
            return self._in(node)
        if isinstance(node, ast.Between):
            col, kind = self.attribute(node.lhs)
            expr = sql.SQL("{} BETWEEN {} AND {}").format(
                col, self.literal(node.low, kind), self.literal(node.high, kind)
            )
            return sql.SQL("(NOT {})").format(expr) if node.not_ else expr
        if isinstance(node, ast.IsNull):
            col, _ = self.attribute(node.lhs)
            return sql.SQL("{} IS {}NULL").format(col, sql.SQL("NOT " if node.not_ else ""))
        if type(node) in _SPATIAL:
            return sql.SQL("{}({}, {})").format(
                sql.SQL(_SPATIAL[type(node)]), self.geometry(node.lhs), self.geometry(node.rhs)
            )
        raise _bad(f"{type(node).__name__} is not supported here; see /conformance and /functions")

    def _compare(self, node: Any) -> sql.Composable:
        lhs, rhs, op = node.lhs, node.rhs, _COMPARE[type(node)]
        if not isinstance(lhs, ast.Attribute | ast.Function) and isinstance(rhs, ast.Attribute | ast.Function):
            lhs, rhs = rhs, lhs
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if isinstance(lhs, ast.Function) and lhs.name == "distance_m":
            return self._distance(lhs, op, rhs)
        col, kind = self.expression(lhs)
        if kind == "text_list":
            if op not in ("=", "<>"):
                raise _bad(f"a list property takes = or <> only, not {op}")
            test = sql.SQL("{} = ANY({})").format(self.literal(rhs, "text"), col)
            return test if op == "=" else sql.SQL("(NOT {})").format(test)
        return sql.SQL("{} {} {}").format(col, sql.SQL(op), self.literal(rhs, kind))

    def _distance(self, fn: Any, op: str, rhs: Any) -> sql.Composable:
        if len(fn.arguments) != 2:
            raise _bad("distance_m takes two geometries")
        a, b = (self.geometry(x) for x in fn.arguments)
        metres = self.literal(rhs, "real")
        metric = sql.SQL("ST_Distance(ST_Transform({}, {m}), ST_Transform({}, {m}))").format(
            a, b, m=sql.Literal(METRIC_SRID)
        )
        if op in ("<", "<="):
            # The bounding-box test lets the GiST index answer first.
            return sql.SQL("({a} && ST_Expand({b}, {m} * {deg}) AND {metric} {op} {m})").format(
                a=a, b=b, m=metres, deg=sql.Literal(_DEG_PER_M), metric=metric, op=sql.SQL(op)
            )
        return sql.SQL("{} {} {}").format(metric, sql.SQL(op), metres)

    def _like(self, node: Any) -> sql.Composable:
        col, kind = self.expression(node.lhs)
        if kind != "text":
            raise _bad("LIKE applies to text properties")
        if not isinstance(node.pattern, str):
            raise _bad("LIKE needs a text pattern")
        op = sql.SQL("NOT LIKE" if node.not_ else "LIKE")
        return sql.SQL("{} {} {}").format(col, op, self.add(node.pattern, "text"))

    def _in(self, node: Any) -> sql.Composable:
        col, kind = self.expression(node.lhs)
        if not node.sub_nodes:
            raise _bad("IN needs at least one value")
        items = sql.SQL(", ").join(self.literal(v, "text" if kind == "text_list" else kind) for v in node.sub_nodes)
        if kind == "text_list":
            expr = sql.SQL("{} && ARRAY[{}]").format(col, items)
        else:
            expr = sql.SQL("{} IN ({})").format(col, items)
        return sql.SQL("(NOT {})").format(expr) if node.not_ else expr

    # -- operands -----------------------------------------------------------------------------------
    def attribute(self, node: Any) -> tuple[sql.Composable, str]:
        if not isinstance(node, ast.Attribute):
            raise _bad(f"expected a property name, got {node!r}")
        name = node.name
        if name in GEOMETRY_NAMES:
            raise _bad(f"'{name}' is the geometry: use a spatial function (S_INTERSECTS, S_WITHIN, …)")
        if name not in self.kinds:
            raise _bad(f"'{name}' is not a queryable of this collection; known: {', '.join(self.kinds)}")
        return sql.Identifier("t", name), self.kinds[name]

    def expression(self, node: Any) -> tuple[sql.Composable, str]:
        if isinstance(node, ast.Function) and node.name == "lower" and len(node.arguments) == 1:
            col, kind = self.expression(node.arguments[0])
            if kind != "text":
                raise _bad("CASEI applies to text properties")
            return sql.SQL("lower({})").format(col), "text"
        if isinstance(node, ast.Function):
            raise _bad(f"unknown function '{node.name}'; see /functions")
        return self.attribute(node)

    def literal(self, value: Any, kind: str) -> sql.Composable:
        if isinstance(value, ast.Function) and value.name == "lower" and len(value.arguments) == 1:
            return sql.SQL("lower({})").format(self.literal(value.arguments[0], kind))
        if isinstance(value, ast.Node | values.Geometry | values.Envelope | list | dict):
            raise _bad(f"expected a {kind} value, got {value!r}")
        ok = {
            "text": isinstance(value, str),
            "integer": isinstance(value, int | float) and not isinstance(value, bool),
            "real": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "date": isinstance(value, date | str),
            "timestamp": isinstance(value, datetime | date | str),
        }.get(kind, False)
        if not ok:
            raise _bad(f"{value!r} is not a {kind} value")
        if kind in ("integer", "real") and not math.isfinite(value):
            raise _bad(f"{value!r} is not a finite number")
        if kind == "integer" and not _INT4[0] <= value <= _INT4[1]:
            raise _bad(f"{value!r} is outside the property's range {_INT4[0]}..{_INT4[1]}")
        if kind == "integer" and isinstance(value, float) and not value.is_integer():
            kind = "real"  # households > 2.5 compares as a number, not rounded to 3
        if kind in ("date", "timestamp") and isinstance(value, str):
            try:
                value = date.fromisoformat(value) if kind == "date" else datetime.fromisoformat(value)
            except ValueError:
                raise _bad(f"'{value}' is not a {kind}") from None
        return self.add(value, _CAST[kind])

    def geometry(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            if node.name not in GEOMETRY_NAMES:
                raise _bad(f"'{node.name}' is not a geometry property; use 'geometry'")
            return sql.SQL("t.geom")
        if isinstance(node, values.Geometry):
            text = json.dumps(node.geometry)
            try:  # a malformed literal (unclosed ring, too few points) is the caller's error, not SQL's
                shape = shapely.from_geojson(text)
            except shapely.errors.GEOSException as e:
                raise _bad(f"geometry literal is not valid GeoJSON geometry: {e}") from None
            self._check_coordinates(shapely.get_coordinates(shape).ravel().tolist())
            return sql.SQL("ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON({}), {}), {})").format(
                self.add(text, "text"), sql.Literal(self.srid), sql.Literal(STORAGE_SRID)
            )
        nums: list[Any] | None = None
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            nums = list(node.arguments)  # BBOX(minx, miny, maxx, maxy) in CQL2 text
        elif isinstance(node, values.Envelope):
            # pygeofilter's JSON parser fills Envelope(x1, x2, y1, y2) positionally from
            # {"bbox": [minx, miny, maxx, maxy]}, so the fields hold them in that order.
            nums = [node.x1, node.x2, node.y1, node.y2]
        if nums is not None:
            if len(nums) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in nums):
                raise _bad("BBOX needs four numbers")
            self._check_coordinates([float(v) for v in nums])
            return sql.SQL("ST_Transform(ST_MakeEnvelope({}, {}, {}, {}, {}), {})").format(
                *(self.add(float(v)) for v in nums), sql.Literal(self.srid), sql.Literal(STORAGE_SRID)
            )
        raise _bad(f"expected a geometry, got {node!r}")

    def _check_coordinates(self, xy: list[float]) -> None:
        """Coordinates of a literal are numbers of a place: lon -180..180, lat -90..90 in a
        geographic CRS (PROJ fails on anything else, which answered 500), bounded metres otherwise."""
        if not all(math.isfinite(v) for v in xy):
            raise _bad("a coordinate of a geometry literal is not a finite number")
        if is_geographic(self.srid):
            bad = next(((x, y) for x, y in zip(xy[::2], xy[1::2], strict=False) if abs(x) > 180 or abs(y) > 90), None)
            if bad is not None:
                raise _bad(f"point ({bad[0]:g} {bad[1]:g}) is outside lon -180..180, lat -90..90")
        elif any(abs(v) > _MAX_METRES for v in xy):
            raise _bad(f"a coordinate of a geometry literal is beyond {_MAX_METRES:g} m")
