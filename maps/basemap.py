"""A basemap a bureau keeps on its intranet: an MBTiles or PMTiles file served by our own app.

``WUYE_BASEMAP=mbtiles:PATH`` or ``pmtiles:PATH`` (raster PNG/JPEG/WebP tiles or Mapbox vector
tiles). :func:`open_archive` checks the file once, at start-up, and says what is wrong with it;
the app then serves its tiles at ``/basemap/{z}/{x}/{y}`` (in XYZ order, whatever the file's own)
and the file itself at ``/basemap/archive`` with HTTP range requests (what PMTiles clients read).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import folium
from folium import plugins
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

from geo.errors import ConfigError

KINDS = ("mbtiles", "pmtiles")
MEDIA = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "pbf": "application/x-protobuf",
}
_PM_FORMATS = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp", TileType.MVT: "pbf"}


class BasemapError(ConfigError):
    """The configured basemap file cannot be served; the message says why and names the file.

    Not a ValueError: raised while the settings are read, it reaches ``wuye serve`` as itself
    (one line naming the file), not wrapped in pydantic's validation report."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="WUYE_BASEMAP")


@dataclass
class Archive:
    """An opened tile archive: its format, zoom range, bounds (west, south, east, north) and tiles."""

    kind: str
    path: Path
    format: str
    minzoom: int
    maxzoom: int
    bounds: list[float] | None
    vector_layers: list[str]
    attribution: str
    _reader: Any = field(default=None, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def media_type(self) -> str:
        """The tiles' media type."""
        return MEDIA[self.format]

    @property
    def vector(self) -> bool:
        """Whether the tiles are Mapbox vector tiles."""
        return self.format == "pbf"

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile's bytes as stored (vector tiles usually gzip-compressed), or None if absent."""
        if self.kind == "pmtiles":
            data = self._reader.get(z, x, y)
            return bytes(data) if data else None
        row = (
            self._sqlite()
            .execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),  # MBTiles rows count from the south (TMS)
            )
            .fetchone()
        )
        return bytes(row[0]) if row and row[0] is not None else None

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:  # one read-only connection per worker thread
            conn = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    def describe(self) -> dict[str, Any]:
        """What the map pages need to draw it."""
        return {
            "url": "/basemap/{z}/{x}/{y}",
            "vector": self.vector,
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "bounds": self.bounds,
            "layers": self.vector_layers,
            "attribution": self.attribution,
        }


def parse(setting: str) -> tuple[str, Path] | None:
    """``("mbtiles", path)`` for ``mbtiles:PATH`` (likewise pmtiles), None for the other basemaps."""
    kind, sep, path = setting.partition(":")
    if not sep or kind not in KINDS:
        return None
    if not path:
        raise BasemapError(f"WUYE_BASEMAP={setting}: a path is missing after '{kind}:' (底图文件路径缺失)")
    return kind, Path(path).expanduser().resolve()


@lru_cache(maxsize=8)
def open_archive(setting: str) -> Archive:
    """Open and check the archive ``mbtiles:PATH`` / ``pmtiles:PATH`` (raises BasemapError)."""
    parsed = parse(setting)
    if parsed is None:
        raise BasemapError(f"WUYE_BASEMAP={setting} is not a tile file (mbtiles:PATH or pmtiles:PATH)")
    kind, path = parsed
    if not path.is_file():
        raise BasemapError(f"WUYE_BASEMAP: no file {path} (底图文件不存在)")
    try:
        return _open_mbtiles(path) if kind == "mbtiles" else _open_pmtiles(path)
    except BasemapError:
        raise
    except Exception as e:  # a truncated or foreign file: sqlite3, mmap or the PMTiles decoder
        raise BasemapError(f"WUYE_BASEMAP: {path} is not a readable {kind} file: {e} (底图文件无法读取)") from e


def _open_mbtiles(path: Path) -> Archive:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1").fetchall()
        zooms = conn.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
    conn.close()
    fmt = str(meta.get("format", "png")).lower()
    if fmt not in MEDIA:
        raise BasemapError(f"WUYE_BASEMAP: {path} has tiles of format '{fmt}'; we serve {', '.join(sorted(MEDIA))}")
    layers = []
    if fmt == "pbf" and meta.get("json"):
        layers = [lyr["id"] for lyr in json.loads(meta["json"]).get("vector_layers", [])]
    bounds = [float(v) for v in str(meta["bounds"]).split(",")] if meta.get("bounds") else None
    return Archive(
        kind="mbtiles",
        path=path,
        format=fmt,
        minzoom=int(meta.get("minzoom", zooms[0] if zooms and zooms[0] is not None else 0)),
        maxzoom=int(meta.get("maxzoom", zooms[1] if zooms and zooms[1] is not None else 19)),
        bounds=bounds,
        vector_layers=layers,
        attribution=str(meta.get("attribution", meta.get("name", ""))),
    )


def _open_pmtiles(path: Path) -> Archive:
    f = path.open("rb")  # kept open for the app's life (the mapping reads from it)
    reader = Reader(MmapSource(f))
    header = reader.header()
    tile_type = header["tile_type"]
    if tile_type not in _PM_FORMATS:
        raise BasemapError(f"WUYE_BASEMAP: {path} has tiles of type {tile_type}; we serve PNG, JPEG, WebP and MVT")
    if header["tile_compression"] not in (Compression.NONE, Compression.GZIP, Compression.UNKNOWN):
        raise BasemapError(f"WUYE_BASEMAP: {path} compresses its tiles with {header['tile_compression']}; use gzip")
    meta = reader.metadata()
    bounds = [
        header["min_lon_e7"] / 1e7,
        header["min_lat_e7"] / 1e7,
        header["max_lon_e7"] / 1e7,
        header["max_lat_e7"] / 1e7,
    ]
    return Archive(
        kind="pmtiles",
        path=path,
        format=_PM_FORMATS[tile_type],
        minzoom=int(header["min_zoom"]),
        maxzoom=int(header["max_zoom"]),
        bounds=bounds,
        vector_layers=[lyr["id"] for lyr in meta.get("vector_layers", [])],
        attribution=str(meta.get("attribution", meta.get("name", ""))),
        _reader=reader,
    )


# The bureau's basemap, quiet under our layers: grey lines, pale fills.
QUIET = {"color": "#9a9a9a", "weight": 1, "fill": True, "fillColor": "#e4e4e4", "fillOpacity": 0.5, "radius": 2}


def add_to(m: folium.Map, archive: Archive, max_zoom: int) -> None:
    """Draw the archive's tiles (from our ``/basemap`` route) under the page's layers."""
    url = archive.describe()["url"]
    b = archive.bounds  # no requests for tiles the file cannot have
    extent: dict[str, Any] = {"bounds": [[b[1], b[0]], [b[3], b[2]]]} if b else {}
    if not archive.vector:
        folium.TileLayer(
            tiles=url,
            attr=archive.attribution or "底图 basemap",
            min_zoom=0,
            max_zoom=max_zoom,
            max_native_zoom=archive.maxzoom,
            overlay=False,
            control=False,
            **extent,
        ).add_to(m)
        return
    options = {
        "vectorTileLayerStyles": {name: QUIET for name in archive.vector_layers},
        "maxNativeZoom": archive.maxzoom,
        "maxZoom": max_zoom,
        "interactive": False,
        "attribution": archive.attribution or "底图 basemap",
        **extent,
    }
    plugins.VectorGridProtobuf(url, "basemap", options).add_to(m)
