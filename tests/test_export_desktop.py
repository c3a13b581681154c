"""Exports that desktop GIS opens as they are (issue 17 point 7): dates as Date fields in GeoPackage
and Shapefile, a GeoPackage that GDAL 3.6 (QGIS 3.22's, the OS's python3-gdal) reads without a
warning, and the Shapefile's cut field names listed in a sidecar that ``wuye import`` reads back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import psycopg
import pyogrio
import pytest

from geo.io.exporter import export_layer, shp_names
from geo.io.importer import import_file
from layers.catalogue import Catalogue
from tests.conftest import DISTRICT

DATES = "SELECT code, installed_on, last_maintained FROM street_lights ORDER BY code"
GDAL_36 = """
import json, sys
from osgeo import gdal, ogr
said = []
gdal.PushErrorHandler(lambda cls, no, msg: said.append(msg))
ds = ogr.Open(sys.argv[1])
layer = ds.GetLayer(0)
print(json.dumps({"gdal": gdal.__version__, "count": layer.GetFeatureCount(), "said": said,
                  "types": {d.GetName(): d.GetTypeName() for d in layer.schema}}))
"""


def test_gpkg_has_date_fields_and_gdal_36_reads_it_without_warnings(
    tmp_path: Path, conn: psycopg.Connection, catalogue: Catalogue
) -> None:
    out = tmp_path / "lights.gpkg"
    n = export_layer(conn, catalogue["street_lights"], out, fmt="gpkg", district_code=DISTRICT)
    info = pyogrio.read_info(out)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["installed_on"] == types["last_maintained"] == "datetime64[D]"  # Date, not DateTime
    with sqlite3.connect(out) as db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
    assert version == 10300
    seen = subprocess.run(
        ["/usr/bin/python3", "-c", GDAL_36, str(out)], capture_output=True, text=True, timeout=120, check=True
    )
    said = json.loads(seen.stdout)
    assert said["gdal"].startswith("3.6") and said["said"] == [] and said["count"] == n
    assert said["types"]["installed_on"] == "Date"


@pytest.mark.parametrize("suffix", [".zip", ".shp"])
def test_shapefile_dates_and_names_sidecar_round_trip(
    tmp_path: Path, db_url: str, catalogue: Catalogue, suffix: str
) -> None:
    spec = catalogue["street_lights"]
    out = tmp_path / f"street_lights{suffix}"
    with psycopg.connect(db_url) as conn:
        n = export_layer(conn, spec, out, fmt="shp", district_code=DISTRICT)
        if suffix == ".zip":
            with zipfile.ZipFile(out) as zf:
                sidecar = zf.read("street_lights.names.csv").decode()
        else:
            sidecar = out.with_name("street_lights.names.csv").read_text(encoding="utf-8")
        assert "installed_,installed_on" in sidecar and "last_maint,last_maintained" in sidecar
        info = pyogrio.read_info(out if suffix == ".shp" else f"/vsizip/{out}/street_lights.shp")
        types = dict(zip(info["fields"], info["dtypes"], strict=True))
        assert types["installed_"] == "datetime64[D]"
        row = conn.execute(
            "SELECT count(*) FROM street_lights WHERE district_code = %s AND installed_on IS NOT NULL", [DISTRICT]
        ).fetchone()
        assert row is not None and row[0] > 0
        dates = conn.execute(DATES).fetchall()
        result = import_file(conn, catalogue, out, layer="street_lights", district_code=DISTRICT, mode="replace")
        assert (result.inserted, result.updated, result.deleted, result.unchanged) == (0, 0, 0, n)
        assert conn.execute(DATES).fetchall() == dates


def test_cut_names_stay_unique() -> None:
    names = shp_names(["code", "contract_start", "contract_stop", "contract_s", "last_maintained"])
    assert len(set(names.values())) == len(names) and all(len(v) <= 10 for v in names.values())
    assert names["code"] == "code" and names["contract_s"] == "contract_s"
