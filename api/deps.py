"""Request dependencies: the caller, one pooled connection per request, settings and catalogue.

The connection budget of a request is one, taken once. The caller's token is looked up first, on
the async pool in the event loop (held only for that statement), and only then is the request's
own connection taken from the sync pool; so no request holds a connection while it waits for
another (issue 12: nine concurrent edits used to deadlock the pool that way).

Waiting for a connection happens in the event loop, at :class:`ConnectionGate`, not in a worker
thread: a thread is only taken once a connection is free for it, so the threads holding
connections can always run (issue 12: fifty anonymous ``GET /cases`` used to take every thread
waiting in ``pool.connection()`` while the eight holding connections waited for a thread).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import anyio
import psycopg
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from geo.access import users
from geo.access.scope import ANONYMOUS, Principal
from geo.errors import ServiceBusy, Unauthenticated
from geo.settings import Settings
from layers.catalogue import Catalogue

T = TypeVar("T")


class ConnectionGate:
    """At most ``size`` requests hold (or are taking) a sync-pool connection; at most
    ``max_waiting`` more wait for one, each for at most ``timeout`` seconds; the rest are
    refused at once with :class:`ServiceBusy` (503 + Retry-After)."""

    def __init__(self, size: int, *, max_waiting: int, timeout: float) -> None:
        self.size, self.max_waiting, self.timeout = size, max_waiting, timeout
        self._free = asyncio.Semaphore(size)
        self.waiting = 0

    @property
    def retry_after(self) -> int:
        """Seconds a refused client is told to wait (the pool's wait bound, at least 1)."""
        return max(1, math.ceil(self.timeout))

    def _busy(self, why: str, why_zh: str) -> ServiceBusy:
        return ServiceBusy(
            f"{why}: try again in {self.retry_after} s",
            retry_after=self.retry_after,
            reason_zh=f"服务繁忙（{why_zh}），请 {self.retry_after} 秒后再试",
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the ``size`` slots for the duration (503 when none comes in time); yields
        what is left of the wait bound, for taking the connection itself."""
        started = time.monotonic()
        if self._free.locked() and self.waiting >= self.max_waiting:
            raise self._busy(
                f"all {self.size} database connections are busy and {self.waiting} requests are waiting",
                "数据库连接已满且排队已满",
            )
        self.waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), self.timeout)
        except TimeoutError:
            raise self._busy(
                f"no database connection became free within {self.timeout:g} s (WUYE_POOL_TIMEOUT_S)",
                "等待数据库连接超时",
            ) from None
        finally:
            self.waiting -= 1
        try:
            yield max(0.1, self.timeout - (time.monotonic() - started))
        finally:
            self._free.release()


async def run_with_connection(request: Request, work: Callable[[psycopg.Connection], T]) -> T:
    """Run ``work(conn)`` in a worker thread on one pooled connection, taken through the gate
    (for async routes that need the sync pool for part of their work)."""
    async with _pooled(request) as conn:
        return await run_in_threadpool(work, conn)


@asynccontextmanager
async def _pooled(request: Request) -> AsyncIterator[psycopg.Connection]:
    gate: ConnectionGate = request.app.state.gate
    pool: ConnectionPool = request.app.state.pool
    async with gate.slot() as left:
        # A slot means a connection is free (or being made): the thread waits at most for that.
        conn = await run_in_threadpool(pool.getconn, left)
        try:
            yield conn
        finally:
            if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                pool.putconn(conn)  # no I/O for an idle connection: no thread hop
            else:  # a rollback (or a broken connection's clean-up) talks to the server
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(pool.putconn, conn)


async def current_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller from ``Authorization: Bearer …``; anonymous without the header.

    Async: an anonymous caller costs no connection and no thread; a token is looked up with one
    statement on the async pool, whose connection is given back before the request's own is
    taken. The user's name is kept on ``request.state.user`` for the access log."""
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'", field="Authorization")
    query, params = users.token_query(token.strip())
    async with request.app.state.async_pool.connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
    principal = users.principal_from_token_row(row)
    request.state.user = principal.username
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def _connection(request: Request, _caller: CurrentUser) -> AsyncIterator[psycopg.Connection]:
    # Depending on the caller puts the token lookup (cached per request) before this, whatever
    # order a route lists its parameters in.
    async with _pooled(request) as conn:
        yield conn


async def _settings(request: Request) -> Settings:  # async: no thread hop for a lookup
    settings: Settings = request.app.state.settings
    return settings


async def _catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


Connection = Annotated[psycopg.Connection, Depends(_connection)]
AppSettings = Annotated[Settings, Depends(_settings)]
AppCatalogue = Annotated[Catalogue, Depends(_catalogue)]
