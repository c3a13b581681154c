"""Statements built and decided in ``geo/``, executed at the edge: one pattern for sync and async.

A database operation of ``geo/`` is written once, as a generator of :class:`Statement`: it yields
each statement it needs, receives that statement's rows back (as a list of tuples), decides, and
finally returns its answer. It does no I/O itself, so it neither knows nor cares whether the rows
came from a sync connection (the CLI, background jobs, the write routes) or an async one (the API's
read path and intake, in the event loop with no thread hop)::

    def item(spec, code) -> Steps[bytes]:
        rows = yield Statement("SELECT … WHERE code = %s", [code])
        if not rows:
            raise NotFound(…)
        return rows[0][0]

    body = run(conn, item(spec, code))            # psycopg.Connection
    body = await run_async(aconn, item(spec, code))  # psycopg.AsyncConnection

A database error is thrown into the generator at its ``yield``, so an operation can turn one it
expects into a 4xx (``except psycopg.errors.DataException``). On a connection that is not in
autocommit the operation runs inside ``conn.transaction()`` (a savepoint when one is open), so a
failed statement leaves the caller's transaction usable.

An operation may also yield :class:`Await` to wait for another caller's work (geo/kept.py: a figure
another request is computing); the sync driver blocks its thread, the async one leaves the event
loop free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement, its bound values, and how to send it.

    ``raw`` sends ``query`` (bytes or text with ``$1`` placeholders) as it is, with positional
    values, through a raw cursor: no client-side query conversion (the intake's hot path)."""

    query: sql.Composable | LiteralString | bytes
    params: Mapping[str, Any] | Sequence[Any] | None = None
    binary: bool = False
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Await:
    """A pause until ``future`` is done (set by any caller, in any thread); no rows come back."""

    future: Future[None]


Steps = Generator[Statement | Await, Rows, T]


def _rows(cursor: psycopg.Cursor[Any]) -> Rows:
    return cursor.fetchall() if cursor.description is not None else []


def _drive(conn: psycopg.Connection, steps: Steps[T]) -> T:
    try:
        stmt = next(steps)
        while True:
            if isinstance(stmt, Await):
                stmt.future.result()
                stmt = steps.send([])
                continue
            try:
                cursor = psycopg.RawCursor(conn) if stmt.raw else conn.cursor()
                with cursor:
                    cursor.execute(stmt.query, stmt.params, binary=stmt.binary)  # type: ignore[arg-type]
                    rows = _rows(cursor)
            except psycopg.Error as e:
                stmt = steps.throw(e)
            else:
                stmt = steps.send(rows)
    except StopIteration as done:
        return done.value


def run(conn: psycopg.Connection, steps: Steps[T]) -> T:
    """Execute ``steps`` on a sync connection and return its answer."""
    if conn.autocommit:
        return _drive(conn, steps)
    with conn.transaction():
        return _drive(conn, steps)


async def _drive_async(conn: psycopg.AsyncConnection, steps: Steps[T]) -> T:
    try:
        stmt = next(steps)
        while True:
            if isinstance(stmt, Await):
                await asyncio.wrap_future(stmt.future)
                stmt = steps.send([])
                continue
            try:
                cursor = psycopg.AsyncRawCursor(conn) if stmt.raw else conn.cursor()
                async with cursor:
                    await cursor.execute(stmt.query, stmt.params, binary=stmt.binary)  # type: ignore[arg-type]
                    rows = await cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error as e:
                stmt = steps.throw(e)
            else:
                stmt = steps.send(rows)
    except StopIteration as done:
        return done.value


async def run_async(conn: psycopg.AsyncConnection, steps: Steps[T]) -> T:
    """Execute ``steps`` on an async connection, in the event loop, and return its answer."""
    if conn.autocommit:
        return await _drive_async(conn, steps)
    async with conn.transaction():
        return await _drive_async(conn, steps)


def one(rows: Rows) -> tuple[Any, ...] | None:
    """The first row, or None."""
    return rows[0] if rows else None
