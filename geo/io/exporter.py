"""Export a layer to GeoJSON, GeoPackage, Shapefile (zipped when the name ends in .zip) or CSV.

Files round-trip through ``wuye import`` and open in desktop GIS as they are: date attributes are
Date fields (GeoPackage and Shapefile), the GeoPackage is version 1.3 (GDAL 3.6, QGIS 3.22's,
reads it without warnings), and the Shapefile's field names cut to 10 characters are listed in a
sidecar ``<name>.names.csv`` (``shp_field,name``, UTF-8) that the importer reads back.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import orjson
import pandas as pd
import psycopg
import pyarrow as pa
import pyogrio
import shapely
from psycopg import sql

from geo.errors import InvalidInput
from geo.spatial import crs as crsmod
from layers.catalogue import LayerSpec

EXPORT_FORMATS = ("geojson", "gpkg", "shp", "csv")
GPKG_VERSION = "1.3"  # GDAL 3.6 warns that 1.4 "may only be partially supported"
SHP_FIELD_LIMIT = 10
NAMES_SUFFIX = ".names.csv"


def _columns(spec: LayerSpec) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in ("code", *spec.attribute_names))


def geojson_document(
    conn: psycopg.Connection, spec: LayerSpec, *, district_code: str, srid: int = crsmod.WGS84_SRID
) -> bytes:
    """The whole layer as one GeoJSON FeatureCollection, built by PostGIS in one statement."""
    digits = 7 if crsmod.is_geographic(srid) else 3
    stmt = sql.SQL(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', "
        "coalesce(json_agg(ST_AsGeoJSON(f.*, 'geom', %s)::json ORDER BY f.code), '[]'::json))::text "
        "FROM (SELECT {cols}, ST_Transform(geom, %s) AS geom FROM {table} "
        "WHERE district_code = %s) AS f"
    ).format(cols=_columns(spec), table=sql.Identifier(spec.table))
    row = conn.execute(stmt, [digits, srid, district_code]).fetchone()
    assert row is not None
    doc = orjson.loads(row[0])
    if srid not in (crsmod.WGS84_SRID, crsmod.STORAGE_SRID):
        # RFC 7946 has no CRS member; readers (GDAL) still honour the 2008 one.
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
    return orjson.dumps(doc)


def layer_frame(
    conn: psycopg.Connection, spec: LayerSpec, *, district_code: str, srid: int = crsmod.STORAGE_SRID
) -> gpd.GeoDataFrame:
    """The layer as a GeoDataFrame in ``srid`` (lists joined with ';' for flat formats)."""
    stmt = sql.SQL(
        "SELECT {cols}, ST_AsBinary(ST_Transform(geom, %s)) AS wkb FROM {table} WHERE district_code = %s ORDER BY code"
    ).format(cols=_columns(spec), table=sql.Identifier(spec.table))
    cur = conn.execute(stmt, [srid, district_code])
    names = [d.name for d in cur.description or []]
    frame = pd.DataFrame(cur.fetchall(), columns=names)
    for attr in spec.attributes:
        if attr.type == "text_list":
            frame[attr.name] = frame[attr.name].map(lambda v: ";".join(v) if v else None)
        elif attr.type == "date":  # a Date field (not a date-time), even when every value is empty
            frame[attr.name] = pd.Series(frame[attr.name], dtype=pd.ArrowDtype(pa.date32()))
    geometry = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")])
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=f"EPSG:{srid}")


def _write_csv(frame: gpd.GeoDataFrame, path: Path, srid: int) -> None:
    out = pd.DataFrame(frame.drop(columns="geometry"))
    if (frame.geom_type == "Point").all():
        lon, lat = ("lon", "lat") if crsmod.is_geographic(srid) else ("x", "y")
        out[lon], out[lat] = frame.geometry.x, frame.geometry.y
    else:
        out["wkt"] = shapely.to_wkt(frame.geometry.values, rounding_precision=-1)
    out.to_csv(path, index=False, encoding="utf-8-sig")


def shp_names(columns: list[str]) -> dict[str, str]:
    """column -> its Shapefile field name: at most 10 characters, unique (a suffix _2, _3 … when cut
    names collide); names that fit are kept."""
    out: dict[str, str] = {}
    taken = {c.lower() for c in columns if len(c) <= SHP_FIELD_LIMIT}
    for col in columns:
        if len(col) <= SHP_FIELD_LIMIT:
            out[col] = col
            continue
        short, n = col[:SHP_FIELD_LIMIT], 1
        while short.lower() in taken:
            n += 1
            short = col[: SHP_FIELD_LIMIT - len(str(n)) - 1] + f"_{n}"
        taken.add(short.lower())
        out[col] = short
    return out


def _write_shp_files(frame: gpd.GeoDataFrame, shp: Path) -> None:
    names = shp_names([c for c in frame.columns if c != "geometry"])
    pyogrio.write_dataframe(frame.rename(columns=names), shp, driver="ESRI Shapefile", encoding="UTF-8", use_arrow=True)
    rows = ["shp_field,name"] + [f"{short},{full}" for full, short in names.items()]
    shp.with_name(shp.stem + NAMES_SUFFIX).write_text("\n".join(rows) + "\n", encoding="utf-8")


def _write_shp(frame: gpd.GeoDataFrame, path: Path) -> None:
    if path.suffix.lower() != ".zip":
        _write_shp_files(frame, path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        _write_shp_files(frame, Path(tmp) / (path.stem + ".shp"))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, part.name)


def export_layer(
    conn: psycopg.Connection, spec: LayerSpec, path: Path, *, fmt: str, district_code: str, crs: str | None = None
) -> int:
    """Write the layer to ``path``; return the number of features written."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}", field="format")
    srid = crsmod.parse_srid(crs) if crs else (crsmod.WGS84_SRID if fmt == "geojson" else crsmod.STORAGE_SRID)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        doc = geojson_document(conn, spec, district_code=district_code, srid=srid)
        path.write_bytes(doc)
        return len(orjson.loads(doc)["features"])
    frame = layer_frame(conn, spec, district_code=district_code, srid=srid)
    if path.exists():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    if fmt == "csv":
        _write_csv(frame, path, srid)
    elif fmt == "shp":
        _write_shp(frame, path)
    else:
        pyogrio.write_dataframe(
            frame, path, driver="GPKG", layer=spec.name, use_arrow=True, dataset_options={"VERSION": GPKG_VERSION}
        )
    return len(frame)
