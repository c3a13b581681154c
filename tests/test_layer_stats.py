"""Counts and extents kept per layer and district (migration 0013, issue 17 point 2): an exact
numberMatched on a client's first small request however big the layer, and each collection's
own bounding box, both kept true by the writer's transaction whoever writes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from geo.features import items as ft
from layers.catalogue import Catalogue
from tests.conftest import DISTRICT, auth_headers, settings_for


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _truth(url: str, table: str) -> tuple[int, list[float] | None]:
    """The count and the CRS84 box of the table's rows in the district, from the rows themselves."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT count(*) AS n, "
                "ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4490), 4326) AS e "
                "FROM {} WHERE district_code = %s) s"
            ).format(sql.Identifier(table)),
            [DISTRICT],
        ).fetchone()
    assert row is not None
    if row[1] is None:
        return int(row[0]), None
    return int(row[0]), [round(float(v), 7) for v in row[1:]]


def _copy_rows(url: str, table: str, times: int, shift: float = 0.0) -> None:
    """``times`` more copies of every row of ``table`` (new codes), moved ``shift`` degrees east:
    written with plain SQL, as another tool connected to the database would."""
    with psycopg.connect(url) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND column_name NOT IN ('id', 'code', 'geom') ORDER BY ordinal_position",
                [table],
            )
        ]
        listed = ", ".join(cols)
        conn.execute(
            f"INSERT INTO {table} (code, {listed}, geom) "  # noqa: S608 (test)
            f"SELECT code || '-c' || g, {listed}, ST_Translate(geom, %s, 0) FROM {table}, generate_series(1, %s) g",
            [shift, times],
        )


def _collection_bbox(client: TestClient, name: str) -> list[float] | None:
    doc = client.get(f"/collections/{name}").json()
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}[name]
    assert listed == doc
    return doc["extent"]["spatial"]["bbox"][0] if "extent" in doc else None


def test_first_small_request_of_a_big_layer_knows_the_exact_total(client: TestClient, db_url: str) -> None:
    n, _ = _truth(db_url, "street_lights")
    _copy_rows(db_url, "street_lights", ft.MIN_COUNT_CAP // n + 1)  # past the counting cap
    total, _ = _truth(db_url, "street_lights")
    assert total > ft.MIN_COUNT_CAP
    first = client.get("/collections/street_lights/items", params={"limit": 10}).json()
    assert first["numberReturned"] == 10 and first["numberMatched"] == total
    # and on the next page too (a cursor request)
    nxt = next(lk["href"] for lk in first["links"] if lk["rel"] == "next")
    assert client.get(nxt.replace("http://testserver", "")).json()["numberMatched"] == total
    # a filtered request still counts up to the cap and leaves it out beyond
    faulty = client.get("/collections/street_lights/items", params={"limit": 10, "condition": "normal"}).json()
    assert "numberMatched" not in faulty or faulty["numberMatched"] < ft.MIN_COUNT_CAP


def test_collection_extent_is_its_own_features_and_follows_changes(
    client: TestClient, db_url: str, catalogue: Catalogue
) -> None:
    district = _collection_bbox(client, "districts")
    for spec in catalogue.values():
        _, box = _truth(db_url, spec.table)
        assert _collection_bbox(client, spec.name) == box, spec.name
    lights = _collection_bbox(client, "street_lights")
    assert lights is not None and district is not None and lights != district
    # grows with a copy moved east, shrinks back when it is deleted, follows a moved feature
    _copy_rows(db_url, "street_lights", 1, shift=0.01)
    grown = _collection_bbox(client, "street_lights")
    assert grown is not None and grown[2] > lights[2] and grown == _truth(db_url, "street_lights")[1]
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM street_lights WHERE code LIKE '%-c1'")
    assert _collection_bbox(client, "street_lights") == lights
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE street_lights SET geom = ST_Translate(geom, 0, -0.02) "
            "WHERE id = (SELECT id FROM street_lights ORDER BY ST_Y(geom) LIMIT 1)"
        )
        conn.execute("UPDATE street_lights SET condition = condition")  # attributes only: nothing moves
    moved = _collection_bbox(client, "street_lights")
    assert moved is not None and moved[1] < lights[1] and moved == _truth(db_url, "street_lights")[1]
    first = client.get("/collections/street_lights/items", params={"limit": 1}).json()
    assert first["numberMatched"] == _truth(db_url, "street_lights")[0]


def test_counts_follow_api_edits_and_a_truncate(client: TestClient, db_url: str) -> None:
    headers = auth_headers(db_url, "admin")
    before, _ = _truth(db_url, "litter_bins")
    one = client.get("/collections/litter_bins/items", params={"limit": 1}).json()["features"][0]
    one["properties"] = {k: v for k, v in one["properties"].items() if v is not None}
    one["properties"]["code"] = "BIN-STATS-1"
    one.pop("id")
    created = client.post("/collections/litter_bins/items", json=one, headers=headers)
    assert created.status_code == 201, created.text
    assert client.get("/collections/litter_bins/items?limit=1").json()["numberMatched"] == before + 1
    etag = client.get("/collections/litter_bins/items/BIN-STATS-1").headers["ETag"]
    gone = client.delete("/collections/litter_bins/items/BIN-STATS-1", headers={**headers, "If-Match": etag})
    assert gone.status_code == 204, gone.text
    assert client.get("/collections/litter_bins/items?limit=1").json()["numberMatched"] == before
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE litter_bins")
    empty = client.get("/collections/litter_bins/items?limit=1").json()
    assert empty["numberMatched"] == 0 and "extent" not in client.get("/collections/litter_bins").json()
