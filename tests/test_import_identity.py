"""Imports keep each feature's identity and history (replace and upsert match by code), and warn
about what is legal but suspicious (issue 14.5-6)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from geo.errors import ImportRejected
from geo.io.importer import import_file
from tests.conftest import DISTRICT
from tests.helpers import count, feature, lights, point, write_geojson


def _import(conn, catalogue, path, layer="street_lights", **kw):
    return import_file(conn, catalogue, path, layer=layer, district_code=DISTRICT, **kw)


def _ids(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    rows = conn.execute("SELECT code, id, version FROM street_lights WHERE code LIKE 'T-%'").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_replace_matches_by_code_and_keeps_ids_versions_and_history(tmp_path: Path, conn, catalogue):
    _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(5)))
    edited = lights(5)
    edited[1]["properties"]["power_w"] = 90
    _import(conn, catalogue, write_geojson(tmp_path / "b.geojson", edited), mode="upsert")
    before = _ids(conn)
    others = count(conn, "street_lights") - 5

    rows = lights(6)
    rows[1]["properties"]["power_w"] = 120  # changed again: version 3
    rows[2]["geometry"] = point(rows[2]["geometry"]["coordinates"][0], rows[2]["geometry"]["coordinates"][1] + 5e-4)
    del rows[3]  # T-0003 is not in the file: removed
    result = _import(conn, catalogue, write_geojson(tmp_path / "c.geojson", rows), mode="replace")

    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (1, 2, 2, others + 1)
    after = _ids(conn)
    assert set(after) == {"T-0000", "T-0001", "T-0002", "T-0004", "T-0005"}
    for code in ("T-0000", "T-0001", "T-0002", "T-0004"):
        assert after[code][0] == before[code][0], f"{code} kept its id"
    assert {c: v for c, (_, v) in after.items()} == {"T-0000": 1, "T-0001": 3, "T-0002": 2, "T-0004": 1, "T-0005": 1}

    history = conn.execute(
        "SELECT feature_code, feature_id, version, operation, old_properties->>'power_w', new_properties->>'power_w',"
        " batch_id FROM feature_history WHERE feature_code IN ('T-0001', 'T-0002', 'T-0003')"
        " ORDER BY feature_code, version"
    ).fetchall()
    batch = result.batch_id
    assert [h[:6] for h in history] == [
        ("T-0001", before["T-0001"][0], 2, "update", "60", "90"),
        ("T-0001", before["T-0001"][0], 3, "update", "90", "120"),
        ("T-0002", before["T-0002"][0], 2, "update", "60", "60"),
        ("T-0003", before["T-0003"][0], 2, "delete", "60", None),
    ]
    assert [h[6] for h in history[1:]] == [batch, batch, batch]
    moved = conn.execute(
        "SELECT ST_Equals(old_geom, new_geom) FROM feature_history WHERE feature_code = 'T-0002'"
    ).fetchone()
    assert moved == (False,)
    record = conn.execute(
        "SELECT mode, rows_inserted, rows_updated, rows_unchanged, rows_deleted FROM import_batches WHERE id = %s",
        [batch],
    ).fetchone()
    assert record == ("replace", 1, 2, 2, others + 1)


def test_replace_with_nothing_changed_writes_nothing_but_the_batch(tmp_path: Path, conn, catalogue):
    path = write_geojson(tmp_path / "a.geojson", lights(4))
    _import(conn, catalogue, path, mode="replace")
    before = conn.execute("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM street_lights t").fetchone()
    history = count(conn, "feature_history")
    result = _import(conn, catalogue, path, mode="replace")
    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (0, 0, 4, 0)
    after = conn.execute("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM street_lights t").fetchone()
    assert after == before and count(conn, "feature_history") == history


def test_replace_with_skip_invalid_keeps_the_features_of_rejected_rows(tmp_path: Path, conn, catalogue):
    _import(conn, catalogue, write_geojson(tmp_path / "a.geojson", lights(3)), mode="replace")
    rows = lights(3)
    rows[1]["properties"]["power_w"] = -5  # invalid: the row is skipped, its feature not removed
    result = _import(conn, catalogue, write_geojson(tmp_path / "b.geojson", rows), mode="replace", skip_invalid=True)
    assert (result.rejected, result.deleted, result.unchanged) == (1, 0, 2)
    assert set(_ids(conn)) == {"T-0000", "T-0001", "T-0002"}


def _outside_every_zone(conn: psycopg.Connection) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Difference(s.geom, "
        "(SELECT ST_Union(geom) FROM zones))) p FROM subdistricts s WHERE s.code = 'guanshaling') q"
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _inside_a_zone(conn: psycopg.Connection) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones LIMIT 1) q"
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _suspicious(conn: psycopg.Connection) -> list[dict]:
    lon, lat = _inside_a_zone(conn)
    far_lon, far_lat = _outside_every_zone(conn)
    metre = 1 / 98_000  # degrees of longitude per metre at 28° N, about
    return [
        feature(point(lon, lat), code="W-1", condition="normal"),
        feature(point(lon + 0.3 * metre, lat), code="W-2", condition="normal"),  # 0.3 m from W-1
        feature(point(lon + 2.3 * metre, lat), code="W-3", condition="normal"),  # 2 m from W-2: fine
        feature(point(far_lon, far_lat), code="W-4", condition="normal"),  # in no zone
    ]


def test_facilities_outside_every_zone_and_near_duplicates_are_warned_and_loaded(tmp_path: Path, conn, catalogue):
    result = _import(conn, catalogue, write_geojson(tmp_path / "w.geojson", _suspicious(conn)))
    assert result.inserted == 4
    reasons = [(w.row, w.reason) for w in result.warnings]
    assert len(reasons) == 2, reasons
    assert reasons[0][0] == 1 and "'W-1' is 0.3" in reasons[0][1] and "'W-2'" in reasons[0][1]
    assert reasons[1] == (4, "警告 warning: street_lights 'W-4' lies outside every zone")
    record = conn.execute("SELECT warnings FROM import_batches WHERE id = %s", [result.batch_id]).fetchone()
    assert record == ({"outside_zones": 1, "near_duplicates": 1},)
    # a second file with a point on top of an existing one is warned too
    again = _import(
        conn,
        catalogue,
        write_geojson(tmp_path / "x.geojson", [feature(point(*_inside_a_zone(conn)), code="W-9", condition="normal")]),
    )
    assert [w.reason for w in again.warnings if "W-9" in w.reason and "'W-1'" in w.reason]


def test_strict_rejects_a_file_with_warnings_and_writes_nothing(tmp_path: Path, conn, catalogue):
    before = count(conn, "street_lights"), count(conn, "import_batches")
    with pytest.raises(ImportRejected, match="--strict: 2 warning"):
        _import(conn, catalogue, write_geojson(tmp_path / "w.geojson", _suspicious(conn)), strict=True)
    assert (count(conn, "street_lights"), count(conn, "import_batches")) == before


def test_cli_report_lists_the_warnings_and_totals(tmp_path: Path, db_url: str):
    from tests.live import wuye

    with psycopg.connect(db_url) as conn:
        path = write_geojson(tmp_path / "w.geojson", _suspicious(conn))
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_HOME": str(tmp_path)}
    strict = wuye(env, "import", str(path), "--layer", "street_lights", "--mode", "replace", "--strict")
    assert strict.returncode == 1 and "--strict" in strict.stderr, strict.stdout + strict.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM street_lights WHERE code LIKE 'W-%'").fetchone() == (0,)
    done = wuye(env, "import", str(path), "--layer", "street_lights", "--mode", "replace")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" in done.stdout and "unchanged 0" in done.stdout
    report = (tmp_path / "w.errors.csv").read_text(encoding="utf-8-sig")
    assert "'W-4' lies outside every zone" in report and "'W-1' is 0.3" in report
    # warnings are about what an import writes: the same file again changes nothing, warns nothing
    again = wuye(env, "import", str(path), "--layer", "street_lights", "--mode", "replace", "--strict")
    assert again.returncode == 0 and "unchanged 4" in again.stdout, again.stdout + again.stderr
