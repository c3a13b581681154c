"""Reference data every write checks against: the district outline and the unit codes."""

from __future__ import annotations

import numpy as np
import psycopg
import shapely
from shapely.geometry.base import BaseGeometry

from geo.kept import Counters, kept_read
from geo.spatial import crs as crsmod
from geo.steps import Rows, Statement, Steps


def district_boundary(conn: psycopg.Connection, district_code: str) -> BaseGeometry | None:
    """The district's outline (EPSG:4490), or None when no district is loaded yet."""
    row = conn.execute(
        "SELECT ST_AsBinary(ST_Union(geom)) FROM districts WHERE district_code = %s",
        [district_code],
    ).fetchone()
    if not row or row[0] is None:
        return None
    return shapely.from_wkb(bytes(row[0]))


def unit_codes(conn: psycopg.Connection, district_code: str) -> set[str]:
    """Codes of the responsible units of the district."""
    rows = conn.execute("SELECT code FROM units WHERE district_code = %s", [district_code])
    return {r[0] for r in rows}


def zone_codes(conn: psycopg.Connection, district_code: str) -> set[str]:
    """Codes of the district's zones (a line feature's ``zone_code`` must name one)."""
    rows = conn.execute("SELECT code FROM zones WHERE district_code = %s", [district_code])
    return {r[0] for r in rows}


_UNITS = "SELECT code, name, kind FROM units WHERE district_code = %(d)s ORDER BY kind, name, code"
_ZONES = "SELECT code, name, subdistrict_code FROM zones WHERE district_code = %(d)s ORDER BY name, code"
_SUBDISTRICTS = "SELECT code, name FROM subdistricts WHERE district_code = %(d)s ORDER BY name"


def _units(rows: Rows) -> list[dict[str, str]]:
    return [{"code": r[0], "name": r[1], "kind": r[2]} for r in rows]


def _zones(rows: Rows) -> list[dict[str, str]]:
    return [{"code": r[0], "name": r[1], "subdistrict": r[2]} for r in rows]


def _subdistricts(rows: Rows) -> list[dict[str, str]]:
    return [{"code": r[0], "name": r[1]} for r in rows]


def units(conn: psycopg.Connection, district_code: str) -> list[dict[str, str]]:
    """The district's responsible units (code, name, kind; no contact details), by kind and name."""
    return _units(conn.execute(_UNITS, {"d": district_code}).fetchall())


def reproject(geoms: np.ndarray, src: int, dst: int = crsmod.STORAGE_SRID) -> np.ndarray:
    """Transform shapely geometries between EPSG codes (lon/lat axis order throughout)."""
    if src == dst:
        return geoms
    tr = crsmod.transformer(src, dst)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geoms, _xy), dtype=object)


def subdistricts(conn: psycopg.Connection, district_code: str) -> list[dict[str, str]]:
    """The district's sub-districts (code, name), by name (the case desk's filter)."""
    return _subdistricts(conn.execute(_SUBDISTRICTS, {"d": district_code}).fetchall())


def _lists(district_code: str) -> Steps[dict[str, list[dict[str, str]]]]:
    values = {"d": district_code}
    return {
        "units": _units((yield Statement(_UNITS, values))),
        "zones": _zones((yield Statement(_ZONES, values))),
        "subdistricts": _subdistricts((yield Statement(_SUBDISTRICTS, values))),
    }


def lists(district_code: str, *, counters: Counters | None = None) -> Steps[dict[str, list[dict[str, str]]]]:
    """The district's ``units``, ``zones`` and ``subdistricts`` as above, for the pages' filters and
    names: kept between views until one of those tables changes (geo/kept.py), one short read instead of
    three queries on each view of the case desk and a case (``counters``: see geo/kept.py's kept_read)."""
    return kept_read(("reference lists", district_code), lambda: _lists(district_code), counters=counters)
