"""Spatial integrity of the boundary layers: children inside their parent, no overlaps.

Areas are measured in EPSG:4547 (metres). A violation smaller than
``MIN_AREA_M2`` is coordinate rounding on a shared edge, not a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from geo.spatial.crs import METRIC_SRID
from layers.catalogue import Catalogue, LayerSpec

MIN_AREA_M2 = 0.01


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the ids involved and the area concerned (m²)."""

    kind: str  # "outside_parent" | "missing_parent" | "overlap"
    layer: str
    code: str
    other_layer: str
    other_code: str | None
    area_m2: float | None

    def describe(self) -> str:
        """One Chinese-first line for people."""
        if self.kind == "missing_parent":
            return (
                f"{self.layer} {self.code}: 上级 {self.other_layer} '{self.other_code}' 不存在 (parent does not exist)"
            )
        if self.kind == "outside_parent":
            return (
                f"{self.layer} {self.code}: 超出所属 {self.other_layer} {self.other_code} "
                f"{self.area_m2:.2f} m² (outside its parent)"
            )
        return f"{self.layer} {self.code} 与 {self.other_code} 重叠 {self.area_m2:.2f} m² (overlap)"


def outside_parent(
    conn: psycopg.Connection, catalogue: Catalogue, spec: LayerSpec, *, district_code: str, code: str | None = None
) -> list[Violation]:
    """Features of ``spec`` not inside the parent feature they name (or naming none that exists)."""
    if spec.parent is None:
        return []
    parent = catalogue[spec.parent.layer]
    stmt = sql.SQL(
        "SELECT c.code, c.{attr}, p.code IS NULL, "
        " CASE WHEN p.code IS NOT NULL THEN "
        "  ST_Area(ST_Transform(ST_Difference(c.geom, p.geom), %(metric)s)) END AS outside "
        "FROM {child} c LEFT JOIN {parent} p ON p.code = c.{attr} "
        "WHERE c.district_code = %(district)s AND (%(code)s::text IS NULL OR c.code = %(code)s) "
        "AND (p.code IS NULL OR NOT ST_CoveredBy(c.geom, p.geom)) ORDER BY c.code"
    ).format(
        attr=sql.Identifier(spec.parent.attribute),
        child=sql.Identifier(spec.table),
        parent=sql.Identifier(parent.table),
    )
    rows = conn.execute(stmt, {"metric": METRIC_SRID, "district": district_code, "code": code})
    found = []
    for child_code, parent_code, missing, area in rows:
        if missing:
            found.append(Violation("missing_parent", spec.name, child_code, parent.name, parent_code, None))
        elif area > MIN_AREA_M2:
            found.append(
                Violation("outside_parent", spec.name, child_code, parent.name, parent_code, round(float(area), 2))
            )
    return found


def overlaps(
    conn: psycopg.Connection, spec: LayerSpec, *, district_code: str, code: str | None = None
) -> list[Violation]:
    """Pairs of features of ``spec`` whose interiors overlap by more than ``MIN_AREA_M2``."""
    if not spec.no_overlap:
        return []
    # '2********': the interiors meet in an area; touching edges do not count.
    stmt = sql.SQL(
        "SELECT a.code, b.code, ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), %(metric)s)) "
        "FROM {t} a JOIN {t} b ON a.code <> b.code AND a.geom && b.geom "
        " AND ST_Relate(a.geom, b.geom, '2********') "
        "WHERE a.district_code = %(district)s AND b.district_code = %(district)s "
        "AND ((%(code)s::text IS NULL AND a.code < b.code) OR a.code = %(code)s) "
        "ORDER BY a.code, b.code"
    ).format(t=sql.Identifier(spec.table))
    rows = conn.execute(stmt, {"metric": METRIC_SRID, "district": district_code, "code": code})
    return [
        Violation("overlap", spec.name, a, spec.name, b, round(float(area), 2))
        for a, b, area in rows
        if area > MIN_AREA_M2
    ]


def check_all(conn: psycopg.Connection, catalogue: Catalogue, *, district_code: str) -> list[Violation]:
    """Every violation in the district, layer by layer in catalogue order."""
    found: list[Violation] = []
    for name in catalogue:
        spec = catalogue[name]
        found += outside_parent(conn, catalogue, spec, district_code=district_code)
        found += overlaps(conn, spec, district_code=district_code)
    return found
