"""Figures kept between requests (geo/kept.py) follow every write under them: the acceptance
figures and the statistics page's charts, read again when any watched table changes (migration 0021's
``data_changes`` sequence), from the API or straight on a table; and the trigger is put on tables the
catalogue adds later, by every migration run. Real PostGIS, real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo import kept
from geo.steps import Statement
from geo.store.migrate import migrate
from tests.conftest import auth_headers, settings_for
from tests.test_acceptance import answers

ZONE = "jinling"


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[httpx.Client, str]]:
    kept.forget()
    headers = auth_headers(db_url, "admin")
    with (
        local_server(create_app(settings_for(db_url))) as base,
        httpx.Client(base_url=base, timeout=60, headers=headers) as http,
    ):
        yield http, db_url


def _answers_of(http: httpx.Client, zone: str = ZONE) -> int:
    r = http.get("/acceptance")
    assert r.status_code == 200, r.text
    return next(z["survey"]["answers"] for z in r.json() if z["zone"]["code"] == zone)


def _satisfaction_chart(http: httpx.Client) -> list[list[object]]:
    r = http.get("/workbench/stats/data", headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    return next(c["rows"] for c in r.json() if c["id"] == "satisfaction")


def test_figures_follow_a_write_straight_on_a_table(served):
    http, url = served
    before, chart_before = _answers_of(http), _satisfaction_chart(http)
    with psycopg.connect(url, autocommit=True) as conn:  # as an import, a script or a desktop client would
        answers(conn, ZONE, 20, 18, round_="2026", on="2026-06-01")  # the zone's latest round: judged
    assert _answers_of(http) > before
    assert _satisfaction_chart(http) != chart_before


def test_figures_are_kept_while_nothing_changes_and_never_older_than_their_age(served, monkeypatch):
    http, url = served
    before = _answers_of(http)
    with psycopg.connect(url, autocommit=True) as conn:
        # a write the counter does not see (its triggers switched off): the kept figures stay as they were…
        conn.execute("ALTER TABLE survey_answers DISABLE TRIGGER data_changed")
        conn.execute("ALTER TABLE survey_rounds DISABLE TRIGGER data_changed")
        try:
            answers(conn, ZONE, 10, 10, round_="2026", on="2026-06-01")
        finally:
            conn.execute("ALTER TABLE survey_answers ENABLE TRIGGER data_changed")
            conn.execute("ALTER TABLE survey_rounds ENABLE TRIGGER data_changed")
    assert _answers_of(http) == before
    # …until they are older than the age a kept result may reach
    monkeypatch.setattr(kept, "MAX_AGE_S", 0.0)
    assert _answers_of(http) > before


def test_every_migration_run_watches_new_tables(empty_db_url, catalogue):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE later_layer (id integer)")
        migrate(conn, catalogue)
        watched = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'later_layer'::regclass AND tgname = 'data_changed'"
        ).fetchone()[0]  # type: ignore[index]
        logs = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth_tokens'::regclass AND tgname = 'data_changed'"
        ).fetchone()[0]  # type: ignore[index]
        first = kept.version(conn)
        conn.execute("INSERT INTO later_layer VALUES (1)")
        assert kept.version(conn) > first
    assert watched == 1 and logs == 0


def test_a_crowd_computes_once_and_old_results_serve_while_one_caller_renews_them(db_url, monkeypatch):
    """Twenty callers missing at once after a change: one computes, the others wait for its result.
    Twenty callers on a result only grown old: one computes again, the others get the kept one without
    waiting for it (they return before the computation ends)."""
    kept.forget()
    calls: list[int] = []
    finished: list[float] = []

    def slow() -> list[int]:
        calls.append(1)
        time.sleep(0.3)
        finished.append(time.monotonic())
        return [len(calls)]

    def crowd() -> list[tuple[list[int], float]]:
        barrier = threading.Barrier(20)

        def one(_: int) -> tuple[list[int], float]:
            with psycopg.connect(db_url, autocommit=True) as conn:
                barrier.wait()
                return kept.kept(conn, "crowd", slow), time.monotonic()

        with ThreadPoolExecutor(20) as pool:
            return list(pool.map(one, range(20)))

    first = crowd()
    assert len(calls) == 1 and all(result == [1] for result, _ in first)
    monkeypatch.setattr(kept, "MAX_AGE_S", 0.0)  # every kept result is now too old
    second = crowd()
    assert len(calls) == 2
    served_old = [at for result, at in second if result == [1]]
    assert any(result == [2] for result, _ in second) and len(served_old) >= 10, second
    assert all(at < finished[-1] for at in served_old)  # none held back by the one renewing it


def _slow_read(calls: list[int]):  # type: ignore[no-untyped-def]
    """A read of 0.3 s whose result says how many times it ran (``calls``)."""
    from geo.steps import Statement

    calls.append(1)
    yield Statement("SELECT pg_sleep(0.3)")
    return [len(calls)]


def test_the_event_loop_keeps_the_same_results_and_a_crowd_of_coroutines_computes_once(db_url):
    """kept_read (the case desk's, run in the event loop) finds what kept() kept in a thread and the
    other way round; twenty coroutines missing at once after a change compute once, the others
    waiting without blocking the loop; a write moves the counter for both."""
    import asyncio

    from geo.steps import run_async

    kept.forget()
    calls: list[int] = []

    slow = partial(_slow_read, calls)

    async def crowd() -> tuple[list[list[int]], int]:
        conns = [await psycopg.AsyncConnection.connect(db_url, autocommit=True) for _ in range(20)]
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # runs only while the loop is free
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        try:
            results = await asyncio.gather(*(run_async(c, kept.kept_read("crowd-async", slow)) for c in conns))
        finally:
            stop.set()
            await tick
            for c in conns:
                await c.close()
        return results, ticks

    results, ticks = asyncio.run(crowd())
    assert len(calls) == 1 and all(r == [1] for r in results)
    assert ticks >= 10  # the loop kept turning while nineteen waited for the one computing
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert kept.kept(conn, "crowd-async", lambda: [99]) == [1]  # kept by the loop, found by a thread
        conn.execute("UPDATE zones SET name = name WHERE code = %s", [ZONE])
        assert kept.kept(conn, "crowd-async", lambda: [99]) == [99]  # the write moved the counter

    async def again() -> list[int]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            return await run_async(conn, kept.kept_read("crowd-async", slow))

    assert asyncio.run(again()) == [99] and len(calls) == 1  # kept by a thread, found by the loop


def test_a_result_keep_refuses_is_given_to_those_waiting_but_not_kept(db_url):
    """Twenty callers at once on a key whose result is not to be kept (a map tile that fits its cap,
    geo/features/tiles.py): one computes and the others take its result; the next caller computes
    again."""
    from geo.steps import run

    kept.forget()
    calls: list[int] = []

    slow = partial(_slow_read, calls)

    barrier = threading.Barrier(20)

    def one(_: int) -> list[int]:
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            return run(conn, kept.kept_read("unkept", slow, keep=lambda _: False))  # type: ignore[no-any-return]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert len(calls) == 1 and all(r == [1] for r in results), (len(calls), results)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert run(conn, kept.kept_read("unkept", slow, keep=lambda _: False)) == [2]


def _statements(conn: psycopg.Connection, steps) -> tuple[object, list[str]]:  # type: ignore[no-untyped-def]
    """Run ``steps`` on ``conn``, saying which statements it asked for (their text), in order."""
    asked: list[str] = []
    try:
        step = next(steps)
        while True:
            asked.append(step.query.as_string(conn) if hasattr(step.query, "as_string") else str(step.query))
            step = steps.send(conn.execute(step.query, step.params).fetchall())
    except StopIteration as done:
        return done.value, asked


def test_one_statement_reads_the_counters_of_two_kept_figures_and_each_still_follows_its_own(db_url):
    """The case desk reads figures kept under ``case_changes`` (its counts) and ``data_changes`` (its
    filters' lists): :func:`kept.counters` reads both at once, and a kept read given them asks for no
    counter of its own; each figure is still read again when its own counter moves, and only then."""
    kept.forget()
    computed: list[str] = []

    def figure(name: str):  # type: ignore[no-untyped-def]
        computed.append(name)
        rows = yield Statement("SELECT count(*) FROM cases")
        return (name, rows[0][0])

    def page():  # type: ignore[no-untyped-def]
        changes = yield from kept.counters(kept.CASE_CHANGES, kept.DATA_CHANGES)
        a = yield from kept.kept_read(
            ("counts",), lambda: figure("counts"), sequence=kept.CASE_CHANGES, counters=changes
        )
        b = yield from kept.kept_read(("lists",), lambda: figure("lists"), sequence=kept.DATA_CHANGES, counters=changes)
        return a, b

    with psycopg.connect(db_url, autocommit=True) as conn:
        first, asked = _statements(conn, page())
        assert computed == ["counts", "lists"] and len(asked) == 3, asked  # the counters, then each figure
        again, asked = _statements(conn, page())
        assert again == first and computed == ["counts", "lists"]
        assert len(asked) == 1 and "case_changes" in asked[0] and "data_changes" in asked[0], asked
        conn.execute("UPDATE zones SET name = name WHERE false")  # a statement on a watched table: data_changes
        _statements(conn, page())
        assert computed == ["counts", "lists", "lists"]
        conn.execute("UPDATE cases SET state = state WHERE false")  # case_changes, and data_changes (0021)
        _statements(conn, page())
        assert computed[3:] == ["counts", "lists"], computed
