"""Overview tiles of facility layers for maps at low zoom: one point per tile cell and value.

At the whole-district view a facility layer holds tens of thousands of
points in a few tiles, far more than there are pixels to tell them apart:
drawing each one costs seconds in the browser and the picture is the same.
Here points are grouped by the MVT cell they fall in (``OVERVIEW_EXTENT``
cells across a tile, about 2 px on a 512-px tile) and by their categorical
attribute (e.g. condition), each group carrying its ``count``; from
``DETAIL_ZOOM`` up the maps read the full tiles of ``geo.tiles``. No buffer:
each point is counted in exactly one tile, so the counts add up to the layer.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from geo.features.tiles import check_tile
from layers.catalogue import LayerSpec

OVERVIEW_EXTENT = 256
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
        " cells AS (SELECT floor((({lon} + 180) / 360 * %(n)s - %(x)s) * {extent})::int AS cx,"
        "  floor(((1 - asinh(tan(radians({lat}))) / pi()) / 2 * %(n)s - %(y)s) * {extent})::int AS cy,"
        "  {value} AS v FROM {table} AS t, b WHERE t.district_code = %(district)s AND t.geom && b.search),"
        " grouped AS (SELECT v AS {name}, count(*)::int AS count, ST_Point(cx, cy) AS geom FROM cells"
        "  WHERE cx >= 0 AND cx < {extent} AND cy >= 0 AND cy < {extent} GROUP BY cx, cy, v)"
        " SELECT ST_AsMVT(grouped, {layer}, {extent}, 'geom') FROM grouped"
    ).format(
        srid=sql.Literal(spec.srid),
        extent=sql.Literal(OVERVIEW_EXTENT),
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
