"""OGC API Features reads: parse the query parameters of a layer, build one SQL statement per request.

Every read answers with bytes that PostGIS assembled (the finished GeoJSON
document), so no per-row Python object exists on the read path. Paging is a
keyset over the sort keys plus ``id`` (stable under concurrent inserts); the
cursor carries the last row's keys, bound as values when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import orjson
import psycopg
from psycopg import sql

from geo.errors import InvalidInput, NotFound
from geo.features import cql
from geo.spatial import crs as crsmod
from geo.spatial.crs import DEFAULT_CRS, Crs, parse_crs
from geo.steps import Statement, Steps
from layers.catalogue import Attribute, LayerSpec

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# Counting is skipped (numberMatched left out) once it would read this many
# times more rows than the page itself.
COUNT_FACTOR = 10
MIN_COUNT_CAP = 10_000

COMMON_PARAMS = frozenset(
    {
        "f",
        "limit",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "properties",
        "sortby",
        "filter",
        "filter-lang",
        "filter-crs",
        "cursor",
    }
)
# Titles of the paging links the items statement writes (bound values, never SQL text).
NEXT_TITLE = "下一页 next page"
PREV_TITLE = "上一页 previous page"
# Columns every layer exposes besides its spec attributes (read-only to clients).
META_PROPERTIES: tuple[tuple[str, str], ...] = (("version", "integer"), ("updated_at", "timestamp"))


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{field}: '{text}' is not a number", field=field) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{field}: '{text}' is not a finite number", field=field)
    return value


def parse_limit(text: str | None) -> int:
    """1..10,000; 100 when absent."""
    if text is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\+?\d{1,9}", text.strip()):
        raise InvalidInput(f"limit '{text}' is not a whole number 1..{MAX_LIMIT}", field="limit")
    value = int(text)
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"limit {value} is outside 1..{MAX_LIMIT}", field="limit")
    return value


@dataclass(frozen=True)
class BBox:
    """A bounding box in storage order (x = lon/easting first), in ``srid``."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    srid: int


def parse_bbox(text: str | None, crs_text: str | None) -> BBox | None:
    """4 or 6 finite numbers, min <= max, inside the CRS's range; axis order of ``bbox-crs``."""
    if text is None:
        if crs_text is not None:
            raise InvalidInput("bbox-crs needs a bbox", field="bbox-crs")
        return None
    bcrs = parse_crs(crs_text, field="bbox-crs")
    parts = [p for p in text.split(",")]
    if len(parts) not in (4, 6):
        raise InvalidInput(f"bbox needs 4 or 6 comma-separated numbers, got {len(parts)}", field="bbox")
    nums = [_number(p.strip(), "bbox") for p in parts]
    if len(nums) == 6:  # minx, miny, minz, maxx, maxy, maxz: heights are ignored
        nums = [nums[0], nums[1], nums[3], nums[4]]
    a1, b1, a2, b2 = nums
    if bcrs.lat_first:  # lat, lon order by the EPSG definition
        a1, b1, a2, b2 = b1, a1, b2, a2
    if a1 > a2 or b1 > b2:
        raise InvalidInput(f"bbox '{text}': the lower corner must come before the upper one", field="bbox")
    if crsmod.is_geographic(bcrs.srid):
        for lon in (a1, a2):
            if not -180 <= lon <= 180:
                raise InvalidInput(f"bbox longitude {lon} is outside -180..180", field="bbox")
        for lat in (b1, b2):
            if not -90 <= lat <= 90:
                raise InvalidInput(f"bbox latitude {lat} is outside -90..90", field="bbox")
    return BBox(a1, b1, a2, b2, bcrs.srid)


def _instant(text: str, *, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"datetime '{text}' is not RFC 3339 (e.g. 2024-05-01T08:00:00Z)", field="datetime") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None] | None:
    """An instant or an interval 'start/end' ('..' or empty for open ends), against updated_at."""
    if text is None:
        return None
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, end = _instant(start_text, end=False), _instant(end_text, end=True)
        if start is None and end is None:
            raise InvalidInput("datetime '../..' names no time at all", field="datetime")
        if start and end and start > end:
            raise InvalidInput(f"datetime '{text}': start is after end", field="datetime")
        return start, end
    return _instant(text, end=False), _instant(text, end=True)


def queryables(spec: LayerSpec) -> dict[str, str]:
    """Property name -> type of every property a client may filter or sort on."""
    out = {"code": "text"}
    out.update({a.name: a.type for a in spec.attributes})
    out.update(dict(META_PROPERTIES))
    return out


def _split_names(text: str, field: str, allowed: Mapping[str, str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        bare = name.lstrip("+-")
        if bare not in allowed:
            raise InvalidInput(
                f"{field}: '{bare}' is not a property of this collection; known: {', '.join(allowed)}", field=field
            )
    return names


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` key: a property name and its direction."""

    name: str
    descending: bool


@dataclass
class ItemsQuery:
    """A validated items request."""

    limit: int = DEFAULT_LIMIT
    bbox: BBox | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    equals: dict[str, str] = field(default_factory=dict)
    properties: list[str] | None = None
    sortby: list[SortKey] = field(default_factory=list)
    filter: cql.Filter | None = None
    cursor: str | None = None
    crs: Crs = DEFAULT_CRS


def parse_items_query(spec: LayerSpec, params: Mapping[str, str]) -> ItemsQuery:
    """Check every parameter of an items request; unknown ones are refused (400)."""
    allowed = queryables(spec)
    for name in params:
        if name not in COMMON_PARAMS and name not in allowed:
            raise InvalidInput(f"unknown query parameter '{name}'", field=name)
    query = ItemsQuery(
        limit=parse_limit(params.get("limit")),
        bbox=parse_bbox(params.get("bbox"), params.get("bbox-crs")),
        interval=parse_datetime(params.get("datetime")),
        crs=parse_crs(params.get("crs")),
        cursor=params.get("cursor"),
    )
    query.equals = {k: v for k, v in params.items() if k in allowed and k not in COMMON_PARAMS}
    if "properties" in params:
        query.properties = [n for n in _split_names(params["properties"], "properties", allowed) if n != "code"]
    if "sortby" in params:
        query.sortby = [
            SortKey(n.lstrip("+-"), n.startswith("-")) for n in _split_names(params["sortby"], "sortby", allowed)
        ]
        if any(allowed[k.name] == "text_list" for k in query.sortby):
            raise InvalidInput("sortby: list attributes cannot be sorted on", field="sortby")
    if "filter" in params:
        query.filter = cql.parse(
            params["filter"],
            params.get("filter-lang"),
            allowed,
            filter_srid=parse_crs(params.get("filter-crs"), field="filter-crs"),
        )
    elif "filter-lang" in params or "filter-crs" in params:
        raise InvalidInput("filter-lang and filter-crs need a filter", field="filter-lang")
    return query


_SQL_CAST = {
    "text": "text",
    "integer": "integer",
    "real": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}


def _col(name: str) -> sql.Composable:
    return sql.Identifier("t", name)


def _typed(value: str, kind: str, name: str) -> Any:
    """A query-string value converted to the attribute's type (400 when it is not one)."""
    try:
        if kind == "integer":
            return int(value)
        if kind == "real":
            return _number(value, name)
        if kind == "boolean":
            low = value.lower()
            if low not in ("true", "false"):
                raise ValueError(value)
            return low == "true"
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "timestamp":
            return _instant(value, end=False)
    except ValueError:
        raise InvalidInput(f"{name}: '{value}' is not a valid {kind}", field=name) from None
    return value


class _Params:
    """Named bound parameters for one statement."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"p{len(self.values)}"
        self.values[name] = value
        holder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(holder, sql.SQL(cast)) if cast else holder


def _where(spec: LayerSpec, query: ItemsQuery, district_code: str, params: _Params) -> sql.Composable:
    kinds = queryables(spec)
    parts: list[sql.Composable] = [sql.SQL("t.district_code = {}").format(params.add(district_code))]
    if query.bbox is not None:
        b = query.bbox
        env = sql.SQL("ST_Transform(ST_MakeEnvelope({}, {}, {}, {}, {}), {})").format(
            params.add(b.minx),
            params.add(b.miny),
            params.add(b.maxx),
            params.add(b.maxy),
            params.add(b.srid),
            params.add(spec.srid),
        )
        parts.append(sql.SQL("ST_Intersects(t.geom, {})").format(env))
    if query.interval is not None:
        start, end = query.interval
        if start is not None:
            parts.append(sql.SQL("t.updated_at >= {}").format(params.add(start)))
        if end is not None:
            parts.append(sql.SQL("t.updated_at <= {}").format(params.add(end)))
    for name, raw in query.equals.items():
        kind = kinds[name]
        if kind == "text_list":
            parts.append(sql.SQL("{} = ANY({})").format(params.add(raw, "text"), _col(name)))
        else:
            parts.append(sql.SQL("{} = {}").format(_col(name), params.add(_typed(raw, kind, name), _SQL_CAST[kind])))
    if query.filter is not None:
        # Translated once, when the filter was parsed: its placeholders and values join this statement's.
        parts.append(query.filter.predicate)
        params.values.update(query.filter.values)
    return sql.SQL(" AND ").join(parts)


def _properties(spec: LayerSpec, names: Sequence[str] | None) -> sql.Composable:
    chosen = list(names) if names is not None else [*spec.attribute_names, *(m for m, _ in META_PROPERTIES)]
    # Columns of a LATERAL sub-select, turned into compact JSON by row_to_json.
    return sql.SQL(", ").join([sql.SQL("t.code"), *(_col(n) for n in chosen)])


def geometry_expr(spec: LayerSpec, out: Crs, column: sql.Composable | None = None) -> sql.Composable:
    """The layer's geometry in ``out`` (axes flipped when that CRS is latitude first)."""
    geom = column or _col("geom")
    if out.srid != spec.srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(out.srid))
    if out.lat_first:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return geom


def _decode_cursor(token: str, keys: Sequence[SortKey], kinds: Mapping[str, str]) -> tuple[bool, list[Any]]:
    """(forward, [key values..., id]) from a cursor made by the items statement."""
    bad = InvalidInput("cursor is not one this service handed out (follow the next/prev links)", field="cursor")
    if len(token) < 2 or token[0] not in "np" or len(token) > 4096:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4))
        values = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(keys) + 1 or not isinstance(values[-1], int):
        raise bad
    for key, value in zip(keys, values, strict=False):
        if value is not None and not isinstance(value, str | int | float | bool):
            raise bad
        if isinstance(value, str) and kinds[key.name] in ("date", "timestamp"):
            _typed(value, kinds[key.name], "cursor")
    return token[0] == "n", values


def _after(col: sql.Composable, value: sql.Composable, is_null: bool, desc: bool, nulls_first: bool) -> sql.Composable:
    """Rows strictly after ``value`` in an order (direction, where the NULLs go)."""
    if is_null:
        return sql.SQL("{} IS NOT NULL").format(col) if nulls_first else sql.SQL("false")
    base = sql.SQL("{} {} {}").format(col, sql.SQL("<" if desc else ">"), value)
    return base if nulls_first else sql.SQL("({} OR {} IS NULL)").format(base, col)


def _keyset(
    keys: Sequence[SortKey], values: list[Any], forward: bool, kinds: Mapping[str, str], params: _Params
) -> sql.Composable:
    """Lexicographic 'after the cursor row' over (keys..., id), NULLs last in the forward order."""
    ors: list[sql.Composable] = []
    equal_so_far: list[sql.Composable] = []
    for key, value in zip(keys, values, strict=False):
        col = _col(key.name)
        bound = params.add(value, _SQL_CAST.get(kinds[key.name], "text"))
        desc = key.descending != (not forward)
        ors.append(sql.SQL(" AND ").join([*equal_so_far, _after(col, bound, value is None, desc, not forward)]))
        equal_so_far.append(sql.SQL("{} IS NOT DISTINCT FROM {}").format(col, bound))
    id_op = sql.SQL(">" if forward else "<")
    ors.append(
        sql.SQL(" AND ").join([*equal_so_far, sql.SQL("t.id {} {}").format(id_op, params.add(values[-1], "bigint"))])
    )
    return sql.SQL("({})").format(sql.SQL(" OR ").join(sql.SQL("({})").format(o) for o in ors))


def _order(keys: Sequence[SortKey], forward: bool) -> sql.Composable:
    parts = []
    for key in keys:
        desc = key.descending != (not forward)
        nulls = "FIRST" if not forward else "LAST"
        parts.append(
            sql.SQL("{} {} NULLS {}").format(_col(key.name), sql.SQL("DESC" if desc else "ASC"), sql.SQL(nulls))
        )
    parts.append(sql.SQL("t.id {}").format(sql.SQL("ASC" if forward else "DESC")))
    return sql.SQL(", ").join(parts)


@cache
def _template(name: str) -> str:
    return resources.files("geo.features").joinpath("sql", name).read_text(encoding="utf-8")


def unfiltered(query: ItemsQuery) -> bool:
    """True when the request selects the whole layer (of the district): its count is kept."""
    return query.bbox is None and query.interval is None and not query.equals and query.filter is None


# The text of the commonest statements: a first page of a whole layer (no filter, no cursor), by
# layer, district, properties, sort keys and output CRS. Composing the statement cost about as
# much of a small page's time as the rest of the request's Python; its text and its fixed values
# are the same every time, only the page's own values (limit, links) differ.
_PLAIN_MAX = 256
_plain: OrderedDict[tuple[Any, ...], tuple[LayerSpec, bytes, dict[str, Any]]] = OrderedDict()


def _plain_key(spec: LayerSpec, query: ItemsQuery, district_code: str) -> tuple[Any, ...] | None:
    if query.cursor is not None or not unfiltered(query):
        return None
    props = None if query.properties is None else tuple(query.properties)
    return (id(spec), district_code, props, tuple(query.sortby), query.crs)


def items_statement(
    spec: LayerSpec, query: ItemsQuery, *, district_code: str, links: bytes, page_href: str
) -> tuple[sql.Composable | bytes, dict[str, Any]]:
    """The statement (and its bound values) that returns the page as GeoJSON bytes."""
    key = _plain_key(spec, query, district_code)
    known = _plain.get(key) if key is not None else None
    if known is not None and known[0] is spec:  # first in, first out: no reordering across threads
        values = dict(known[2])
        _page_values(values, query, links, page_href, forward=True, from_cursor=False)
        return known[1], values
    stmt, values, forward, from_cursor = _compose(spec, query, district_code=district_code)
    text: sql.Composable | bytes = stmt
    if key is not None:
        text = stmt.as_bytes(None)  # rendered once: kept, and sent as it is
        _plain[key] = (spec, text, dict(values))
        while len(_plain) > _PLAIN_MAX:
            _plain.popitem(last=False)
    _page_values(values, query, links, page_href, forward=forward, from_cursor=from_cursor)
    return text, values


def _page_values(
    values: dict[str, Any], query: ItemsQuery, links: bytes, page_href: str, *, forward: bool, from_cursor: bool
) -> None:
    values.update(
        digits=query.crs.digits,
        fetch=query.limit + 1,
        limit=query.limit,
        cap=max(MIN_COUNT_CAP, COUNT_FACTOR * query.limit),
        from_cursor=from_cursor,
        forward=forward,
        links=links.decode(),
        page_href=page_href,
        next_title=NEXT_TITLE,
        prev_title=PREV_TITLE,
    )


def _compose(
    spec: LayerSpec, query: ItemsQuery, *, district_code: str
) -> tuple[sql.Composed, dict[str, Any], bool, bool]:
    """The items statement, the values it binds itself (the page's own values not yet added),
    whether it reads forward and whether it starts from a cursor."""
    kinds = queryables(spec)
    params = _Params()
    where = _where(spec, query, district_code, params)
    forward, from_cursor = True, False
    keyset: sql.Composable = sql.SQL("true")
    if query.cursor is not None:
        forward, values = _decode_cursor(query.cursor, query.sortby, kinds)
        keyset = _keyset(query.sortby, values, forward, kinds, params)
        from_cursor = True
    key_cols = sql.SQL("").join(
        sql.SQL("{} AS {}, ").format(_col(k.name), sql.Identifier(f"_k{i}")) for i, k in enumerate(query.sortby)
    )
    token_args = [sql.Identifier(f"_k{i}") for i in range(len(query.sortby))] + [sql.SQL("_id")]
    token = sql.SQL(
        "translate(encode(convert_to(json_build_array({})::text, 'UTF8'), 'base64'), E'+/=\\n', '-_')"
    ).format(sql.SQL(", ").join(token_args))
    kept_count: sql.Composable = sql.SQL("NULL")
    if unfiltered(query):
        kept_count = sql.SQL(
            "(SELECT concat(',\"numberMatched\":', s.features) FROM layer_stats AS s "
            "WHERE s.layer_table = {} AND s.district_code = {})"
        ).format(params.add(spec.table), params.add(district_code))
    stmt = sql.SQL(_template("items.sql")).format(
        kept_count=kept_count,
        key_cols=key_cols,
        props=_properties(spec, query.properties),
        geom=geometry_expr(spec, query.crs),
        table=sql.Identifier(spec.table),
        where=where,
        keyset=keyset,
        order=_order(query.sortby, forward),
        token=token,
        out_dir=sql.SQL("ASC" if forward else "DESC"),
        # _rn counts in fetch order; a "prev" page is fetched backwards and output reversed.
        first_token=sql.SQL("f.low_token" if forward else "f.high_token"),
        last_token=sql.SQL("f.high_token" if forward else "f.low_token"),
    )
    return stmt, params.values, forward, from_cursor


def items(spec: LayerSpec, query: ItemsQuery, *, district_code: str, links: bytes, page_href: str) -> Steps[bytes]:
    """One page of features as GeoJSON bytes, built by one statement.

    ``links`` is the JSON text of the fixed links (self, alternate, collection)
    without brackets; ``page_href`` is the items URL ending in ``cursor=``.
    """
    stmt, values = items_statement(spec, query, district_code=district_code, links=links, page_href=page_href)
    try:
        rows = yield Statement(stmt, values, binary=True)
    except psycopg.errors.DataException as e:  # a value the column type refuses (e.g. a cursor date)
        raise InvalidInput(
            f"a value in the query does not fit its property: {e.diag.message_primary}", field="filter"
        ) from e
    return bytes(rows[0][0])


_ONE = """
SELECT t.version, convert_to(concat(
    '{{"type":"Feature","id":', to_json(t.code), ',"geometry":', ST_AsGeoJSON({geom}, %(digits)s, 0),
    ',"properties":', row_to_json(_p)::text, ',"links":[', %(links)s::text, ']}}'), 'UTF8')
FROM {table} AS t CROSS JOIN LATERAL (SELECT {props}) AS _p WHERE t.code = %(code)s AND t.district_code = %(district)s
"""


def item(spec: LayerSpec, code: str, *, district_code: str, out: Crs, links: bytes) -> Steps[tuple[int, bytes]]:
    """(version, GeoJSON Feature bytes) of one feature; NotFound when the code is unknown."""
    stmt = sql.SQL(_ONE).format(
        geom=geometry_expr(spec, out), props=_properties(spec, None), table=sql.Identifier(spec.table)
    )
    rows = yield Statement(
        stmt, {"digits": out.digits, "links": links.decode(), "code": code, "district": district_code}, binary=True
    )
    if not rows:
        raise NotFound(f"collection '{spec.name}' has no feature '{code}'", field="featureId")
    return int(rows[0][0]), bytes(rows[0][1])


def _extent(table: str, district_code: str) -> Steps[list[float] | None]:
    rows = yield Statement(
        sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4490), 4326) AS e "
            " FROM {} WHERE district_code = %s) s"
        ).format(sql.Identifier(table)),
        [district_code],
    )
    if not rows or rows[0][0] is None:
        return None
    return [round(float(v), 7) for v in rows[0]]


def layer_extents(district_code: str) -> Steps[dict[str, list[float]]]:
    """Each layer table's bounding box in CRS84 (kept in layer_stats as features change);
    a table without features has none."""
    rows = yield Statement(
        "SELECT layer_table, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT layer_table, ST_Transform(ST_SetSRID(ST_MakeBox2D(ST_Point(min_x, min_y), ST_Point(max_x, max_y))"
        "::geometry, 4490), 4326) AS e FROM layer_stats "
        " WHERE district_code = %s AND features > 0 AND min_x IS NOT NULL) s",
        [district_code],
    )
    return {r[0]: [round(float(v), 7) for v in r[1:]] for r in rows}


def district_extent(district_code: str) -> Steps[list[float] | None]:
    """The district's bounding box in CRS84: every feature is validated to lie inside it."""
    return (yield from _extent("districts", district_code))


def programme_extent(district_code: str) -> Steps[list[float] | None]:
    """The programme zones' bounding box in CRS84 (where the maps open), or None without zones."""
    return (yield from _extent("zones", district_code))


def attribute_schema(attr: Attribute) -> dict[str, Any]:
    """JSON Schema of one attribute (queryables, OpenAPI)."""
    base: dict[str, Any] = {"title": f"{attr.title_zh} {attr.title_en}"}
    kinds: dict[str, dict[str, Any]] = {
        "text": {"type": "string"},
        "integer": {"type": "integer"},
        "real": {"type": "number"},
        "boolean": {"type": "boolean"},
        "date": {"type": "string", "format": "date"},
        "text_list": {"type": "array", "items": {"type": "string"}},
    }
    base.update(kinds[attr.type])
    if attr.values:
        target = base["items"] if attr.type == "text_list" else base
        target["enum"] = list(attr.values)
    if attr.type in ("text", "text_list") and not attr.values:
        (base["items"] if attr.type == "text_list" else base)["maxLength"] = attr.max_length
    if attr.minimum is not None:
        base["minimum"] = attr.minimum
    if attr.maximum is not None:
        base["maximum"] = attr.maximum
    return base


def queryables_schema(spec: LayerSpec, self_href: str) -> dict[str, Any]:
    """The /queryables JSON Schema document of a layer."""
    props: dict[str, Any] = {
        "geometry": {
            "title": "几何 geometry",
            "format": f"geometry-{spec.geometry.lower()}",
            "x-ogc-role": "primary-geometry",
        },
        "code": {"title": "编码 code", "type": "string", "x-ogc-role": "id"},
    }
    props.update({a.name: attribute_schema(a) for a in spec.attributes})
    props["version"] = {"title": "版本 version", "type": "integer"}
    props["updated_at"] = {
        "title": "最后修改 last modified",
        "type": "string",
        "format": "date-time",
        "x-ogc-role": "primary-instant",
    }
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": self_href,
        "type": "object",
        "title": f"{spec.title_zh} {spec.title_en}",
        "properties": props,
        "additionalProperties": False,
    }
