"""Tiles never drop features silently (issue 17 point 3): at zoom 12 with ~42,000 street lights (the
demo at --scale 30), a tile past the per-tile budget carries the layer aggregated, and every
light is drawn (its own feature) or counted (in a cell's ``count``), exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.features import tiles as tl
from tests.conftest import DISTRICT, settings_for

_HALF = 20037508.3427892


@pytest.fixture
def dense(db_url: str) -> Iterator[tuple[TestClient, int]]:
    """The demo's lights 30 times over (each copy jittered a few metres), as plain SQL inserts."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO street_lights (code, district_code, condition, power_w, installed_on, geom) "
            "SELECT code || '-x' || g, district_code, condition, power_w, installed_on, "
            " ST_Translate(geom, (random() - 0.5) * 0.0006, (random() - 0.5) * 0.0006) "
            "FROM street_lights, generate_series(1, 29) AS g"
        )
        row = conn.execute("SELECT count(*) FROM street_lights WHERE district_code = %s", [DISTRICT]).fetchone()
    assert row is not None and row[0] > 40_000
    with TestClient(create_app(settings_for(db_url))) as client:
        yield client, int(row[0])


def _inside(x: float, y: float, z: int, col: int, row: int) -> bool:
    size = 2 * _HALF / (1 << z)
    x0, y1 = -_HALF + col * size, _HALF - row * size
    return x0 <= x < x0 + size and y1 - size < y <= y1


def test_every_light_is_drawn_or_counted_at_zoom_12(dense: tuple[TestClient, int], tmp_path: Path) -> None:
    client, total = dense
    tileset = client.get("/collections/street_lights/tiles/WebMercatorQuad").json()
    assert tileset["x-wuye-overflow"] == "aggregated" and tileset["layers"][0]["x-wuye-overflow"] == "aggregated"
    assert "count" in tileset["layers"][0]["propertiesSchema"]["properties"]
    z = 12
    lim = {m["tileMatrix"]: m for m in tileset["tileMatrixSetLimits"]}[z]
    drawn, counted, aggregated_tiles, detailed_tiles = 0, 0, 0, 0
    for col in range(lim["minTileCol"] - 1, lim["maxTileCol"] + 2):
        for row in range(lim["minTileRow"] - 1, lim["maxTileRow"] + 2):
            r = client.get(f"/collections/street_lights/tiles/WebMercatorQuad/{z}/{col}/{row}")
            if r.status_code == 204:
                continue
            assert r.status_code == 200, r.text
            path = tmp_path / str(z) / str(col) / f"{row}.pbf"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(r.content)
            frame = pyogrio.read_dataframe(str(path), layer="street_lights")
            if "aggregated" in frame.columns and frame["aggregated"].fillna(False).astype(bool).all():
                aggregated_tiles += 1
                assert len(frame) <= tl.AGGREGATE_CELLS**2
                counted += int(frame["count"].sum())
                details = frame["detail"].str.split(",").explode().str.split(":").str[1].astype(int)
                assert int(details.sum()) == int(frame["count"].sum())
            else:
                detailed_tiles += 1
                assert len(frame) <= tl.MAX_FEATURES_PER_TILE
                drawn += sum(1 for g in frame.geometry if _inside(g.x, g.y, z, col, row))
    assert aggregated_tiles >= 1, "the dense tiles should be aggregated"
    assert drawn + counted == total, (drawn, counted, total, aggregated_tiles, detailed_tiles)


def _repaired_in_tile(db_url: str, z: int, col: int, row: int) -> int:
    """How many of the tile's lights (strictly inside it) are under repair, counted in SQL."""
    with psycopg.connect(db_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM street_lights WHERE district_code = %s AND condition = 'repairing'"
            " AND ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s))",
            [DISTRICT, z, col, row],
        ).fetchone()
    assert found is not None
    return int(found[0])


def _repair(db_url: str, z: int, col: int, row: int, n: int, *, watched: bool) -> None:
    """Put ``n`` normal lights inside the tile under repair by plain SQL, as another tool would;
    with ``watched`` false the change counter's trigger is off for that statement."""
    with psycopg.connect(db_url) as conn:
        if not watched:
            conn.execute("ALTER TABLE street_lights DISABLE TRIGGER data_changed")
        conn.execute(
            "UPDATE street_lights SET condition = 'repairing' WHERE id IN (SELECT id FROM street_lights"
            " WHERE district_code = %s AND condition = 'normal'"
            " AND ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s)) ORDER BY id LIMIT %s)",
            [DISTRICT, z, col, row, n],
        )
        if not watched:
            conn.execute("ALTER TABLE street_lights ENABLE TRIGGER data_changed")


def _counted(content: bytes, tmp_path: Path, name: str) -> dict[str, int]:
    path = tmp_path / f"{name}.pbf"
    path.write_bytes(content)
    frame = pyogrio.read_dataframe(str(path), layer="street_lights")
    assert frame["aggregated"].fillna(False).astype(bool).all()
    per_value: dict[str, int] = {}
    for part in frame["detail"].str.split(",").explode():
        value, n = part.rsplit(":", 1)
        per_value[value] = per_value.get(value, 0) + int(n)
    return per_value


def test_a_dense_tile_is_kept_until_its_layer_changes(
    dense: tuple[TestClient, int], db_url: str, tmp_path: Path
) -> None:
    """An aggregated tile (every light under it counted) is computed once and given again while no
    layer table changed; a write that moves the change counter shows on the next request."""
    client, _ = dense
    z, lim = (
        12,
        {
            m["tileMatrix"]: m
            for m in client.get("/collections/street_lights/tiles/WebMercatorQuad").json()["tileMatrixSetLimits"]
        }[12],
    )
    url = ""
    for col in range(lim["minTileCol"], lim["maxTileCol"] + 1):
        for row in range(lim["minTileRow"], lim["maxTileRow"] + 1):
            r = client.get(f"/collections/street_lights/tiles/WebMercatorQuad/{z}/{col}/{row}")
            if r.status_code == 200 and b"aggregated" in r.content:
                url, at = r.url.path, (col, row)
                break
        if url:
            break
    assert url, "no aggregated tile at zoom 12"
    first = client.get(url)
    assert _counted(first.content, tmp_path, "first").get("repairing", 0) == _repaired_in_tile(db_url, z, *at)
    # A write the change counter does not see: the kept tile is given again, unchanged.
    _repair(db_url, z, *at, 40, watched=False)
    kept = client.get(url)
    assert kept.content == first.content and kept.headers["etag"] == first.headers["etag"]
    # A write it sees: the next request counts both.
    _repair(db_url, z, *at, 10, watched=True)
    fresh = client.get(url)
    assert fresh.headers["etag"] != first.headers["etag"]
    assert _counted(fresh.content, tmp_path, "fresh").get("repairing", 0) == _repaired_in_tile(db_url, z, *at)
    assert (
        _counted(fresh.content, tmp_path, "fresh")["repairing"]
        == _counted(first.content, tmp_path, "f").get("repairing", 0) + 50
    )
