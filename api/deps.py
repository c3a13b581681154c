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
import psycopg_pool
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from geo.access import users
from geo.access.scope import ANONYMOUS, Principal
from geo.errors import DatabaseUnavailable, ServiceBusy, Unauthenticated
from geo.inputs import check_path_parameter, check_text, check_tree
from geo.settings import Settings
from geo.steps import Steps, run_async
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


class DatabaseWatch:
    """Whether the database is away, so that requests do not each wait the pool's full bound
    (``WUYE_POOL_TIMEOUT_S``) for a connection that cannot come.

    Away is learnt from a request's connection breaking, or from a wait for a connection that ran
    out while the pool was failing to connect (its ``connections_errors`` grew; a crowd that keeps
    every connection busy is not an outage). When it is learnt, the requests already waiting on
    the async pool are answered 503 at once; while away, a request waits at most
    :attr:`AWAY_WAIT_S`, so it is answered within a second; the first connection handed out again
    (the pool reconnects by itself) ends it. (Waiting in short slices would find an outage sooner,
    but psycopg_pool keeps a timed-out waiter queued until a connection comes back, so slices
    would fill the waiting room under a crowd.)

    Made in the event loop; the sync pool's waits run in worker threads and reach it through
    ``call_soon_threadsafe``."""

    AWAY_WAIT_S = 0.7

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.away = False
        self._errors_seen = 0
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[psycopg.AsyncConnection]] = set()  # async pool waits

    def _set_away(self, away: bool) -> None:
        if away == self.away:
            return
        self.away = away
        if not away:
            return
        try:
            in_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            in_loop = False
        if in_loop:
            self._stop_waiting()
        else:
            self._loop.call_soon_threadsafe(self._stop_waiting)

    def _stop_waiting(self) -> None:
        for waiting in list(self._waiters):
            waiting.cancel()

    def _wait_s(self, bound: float) -> float:  # (the sync pool's waits)
        return min(bound, self.AWAY_WAIT_S) if self.away else bound

    def _timed_out(self, pool: ConnectionPool | AsyncConnectionPool) -> None:
        errors = pool.get_stats().get("connections_errors", 0)
        if errors > self._errors_seen:  # the pool failed to connect while we waited
            self._errors_seen = errors
            self._set_away(True)

    def broke(self, error: Exception) -> None:
        """A request's statement failed on ``error``: a broken connection means the database is away."""
        if isinstance(error, psycopg.OperationalError) and not isinstance(
            error, psycopg.errors.QueryCanceled | psycopg_pool.PoolTimeout | psycopg_pool.TooManyRequests
        ):
            self._set_away(True)

    async def take_async(self, pool: AsyncConnectionPool) -> psycopg.AsyncConnection:
        """A connection of the async pool, or PoolTimeout / TooManyRequests / DatabaseUnavailable (503)."""
        try:
            if self.away:
                conn = await pool.getconn(timeout=self.AWAY_WAIT_S)
            else:
                conn = await self._unless_away(pool)
        except psycopg_pool.PoolTimeout:
            self._timed_out(pool)
            raise
        self._set_away(False)
        return conn

    async def _unless_away(self, pool: AsyncConnectionPool) -> psycopg.AsyncConnection:
        """Wait for a connection, but give up as soon as the database is known to be away (even a
        connection that looked free may turn out dead, and the pool then waits to reconnect)."""
        taking = asyncio.ensure_future(pool.getconn(timeout=self.timeout))
        self._waiters.add(taking)
        try:
            return await taking
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the request itself was cancelled
            raise DatabaseUnavailable(  # _set_away cancelled the wait: psycopg_pool hands back
                "the database went away while this request waited for a connection",  # a connection
                reason_zh="数据库暂时无法连接，请稍后再试",  # given to a cancelled waiter
            ) from None
        finally:
            self._waiters.discard(taking)

    def take(self, pool: ConnectionPool, timeout: float) -> psycopg.Connection:
        """A connection of the sync pool (in a worker thread), or PoolTimeout (503)."""
        try:
            conn = pool.getconn(timeout=self._wait_s(timeout))
        except psycopg_pool.PoolTimeout:
            self._timed_out(pool)
            raise
        self._set_away(False)
        return conn


async def run_with_connection(request: Request, work: Callable[[psycopg.Connection], T]) -> T:
    """Run ``work(conn)`` in a worker thread on one pooled connection, taken through the gate
    (for async routes that need the sync pool for part of their work)."""
    async with _pooled(request) as conn:
        return await run_in_threadpool(work, conn)


@asynccontextmanager
async def _pooled(request: Request) -> AsyncIterator[psycopg.Connection]:
    gate: ConnectionGate = request.app.state.gate
    pool: ConnectionPool = request.app.state.pool
    watch: DatabaseWatch = request.app.state.db_watch
    async with gate.slot() as left:
        # A slot means a connection is free (or being made): the thread waits at most for that.
        conn = await run_in_threadpool(watch.take, pool, left)
        try:
            yield conn
        except psycopg.OperationalError as e:
            watch.broke(e)
            raise
        finally:
            if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                pool.putconn(conn)  # no I/O for an idle connection: no thread hop
            else:  # a rollback (or a broken connection's clean-up) talks to the server
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(pool.putconn, conn)


async def read(request: Request, steps: Steps[T]) -> T:
    """Run a database operation of ``geo/`` (see :mod:`geo.steps`) on the async pool, in the
    event loop: no worker thread, and the connection is held only while its statements run.

    The pool bounds the wait (``WUYE_POOL_TIMEOUT_S``) and the queue (``WUYE_POOL_MAX_WAITING``);
    beyond them it raises, and the API answers 503 with Retry-After."""
    pool: AsyncConnectionPool = request.app.state.async_pool
    watch: DatabaseWatch = request.app.state.db_watch
    conn = await watch.take_async(pool)
    try:
        return await run_async(conn, steps)
    except psycopg.OperationalError as e:
        watch.broke(e)
        raise
    finally:
        await pool.putconn(conn)


SESSION_COOKIE = "wuye_session"  # the pages' sign-in (api/workbench.py): the same bearer token, in a cookie
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same_origin(request: Request) -> bool:
    """Whether a cookie-signed request comes from our own pages (its Origin, else its Referer, names
    this host): a page of another site cannot write with a visitor's session (CSRF)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    return bool(host) and source.split("://", 1)[-1].split("/", 1)[0] == host


async def _cookie_principal(request: Request, token: str) -> Principal:
    """The caller of a page session; anonymous when the session has expired or been revoked (the
    page then offers to sign in), and for a write from another site's page."""
    if request.method not in SAFE_METHODS and not _same_origin(request):
        return ANONYMOUS
    try:
        principal = await read(request, users.principal_for_token(token))
    except Unauthenticated:
        return ANONYMOUS
    request.state.user = principal.username
    request.state.session = token
    return principal


async def current_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller from ``Authorization: Bearer …``, else from the pages' session cookie; anonymous
    without either.

    Async: an anonymous caller costs no connection and no thread; a token is looked up with one
    statement on the async pool, whose connection is given back before the request's own is
    taken. The user's name is kept on ``request.state.user`` for the access log.

    Resolved once per request: a route's :class:`api.auth.Guard` calls it directly (one
    dependency fewer for FastAPI to solve on every request) and a route that also asks for the
    caller gets the same answer without a second lookup."""
    known: Principal | None = getattr(request.state, "principal", None)  # set below, once resolved
    if known is not None:
        return known
    if not authorization:
        cookie = request.cookies.get(SESSION_COOKIE)
        caller = await _cookie_principal(request, cookie.strip()) if cookie and cookie.strip() else ANONYMOUS
        request.state.principal = caller  # (an error page names the caller in its bar)
        return caller
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'", field="Authorization")
    idle = request.app.state.settings.auth.idle_minutes
    principal = await read(request, users.principal_for_token(token.strip(), idle_minutes=idle))
    request.state.user = principal.username
    request.state.principal = principal
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


_BODY_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def clean_text(request: Request) -> None:
    """Every route's first dependency: no control character in any path or query parameter, form
    field or JSON body member (:mod:`geo.inputs`); 400 naming the field, before anything is read or
    written. The body is the one FastAPI already parsed for the route (Starlette caches it)."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_path_parameter(value, name)
    for name, value in request.query_params.multi_items():
        check_text(name, name)
        check_text(value, name)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in _BODY_FORMS:
        for name, item in (await request.form()).multi_items():
            check_text(name, name)
            check_text(item if isinstance(item, str) else item.filename or "", name)
    elif kind.endswith("json"):
        try:
            body = await request.json()
        except ValueError:  # not JSON: the route (if it takes a body) answers 400 itself
            return
        check_tree(body, "")
