"""Which process runs the background jobs (escalation, retention, webhooks) when several serve one database.

``wuye serve`` may run several worker processes (``WUYE_WORKERS``), and a district may run more than
one server on a database. The background jobs (escalating overdue cases, retention, sending webhooks)
must each run once, not once per process: two webhook senders would post every notice twice. The
process whose own connection holds a session-level advisory lock on the database runs them; the
others check at each pass and take over when the holder's session ends (the process stopped, its
connection broke, the database restarted), since the lock ends with the session.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import psycopg

log = logging.getLogger("wuye.jobs")

JOBS_LOCK = 0x7775_7965_6A6F_6273  # "wuyejobs": pg_advisory_lock's bigint key for the background jobs


class Leadership:
    """Whether this process runs the background jobs: it holds :data:`JOBS_LOCK` on ``url``'s database."""

    def __init__(self, url: str, key: int = JOBS_LOCK, *, connect_timeout: float = 5.0) -> None:
        self.url, self.key, self.connect_timeout = url, key, connect_timeout
        self._conn: psycopg.Connection | None = None
        self._held = False
        self._lock = threading.Lock()  # the jobs' threads ask from their own threads

    def held(self) -> bool:
        """Take the lock if it is free, or check that the session holding it is still alive; whether
        this process holds it now. Never raises: an unreachable database holds nothing."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._held = False
                    self._conn = psycopg.connect(
                        self.url,
                        autocommit=True,
                        connect_timeout=max(1, round(self.connect_timeout)),
                        application_name="wuye-jobs",
                    )
                if self._held:
                    self._conn.execute("SELECT 1")  # the lock lives exactly as long as this session
                else:
                    row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
                    self._held = bool(row and row[0])
                    if self._held:
                        log.info("this process runs the background jobs (escalation, retention, webhooks)")
            except psycopg.Error as e:
                if self._held:
                    log.warning("background jobs paused in this process: its lock session ended (%s)", e)
                self._close()
            return self._held

    def _close(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):  # closing a broken connection
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Give the lock up at once (not when the server notices the session has gone): another process
        takes the jobs on its next pass."""
        with self._lock:
            if self._held and self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self._close()
