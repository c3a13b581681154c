"""The caller's own working area: the zones (and sections) their scope covers."""

from __future__ import annotations

import psycopg
from psycopg import sql

from geo.access.scope import Principal, zone_scope


def my_area(conn: psycopg.Connection, principal: Principal, *, district_code: str) -> bytes:
    """A GeoJSON FeatureCollection (CRS84) of the zones the caller acts in, built by PostGIS."""
    predicate, params = zone_scope(principal, sql.SQL("z.code"))
    stmt = sql.SQL(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg("
        "json_build_object('type', 'Feature', 'id', z.code, 'geometry', ST_AsGeoJSON(z.geom, 7)::json, "
        "'properties', json_build_object('name', z.name, 'subdistrict_code', z.subdistrict_code, "
        "'sections', (SELECT coalesce(json_agg(s.code ORDER BY s.code), '[]'::json) FROM contract_sections s "
        "WHERE s.zone_code = z.code AND (%(scope_unit)s::text IS NULL OR s.contractor_unit = %(scope_unit)s))"
        ")) ORDER BY z.code), '[]'::json))::text "
        "FROM zones z WHERE z.district_code = %(district)s AND {predicate}"
    ).format(predicate=predicate)
    row = conn.execute(stmt, {**params, "district": district_code}).fetchone()
    assert row is not None
    return str(row[0]).encode()
