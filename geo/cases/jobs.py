"""Periodic work of a running service: escalating overdue cases (and supervised ones past their
supervision deadline, geo/cases/supervision.py), and (each pass too) erasing reporters'
personal data and purging the audit trail past their retention periods (geo/cases/retention.py).

A daemon thread with its own pooled connection; it stops with the app. One
pass is a single set-based statement, so running it on every instance is
harmless (a case is escalated once: ``escalated_at`` is set in the same row).
A pass that cannot reach the database logs one warning per outage (not a
traceback every interval) and the thread goes on; the first pass after the
database is back catches up, since a pass takes every case overdue by then.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from geo.cases.leader import Leadership
from geo.cases.retention import erase_reporters, purge_audit
from geo.cases.supervision import escalate_supervised
from geo.cases.workflow import escalate_overdue

log = logging.getLogger("wuye.jobs")


class Escalator:
    """Every ``interval`` seconds, hand cases overdue by more than ``grace`` to their sub-district office."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        district_code: str,
        grace: timedelta,
        interval: float,
        pii_days: int | None = None,
        audit_days: int | None = None,
        leader: Leadership | None = None,
    ) -> None:
        self.pool, self.district_code, self.grace, self.interval = pool, district_code, grace, interval
        self.pii_days, self.audit_days = pii_days, audit_days
        self.leader = leader  # when several processes serve the database: runs only while it is held
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wuye-escalator", daemon=True)
        self._down = False

    def start(self) -> None:
        """Start the background thread (not when the interval is 0)."""
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait up to 10 s for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        """Whether the background thread runs."""
        return self._thread.is_alive()

    def run_once(self) -> int:
        """One pass; the number of cases escalated (past their deadline, past their supervision's)."""
        # A bounded wait: while the database is down a pass fails (and is logged) soon.
        with self.pool.connection(timeout=max(self.interval, 5.0)) as conn:
            # supervised first: a case past both is escalated as supervised (the stronger reason)
            n = escalate_supervised(conn, district_code=self.district_code, actor="system")
            return n + escalate_overdue(conn, district_code=self.district_code, grace=self.grace, actor="system")

    def retain(self) -> tuple[int, int]:
        """One retention pass: (cases whose reporter was erased, audit rows purged)."""
        with self.pool.connection(timeout=max(self.interval, 5.0)) as conn:
            erased = (
                erase_reporters(conn, district_code=self.district_code, days=self.pii_days)
                if self.pii_days is not None
                else []
            )
            purged = (
                purge_audit(conn, district_code=self.district_code, days=self.audit_days)
                if self.audit_days is not None
                else 0
            )
        if erased or purged:
            log.info("retention: erased the reporters of %d case(s), purged %d audit row(s)", len(erased), purged)
        return len(erased), purged

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.leader is not None and not self.leader.held():
                continue  # another process runs the jobs
            try:
                n = self.run_once()
                self.retain()
            except (psycopg.OperationalError, PoolTimeout) as e:
                if not self._down:
                    log.warning("escalation paused: the database is unreachable (%s); retrying", e)
                self._down = True
                continue
            except Exception:  # keep the service up; the next pass tries again
                log.exception("escalation pass failed")
                continue
            if self._down:
                log.warning("escalation resumed: the database is back")
                self._down = False
            if n:
                log.info("escalated %d overdue case(s)", n)
