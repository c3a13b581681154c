"""Races won in the database: 50 concurrent clients against a real server on a real port, exact counts."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from geo.access import users
from tests.conftest import DISTRICT, Server, auth_headers
from tests.helpers import INSIDE, feature, point
from tests.live import serving, uvicorn_app

CLIENTS = 50


@pytest.fixture(scope="module")
def live(server: Server, template_db: str) -> Iterator[tuple[str, str]]:
    """One server on one copy of the demo database for the module (each test uses its own codes)."""
    name = f"wuye_races_{os.getpid()}"
    db_url = server.create(name, template=template_db)
    # The default pool (8): fifty clients wait their turn for a connection (issue 12).
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}
    try:
        with serving(env, *uvicorn_app()) as url:
            yield url, db_url
    finally:
        server.drop(name)


async def _crowd(n: int, send: Any) -> Counter[int]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=n)) as http:
        responses = await asyncio.gather(*(send(http, i) for i in range(n)))
    return Counter(r.status_code for r in responses)


def _light(code: str, **props: Any) -> dict[str, Any]:
    return feature(point(*INSIDE), **{"code": code, "condition": "normal", "power_w": 60, **props})


def _history(db_url: str, code: str) -> list[tuple[int, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT version, operation FROM feature_history WHERE feature_code = %s ORDER BY id", [code]
        ).fetchall()
    return [(int(v), str(op)) for v, op in rows]


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_fifty_writes_with_one_if_match_make_one_success(live, method):
    url, db_url = live
    planner = auth_headers(db_url, "planner")
    code = f"RACE-{method}"
    created = httpx.post(f"{url}/collections/street_lights/items", json=_light(code), headers=planner)
    assert created.status_code == 201
    item = f"{url}/collections/street_lights/items/{code}"

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        headers = {**planner, "If-Match": '"1"'}
        if method == "PATCH":
            return await http.patch(item, json={"properties": {"power_w": 100 + i}}, headers=headers)
        if method == "PUT":
            return await http.put(item, json=_light(code, power_w=100 + i), headers=headers)
        return await http.delete(item, headers=headers)

    counts = asyncio.run(_crowd(CLIENTS, send))
    success = 204 if method == "DELETE" else 200
    assert counts == {success: 1, 412: CLIENTS - 1}
    assert _history(db_url, code) == [(1, "insert"), (2, "delete" if method == "DELETE" else "update")]


def test_fifty_creates_with_one_code_make_one_feature(live):
    url, db_url = live
    planner = auth_headers(db_url, "planner")

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.post(
            f"{url}/collections/street_lights/items", json=_light("RACE-2", power_w=i + 1), headers=planner
        )

    assert asyncio.run(_crowd(CLIENTS, send)) == {201: 1, 409: CLIENTS - 1}
    assert _history(db_url, "RACE-2") == [(1, "insert")]


def test_fifty_registers_of_one_case_make_one(live):
    url, db_url = live
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = 'yumin-south') s"
        ).fetchone()
    assert row is not None
    r = httpx.post(f"{url}/cases", json={"category": "garbage_pile", "lon": row[0], "lat": row[1]})
    assert r.status_code == 201
    code = r.json()["id"]
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.post(f"{url}/cases/{code}/actions", json={"action": "register"}, headers=staff)

    assert asyncio.run(_crowd(CLIENTS, send)) == {200: 1, 409: CLIENTS - 1}
    events = httpx.get(f"{url}/cases/{code}", headers=staff).json()["properties"]["events"]
    assert [e["action"] for e in events] == ["report", "register"]


def _open311_cases(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM cases WHERE source = 'open311'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("with_key", [True, False])
def test_fifty_open311_retries_make_one_request(live, with_key):
    url, db_url = live
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = users.create_api_key(conn, client_name="12345热线", district_code=DISTRICT, actor="tests")[1]
    before = _open311_cases(db_url)
    form = {"api_key": key, "service_code": "light_out", "lat": INSIDE[1], "long": INSIDE[0], "description": "灯不亮"}
    headers = {"Idempotency-Key": "retry-1"} if with_key else {}
    form["description"] += f" ({with_key})"  # each run its own request
    answers: list[httpx.Response] = []

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        r = await http.post(f"{url}/open311/v2/requests.json", data=form, headers=headers)
        answers.append(r)
        return r

    assert asyncio.run(_crowd(CLIENTS, send)) == {201: CLIENTS}
    assert _open311_cases(db_url) == before + 1
    assert len({r.json()[0]["service_request_id"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == CLIENTS - 1
    # a different request is a new one; the same key for a different request is refused
    other = {**form, "description": "另一盏灯"}
    r = httpx.post(f"{url}/open311/v2/requests.json", data=other, headers=headers)
    assert r.status_code == (400 if with_key else 201)
    assert _open311_cases(db_url) == before + (1 if with_key else 2)
