"""File import: every format, every bad-file case, modes, batches; nothing half-written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely

from geo.errors import Conflict, ImportRejected, InvalidInput
from geo.io.importer import import_file
from tests.conftest import DISTRICT
from tests.helpers import INSIDE, count, feature, lights, point, square, write_geojson


def _import(conn, catalogue, path, layer="street_lights", **kw):
    return import_file(conn, catalogue, path, layer=layer, district_code=DISTRICT, **kw)


def _problems(err: pytest.ExceptionInfo[ImportRejected]) -> list[tuple[int, str, str]]:
    return [(p["row"], p["field"], p["reason"]) for p in err.value.details["problems"]]


def _frame(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [f"F-{i}" for i in range(n)],
            "condition": ["故障", "normal", "repairing"][:n],
            "power_w": [30, 60, 100][:n],
        },
        geometry=[shapely.Point(INSIDE[0] + i * 1e-4, INSIDE[1]) for i in range(n)],
        crs="EPSG:4490",
    )


def test_geojson_import_writes_features_and_one_batch(tmp_path: Path, conn, catalogue):
    before = count(conn, "street_lights")
    path = write_geojson(tmp_path / "lights.geojson", lights(5))
    result = _import(conn, catalogue, path)
    assert (result.rows_read, result.inserted, result.rejected) == (5, 5, 0)
    assert count(conn, "street_lights") == before + 5
    batch = conn.execute(
        "SELECT layer, format, mode, rows_read, rows_inserted, source_crs FROM import_batches WHERE id = %s",
        [result.batch_id],
    ).fetchone()
    assert batch == ("street_lights", "geojson", "append", 5, 5, "EPSG:4326")
    pointing = conn.execute("SELECT count(*) FROM street_lights WHERE batch_id = %s", [result.batch_id]).fetchone()
    assert pointing == (5,)
    history = conn.execute(  # an append writes no history of its own (other tests' rows are not ours)
        "SELECT count(*) FROM feature_history h JOIN street_lights l ON l.code = h.feature_code "
        "WHERE h.layer = 'street_lights' AND l.batch_id = %s",
        [result.batch_id],
    ).fetchone()
    assert history == (0,)


def test_gpkg_in_a_projected_crs_is_reprojected(tmp_path: Path, conn, catalogue):
    path = tmp_path / "lights.gpkg"
    _frame().to_crs(4547).to_file(path, driver="GPKG")
    result = _import(conn, catalogue, path)
    assert result.inserted == 3
    row = conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), ST_SRID(geom), condition FROM street_lights WHERE code = 'F-0'"
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(INSIDE[0], abs=1e-7) and row[1] == pytest.approx(INSIDE[1], abs=1e-7)
    assert row[2] == 4490 and row[3] == "faulty"  # the Chinese label became its key


def test_shapefile_plain_and_zipped(tmp_path: Path, conn, catalogue):
    shp = tmp_path / "lights.shp"
    _frame().to_file(shp, driver="ESRI Shapefile", encoding="UTF-8")
    assert _import(conn, catalogue, shp).inserted == 3
    zipped = tmp_path / "lights.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for part in tmp_path.glob("lights.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    result = _import(conn, catalogue, zipped, mode="upsert")
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 3)


def test_shapefile_without_prj_is_refused_unless_crs_given(tmp_path: Path, conn, catalogue):
    shp = tmp_path / "noprj.shp"
    _frame().to_file(shp, driver="ESRI Shapefile")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InvalidInput, match=r"Shapefile without \.prj: pass --crs") as err:
        _import(conn, catalogue, shp)
    assert err.value.field == "crs"
    assert _import(conn, catalogue, shp, crs="EPSG:4490").inserted == 3


def test_csv_with_lon_lat_needs_crs(tmp_path: Path, conn, catalogue):
    path = tmp_path / "bins.csv"
    path.write_text(
        "code,condition,capacity_l,经度,纬度\nB-1,正常,120,112.9521,28.2321\nB-2,faulty,240,112.9522,28.2322\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput, match="CSV file: pass --crs"):
        _import(conn, catalogue, path, layer="litter_bins")
    result = _import(conn, catalogue, path, layer="litter_bins", crs="EPSG:4490")
    assert result.inserted == 2
    rows = conn.execute(
        "SELECT code, condition, capacity_l FROM litter_bins WHERE code LIKE 'B-%' ORDER BY code"
    ).fetchall()
    assert rows == [("B-1", "normal", 120), ("B-2", "faulty", 240)]


def test_csv_row_with_a_non_numeric_coordinate(tmp_path: Path, conn, catalogue):
    path = tmp_path / "bins.csv"
    path.write_text(
        "code,condition,lon,lat\nB-1,normal,112.9521,28.2321\nB-2,normal,东经112,28.2322\n", encoding="utf-8"
    )
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, path, layer="litter_bins", crs="EPSG:4490")
    assert _problems(err) == [(2, "geometry", "lon '东经112' / lat '28.2322' must both be numbers")]


def test_csv_without_coordinate_columns_is_refused(tmp_path: Path, conn, catalogue):
    path = tmp_path / "nocoords.csv"
    path.write_text("code,condition\nB-1,normal\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no coordinate columns"):
        _import(conn, catalogue, path, layer="litter_bins", crs="EPSG:4490")


def test_geojson_refuses_a_projected_crs_option(tmp_path: Path, conn, catalogue):
    path = write_geojson(tmp_path / "l.geojson", lights(1))
    with pytest.raises(InvalidInput, match=r"GeoJSON is CRS84 by definition \(RFC 7946\)"):
        _import(conn, catalogue, path, crs="EPSG:3857")


def test_unknown_crs_and_format_are_named(tmp_path: Path, conn, catalogue):
    path = write_geojson(tmp_path / "l.geojson", lights(1))
    with pytest.raises(InvalidInput, match="not a CRS this service knows"):
        _import(conn, catalogue, path, crs="WGS 84 please")
    other = tmp_path / "l.kml"
    other.write_text("<kml/>")
    with pytest.raises(InvalidInput, match=r"unknown format '\.kml'"):
        _import(conn, catalogue, other)


BAD_ROWS = [
    (
        "swapped",
        feature(point(INSIDE[1], INSIDE[0]), code="S-1", condition="normal"),
        "geometry",
        "coordinates look swapped (lat, lon)",
    ),
    ("outside", feature(point(113.5, 28.5), code="S-2", condition="normal"), "geometry", "outside district 430104"),
    (
        "wrong type",
        feature(square(*INSIDE), code="S-3", condition="normal"),
        "geometry",
        "Polygon is not accepted by layer 'street_lights'",
    ),
    (
        "bad value",
        feature(point(*INSIDE), code="S-4", condition="broken"),
        "condition",
        "'broken' is not an allowed value",
    ),
    ("no code", feature(point(*INSIDE), condition="normal"), "code", "required"),
    ("bad code", feature(point(*INSIDE), code="路灯 1", condition="normal"), "code", "ASCII"),
    (
        "not a number",
        feature(point(*INSIDE), code="S-7", condition="normal", power_w="lots"),
        "power_w",
        "'lots' is not a whole number",
    ),
    ("negative", feature(point(*INSIDE), code="S-8", condition="normal", power_w=-5), "power_w", "outside 0"),
    (
        "bad date",
        feature(point(*INSIDE), code="S-9", condition="normal", installed_on="31/31/2023"),
        "installed_on",
        "is not a date",
    ),
    (
        "no geometry",
        {"type": "Feature", "properties": {"code": "S-10", "condition": "normal"}, "geometry": None},
        "geometry",
        "missing",
    ),
]


@pytest.mark.parametrize(("case", "bad", "field", "reason"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_one_bad_row_rejects_the_whole_file(tmp_path: Path, conn, catalogue, case, bad, field, reason):
    before = count(conn, "street_lights")
    batches = count(conn, "import_batches")
    path = write_geojson(tmp_path / "mixed.geojson", [*lights(3), bad])
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, path)
    problems = _problems(err)
    assert [(r, f) for r, f, _ in problems] == [(4, field)]
    assert reason in problems[0][2]
    assert "nothing was imported" in err.value.message
    assert count(conn, "street_lights") == before
    assert count(conn, "import_batches") == batches


def test_invalid_polygons_are_named_with_the_reason(tmp_path: Path, conn, catalogue):
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[112.952, 28.232], [112.953, 28.233], [112.953, 28.232], [112.952, 28.233], [112.952, 28.232]]
        ],
    }
    path = write_geojson(
        tmp_path / "plots.geojson",
        [
            feature(square(*INSIDE, size=0.0002), code="G-1", condition="normal"),
            feature(bowtie, code="G-2", condition="normal"),
        ],
    )
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, path, layer="green_plots")
    assert _problems(err) == [(2, "geometry", "invalid geometry: Self-intersection[112.9525 28.2325]")]


def test_unclosed_ring_is_refused(tmp_path: Path, conn, catalogue):
    ring = [[112.952, 28.232], [112.953, 28.232], [112.953, 28.233], [112.952, 28.233]]
    path = write_geojson(
        tmp_path / "open.geojson", [feature({"type": "Polygon", "coordinates": [ring]}, code="G-9", condition="normal")]
    )
    before = count(conn, "green_plots")
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, path, layer="green_plots")
    assert _problems(err) == [
        (1, "geometry", "geometry cannot be read: a polygon ring is not closed or has too few points")
    ]
    assert count(conn, "green_plots") == before


def test_duplicate_codes_in_one_file(tmp_path: Path, conn, catalogue):
    rows = lights(2)
    rows[1]["properties"]["code"] = rows[0]["properties"]["code"]
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, write_geojson(tmp_path / "dup.geojson", rows))
    assert _problems(err)[0][:2] == (2, "code") and "more than once" in _problems(err)[0][2]


def test_append_of_an_existing_code_is_a_conflict_and_writes_nothing(tmp_path: Path, conn, catalogue):
    _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(2)))
    before, batches = count(conn, "street_lights"), count(conn, "import_batches")
    again = write_geojson(tmp_path / "b.geojson", lights(3, prefix="U") + lights(1))
    with pytest.raises(Conflict, match=r"Key \(code\)=\(T-0000\) already exists.*--mode upsert"):
        _import(conn, catalogue, again)
    assert count(conn, "street_lights") == before
    assert count(conn, "import_batches") == batches


def test_skip_invalid_loads_the_rest_and_reports(tmp_path: Path, conn, catalogue):
    rows = [*lights(3), BAD_ROWS[0][1], BAD_ROWS[3][1]]
    result = _import(conn, catalogue, write_geojson(tmp_path / "m.geojson", rows), skip_invalid=True)
    assert (result.inserted, result.rejected) == (3, 2)
    assert [(p.row, p.field) for p in result.problems] == [(4, "geometry"), (5, "condition")]
    batch = conn.execute(
        "SELECT rows_read, rows_inserted, rows_rejected FROM import_batches WHERE id = %s", [result.batch_id]
    ).fetchone()
    assert batch == (5, 3, 2)


def test_upsert_updates_changed_rows_only_and_bumps_version(tmp_path: Path, conn, catalogue):
    _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(3)))
    rows = lights(4)
    rows[1]["properties"]["condition"] = "faulty"
    rows[2]["geometry"] = point(INSIDE[0] + 0.0005, INSIDE[1] + 0.0005)
    result = _import(conn, catalogue, write_geojson(tmp_path / "b.geojson", rows), mode="upsert")
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 1)
    versions = dict(conn.execute("SELECT code, version FROM street_lights WHERE code LIKE 'T-%'").fetchall())
    assert versions == {"T-0000": 1, "T-0001": 2, "T-0002": 2, "T-0003": 1}


def test_replace_swaps_the_whole_layer(tmp_path: Path, conn, catalogue):
    assert count(conn, "litter_bins") > 0
    before = count(conn, "litter_bins")
    path = write_geojson(
        tmp_path / "bins.geojson", [feature(point(*INSIDE), code="ONLY-1", condition="normal", capacity_l=60)]
    )
    result = _import(conn, catalogue, path, layer="litter_bins", mode="replace")
    assert (result.deleted, result.inserted) == (before, 1)
    assert conn.execute("SELECT array_agg(code) FROM litter_bins").fetchone() == (["ONLY-1"],)


def test_unknown_unit_reference_is_refused(tmp_path: Path, conn, catalogue):
    zone = conn.execute("SELECT code, ST_AsGeoJSON(ST_PointOnSurface(geom)) FROM zones LIMIT 1").fetchone()
    assert zone is not None
    path = write_geojson(
        tmp_path / "sections.geojson",
        [
            feature(
                square(*shapely.from_geojson(zone[1]).coords[0], size=0.0001),
                code="X-1",
                name="测试标段",
                zone_code=zone[0],
                contractor_unit="nobody",
                service_kinds=["sanitation"],
            )
        ],
    )
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, path, layer="contract_sections")
    assert _problems(err) == [(1, "contractor_unit", "unit 'nobody' is not in the units table")]


def test_import_without_a_district_outline_is_refused(tmp_path: Path, empty_db_url: str, catalogue):
    with psycopg.connect(empty_db_url) as conn, pytest.raises(InvalidInput, match="no outline of district"):
        _import(conn, catalogue, write_geojson(tmp_path / "l.geojson", lights(1)))


def test_read_only_and_unknown_layers(tmp_path: Path, conn, catalogue):
    from geo.errors import UnknownLayer

    with pytest.raises(UnknownLayer, match="layer 'paths' is not in the catalogue"):
        _import(conn, catalogue, write_geojson(tmp_path / "l.geojson", lights(1)), layer="paths")


def _indexes(conn, table: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])}


def test_bulk_load_rebuilds_indexes_and_still_catches_duplicates(tmp_path: Path, conn, catalogue, monkeypatch):
    from geo.io import importer

    monkeypatch.setattr(importer, "BULK_ROWS", 10)  # take the bulk path with a small file
    before_idx = _indexes(conn, "street_lights")
    assert {"street_lights_geom_gist", "street_lights_code_key"} <= before_idx
    result = _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(20)))
    assert result.inserted == 20
    assert _indexes(conn, "street_lights") == before_idx
    before = count(conn, "street_lights")
    with pytest.raises(Conflict, match=r"\(code\)=\(T-0003\)"):
        rows = lights(30, prefix="V") + lights(5)[3:4]
        _import(conn, catalogue, write_geojson(tmp_path / "b.geojson", rows))
    assert count(conn, "street_lights") == before
    assert _indexes(conn, "street_lights") == before_idx


def test_replace_of_a_big_layer_truncates(tmp_path: Path, conn, catalogue, monkeypatch):
    from geo.io import importer

    monkeypatch.setattr(importer, "BULK_ROWS", 10)
    before = count(conn, "street_lights")
    result = _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(12)), mode="replace")
    assert (result.deleted, result.inserted) == (before, 12)
    assert count(conn, "street_lights") == 12


def test_dates_outside_a_sane_range_are_refused_naming_row_and_field(tmp_path: Path, conn, catalogue):
    """A light installed in 1900 or maintained tomorrow is a typing error: each row named; nothing written."""
    from datetime import timedelta

    from geo.workcal import today

    rows = lights(3, prefix="DT")
    rows[0]["properties"]["installed_on"] = "1900-05-01"
    rows[1]["properties"]["last_maintained"] = (today() + timedelta(days=1)).isoformat()
    rows[2]["properties"]["installed_on"] = "1988-03-01"  # an old dormitory's light: plausible
    before = count(conn, "street_lights")
    with pytest.raises(ImportRejected) as err:
        _import(conn, catalogue, write_geojson(tmp_path / "dates.geojson", rows))
    assert [(row, field) for row, field, _ in _problems(err)] == [(1, "installed_on"), (2, "last_maintained")]
    assert "1950-01-01" in _problems(err)[0][2] and "future" in _problems(err)[1][2]
    assert count(conn, "street_lights") == before


def test_a_contract_may_end_in_the_future(tmp_path: Path, conn, catalogue):
    from geo.errors import ImportRejected as Rejected

    later = {"contract_start": "2026-01-01", "contract_end": "2031-12-31"}
    path = write_geojson(tmp_path / "s.geojson", [feature(square(112.9, 28.2), code="CS-DATE", name="x", **later)])
    try:
        _import(conn, catalogue, path, layer="contract_sections")
    except Rejected as err:  # other rules of the layer may refuse this made-up section: not its dates
        assert not [p for p in err.details["problems"] if p["field"].startswith("contract_")], err.details
