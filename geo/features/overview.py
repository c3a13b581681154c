"""Overview tiles of facility layers for maps at low zoom: one point per tile cell and value.

At the whole-district view a facility layer holds tens of thousands of
points in a few tiles, far more than there are pixels to tell them apart:
drawing each one costs seconds in the browser and the picture is the same.
Here points are grouped by the cell they fall in (``OVERVIEW_CELLS`` cells
across a tile, 64 px on a 512-px tile: room for a symbol with a readable count
per layer; 2-px cells merged into blobs), one point at the cell's centre with
the group's ``count``, its most frequent categorical value (e.g. condition)
and ``detail``, the count per value (``normal:120,faulty:3``); from
``DETAIL_ZOOM`` up the maps read the full tiles of ``geo.tiles``. No buffer:
each point is counted in exactly one tile, so the counts add up to the layer.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from geo.features.tiles import check_tile
from layers.catalogue import LayerSpec

OVERVIEW_EXTENT = 256
OVERVIEW_CELLS = 8  # cells across a tile (each OVERVIEW_EXTENT / OVERVIEW_CELLS units)
DETAIL_ZOOM = 15  # the first zoom at which maps read every feature


def overview_attribute(spec: LayerSpec) -> str | None:
    """The categorical attribute points are grouped by (condition for facilities), if any."""
    for attr in spec.attributes:
        if attr.values and attr.type == "text":
            return attr.name
    return None


def overview_tile(conn: psycopg.Connection, spec: LayerSpec, z: int, x: int, y: int, *, district_code: str) -> bytes:
    """MVT bytes of tile z/x/y of a layer, its features grouped per cell and value (empty: nothing)."""
    check_tile("WebMercatorQuad", z, x, y)
    # Points stand for themselves; a polygon (a green plot: a few pixels at these zooms) for the
    # centre of its bounding box, read from the box PostGIS keeps with the geometry.
    x_expr, y_expr = (
        ("ST_X(t.geom)", "ST_Y(t.geom)")
        if "Point" in spec.geometry
        else ("(ST_XMin(t.geom) + ST_XMax(t.geom)) / 2", "(ST_YMin(t.geom) + ST_YMax(t.geom)) / 2")
    )
    attr = overview_attribute(spec)
    value = sql.Identifier("t", attr) if attr else sql.SQL("NULL::text")
    # Cells by Web Mercator arithmetic on the stored lon/lat (CGCS2000 = WGS84 at this scale):
    # no per-point ST_Transform/ST_AsMVTGeom, about 20x cheaper; floor() puts each point in
    # exactly one tile and cell. The cell's corner is its MVT point (tile space, y down).
    stmt = sql.SQL(
        "WITH b AS (SELECT ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid}) AS search),"
        " cells AS (SELECT floor((({lon} + 180) / 360 * %(n)s - %(x)s) * {cells})::int AS cx,"
        "  floor(((1 - asinh(tan(radians({lat}))) / pi()) / 2 * %(n)s - %(y)s) * {cells})::int AS cy,"
        "  {value} AS v FROM {table} AS t, b WHERE t.district_code = %(district)s AND t.geom && b.search),"
        " per_value AS (SELECT cx, cy, v, count(*)::int AS n FROM cells"
        "  WHERE cx >= 0 AND cx < {cells} AND cy >= 0 AND cy < {cells} GROUP BY cx, cy, v),"
        " grouped AS (SELECT (array_agg(v ORDER BY n DESC, v))[1] AS {name}, sum(n)::int AS count,"
        "  string_agg(coalesce(v::text, '') || ':' || n, ',' ORDER BY v) AS detail,"
        "  ST_Point((cx + 0.5) * {cell}, (cy + 0.5) * {cell}) AS geom FROM per_value GROUP BY cx, cy)"
        " SELECT ST_AsMVT(grouped, {layer}, {extent}, 'geom') FROM grouped"
    ).format(
        srid=sql.Literal(spec.srid),
        extent=sql.Literal(OVERVIEW_EXTENT),
        cells=sql.Literal(OVERVIEW_CELLS),
        cell=sql.Literal(OVERVIEW_EXTENT // OVERVIEW_CELLS),
        value=value,
        lon=sql.SQL(x_expr),
        lat=sql.SQL(y_expr),
        table=sql.Identifier(spec.table),
        name=sql.Identifier(attr or "value"),
        layer=sql.Literal(spec.name),
    )
    row = conn.execute(
        stmt, {"z": z, "x": x, "y": y, "n": 1 << z, "margin": 0.01, "district": district_code}
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
