"""Real OGC clients against the server on a real port: OWSLib, GDAL's OAPIF and MVT drivers (pyogrio)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pyogrio
import pytest
from owslib.ogcapi.features import Features
from psycopg import sql

from tests.live import serving, uvicorn_app


@pytest.fixture(scope="module")
def server_url(shared_db_url: str) -> Iterator[str]:
    """uvicorn in a subprocess: GDAL holds the GIL while it waits on HTTP, so not a thread of ours."""
    with serving({"WUYE_DATABASE_URL": shared_db_url, "WUYE_DISTRICT_CODE": "430104"}, *uvicorn_app()) as url:
        yield url


def _counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        out = {}
        for t in tables:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()
            assert row is not None
            out[t] = int(row[0])
    return out


def test_owslib_reads_conformance_collections_items_and_one_item(server_url: str, shared_db_url: str):
    api = Features(server_url)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    ids = [c["id"] for c in api.collections()["collections"]]
    assert "zones" in ids and "street_lights" in ids
    page = api.collection_items("street_lights", limit=5, bbox=[112.94, 28.22, 112.97, 28.24])
    assert page["numberReturned"] == 5
    flt = api.collection_items("street_lights", limit=10000, filter="condition = 'faulty'")
    with psycopg.connect(shared_db_url) as conn:
        row = conn.execute("SELECT count(*) FROM street_lights WHERE condition = 'faulty'").fetchone()
    assert row is not None and flt["numberMatched"] == row[0]
    one = api.collection_item("zones", "jinling")
    assert one["id"] == "jinling" and one["properties"]["name"] == "金岭农民安置小区"


def test_gdal_oapif_reads_every_layer_completely(server_url: str, shared_db_url: str, catalogue):
    expected = _counts(shared_db_url, [catalogue[n].table for n in catalogue])
    for name in catalogue:
        # A small page size makes GDAL follow next links several times.
        info = pyogrio.read_info(f"OAPIF:{server_url}", layer=name)
        frame = pyogrio.read_dataframe(f"OAPIF:{server_url}", layer=name, PAGE_SIZE="300")
        assert len(frame) == expected[catalogue[name].table], name
        assert info["features"] in (-1, expected[catalogue[name].table])
        if len(frame):
            assert frame.geometry.is_valid.all()


def test_gdal_mvt_driver_reads_a_tile(server_url: str, tmp_path: Path):
    tileset = httpx.get(f"{server_url}/collections/street_lights/tiles/WebMercatorQuad").json()
    lim = {m["tileMatrix"]: m for m in tileset["tileMatrixSetLimits"]}[14]
    for x in range(lim["minTileCol"], lim["maxTileCol"] + 1):
        for y in range(lim["minTileRow"], lim["maxTileRow"] + 1):
            own = httpx.get(f"{server_url}/collections/street_lights/tiles/WebMercatorQuad/14/{x}/{y}")
            if own.status_code == 200:
                r = httpx.get(f"{server_url}/tiles/WebMercatorQuad/14/{x}/{y}")
                path = tmp_path / "14" / str(x) / f"{y}.pbf"
                path.parent.mkdir(parents=True)
                path.write_bytes(r.content)
                layers = {n for n, _ in pyogrio.list_layers(str(path))}
                assert {"street_lights", "zones", "districts"} <= layers
                frame = pyogrio.read_dataframe(str(path), layer="street_lights")
                assert len(frame) > 0 and "code" in frame.columns and "condition" in frame.columns
                return
    pytest.fail("no non-empty z14 tile over the street lights")


def test_fifty_concurrent_clients_get_their_own_checked_items_query(server_url: str, shared_db_url: str):
    """Each request parses and translates its own filter once: no value leaks into another's answer."""
    with psycopg.connect(shared_db_url) as conn:
        rows = conn.execute("SELECT code, households FROM zones ORDER BY code").fetchall()
    codes = [str(code) for code, _ in rows]

    def one(i: int) -> tuple[int, object]:
        with httpx.Client(base_url=server_url, timeout=60) as client:
            if i % 5 == 4:  # a repeated parameter, among the good ones
                r = client.get("/collections/zones/items?limit=1&limit=2")
                return r.status_code, r.json()["field"]
            code = codes[i % len(codes)]
            r = client.get("/collections/zones/items", params={"filter": f"code = '{code}'", "limit": 100})
            return r.status_code, [f["id"] for f in r.json()["features"]]

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(100)))
    for i, (status, seen) in enumerate(answers):
        if i % 5 == 4:
            assert (status, seen) == (400, "limit")
        else:
            assert (status, seen) == (200, [codes[i % len(codes)]])
