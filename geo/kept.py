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
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")

MAX_AGE_S = 10.0
MAX_KEPT = 1024  # results over all keys; the least recently used is forgotten first
DATA_CHANGES = "data_changes"  # every table the figures read (migration 0021)
CASE_CHANGES = "case_changes"  # the cases table alone (migration 0019)

_kept: OrderedDict[tuple[Any, ...], tuple[int, float, bytes]] = OrderedDict()
_lock = threading.Lock()
_flights: dict[tuple[Any, ...], threading.Lock] = {}  # one computation at a time per key
# the same in each event loop (an asyncio lock belongs to one loop)
_async_flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _version_sql(sequence: str) -> sql.Composed:
    return sql.SQL("SELECT last_value + is_called::int FROM {}").format(sql.Identifier(sequence))


def version(conn: psycopg.Connection, sequence: str = DATA_CHANGES) -> int:
    """The change counter: it moves whenever a watched table is written."""
    row = conn.execute(_version_sql(sequence)).fetchone()
    return int(row[0]) if row else 0


async def version_async(conn: psycopg.AsyncConnection, sequence: str = DATA_CHANGES) -> int:
    """:func:`version` in the event loop."""
    row = await (await conn.execute(_version_sql(sequence))).fetchone()
    return int(row[0]) if row else 0


def _full_key(info: Any, sequence: str, key: Hashable) -> tuple[Any, ...]:
    return (info.host, info.port, info.dbname, sequence, key)


def _keep(full: tuple[Any, ...], seen: int, started: float, result: Any) -> None:
    with _lock:
        _kept[full] = (seen, started, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        _kept.move_to_end(full)
        while len(_kept) > MAX_KEPT:
            old, _ = _kept.popitem(last=False)
            gone = _flights.get(old)
            if gone is not None and not gone.locked():
                del _flights[old]
            for flights in _async_flights.values():
                waiting = flights.get(old)
                if waiting is not None and not waiting.locked():
                    del flights[old]


def kept(
    conn: psycopg.Connection,
    key: Hashable,
    compute: Callable[[], T],
    *,
    sequence: str = DATA_CHANGES,
    max_age: float | None = None,
) -> T:
    """``compute()``'s result for ``key`` on this database, computed again only when the data changed
    since or it is older than ``max_age`` seconds.

    One caller computes at a time for a key: when the data changed, the others wait for its result
    instead of all computing the same (a crowd of twenty on 300 ms of charts made seconds); when the
    result has only grown old, the others are given the kept one meanwhile."""
    full = _full_key(conn.info, sequence, key)
    age = MAX_AGE_S if max_age is None else max_age
    seen = version(conn, sequence)
    with _lock:
        hit = _kept.get(full)
        flight = _flights.setdefault(full, threading.Lock())
        if hit is not None and hit[0] == seen and (time.monotonic() - hit[1] < age or flight.locked()):
            _kept.move_to_end(full)
            return pickle.loads(hit[2])
    with flight:
        with _lock:  # computed by another caller while this one waited?
            hit = _kept.get(full)
            if hit is not None and hit[0] == seen and time.monotonic() - hit[1] < age:
                return pickle.loads(hit[2])
        started = time.monotonic()
        result = compute()
        _keep(full, seen, started, result)
    return result


async def kept_async(
    conn: psycopg.AsyncConnection,
    key: Hashable,
    compute: Callable[[], Awaitable[T]],
    *,
    sequence: str = DATA_CHANGES,
    max_age: float | None = None,
) -> T:
    """:func:`kept` in the event loop: the same kept results (a key kept by either is found by both),
    one computation at a time per key among the loop's callers, who wait without blocking the loop."""
    full = _full_key(conn.info, sequence, key)
    age = MAX_AGE_S if max_age is None else max_age
    seen = await version_async(conn, sequence)
    with _lock:
        hit = _kept.get(full)
        flight = _async_flights.setdefault(asyncio.get_running_loop(), {}).setdefault(full, asyncio.Lock())
        if hit is not None and hit[0] == seen and (time.monotonic() - hit[1] < age or flight.locked()):
            _kept.move_to_end(full)
            return pickle.loads(hit[2])
    async with flight:
        with _lock:
            hit = _kept.get(full)
            if hit is not None and hit[0] == seen and time.monotonic() - hit[1] < age:
                return pickle.loads(hit[2])
        started = time.monotonic()
        result = await compute()
        _keep(full, seen, started, result)
    return result


def forget() -> None:
    """Drop everything kept (tests that move the clock)."""
    with _lock:
        _kept.clear()
        _flights.clear()
        _async_flights.clear()
