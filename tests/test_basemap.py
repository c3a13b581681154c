"""The intranet basemap (WUYE_BASEMAP=mbtiles:PATH / pmtiles:PATH): files built here (by hand with
sqlite3 and Pillow, with GDAL through pyogrio, with the pmtiles writer), served by our app on a real
port, drawn by the pages in Chromium; bad settings stop the start; a crowd of clients on the tiles."""

from __future__ import annotations

import io
import logging
import math
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from api.app import create_app
from api.cli import main as wuye_main
from api.maps import local_server
from maps import snapshot
from maps.basemap import BasemapError, open_archive
from maps.settings import MapSettings
from tests.conftest import settings_for

CHROMIUM = Path("/usr/bin/chromium")
READY = "() => window.wuyeReady === true"
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
# The demo district (lon/lat box) and the zooms our test files cover.
WEST, SOUTH, EAST, NORTH = 112.85, 28.12, 113.02, 28.30
ZOOMS = range(9, 14)
MAGENTA = (200, 30, 160)
TEAL = (20, 150, 140)


def _tile_range(z: int) -> Iterator[tuple[int, int]]:
    def xy(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    x0, y0 = xy(WEST, NORTH)
    x1, y1 = xy(EAST, SOUTH)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(out, format="PNG")
    return out.getvalue()


def raster_mbtiles(path: Path, colour: tuple[int, int, int] = MAGENTA) -> Path:
    """An MBTiles file written table by table (the spec's metadata and tiles), one colour."""
    data = _png(colour)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE metadata (name text, value text)")
        conn.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
        conn.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        meta = {
            "name": "测试底图",
            "format": "png",
            "minzoom": str(ZOOMS[0]),
            "maxzoom": str(ZOOMS[-1]),
            "bounds": f"{WEST},{SOUTH},{EAST},{NORTH}",
            "attribution": "测试底图 test basemap",
            "type": "baselayer",
        }
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
        conn.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (1 << z) - 1 - y, data) for z in ZOOMS for x, y in _tile_range(z)],
        )
    conn.close()
    return path


def pmtiles_file(path: Path, colour: tuple[int, int, int] = TEAL) -> Path:
    """A PMTiles v3 archive of PNG tiles, written with the pmtiles package's writer."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    data = _png(colour)
    ids = sorted(zxy_to_tileid(z, x, y) for z in ZOOMS for x, y in _tile_range(z))
    with write(str(path)) as writer:
        for tile_id in ids:
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_zoom": ZOOMS[0],
                "max_zoom": ZOOMS[-1],
                "min_lon_e7": int(WEST * 1e7),
                "min_lat_e7": int(SOUTH * 1e7),
                "max_lon_e7": int(EAST * 1e7),
                "max_lat_e7": int(NORTH * 1e7),
                "center_zoom": 12,
                "center_lon_e7": int((WEST + EAST) / 2 * 1e7),
                "center_lat_e7": int((SOUTH + NORTH) / 2 * 1e7),
            },
            {"name": "测试底图 PMTiles", "attribution": "测试底图 test basemap"},
        )
    return path


def vector_mbtiles(path: Path, db_url: str) -> Path:
    """Vector MBTiles of the demo zones, made by GDAL (pyogrio's MBTiles/MVT driver)."""
    import geopandas as gpd
    import psycopg
    import pyogrio
    import shapely

    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT code, ST_AsBinary(ST_Transform(geom, 4326)) FROM zones").fetchall()
    frame = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows]}, geometry=[shapely.from_wkb(bytes(r[1])) for r in rows], crs="EPSG:4326"
    )
    pyogrio.write_dataframe(
        frame, path, layer="zones", driver="MBTiles", dataset_options={"MINZOOM": "9", "MAXZOOM": "13", "NAME": "zones"}
    )
    return path


@pytest.fixture(scope="module")
def basemap_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("basemap", template_db) as url:
        yield url


def _app(db_url: str, setting: str) -> Any:
    app = create_app(settings_for(db_url))
    app.state.map_settings = MapSettings(basemap=setting)
    return app


# -- files and settings -------------------------------------------------------------------------------
def test_mbtiles_tiles_come_out_in_xyz_order_with_their_media_type(basemap_db, tmp_path):
    path = raster_mbtiles(tmp_path / "base.mbtiles")
    x, y = next(iter(_tile_range(12)))
    with local_server(_app(basemap_db, f"mbtiles:{path}")) as url:
        r = httpx.get(f"{url}/basemap/12/{x}/{y}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).getpixel((5, 5)) == MAGENTA
        assert httpx.get(f"{url}/basemap/12/0/0").status_code == 204  # in range, not in the file
        outside = httpx.get(f"{url}/basemap/17/{x}/{y}")
        assert outside.status_code == 404 and outside.json()["field"] == "z" and "9..13" in outside.json()["reason"]
        assert httpx.get(f"{url}/basemap/12/{1 << 12}/0").json()["field"] == "x"


def test_pmtiles_tiles_and_range_requests_on_the_file(basemap_db, tmp_path):
    path = pmtiles_file(tmp_path / "base.pmtiles")
    x, y = next(iter(_tile_range(11)))
    with local_server(_app(basemap_db, f"pmtiles:{path}")) as url:
        r = httpx.get(f"{url}/basemap/11/{x}/{y}")
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).getpixel((0, 0)) == TEAL
        head = httpx.get(f"{url}/basemap/archive", headers={"Range": "bytes=0-126"})
        assert head.status_code == 206 and len(head.content) == 127 and head.content[:7] == b"PMTiles"
        size = path.stat().st_size
        assert head.headers["content-range"] == f"bytes 0-126/{size}"
        tail = httpx.get(f"{url}/basemap/archive", headers={"Range": f"bytes={size - 10}-"})
        assert tail.status_code == 206 and tail.content == path.read_bytes()[-10:]


def test_a_missing_or_bad_file_stops_the_start_with_a_clear_message(basemap_db, tmp_path, monkeypatch, capsys):
    with pytest.raises(BasemapError, match="底图文件不存在") as missing:
        MapSettings(basemap=f"mbtiles:{tmp_path / 'nope.mbtiles'}")
    assert str(tmp_path / "nope.mbtiles") in str(missing.value)
    garbage = tmp_path / "garbage.pmtiles"
    garbage.write_bytes(b"not a tile archive at all" * 10)
    with pytest.raises(BasemapError, match="not a readable pmtiles file"):
        open_archive(f"pmtiles:{garbage}")
    (tmp_path / "empty.mbtiles").write_bytes(b"")
    with pytest.raises(BasemapError, match="not a readable mbtiles file"):
        MapSettings(basemap=f"mbtiles:{tmp_path / 'empty.mbtiles'}")
    with pytest.raises(BasemapError, match="mbtiles:PATH or pmtiles:PATH"):
        MapSettings(basemap="geotiff:/x.tif")
    # `wuye serve` says it in one line and exits 1, before listening
    monkeypatch.setenv("WUYE_BASEMAP", f"pmtiles:{tmp_path / 'gone.pmtiles'}")
    handlers = list(logging.getLogger("wuye").handlers)
    assert wuye_main(["serve", "--port", "1"], settings=settings_for(basemap_db)) == 1
    # refused before anything was set up: no log handler left writing to this run's stderr
    assert logging.getLogger("wuye").handlers == handlers
    err = capsys.readouterr().err
    assert "WUYE_BASEMAP" in err and "gone.pmtiles" in err and "底图文件不存在" in err


def test_without_a_local_basemap_the_tile_route_is_404_with_the_error_body(basemap_db):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(basemap_db))) as client:
        r = client.get("/basemap/12/3000/1500")
    body = r.json()
    assert r.status_code == 404 and body["field"] == "WUYE_BASEMAP" and body["reason_zh"] and body["request_id"]


def test_fifty_clients_at_once_on_the_tile_route(basemap_db, tmp_path):
    path = raster_mbtiles(tmp_path / "crowd.mbtiles")
    tiles = [(z, x, y) for z in ZOOMS for x, y in _tile_range(z)]
    expected = _png(MAGENTA)
    whole = path.read_bytes()

    def client(i: int) -> list[int]:
        with httpx.Client(base_url=url, timeout=30) as c:
            statuses = []
            for z, x, y in tiles[i % len(tiles) :] + tiles[: i % len(tiles)][:10]:
                r = c.get(f"/basemap/{z}/{x}/{y}")
                statuses.append(r.status_code if r.content == expected else -1)
            part = c.get("/basemap/archive", headers={"Range": f"bytes={i}-{i + 99}"})  # the file, by ranges
            statuses.append(200 if part.status_code == 206 and part.content == whole[i : i + 100] else -2)
            return statuses

    with local_server(_app(basemap_db, f"mbtiles:{path}")) as url, ThreadPoolExecutor(60) as pool:
        results = list(pool.map(client, range(60)))
    assert all(s == 200 for statuses in results for s in statuses), {s for st in results for s in st}
    assert sum(len(s) for s in results) >= 60 * 10


# -- the pages draw it ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # `make test` installs Chromium and the npm assets: without them this fails, it does not skip.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=snapshot.CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: Any, url: str) -> tuple[Any, list[str], list[tuple[int, str]]]:
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    tiles: list[tuple[int, str]] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: tiles.append((r.status, r.url)) if "/basemap/" in r.url else None)
    page.goto(url)
    page.wait_for_function(READY, timeout=30_000)
    return page, errors, tiles


@pytest.mark.parametrize("kind", ["mbtiles", "pmtiles"])
def test_pages_draw_the_raster_basemap(browser, basemap_db, tmp_path, kind):
    path = raster_mbtiles(tmp_path / "b.mbtiles") if kind == "mbtiles" else pmtiles_file(tmp_path / "b.pmtiles")
    colour = MAGENTA if kind == "mbtiles" else TEAL
    with local_server(_app(basemap_db, f"{kind}:{path}")) as url:
        page, errors, tiles = _open(browser, url + "/maps/cases")
        page.wait_for_load_state("networkidle")
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = page.screenshot(path=str(SHOTS / f"basemap-{kind}.png"))
        page.close()
    assert errors == []
    assert tiles and all(s in (200, 204) for s, _ in tiles), tiles  # 204: a tile the file does not have
    assert sum(1 for s, _ in tiles if s == 200) >= len(tiles) / 2, tiles
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    w, h = image.size
    samples = [image.getpixel((int(w * fx), int(h * fy))) for fx in (0.3, 0.5, 0.7) for fy in (0.3, 0.5, 0.7)]
    assert sum(1 for p in samples if p == colour) >= 5, samples  # the tiles, under the page's few marks


def test_pages_draw_a_vector_basemap_made_with_gdal(browser, basemap_db, tmp_path):
    path = vector_mbtiles(tmp_path / "zones.mbtiles", basemap_db)
    archive = open_archive(f"mbtiles:{path}")
    assert archive.vector and archive.vector_layers == ["zones"]
    with local_server(_app(basemap_db, f"mbtiles:{path}")) as url:
        page, errors, tiles = _open(browser, url + "/maps/cases")
        page.wait_for_load_state("networkidle")
        shot = page.screenshot(path=str(SHOTS / "basemap-vector.png"))
        page.close()
    assert errors == []
    assert any(s == 200 for s, _ in tiles) and all(s in (200, 204) for s, _ in tiles), tiles
    # the zones' outlines in the basemap's quiet grey (#9a9a9a, thin and anti-aliased) on the page's
    # light grey (#ddd), in the middle of the map, where the page itself draws nothing
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB").crop((200, 150, 800, 650))).astype(int)
    neutral = (pixels.max(axis=2) - pixels.min(axis=2)) <= 6
    grey = int((neutral & (pixels.max(axis=2) < 205)).sum())
    assert grey > 100, grey


def test_without_a_basemap_the_pages_draw_a_quiet_base_of_our_own_layers(browser, basemap_db):
    import psycopg

    with local_server(create_app(settings_for(basemap_db))) as url:
        page, errors, tiles = _open(browser, url + "/maps/cases")
        drawn = page.evaluate("() => ['zones', 'contract_sections'].map(n => wuye.drawn('base:' + n))")
        page.screenshot(path=str(SHOTS / "basemap-none.png"))
        page.close()
    with psycopg.connect(basemap_db) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("zones", "contract_sections")]  # noqa: S608
    assert drawn == counts and errors == [] and tiles == []
