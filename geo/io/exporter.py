"""Export a layer to GeoJSON, GeoPackage, Shapefile (zipped when the name ends in .zip) or CSV."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import orjson
import pandas as pd
import psycopg
import pyogrio
import shapely
from psycopg import sql

from geo.errors import InvalidInput
from geo.spatial import crs as crsmod
from layers.catalogue import LayerSpec

EXPORT_FORMATS = ("geojson", "gpkg", "shp", "csv")


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
        elif attr.type == "date":
            frame[attr.name] = pd.to_datetime(frame[attr.name])
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


def _write_shp(frame: gpd.GeoDataFrame, path: Path) -> None:
    if path.suffix.lower() != ".zip":
        pyogrio.write_dataframe(frame, path, driver="ESRI Shapefile", encoding="UTF-8")
        return
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / (path.stem + ".shp")
        pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", encoding="UTF-8")
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
        pyogrio.write_dataframe(frame, path, driver="GPKG", layer=spec.name)
    return len(frame)
