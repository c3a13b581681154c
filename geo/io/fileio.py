"""Reading and writing layer files: GeoJSON, GeoPackage, Shapefile (plain or zipped), CSV.

Readers return plain columns plus a geometry array and the source CRS; they
refuse files whose CRS cannot be known (a Shapefile without ``.prj``, a CSV
without ``--crs``). GeoJSON is CRS84 by definition (RFC 7946).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyogrio
import pyogrio.raw as pyogrio_raw
import shapely

from geo.errors import InvalidInput
from geo.inputs import bad_character
from geo.spatial import crs as crsmod
from geo.spatial.validate import Problem
from layers.catalogue import LayerSpec

FORMATS = ("geojson", "gpkg", "shp", "csv")
LON_NAMES = ("lon", "lng", "longitude", "long", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("wkt", "geometry", "geom")
SHP_FIELD_LIMIT = 10


@dataclass
class FileData:
    """What a reader found: attribute columns, geometries, CRS and row-level problems."""

    frame: pd.DataFrame
    geometry: np.ndarray
    srid: int
    format: str
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """The format of ``path`` from its name (and, for .zip, its content)."""
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return "geojson"
    if suffix == ".gpkg":
        return "gpkg"
    if suffix == ".shp":
        return "shp"
    if suffix == ".csv":
        return "csv"
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            if any(n.lower().endswith(".shp") for n in zf.namelist()):
                return "shp"
        raise InvalidInput(f"{path.name}: the zip holds no .shp file", field="path")
    raise InvalidInput(
        f"{path.name}: unknown format '{suffix}'; use .geojson, .gpkg, .shp, .zip (Shapefile) or .csv",
        field="path",
    )


def _shp_has_prj(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".prj") for n in zf.namelist())
    return any(path.with_suffix(s).exists() for s in (".prj", ".PRJ"))


def _ogr_srid(info_crs: str | None) -> int | None:
    if not info_crs:
        return None
    crs = crsmod.CRS.from_user_input(info_crs)
    epsg = crs.to_epsg(min_confidence=70)
    if epsg is None:
        raise InvalidInput(f"the file's CRS is not an EPSG CRS: {crs.name}; pass --crs", field="crs")
    return int(epsg)


def _resolve_srid(fmt: str, file_srid: int | None, given: int | None, name: str) -> int:
    if fmt == "geojson":
        # RFC 7946: CRS84. CGCS2000 lon/lat (4490) is accepted as a label for the same axes.
        if given not in (None, crsmod.WGS84_SRID, crsmod.STORAGE_SRID):
            raise InvalidInput(
                f"GeoJSON is CRS84 by definition (RFC 7946); --crs EPSG:{given} cannot apply to "
                f"{name}: convert it to lon/lat first",
                field="crs",
            )
        return given or crsmod.WGS84_SRID
    if file_srid is not None and given is not None and file_srid != given:
        raise InvalidInput(f"{name} declares EPSG:{file_srid} but --crs says EPSG:{given}", field="crs")
    srid = file_srid or given
    if srid is None:
        what = "a Shapefile without .prj" if fmt == "shp" else f"a {fmt} file without a CRS"
        if fmt == "csv":
            what = "a CSV file"
        raise InvalidInput(f"{name} is {what}: pass --crs (e.g. --crs EPSG:4490)", field="crs")
    return srid


def _names_sidecar(path: Path) -> dict[str, str]:
    """The Shapefile's ``<name>.names.csv`` written by ``wuye export`` (shp_field -> name), if any:
    next to the .shp, or in the same zip."""
    sidecar = path.stem + ".names.csv"
    text: str | None = None
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            found = [n for n in zf.namelist() if n.lower().endswith(".names.csv")]
            if found:
                text = zf.read(found[0]).decode("utf-8-sig")
    elif path.with_name(sidecar).exists():
        text = path.with_name(sidecar).read_text(encoding="utf-8-sig")
    if text is None:
        return {}
    rows = [line.split(",", 1) for line in text.splitlines()[1:] if "," in line]
    return {short.strip(): full.strip() for short, full in rows if short.strip() != full.strip()}


def _restore_shp_names(columns: list[str], spec: LayerSpec, path: Path) -> dict[str, str]:
    """Shapefile cuts field names to 10 characters; map them back to the spec's names: by the
    export's sidecar when there is one, else by unambiguous prefix."""
    listed = _names_sidecar(path)
    if listed:
        return {c: listed[c] for c in columns if c in listed}
    full = [*spec.attribute_names, "code"]
    renames = {}
    for col in columns:
        if col in full or len(col) != SHP_FIELD_LIMIT:
            continue
        matches = [n for n in full if n[:SHP_FIELD_LIMIT] == col]
        if len(matches) == 1:
            renames[col] = matches[0]
    return renames


def _read_ogr(path: Path, fmt: str, given: int | None) -> FileData:
    try:
        meta, _, wkb, columns = pyogrio_raw.read(path)
    except pyogrio.errors.DataSourceError as e:
        raise InvalidInput(f"{path.name}: cannot read as {fmt}: {e}", field="path") from e
    file_srid = _ogr_srid(meta.get("crs"))
    if fmt == "shp" and not _shp_has_prj(path):
        file_srid = None
    srid = _resolve_srid(fmt, file_srid, given, path.name)
    frame = pd.DataFrame({name: values for name, values in zip(meta["fields"], columns, strict=True)})
    if wkb is None:
        wkb = np.full(len(frame), None, dtype=object)
    # GDAL hands over what it could parse; GEOS refuses unclosed or too-short
    # rings, which we report per row instead of failing the whole file.
    geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    unreadable = np.flatnonzero(pd.notna(pd.Series(wkb, dtype=object)).to_numpy() & shapely.is_missing(geoms))
    problems = [
        Problem(int(i) + 1, "geometry", "geometry cannot be read: a polygon ring is not closed or has too few points")
        for i in unreadable
    ]
    if fmt == "geojson":
        problems += _geojson_text_problems(path)
    return FileData(frame=frame, geometry=geoms, srid=srid, format=fmt, problems=problems)


# A control character in GeoJSON text, raw or escaped (\u0000): GDAL cuts a string at NUL, so it is
# looked for in the file itself. Tab, LF and CR are allowed (geo.inputs).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\u00(?:0[0-8bcef]|1[0-9a-f]|7f|[89][0-9a-f])", re.IGNORECASE)


def _geojson_text_problems(path: Path) -> list[Problem]:
    """A problem per property holding a control character (issue 13: NUL answered 500)."""
    raw = path.read_bytes()
    if not _CONTROL.search(raw):
        return []
    try:
        features = orjson.loads(raw).get("features") or []
    except (orjson.JSONDecodeError, AttributeError):
        return []  # GDAL reports what it cannot read
    problems = []
    for i, item in enumerate(features):
        props = item.get("properties") if isinstance(item, dict) else None
        for name, value in (props or {}).items():
            char = bad_character(value) if isinstance(value, str) else None
            if char:
                problems.append(Problem(i + 1, str(name), f"control character {char} is not allowed in text"))
    return problems


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _read_csv(path: Path, given: int | None) -> FileData:
    srid = _resolve_srid("csv", None, given, path.name)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        raise InvalidInput(f"{path.name}: not a UTF-8 CSV file: {e}", field="path") from e
    lon, lat = _pick(list(frame.columns), LON_NAMES), _pick(list(frame.columns), LAT_NAMES)
    wkt = _pick(list(frame.columns), WKT_NAMES)
    problems: list[Problem] = []
    if lon and lat:
        x = pd.to_numeric(frame[lon], errors="coerce").to_numpy(float)
        y = pd.to_numeric(frame[lat], errors="coerce").to_numpy(float)
        for i in np.flatnonzero(np.isnan(x) | np.isnan(y)):
            problems.append(
                Problem(
                    int(i) + 1,
                    "geometry",
                    f"{lon} '{frame[lon].iloc[i]}' / {lat} '{frame[lat].iloc[i]}' must both be numbers",
                )
            )
        geoms = shapely.points(x, y)
        used = [lon, lat]
    elif wkt:
        geoms = np.asarray(shapely.from_wkt(frame[wkt].fillna("").to_numpy(), on_invalid="ignore"), dtype=object)
        used = [wkt]
    else:
        raise InvalidInput(
            f"{path.name}: no coordinate columns; name them lon/lat (or longitude/latitude, "
            "经度/纬度), or give a wkt column",
            field="columns",
        )
    return FileData(
        frame=frame.drop(columns=used),
        geometry=np.asarray(geoms, dtype=object),
        srid=srid,
        format="csv",
        problems=problems,
    )


def read_layer_file(path: Path, spec: LayerSpec, *, crs: str | None = None) -> FileData:
    """Read ``path`` for ``spec``'s layer; ``crs`` is the ``--crs`` option, if given."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file", field="path")
    given = crsmod.parse_srid(crs) if crs else None
    fmt = detect_format(path)
    data = _read_csv(path, given) if fmt == "csv" else _read_ogr(path, fmt, given)
    if fmt == "shp":
        data.frame = data.frame.rename(columns=_restore_shp_names(list(data.frame.columns), spec, path))
    known = {"code", *spec.attribute_names}
    data.ignored_columns = [c for c in data.frame.columns if c not in known]
    return data
