"""Holds under a crowd and through faults (issue 12, points 1, 3, 6, 7): a real server on a real
port, 50 concurrent clients (asyncio + httpx), exact counts; a database locked, exhausted, stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.maps import local_server
from geo.settings import DatabaseSettings, DistrictSettings, ServerSettings, Settings
from geo.store import embedded
from geo.store.migrate import migrate
from layers.catalogue import Catalogue
from tests.conftest import DISTRICT, ROOT, auth_headers
from tests.helpers import count, lights

CROWD = 50
LIMIT = httpx.Timeout(20.0)  # "answered, not hung": far above any bound the server keeps


def _settings(url: str, home: Path, **db: Any) -> Settings:
    return Settings(
        db=DatabaseSettings(database_url=url, home=home, **db),
        district=DistrictSettings(district_code=DISTRICT),
        server=ServerSettings(min_free_disk_mb=0),
    )


async def _crowd(base: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every request at once, each on its own connection (as separate clients would)."""
    limits = httpx.Limits(max_connections=len(requests) + 8, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=LIMIT, limits=limits) as client:
        return list(await asyncio.gather(*(client.request(m, p, **kw) for m, p, kw in requests)))


def _statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


# -- 1. one connection per request, threads and pool sized together ---------------------------------
def test_fifty_anonymous_case_lists_all_answer_and_health_answers_meanwhile(shared_db_url, tmp_path):
    """Used to freeze the API for 30 s and answer 40 × 500: threads waiting in the pool while the
    requests holding its connections waited for a thread. (The wait for a connection is bounded at 20 s
    here, not 5: on a loaded machine the crowd may rightly queue longer; bounded waiting has its own
    test below.)"""
    with local_server(create_app(_settings(shared_db_url, tmp_path, pool_timeout_s=20))) as base:

        async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
            crowd = asyncio.ensure_future(_crowd(base, [("GET", "/cases?limit=50", {})] * CROWD))
            await asyncio.sleep(0.05)  # the crowd is in
            async with httpx.AsyncClient(base_url=base, timeout=LIMIT) as client:
                health = await client.get("/health")
            return await crowd, health

        responses, health = asyncio.run(scenario())
    assert _statuses(responses) == {200: CROWD}
    assert {len(r.json()["features"]) for r in responses} == {len(responses[0].json()["features"])}
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok" and health.json()["database"] == "reachable"


@pytest.mark.parametrize("editors", [9, CROWD])
def test_concurrent_signed_in_edits_all_complete(db_url, tmp_path, editors):
    """Each edit took the pooled connection, then the guard's token lookup a second one: nine or
    more concurrent edits all failed after 30 s (a pool of 8)."""
    planner = auth_headers(db_url, "planner")
    with psycopg.connect(db_url) as conn:
        before = count(conn, "street_lights")
    body = lights(editors, prefix=f"CROWD{editors}")
    # The default pool (8), waiting long enough for fifty writes on a busy two-core machine: the
    # point is that none deadlocks (the bounded wait and its 503 are tested below).
    with local_server(create_app(_settings(db_url, tmp_path, pool_max_size=8, pool_timeout_s=60))) as base:
        responses = asyncio.run(
            _crowd(base, [("POST", "/collections/street_lights/items", {"json": f, "headers": planner}) for f in body])
        )
    assert _statuses(responses) == {201: editors}, [r.text for r in responses if r.status_code != 201][:3]
    with psycopg.connect(db_url) as conn:
        assert count(conn, "street_lights") == before + editors


# -- 3. bounded waiting, then 503 + Retry-After -------------------------------------------------------
def test_exhausted_pool_answers_503_with_retry_after_and_the_holders_finish(db_url, tmp_path):
    """2 connections, 4 may wait 1 s: 50 requests while the table they read is locked give exactly
    2 × 200 (once the lock goes) and 48 × 503, never a hang or a 500."""
    settings = _settings(db_url, tmp_path, pool_max_size=2, pool_min_size=2, pool_max_waiting=4, pool_timeout_s=1)
    with local_server(create_app(settings)) as base, psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")  # the two holders block in SQL

        async def scenario() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=CROWD + 8, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base, timeout=LIMIT, limits=limits) as client:
                tasks = [asyncio.ensure_future(client.get("/cases?limit=50")) for _ in range(CROWD)]
                refused: list[httpx.Response] = []
                for next_done in asyncio.as_completed(tasks):
                    refused.append(await next_done)
                    if len(refused) == CROWD - 2:
                        break
                busy = [r for r in refused if r.status_code == 503]
                locker.rollback()  # the lock goes: the two holding connections can finish
                rest = [await t for t in tasks]
                assert len(busy) == CROWD - 2, Counter(r.status_code for r in refused)
                return rest

        responses = asyncio.run(scenario())
    assert _statuses(responses) == {200: 2, 503: CROWD - 2}
    for r in responses:
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1"
            body = r.json()
            assert body["code"] == "ServiceUnavailable" and body["status"] == 503
            assert "服务繁忙" in body["reason_zh"] and body["request_id"] == r.headers["X-Request-ID"]


def test_statement_timeout_is_503_with_its_reason(db_url, tmp_path):
    settings = _settings(db_url, tmp_path, statement_timeout_ms=300)
    with local_server(create_app(settings)) as base, psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
        responses = asyncio.run(_crowd(base, [("GET", "/cases", {})] * CROWD))
        locker.rollback()
    assert _statuses(responses) == {503: CROWD}
    body = responses[0].json()
    assert "statement timeout" in body["reason"] and "查询超时" in body["reason_zh"]
    assert responses[0].headers["Retry-After"]


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[tuple[Any, str]]:
    """A private embedded cluster (stopped under the server by the test), migrated, no data."""
    cluster = embedded.locate(tmp_path_factory.mktemp("holds") / "home")
    try:
        state = embedded.start(cluster, fast=True)
        assert state.port
        url = embedded.ensure_database(cluster, "wuye")
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, catalogue)
        yield cluster, url
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)


def test_database_stopped_every_route_answers_503_and_health_says_why(own_cluster, tmp_path):
    cluster, url = own_cluster
    token = auth_headers(url, "planner")
    settings = _settings(url, tmp_path, pool_timeout_s=2)
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/cases?limit=50", {}),
        ("GET", "/collections/zones/items?limit=10", {}),
        ("GET", "/cases/stats", {"headers": token}),
        ("POST", "/cases", {"json": {"category": "garbage_pile", "lon": 112.952, "lat": 28.232}}),
        ("POST", "/collections/street_lights/items", {"json": lights(1)[0], "headers": token}),
        ("GET", "/auth/me", {"headers": token}),
        ("GET", "/health", {}),
    ]
    with local_server(create_app(settings)) as base:
        with httpx.Client(base_url=base, timeout=LIMIT) as client:
            assert client.get("/health").status_code == 200
        assert embedded.stop(cluster) is True  # pg_ctl stop, under the running server
        crowd = [routes[i % len(routes)] for i in range(CROWD)]
        responses = asyncio.run(_crowd(base, crowd))
        with httpx.Client(base_url=base, timeout=LIMIT) as client:
            health = client.get("/health")
    assert _statuses(responses) == {503: CROWD}, [(r.request.url.path, r.status_code) for r in responses]
    for r in responses:
        assert r.headers["Retry-After"] and r.headers["X-Request-ID"]
    assert health.json()["database"] == "unreachable"
    assert "database unreachable" in health.json()["problems"]


def test_once_the_database_is_known_away_requests_do_not_wait_the_pools_bound(own_cluster, tmp_path):
    """A pool wait of 10 s. The database stopped while nothing was in flight: the first request
    waits the bound and is answered 503 (the pool failed to connect meanwhile). From then on the
    database is known to be away, and a crowd on the async read path, intake and the sync pool is
    answered 503 long before the clients' 5 s patience (without the watch, each would wait the
    10 s bound); after a start the same routes serve again."""
    cluster, url = own_cluster
    token = auth_headers(url, "planner")
    settings = _settings(url, tmp_path, pool_timeout_s=10)
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/cases?limit=50", {}),
        ("GET", "/collections/zones/items?limit=10", {}),
        ("POST", "/cases", {"json": {"category": "garbage_pile", "lon": 112.952, "lat": 28.232}}),
        ("GET", "/cases/stats", {"headers": token}),
        ("POST", "/collections/street_lights/items", {"json": lights(1)[0], "headers": token}),
    ]
    crowd = [routes[i % len(routes)] for i in range(CROWD)]

    async def impatient(base: str) -> list[httpx.Response | str]:
        limits = httpx.Limits(max_connections=CROWD + 8, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5.0), limits=limits) as client:
            answers = await asyncio.gather(*(client.request(m, p, **kw) for m, p, kw in crowd), return_exceptions=True)
        return [a if isinstance(a, httpx.Response) else type(a).__name__ for a in answers]

    with local_server(create_app(settings)) as base:
        assert _statuses(asyncio.run(_crowd(base, routes[:2]))) == {200: 2}
        assert embedded.stop(cluster) is True
        first = asyncio.run(_crowd(base, routes[:2]))  # both pools learn it, each on its first wait
        down = asyncio.run(impatient(base))
        embedded.start(cluster, fast=True)
        for _ in range(100):  # the pool reconnects by itself, with its own back-off
            again = asyncio.run(_crowd(base, routes[:2]))
            if _statuses(again) == {200: 2}:
                break
            time.sleep(0.5)
    assert _statuses(first) == {503: 2}
    assert Counter(a.status_code if isinstance(a, httpx.Response) else a for a in down) == {503: CROWD}
    assert _statuses(again) == {200: 2}


def test_requests_waiting_for_a_connection_are_answered_when_the_database_goes_away(own_cluster, tmp_path):
    """2 connections, a 30 s wait: two requests hold both connections (blocked on a lock) and 30
    more wait for one. The database stops: the holders' connections break, and the waiters are
    answered 503 then, not after the 30 s bound (the clients give up after 10 s)."""
    cluster, url = own_cluster
    settings = _settings(url, tmp_path, pool_max_size=2, pool_min_size=2, pool_max_waiting=64, pool_timeout_s=30)
    locker = psycopg.connect(url)
    with local_server(create_app(settings)) as base:
        locker.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")

        async def scenario() -> list[httpx.Response | str]:
            limits = httpx.Limits(max_connections=40, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10.0), limits=limits) as client:
                tasks = [asyncio.ensure_future(client.get("/cases?limit=5")) for _ in range(32)]
                await asyncio.sleep(1.5)  # all sent: two hold connections, thirty wait for one
                assert not any(t.done() for t in tasks)
                await asyncio.to_thread(embedded.stop, cluster)
                answers = await asyncio.gather(*tasks, return_exceptions=True)
            return [a if isinstance(a, httpx.Response) else type(a).__name__ for a in answers]

        answers = asyncio.run(scenario())
    with contextlib.suppress(psycopg.Error):
        locker.close()
    got = Counter(a.status_code if isinstance(a, httpx.Response) else a for a in answers)
    assert got == {503: 32}, got


def test_health_names_what_is_wrong(empty_db_url, tmp_path, catalogue):
    """Pending migrations, a photo directory that cannot be written, too little free disk: 503 each."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM wuye_migrations WHERE name = (SELECT max(name) FROM wuye_migrations)")
    (tmp_path / "photos").write_text("not a directory")
    settings = _settings(empty_db_url, tmp_path)
    settings.server = ServerSettings(min_free_disk_mb=10**9)
    with local_server(create_app(settings)) as base:
        r = httpx.get(base + "/health", timeout=LIMIT)
    assert r.status_code == 503
    problems = r.json()["problems"]
    assert [p.split(" ")[0] for p in problems] == ["migrations", "photo", "free"], problems


# -- 6. request ids and logs --------------------------------------------------------------------------
def test_request_ids_and_one_access_line_per_request(shared_db_url, tmp_path, caplog):
    app = create_app(_settings(shared_db_url, tmp_path))

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    caplog.set_level(logging.INFO, logger="wuye")
    with local_server(app) as base:
        ids = [f"client-{i}" for i in range(CROWD)]
        responses = asyncio.run(
            _crowd(base, [("GET", "/cases?limit=5", {"headers": {"X-Request-ID": i}}) for i in ids])
        )
        bad = httpx.get(base + "/cases", headers={"X-Request-ID": b"two words\xe9"}, timeout=LIMIT)
        broken = httpx.get(base + "/boom", headers={"X-Request-ID": "boom-1"}, timeout=LIMIT)
        missing = httpx.get(base + "/cases/NO-SUCH-CASE", timeout=LIMIT)
    assert [r.headers["X-Request-ID"] for r in responses] == ids
    generated = bad.headers["X-Request-ID"]
    assert "two" not in generated and len(generated) == 32
    assert broken.status_code == 500 and broken.json()["request_id"] == "boom-1"
    assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["X-Request-ID"]
    access = [r for r in caplog.records if r.name == "wuye.access"]
    by_id = Counter(r.request_id for r in access)  # type: ignore[attr-defined]
    assert all(by_id[i] == 1 for i in ids) and by_id["boom-1"] == 1
    line = next(r for r in access if r.request_id == "client-7")  # type: ignore[attr-defined]
    assert line.getMessage().startswith("GET /cases 200 ") and "user=anonymous id=client-7" in line.getMessage()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "boom-1" in tracebacks[0].getMessage()


def test_access_line_names_the_signed_in_user(shared_db_url, tmp_path, caplog):
    headers = auth_headers(shared_db_url, "admin")
    caplog.set_level(logging.INFO, logger="wuye")
    with local_server(create_app(_settings(shared_db_url, tmp_path))) as base:
        me = httpx.get(base + "/auth/me", headers=headers, timeout=LIMIT).json()["username"]
    (line,) = [r for r in caplog.records if r.name == "wuye.access" and r.path == "/auth/me"]  # type: ignore[attr-defined]
    assert line.user == me  # type: ignore[attr-defined]


# -- 7. SIGTERM: stop within 10 s, finishing the requests in flight ----------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_finishes_requests_in_flight_and_logs_json(db_url, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "WUYE_DATABASE_URL": db_url,
        "WUYE_DISTRICT_CODE": DISTRICT,
        "WUYE_HOME": str(tmp_path),
        "WUYE_LOG_FORMAT": "json",
        "WUYE_ESCALATION_INTERVAL_SECONDS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")

            async def scenario() -> list[httpx.Response]:
                crowd = asyncio.ensure_future(_crowd(base, [("GET", "/cases?limit=5", {})] * 8))
                await asyncio.sleep(1.0)  # all in flight, held by the lock
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(1.0)
                locker.rollback()
                return await crowd

            responses = asyncio.run(scenario())
        assert _statuses(responses) == {200: 8}
        # uvicorn re-raises the signal once it has shut down, as a process stopped by it should
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    access = [r for r in records if r["logger"] == "wuye.access" and r["path"] == "/cases"]
    assert len(access) == 8 and {r["status"] for r in access} == {200}
    assert all(r["user"] == "anonymous" and len(r["request_id"]) == 32 for r in access)
    said = [r["message"] for r in records]
    assert "Application shutdown complete." in said, said[-5:]  # the lifespan closed the pools


# -- 2. the read path runs in the event loop ---------------------------------------------------------
READ_PATH = [
    ("GET", "/collections/{collection_id}/items"),
    ("GET", "/collections/{collection_id}/items/{feature_id}"),
    ("GET", "/collections/{collection_id}/tiles/{tms}/{z}/{x}/{y}"),
    ("GET", "/tiles/{tms}/{z}/{x}/{y}"),
    ("GET", "/collections"),
    ("GET", "/cases"),
    ("GET", "/cases/{code}"),
    ("POST", "/cases"),
    ("GET", "/health"),
]


def _sync_parts(dependant: Any) -> list[str]:
    """Names of the endpoint and dependencies FastAPI would run in a worker thread."""
    found = []
    call = dependant.call
    if call is not None and not inspect.isfunction(call) and not inspect.ismethod(call):
        call = call.__call__  # a callable instance (the access guards)
    if call is not None and not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)):
        found.append(getattr(call, "__qualname__", repr(call)))
    for sub in dependant.dependencies:
        found += _sync_parts(sub)
    return found


def test_the_read_path_takes_no_worker_thread():
    """Items, one feature, tiles, case lists, case pages, intake and /health: the endpoint and
    every dependency are coroutines, so FastAPI runs none of them in a worker thread (a crowd that
    holds every thread cannot stall them) and their statements go through the async pool."""
    app = create_app(Settings(db=DatabaseSettings(database_url="postgresql:///unused")))
    routes = {
        (m, c.path): c
        for c in iter_route_contexts(app.routes)
        if isinstance(c.original_route, APIRoute)
        for m in c.methods
    }
    for method, path in READ_PATH:
        route = routes[(method, path)]
        assert _sync_parts(route.dependant) == [], (method, path)
