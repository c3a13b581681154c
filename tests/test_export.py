"""Export round trips: import → export → import gives the same features, in every format."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from geo.io.exporter import export_layer
from geo.io.importer import import_file
from tests.conftest import DISTRICT

# md5 of every feature's code, attributes and geometry (to 1e-7 degrees), in code order
FINGERPRINT = """
SELECT count(*), md5(string_agg(
    code || '|' || (to_jsonb(t) - 'id' - 'version' - 'created_at' - 'updated_at' - 'batch_id' - 'geom')::text
    || '|' || ST_AsText(ST_SnapToGrid(geom, 1e-7)), ',' ORDER BY code))
FROM {table} t
"""


def _fingerprint(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    row = conn.execute(FINGERPRINT.format(table=table)).fetchone()  # table: a catalogue name
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("layer", "fmt", "suffix"),
    [
        ("street_lights", "geojson", ".geojson"),
        ("street_lights", "gpkg", ".gpkg"),
        ("street_lights", "csv", ".csv"),
        ("septic_tanks", "shp", ".zip"),
        ("contract_sections", "geojson", ".geojson"),
        ("contract_sections", "gpkg", ".gpkg"),
        ("contract_sections", "shp", ".shp"),
        ("contract_sections", "csv", ".csv"),
        ("zones", "gpkg", ".gpkg"),
        ("green_plots", "csv", ".csv"),
    ],
)
def test_round_trip(tmp_path: Path, db_url: str, catalogue, layer: str, fmt: str, suffix: str):
    spec = catalogue[layer]
    out = tmp_path / f"{layer}{suffix}"
    with psycopg.connect(db_url) as conn:
        original = _fingerprint(conn, layer)
        assert original[0] > 0
        written = export_layer(conn, spec, out, fmt=fmt, district_code=DISTRICT)
        assert written == original[0]
        result = import_file(
            conn,
            catalogue,
            out,
            layer=layer,
            district_code=DISTRICT,
            mode="replace",
            crs="EPSG:4490" if fmt == "csv" else None,
        )
        # replace matches by code: a round trip changes nothing (issue 14: identity and history stay)
        assert (result.deleted, result.inserted, result.updated, result.unchanged) == (0, 0, 0, original[0])
        assert _fingerprint(conn, layer) == original


# Issue 18: every layer of the other service kinds, in every format (lines too: a shapefile's arcs,
# CSV's WKT), keeping each line's zone (computed on import, kept as exported).
SIX_KINDS = ("drains", "manholes", "roads", "ditches", "walls", "sports_equipment", "drying_racks")
FORMATS = (("geojson", ".geojson"), ("gpkg", ".gpkg"), ("shp", ".zip"), ("csv", ".csv"))


@pytest.mark.parametrize("layer", SIX_KINDS)
def test_round_trip_of_the_six_kinds_in_every_format(tmp_path: Path, db_url: str, catalogue, layer: str):
    spec = catalogue[layer]
    with psycopg.connect(db_url) as conn:
        original = _fingerprint(conn, layer)
        assert original[0] > 0
        for fmt, suffix in FORMATS:
            out = tmp_path / f"{layer}-{fmt}{suffix}"
            assert export_layer(conn, spec, out, fmt=fmt, district_code=DISTRICT) == original[0]
            crs = "EPSG:4490" if fmt == "csv" else None
            result = import_file(conn, catalogue, out, layer=layer, district_code=DISTRICT, mode="replace", crs=crs)
            assert (result.deleted, result.inserted, result.updated, result.unchanged) == (0, 0, 0, original[0]), fmt
            assert _fingerprint(conn, layer) == original, fmt
            # into an empty layer: the same features again
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(layer)))
            again = import_file(conn, catalogue, out, layer=layer, district_code=DISTRICT, mode="append", crs=crs)
            assert again.inserted == original[0], fmt
            assert _fingerprint(conn, layer) == original, fmt
            conn.commit()


def test_export_in_a_projected_crs(tmp_path: Path, conn, catalogue):
    out = tmp_path / "lights_4547.csv"
    export_layer(conn, catalogue["street_lights"], out, fmt="csv", district_code=DISTRICT, crs="EPSG:4547")
    header, first = out.read_text(encoding="utf-8-sig").splitlines()[:2]
    assert header.endswith(",x,y")
    x, y = (float(v) for v in first.split(",")[-2:])
    assert 300_000 < x < 700_000 and 3_000_000 < y < 3_300_000  # metres in CM 114E
