"""Database access: resolve the URL (external or embedded), connections and the pool."""

from __future__ import annotations

import select
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from geo.errors import DatabaseUnavailable
from geo.settings import DatabaseSettings
from geo.store import embedded


def embedded_cluster(settings: DatabaseSettings) -> embedded.Cluster:
    """The embedded cluster for these settings' ``home``."""
    return embedded.locate(settings.home)


def database_url(settings: DatabaseSettings, *, start: bool = True) -> str:
    """The database URL: ``WUYE_DATABASE_URL``, or the embedded cluster's (started if asked)."""
    if settings.database_url:
        return settings.database_url
    cluster = embedded_cluster(settings)
    state = embedded.start(cluster, tcp=settings.db_listen_tcp) if start else embedded.status(cluster)
    if not state.running or state.port is None:
        raise DatabaseUnavailable(f"the embedded database under {cluster.root} is not running: run `wuye db start`")
    return embedded.ensure_database(cluster, settings.database_name)


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """One connection, with a clear error when the server cannot be reached (``kwargs``:
    connection parameters such as ``connect_timeout`` or ``options``)."""
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"cannot connect to the database: {e}".strip()) from e


def _configure(conn: psycopg.Connection) -> None:
    # JSON and JSONB results parsed by orjson: answers built as JSON in SQL are read faster.
    set_json_loads(orjson.loads, conn)


async def _configure_async(conn: psycopg.AsyncConnection) -> None:
    set_json_loads(orjson.loads, conn)


def _stale(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """True when an idle connection's socket has something to read: the server said goodbye
    (a shutdown's termination notice, or end of file) while nobody was talking to it."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


def _check(conn: psycopg.Connection) -> None:
    # A connection is checked as it leaves the pool, without a round trip: only one whose socket
    # shows the server went away (a database restart) gets the real check, which raises and
    # makes the pool drop it and hand out (or make) another, so the server recovers by itself.
    if _stale(conn):
        ConnectionPool.check_connection(conn)


async def _check_async(conn: psycopg.AsyncConnection) -> None:
    if _stale(conn):
        await AsyncConnectionPool.check_connection(conn)


def _pool_kwargs(settings: DatabaseSettings) -> dict[str, Any]:
    # Autocommit: reads need no transaction, and every write runs inside an explicit
    # ``conn.transaction()`` block in geo/ (or is one statement), committed when it ends
    # (not when FastAPI gets round to closing the dependency).
    return {"options": f"-c statement_timeout={settings.statement_timeout_ms}", "autocommit": True}


async def open_async_pool(url: str, settings: DatabaseSettings) -> AsyncConnectionPool:
    """The async pool of the request paths that run in the event loop (intake)."""
    pool = AsyncConnectionPool(
        url,
        min_size=min(2, settings.pool_max_size),
        max_size=settings.pool_max_size,
        kwargs=_pool_kwargs(settings),
        timeout=settings.pool_timeout_s,  # then PoolTimeout: the API answers 503
        max_waiting=settings.pool_max_waiting,  # then TooManyRequests: 503 at once
        open=False,
        name="wuye-async",
        configure=_configure_async,
        check=_check_async,  # see _check
    )
    await pool.open()
    try:
        await pool.wait(timeout=30)
    except Exception as e:
        await pool.close()
        raise DatabaseUnavailable(f"database pool could not connect: {e}") from e
    return pool


def open_pool(url: str, settings: DatabaseSettings) -> ConnectionPool:
    """Open a connection pool and wait until it holds its minimum connections."""
    pool = ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs=_pool_kwargs(settings),
        timeout=settings.pool_timeout_s,
        # The API's requests wait at api.deps.ConnectionGate, in the event loop, not here in
        # a worker thread; this bound is for the other users (background jobs).
        max_waiting=settings.pool_max_waiting,
        open=False,
        name="wuye",
        configure=_configure,
        check=_check,  # reconnect after a database restart
    )
    pool.open()
    try:
        pool.wait(timeout=30)
    except Exception as e:
        pool.close()
        raise DatabaseUnavailable(f"database pool could not connect: {e}") from e
    return pool
