"""Figures kept between requests until the data under them changes.

Some pages read figures that take tens of milliseconds or more to compute and change only when someone
writes: the acceptance figures of every zone (70 ms at 100,000 households), the statistics page's charts
(180 ms at 20,000 cases and a year of fee bills), the case desk's counts per state. Computed again on
every view they queue a crowd of readers behind each other (20 users: seconds). Here a result is kept
per database and key, and given again while the database's change counter has not moved: a sequence
advanced by a statement-level trigger on every table whose rows the figures read (migrations 0019 and
0021), from any process — the API, the CLI's imports, a desktop client writing to a table directly.

Two things can leave a kept result behind the data, both bounded by ``max_age`` seconds: figures that
depend on the clock (a case becomes overdue, a month becomes chargeable, without a write), and a write
that commits between this process reading the counter and taking its snapshot (it is counted under the
counter's new value). A kept result is never older than ``max_age`` (default :data:`MAX_AGE_S`), and
the time one caller takes to compute it again.

Results are kept pickled, so a caller may change what it gets without changing what is kept.

:func:`kept_read` is the one mechanism, a read of geo/steps.py: it runs on a sync connection or in the
event loop, and waits for another caller's computation with :class:`geo.steps.Await` (a thread
blocks; the event loop stays free). :func:`kept` runs it for computations that are plain functions of
a sync connection.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from geo.steps import Await, Statement, Steps, run

T = TypeVar("T")

MAX_AGE_S = 10.0
MAX_KEPT = 1024  # results over all keys; the least recently used is forgotten first
DATA_CHANGES = "data_changes"  # every table the figures read (migration 0021)
CASE_CHANGES = "case_changes"  # the cases table alone (migration 0019)

_kept: OrderedDict[tuple[Any, ...], tuple[int, float, bytes]] = OrderedDict()
_lock = threading.Lock()
_flights: dict[tuple[Any, ...], _Flight] = {}  # a computation under way, per key


def _counters_sql(*sequences: str) -> sql.Composed:
    # each sequence's value, then what tells this database from another one this process reads
    # (tests run many)
    return sql.SQL("SELECT {}, current_database(), inet_server_port(), pg_postmaster_start_time()").format(
        sql.SQL(", ").join(
            sql.SQL("(SELECT last_value + is_called::int FROM {})").format(sql.Identifier(s)) for s in sequences
        )
    )


Counters = dict[str, tuple[Any, ...]]  # per sequence: its value and what tells the database apart


def counters(*sequences: str) -> Steps[Counters]:
    """The change counters ``sequences`` in one statement, for a page that reads figures kept under
    each (the case desk: the counts under ``case_changes``, the filters' lists under ``data_changes``):
    one round trip instead of one per figure. Pass the answer to :func:`kept_read` as ``counters``."""
    row = (yield Statement(_counters_sql(*sequences)))[0]
    return {s: (row[i], *row[len(sequences) :]) for i, s in enumerate(sequences)}


def version(conn: psycopg.Connection, sequence: str = DATA_CHANGES) -> int:
    """The change counter: it moves whenever a watched table is written."""
    row = conn.execute(_counters_sql(sequence)).fetchone()
    return int(row[0]) if row else 0


class _Flight:
    """A computation under way for a key: ``done`` when it ends, with its result if it succeeded."""

    __slots__ = ("blob", "done", "seen")

    def __init__(self, seen: int) -> None:
        self.done: Future[None] = Future()
        self.seen = seen  # the change counter it was started under
        self.blob: bytes | None = None  # its result, pickled


def kept_read(
    key: Hashable,
    compute: Callable[[], Steps[T]],
    *,
    sequence: str = DATA_CHANGES,
    max_age: float | None = None,
    keep: Callable[[T], bool] | None = None,
    counters: Counters | None = None,
) -> Steps[T]:
    """``compute()``'s result for ``key`` on this database, computed again only when the data changed
    since or it is older than ``max_age`` seconds; a result ``keep`` refuses is not kept (it is still
    given to those waiting for it).

    One caller computes at a time for a key: when the data changed, the others wait for its result
    instead of all computing the same (a crowd of twenty on 300 ms of charts made seconds); when the
    result has only grown old, the others are given the kept one meanwhile. ``counters``: the
    counters as :func:`counters` read them earlier in the same read (else ``sequence`` is read here)."""
    age = MAX_AGE_S if max_age is None else max_age
    row = counters[sequence] if counters is not None else (yield Statement(_counters_sql(sequence)))[0]
    seen, full = int(row[0]), (row[1], row[2], row[3], sequence, key)
    while True:
        with _lock:
            hit = _kept.get(full)
            flight = _flights.get(full)
            if hit is not None and hit[0] == seen and (time.monotonic() - hit[1] < age or flight is not None):
                _kept.move_to_end(full)
                return pickle.loads(hit[2])
            if flight is None:
                flight = _flights[full] = _Flight(seen)
                break
        yield Await(flight.done)  # another caller is computing it: its result, or this caller's turn
        if flight.blob is not None and flight.seen >= seen:  # computed under this caller's counter or later
            return pickle.loads(flight.blob)
    try:
        started = time.monotonic()
        result = yield from compute()
        flight.blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        if keep is None or keep(result):
            _keep(full, seen, started, flight.blob)
    finally:
        with _lock:
            _flights.pop(full, None)
        flight.done.set_result(None)
    return result


def _keep(full: tuple[Any, ...], seen: int, started: float, blob: bytes) -> None:
    with _lock:
        _kept[full] = (seen, started, blob)
        _kept.move_to_end(full)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)


def _at_once(compute: Callable[[], T]) -> Steps[T]:
    return compute()
    yield  # a generator that asks for nothing  # pragma: no cover


def kept(
    conn: psycopg.Connection,
    key: Hashable,
    compute: Callable[[], T],
    *,
    sequence: str = DATA_CHANGES,
    max_age: float | None = None,
) -> T:
    """:func:`kept_read` of a computation that is a plain function (of ``conn``, say)."""
    return run(conn, kept_read(key, lambda: _at_once(compute), sequence=sequence, max_age=max_age))


def forget() -> None:
    """Drop everything kept (tests that move the clock)."""
    with _lock:
        _kept.clear()
