"""The intranet basemap (``WUYE_BASEMAP=mbtiles:PATH`` / ``pmtiles:PATH``): its tiles and its file.

Thin routes over :mod:`maps.basemap`; the archive is opened and checked when the app is built, so
a missing or unreadable file stops the start with a message naming it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import FileResponse

from api import auth
from api.maps import STATIC_CACHE, AppMapSettings
from geo.errors import NotFound
from maps.basemap import Archive
from maps.settings import MapSettings

router = APIRouter(tags=["maps 地图"])
GZIP_MAGIC = b"\x1f\x8b"


def _archive(ms: MapSettings) -> Archive:
    archive = ms.local()
    if archive is None:
        raise NotFound("no local basemap: set WUYE_BASEMAP=mbtiles:PATH or pmtiles:PATH", field="WUYE_BASEMAP")
    return archive


@router.get(
    "/basemap/{z}/{x}/{y}",
    summary="本地底图瓦片（MBTiles / PMTiles）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/x-protobuf": {}}}, 204: {}},
)
def basemap_tile(z: int, x: int, y: int, ms: AppMapSettings) -> Response:
    """One tile in XYZ order; 204 where the file has none, 404 outside its zoom levels or the grid."""
    archive = _archive(ms)
    if not archive.minzoom <= z <= archive.maxzoom:
        raise NotFound(f"zoom {z} is outside the basemap's {archive.minzoom}..{archive.maxzoom}", field="z")
    if not (0 <= x < 1 << z and 0 <= y < 1 << z):
        raise NotFound(
            f"tile {z}/{x}/{y} is outside the tile grid of zoom {z}", field="x" if x >= 1 << z or x < 0 else "y"
        )
    data = archive.tile(z, x, y)
    headers = {"Cache-Control": STATIC_CACHE}
    if data is None:
        return Response(status_code=204, headers=headers)
    if data[:2] == GZIP_MAGIC:  # vector tiles are stored gzip-compressed: the browser inflates them
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=archive.media_type, headers=headers)


@router.get(
    "/basemap/archive",
    summary="本地底图文件（支持 HTTP Range，PMTiles 客户端按需读取）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=FileResponse,
)
def basemap_archive(ms: AppMapSettings) -> FileResponse:
    """The MBTiles or PMTiles file itself; ``Range: bytes=…`` answers 206 with just those bytes."""
    archive = _archive(ms)
    media = "application/vnd.pmtiles" if archive.kind == "pmtiles" else "application/vnd.sqlite3"
    return FileResponse(archive.path, media_type=media, headers={"Cache-Control": STATIC_CACHE})


def install(app: FastAPI) -> None:
    """Read the map settings now (a bad ``WUYE_BASEMAP`` stops the start) and add the routes."""
    if getattr(app.state, "map_settings", None) is None:
        app.state.map_settings = MapSettings()
    app.include_router(router)
