"""Periodic work of a running service: escalating overdue cases.

A daemon thread with its own pooled connection; it stops with the app. One
pass is a single set-based statement, so running it on every instance is
harmless (a case is escalated once: ``escalated_at`` is set in the same row).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from psycopg_pool import ConnectionPool

from geo.cases.workflow import escalate_overdue

log = logging.getLogger("wuye.jobs")


class Escalator:
    """Every ``interval`` seconds, hand cases overdue by more than ``grace`` to their sub-district office."""

    def __init__(self, pool: ConnectionPool, *, district_code: str, grace: timedelta, interval: float) -> None:
        self.pool, self.district_code, self.grace, self.interval = pool, district_code, grace, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wuye-escalator", daemon=True)

    def start(self) -> None:
        """Start the background thread (not when the interval is 0)."""
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait up to 10 s for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> int:
        """One pass; the number of cases escalated."""
        with self.pool.connection() as conn:
            return escalate_overdue(conn, district_code=self.district_code, grace=self.grace, actor="system")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                n = self.run_once()
                if n:
                    log.info("escalated %d overdue case(s)", n)
            except Exception:  # keep the service up; the next pass tries again
                log.exception("escalation pass failed")
