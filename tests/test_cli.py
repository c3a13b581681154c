"""The `wuye` command line, called in-process with settings that point at a test database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from api.cli import main
from tests.conftest import settings_for
from tests.helpers import count, lights, write_geojson


def test_import_then_export_then_check(tmp_path: Path, db_url: str, capsys):
    settings = settings_for(db_url)
    settings.db.home = tmp_path  # check also compares the photo store with the photo rows
    path = write_geojson(tmp_path / "lights.geojson", lights(4))
    assert main(["import", str(path), "--layer", "street_lights"], settings=settings) == 0
    assert "新增 inserted 4" in capsys.readouterr().out
    out = tmp_path / "out.gpkg"
    assert main(["export", "--layer", "street_lights", "--format", "gpkg", "--out", str(out)], settings=settings) == 0
    assert out.exists()
    assert main(["check"], settings=settings) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_rejected_import_exits_1_and_writes_the_report(tmp_path: Path, db_url: str, capsys):
    rows = lights(2)
    rows[1]["properties"]["condition"] = "kaput"
    path = write_geojson(tmp_path / "bad.geojson", rows)
    code = main(["import", str(path), "--layer", "street_lights"], settings=settings_for(db_url))
    assert code == 1
    err = capsys.readouterr().err
    assert "错误 error" in err and "row 2 condition: 'kaput' is not an allowed value" in err
    report = (tmp_path / "bad.errors.csv").read_text(encoding="utf-8-sig").splitlines()
    assert report[0] == "row,field,reason" and report[1].startswith("2,condition,")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM street_lights WHERE code LIKE 'T-%'").fetchone() == (0,)


def test_check_exits_1_when_zones_overlap(db_url: str, capsys):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE zones SET geom = ST_Translate(geom, 0, -0.0005) WHERE code = 'yumin-north'")
    assert main(["check"], settings=settings_for(db_url)) == 1
    assert "zones yumin-north 与 yumin-south 重叠" in capsys.readouterr().out


def test_demo_if_empty_leaves_a_loaded_district_alone(db_url: str, capsys):
    with psycopg.connect(db_url) as conn:
        before = count(conn, "street_lights")
    assert main(["demo", "--if-empty"], settings=settings_for(db_url)) == 0
    assert "already loaded" in capsys.readouterr().out
    with psycopg.connect(db_url) as conn:
        assert count(conn, "street_lights") == before


def test_unknown_layer_and_bad_scale(db_url: str, capsys):
    assert (
        main(["export", "--layer", "paths", "--format", "csv", "--out", "/tmp/x.csv"], settings=settings_for(db_url))
        == 1
    )
    assert "layer 'paths' is not in the catalogue" in capsys.readouterr().err
    assert main(["demo", "--scale", "0"], settings=settings_for(db_url)) == 2
    with pytest.raises(SystemExit):
        main(["import"])
