"""Mapbox vector tiles of the layers (WebMercatorQuad), one ST_AsMVT per layer.

Tiles carry the code and the attributes a map styles by (name and the
attributes with a fixed list of values, such as condition or phase), not the
whole record. The combined tile is the concatenation of one MVT layer per
catalogue layer, which is itself a valid MVT.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from psycopg import sql

from geo.errors import InvalidInput, NotFound
from geo.kept import kept_read
from geo.steps import Statement, Steps
from layers.catalogue import Catalogue, LayerSpec

TMS_ID = "WebMercatorQuad"
MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64
# A tile holds at most this many features per layer (tipg's default too): past it a tile is
# megabytes that no client draws usefully. Such a tile carries the layer aggregated instead,
# never cut short: one point per cell of an AGGREGATE_CELLS × AGGREGATE_CELLS grid with the
# cell's ``count`` (and ``aggregated`` true), so every feature is drawn or counted; each
# feature is counted in exactly one tile (no buffer), so the counts add up to the layer.
MAX_FEATURES_PER_TILE = 10_000
AGGREGATE_CELLS = 64
_HALF = 20037508.3427892


def check_tile(tms: str, z: int, x: int, y: int) -> None:
    """Known matrix set, zoom 0..22, column and row inside the matrix."""
    if tms != TMS_ID:
        raise NotFound(f"tile matrix set '{tms}' is not offered; use {TMS_ID}", field="tileMatrixSetId")
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"tileMatrix {z} is outside 0..{MAX_ZOOM}", field="tileMatrix")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise InvalidInput(f"tile {x}/{y} is outside the {n}×{n} matrix of zoom {z}", field="tileRow")


def map_attributes(spec: LayerSpec) -> list[str]:
    """The attributes a map needs: the name and the categorical ones."""
    return [a.name for a in spec.attributes if a.name == "name" or (a.values and a.type == "text")]


def aggregated_attribute(spec: LayerSpec) -> str | None:
    """The categorical attribute an aggregated cell reports its most frequent value of, if any."""
    for attr in spec.attributes:
        if attr.values and attr.type == "text":
            return attr.name
    return None


def _aggregated_select(spec: LayerSpec) -> sql.Composable:
    """The layer's features grouped per grid cell: count, the most frequent categorical value and the
    count per value (``detail``: ``normal:120,faulty:3``), one point at the cell's centre. Cells by
    Web Mercator arithmetic on the stored lon/lat (as the maps' overview tiles)."""
    x_expr, y_expr = (
        ("ST_X(t.geom)", "ST_Y(t.geom)")
        if "Point" in spec.geometry
        else ("(ST_XMin(t.geom) + ST_XMax(t.geom)) / 2", "(ST_YMin(t.geom) + ST_YMax(t.geom)) / 2")
    )
    attr = aggregated_attribute(spec)
    return sql.SQL(
        "(WITH cells AS (SELECT floor((({lon} + 180) / 360 * %(n)s - %(x)s) * {cells})::int AS cx,"
        "  floor(((1 - asinh(tan(radians({lat}))) / pi()) / 2 * %(n)s - %(y)s) * {cells})::int AS cy,"
        "  {value} AS v FROM {table} AS t, b WHERE t.district_code = %(district)s AND t.geom && b.search),"
        " per_value AS (SELECT cx, cy, v, count(*)::int AS n FROM cells"
        "  WHERE cx >= 0 AND cx < {cells} AND cy >= 0 AND cy < {cells} GROUP BY cx, cy, v),"
        " grouped AS (SELECT (array_agg(v ORDER BY n DESC, v))[1] AS {name}, sum(n)::int AS count,"
        "  true AS aggregated, string_agg(coalesce(v::text, '') || ':' || n, ',' ORDER BY v) AS detail,"
        "  ST_Point((cx + 0.5) * {cell}, (cy + 0.5) * {cell}) AS geom FROM per_value GROUP BY cx, cy)"
        " SELECT ST_AsMVT(grouped, {layer}, {extent}, 'geom') FROM grouped)"
    ).format(
        lon=sql.SQL(x_expr),
        lat=sql.SQL(y_expr),
        cells=sql.Literal(AGGREGATE_CELLS),
        cell=sql.Literal(EXTENT // AGGREGATE_CELLS),
        value=sql.Identifier("t", attr) if attr else sql.SQL("NULL::text"),
        name=sql.Identifier(attr or "value"),
        table=sql.Identifier(spec.table),
        layer=sql.Literal(spec.name),
        extent=sql.Literal(EXTENT),
    )


def _layer_select(spec: LayerSpec) -> sql.Composable:
    """The layer's part of the tile, one row: ``mvt``, every feature or the layer aggregated when there
    are more than the cap, and ``aggregated``, whether it was."""
    cols = [sql.SQL("t.code")] + [sql.Identifier("t", n) for n in map_attributes(spec)]
    # One scan of the tile's rows, at most cap + 1 of them: the features themselves when they fit,
    # the sign to aggregate when they do not (then the aggregate reads the tile's rows again).
    return sql.SQL(
        "(WITH f AS MATERIALIZED (SELECT {cols}, t.geom FROM {table} AS t, b"
        "  WHERE t.district_code = %(district)s AND t.geom && b.search LIMIT %(cap)s + 1),"
        " n AS (SELECT count(*) AS n FROM f)"
        " SELECT CASE WHEN n.n <= %(cap)s"
        " THEN (SELECT ST_AsMVT(q, {name}, {extent}, 'geom') FROM ("
        " SELECT {fcols}, ST_AsMVTGeom(ST_Transform(f.geom, 3857), b.env, {extent}, {buffer}, true) AS geom"
        " FROM f, b) AS q"
        " WHERE q.geom IS NOT NULL)"
        " ELSE {aggregated} END AS mvt, n.n > %(cap)s AS aggregated FROM n)"
    ).format(
        name=sql.Literal(spec.name),
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        cols=sql.SQL(", ").join(cols),
        fcols=sql.SQL(", ").join(sql.Identifier("f", n) for n in ["code", *map_attributes(spec)]),
        table=sql.Identifier(spec.table),
        aggregated=_aggregated_select(spec),
    )


def _computed(specs: list[LayerSpec], z: int, x: int, y: int, district_code: str) -> Steps[tuple[bytes, bool]]:
    """The tile's bytes, and whether a layer in it was aggregated."""
    if not specs:
        return b"", False
    srid = specs[0].srid
    parts = [sql.SQL("{} AS {}").format(_layer_select(s), sql.Identifier(f"l{i}")) for i, s in enumerate(specs)]
    stmt = sql.SQL(
        "WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,"
        " ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid}) AS search) "
        "SELECT {mvt}, {aggregated} FROM {parts}"
    ).format(
        srid=sql.Literal(srid),
        mvt=sql.SQL(" || ").join(
            sql.SQL("coalesce({}.mvt, ''::bytea)").format(sql.Identifier(f"l{i}")) for i in range(len(specs))
        ),
        aggregated=sql.SQL(" OR ").join(
            sql.SQL("{}.aggregated").format(sql.Identifier(f"l{i}")) for i in range(len(specs))
        ),
        parts=sql.SQL(", ").join(parts),
    )
    rows = yield Statement(
        stmt,
        {
            "z": z,
            "x": x,
            "y": y,
            "n": 1 << z,
            "margin": BUFFER / EXTENT,
            "district": district_code,
            "cap": MAX_FEATURES_PER_TILE,
        },
    )
    data = bytes(rows[0][0]) if rows and rows[0][0] is not None else b""
    return data, bool(rows and rows[0][1])


# A tile in which a layer is aggregated counts every feature under it (a z15 tile over a dense town:
# 230,000 lights, a quarter of a second). Tiles of layers that have more features in the district than
# a tile may carry (so some tile of theirs may be aggregated: `layer_stats`, migration 0013, looked
# at again after DENSE_MAX_AGE_S) are read through geo/kept.py: one request computes a tile while the
# others asking for it meanwhile wait for its bytes, and an aggregated tile is kept until a layer table
# changes (its change counter) or a minute passes, the staleness the tile's own
# `Cache-Control: max-age=60` already allows any shared cache. Tiles that fit are given, not kept.
# Other layers' tiles (zones, sections, small layers) are read as they are asked for.
DENSE_MAX_AGE_S = 60.0
_dense_layers: dict[tuple[Any, ...], tuple[bool, float]] = {}  # (layers, district) -> (may aggregate, when seen)


def _may_aggregate(specs: list[LayerSpec], district_code: str) -> Steps[bool]:
    key = (tuple(s.table for s in specs), district_code)
    known = _dense_layers.get(key)
    if known is not None and time.monotonic() - known[1] < DENSE_MAX_AGE_S:
        return known[0]
    rows = yield Statement(
        "SELECT coalesce(max(features), 0) > %s FROM layer_stats WHERE layer_table = ANY(%s) AND district_code = %s",
        [MAX_FEATURES_PER_TILE, list(key[0]), district_code],
    )
    found = bool(rows and rows[0][0])
    _dense_layers[key] = (found, time.monotonic())
    return found


def tile(specs: list[LayerSpec], z: int, x: int, y: int, *, district_code: str) -> Steps[bytes]:
    """The MVT bytes of tile z/x/y with one layer per spec (empty bytes when nothing is there)."""
    if not (yield from _may_aggregate(specs, district_code)):
        data, aggregated = yield from _computed(specs, z, x, y, district_code)
        if aggregated:  # the layer grew past the cap since it was looked at
            _dense_layers[(tuple(s.table for s in specs), district_code)] = (True, time.monotonic())
        return data
    key = ("tile", tuple(s.name for s in specs), district_code, z, x, y)
    data, _ = yield from kept_read(
        key,
        lambda: _computed(specs, z, x, y, district_code),
        max_age=DENSE_MAX_AGE_S,
        keep=lambda found: found[1],  # only an aggregated tile
    )
    return data


def etag(data: bytes) -> str:
    """A strong ETag from the tile's bytes: it changes exactly when the tile does."""
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def tile_matrix_set() -> dict[str, Any]:
    """The WebMercatorQuad definition (OGC 2D Tile Matrix Set 2.0)."""
    matrices = []
    for z in range(MAX_ZOOM + 1):
        n = 1 << z
        cell = 2 * _HALF / (256 * n)
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / 0.00028,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-_HALF, _HALF],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": n,
                "matrixHeight": n,
            }
        )
    return {
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World",
        "uri": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


def tile_range(bounds: list[float] | None, z: int) -> dict[str, int] | None:
    """Columns and rows of zoom ``z`` that cover a CRS84 box (tileset limits)."""
    if bounds is None:
        return None
    n = 1 << z

    def col(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def row(lat: float) -> int:
        r = math.radians(lat)
        return min(n - 1, max(0, int((1 - math.asinh(math.tan(r)) / math.pi) / 2 * n)))

    return {
        "tileMatrix": z,
        "minTileCol": col(bounds[0]),
        "maxTileCol": col(bounds[2]),
        "minTileRow": row(bounds[3]),
        "maxTileRow": row(bounds[1]),
    }


def tile_layers(catalogue: Catalogue) -> list[LayerSpec]:
    """Every layer of the catalogue, in catalogue order (the combined tile)."""
    return [catalogue[name] for name in catalogue]
