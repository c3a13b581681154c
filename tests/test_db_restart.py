"""The embedded database stopped and started under a running ``wuye serve``: the server recovers by
itself (same port, pools that check and reconnect), loses nothing, and the escalation job catches up."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from geo.access.scope import Principal
from geo.cases.jobs import Escalator
from geo.cases.shapes import Report
from geo.cases.workflow import report
from geo.settings import DatabaseSettings
from geo.steps import run
from geo.store import embedded
from geo.store.db import open_pool
from tests.conftest import DISTRICT, TEST_HOME
from tests.helpers import INSIDE
from tests.live import serving, wuye

CLIENTS = 50


@dataclass(frozen=True)
class Target:
    """A database of an embedded cluster that a test may stop and start: ``wuye`` finds it by
    ``WUYE_HOME`` + ``WUYE_DATABASE_NAME``."""

    home: Path
    dbname: str
    fast: bool

    @property
    def cluster(self) -> embedded.Cluster:
        return embedded.locate(self.home)

    @property
    def env(self) -> dict[str, str]:
        return {"WUYE_HOME": str(self.home), "WUYE_DATABASE_NAME": self.dbname, "WUYE_DISTRICT_CODE": DISTRICT}

    def url(self) -> str:
        return embedded.server_url(self.cluster, self.dbname)

    def start(self) -> None:
        embedded.start(self.cluster, fast=self.fast)


@pytest.fixture(scope="module")
def own_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """With WUYE_TEST_DATABASE_URL (a server we may not stop): an embedded cluster of our own."""
    home = tmp_path_factory.mktemp("restart") / "var"
    cluster = embedded.locate(home)
    try:
        assert wuye({"WUYE_HOME": str(home)}, "db", "start").returncode == 0
        done = wuye({"WUYE_HOME": str(home), "WUYE_DISTRICT_CODE": DISTRICT}, "demo")
        assert done.returncode == 0, done.stderr
        yield home
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A copy of the demo database in the session's own embedded cluster (restarted fast afterwards)."""
    if os.environ.get("WUYE_TEST_DATABASE_URL"):
        yield Target(request.getfixturevalue("own_home"), "wuye", fast=False)
        return
    db_url: str = request.getfixturevalue("db_url")
    found = Target(TEST_HOME, urlsplit(db_url).path.lstrip("/"), fast=True)
    try:
        yield found
    finally:
        found.start()  # the rest of the session needs it running


Entry = tuple[float, str, int, str | None, float]


async def _crowd(url: str, stop: asyncio.Event, log: list[Entry]) -> None:
    """CLIENTS clients reporting cases (closed loop) until ``stop``; log (start, kind, status, case id,
    end): a request's answer belongs to the moment it came, which under a crowd may be well after it
    was sent."""

    async def client(i: int, http: httpx.AsyncClient) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            body = {"category": "garbage_pile", "lon": INSIDE[0] + i * 1e-5, "lat": INSIDE[1] + n * 1e-6}
            try:
                r = await http.post(f"{url}/cases", json=body, headers={"Idempotency-Key": f"c{i}-{n}"})
                code = r.json().get("id") if r.status_code == 201 else None
                log.append((started, "post", r.status_code, code, time.monotonic()))
                started = time.monotonic()
                r = await http.get(f"{url}/cases", params={"limit": 5})
                log.append((started, "get", r.status_code, None, time.monotonic()))
            except httpx.HTTPError as e:  # the transport failed: what it was, for the assertion's message
                log.append((started, "error", 0, f"{type(e).__name__}: {e}"[:200], time.monotonic()))
                await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(CLIENTS)))


def test_server_recovers_after_db_stop_and_start(target: Target):
    # The default pool (8 connections): the crowd below waits its turn. The wait bound is long, so
    # that on a loaded machine the crowd is not answered 503 for waiting (bounded waiting has its
    # own tests in test_holds.py) before the outage this test is about.
    env = {**target.env, "WUYE_ESCALATION_INTERVAL_SECONDS": "0", "WUYE_POOL_TIMEOUT_S": "30"}
    port_before = embedded.status(target.cluster).port
    with serving(env) as url:
        log: list[Entry] = []
        marks: dict[str, float] = {}
        outputs: dict[str, str] = {}

        async def run() -> None:
            stop = asyncio.Event()
            crowd = asyncio.create_task(_crowd(url, stop, log))
            await asyncio.sleep(2)
            marks["stopping"] = time.monotonic()
            stopped = await asyncio.to_thread(wuye, env, "db", "stop")
            outputs["stop"] = stopped.stdout
            await asyncio.sleep(3)
            if target.fast:  # the session's cluster: as `wuye db start` does, with fsync still off
                await asyncio.to_thread(target.start)
            else:
                await asyncio.to_thread(wuye, env, "db", "start")
            marks["started"] = time.monotonic()
            # the crowd goes on until the server has answered well again, then 5 s more (no fixed
            # window: how soon it recovers on a loaded machine is not what this test judges)
            deadline = time.monotonic() + 120
            while not any(e[4] > marks["started"] and e[2] in (200, 201) for e in log):
                assert time.monotonic() < deadline, "no request succeeded within 120 s of the start"
                await asyncio.sleep(0.2)
            await asyncio.sleep(5)
            stop.set()
            await crowd

        asyncio.run(run())
    # `wuye db stop` said that a server was still connected
    assert "still open" in outputs["stop"] and f"wuye@{target.dbname}" in outputs["stop"], outputs["stop"]
    assert embedded.status(target.cluster).port == port_before  # the same port: reconnectable
    timeline = sorted(Counter((round(e[0] - marks["started"]), e[1], e[2]) for e in log).items())
    # answered before the stop began (a request sent earlier but still waiting for a connection
    # when the database went away may rightly be answered 503)
    before = [e for e in log if e[4] < marks["stopping"]]
    assert before and all(e[2] in (200, 201) for e in before), timeline
    # once a request has succeeded after the start, every request sent from then on succeeds: the
    # server recovered for good, not for one lucky connection
    recovered = min(e[4] for e in log if e[4] > marks["started"] and e[2] in (200, 201))
    after = [e for e in log if e[0] >= recovered]
    failed_after = [(round(e[0] - recovered, 2), e[3]) for e in after if e[1] == "error"]
    assert len({e[1] for e in after}) == 2 and len(after) >= CLIENTS, (failed_after, timeline)
    assert [e for e in after if e[2] not in (200, 201)] == [], timeline
    # nothing lost: every case answered 201 is in the database
    created = {e[3] for e in log if e[2] == 201}
    with psycopg.connect(target.url()) as conn:
        found = conn.execute("SELECT count(*) FROM cases WHERE code = ANY(%s)", [list(created)]).fetchone()
    assert found == (len(created),)


def test_escalation_job_survives_an_outage_and_catches_up(target: Target, caplog: pytest.LogCaptureFixture):
    cluster, url = target.cluster, target.url()
    pool = open_pool(url, DatabaseSettings(pool_min_size=1, pool_max_size=2))
    job = Escalator(pool, district_code="430104", grace=timedelta(0), interval=0.2)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            reporter = Principal(username="anonymous", role="anonymous")
            for i in range(3):
                lon, lat = INSIDE[0] + i * 1e-4, INSIDE[1]
                run(
                    conn,
                    report(reporter, Report(category_code="garbage_pile", lon=lon, lat=lat), district_code=DISTRICT),
                )
            late = conn.execute(
                "UPDATE cases SET due_at = now() - interval '1 hour' WHERE id IN (SELECT id FROM cases "
                "WHERE escalated_at IS NULL AND state <> 'closed' ORDER BY id DESC LIMIT 3) RETURNING id"
            ).fetchall()
            conn.execute(
                "UPDATE cases SET escalated_at = now() WHERE escalated_at IS NULL AND id <> ALL(%s)",
                [[r[0] for r in late]],
            )
        assert len(late) == 3
        embedded.stop(cluster)  # down before the first pass: every pass fails until it is back
        with caplog.at_level(logging.WARNING, logger="wuye.jobs"):
            job.start()
            deadline = time.monotonic() + 30
            while not any("database" in m for m in caplog.messages):
                assert time.monotonic() < deadline, "the job logged nothing while the database was down"
                time.sleep(0.1)
            assert job.is_alive()
            target.start()
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(url) as conn:
                n = conn.execute(
                    "SELECT count(*) FROM cases WHERE id = ANY(%s) AND escalated_at IS NOT NULL",
                    [[r[0] for r in late]],
                ).fetchone()
            if n == (3,):
                break
            assert time.monotonic() < deadline, "the job did not catch up after the database came back"
            time.sleep(0.2)
        assert job.is_alive()
    finally:
        job.stop()
        pool.close()


def test_planner_unit_list_is_503_while_the_db_is_down_and_answers_again_after(target: Target):
    """GET /units (the planner page's list of units) through a database stop and start."""
    with serving(target.env) as url:
        before = httpx.get(f"{url}/units")
        assert before.status_code == 200 and before.json(), before.text
        assert wuye(target.env, "db", "stop").returncode == 0
        down = httpx.get(f"{url}/units", timeout=30)
        assert down.status_code == 503 and down.json()["reason_zh"] and down.json()["request_id"], down.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := httpx.get(f"{url}/units", timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert again.json() == before.json()
