"""Notifications of case events to the units that must act (issue 20 point 5).

A notice is written in the same transaction as the move that causes it (dispatched to a unit, sent
back to it, overdue, supervised by the bureau), so there is no notice without its event nor an event without its notice.
Every user of the unit sees it in the app until they have read it. Where the unit has a webhook
(``WUYE_WEBHOOK_URLS``), :class:`WebhookSender`, a thread of the running service, POSTs it there
as a group robot's text message (the form 企业微信 and 钉钉 robots accept) — after the move has
committed and outside any request, so a slow or failing receiver delays nothing else — retrying
with growing waits, and logging each delivery's outcome in the notice's ``webhook_*`` columns.
SMS and other channels plug in as more :class:`Channel`s (none by default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from geo.access.scope import Principal
from geo.cases.leader import Leadership
from geo.steps import Statement, Steps

log = logging.getLogger("wuye.notices")

MESSAGES = {
    "dispatched": "事件 {code}（{category}）已派遣给本单位，请在 {due} 前处置。",
    "reopened": "事件 {code}（{category}）被退回重办：{note}",
    "overdue": "事件 {code}（{category}）已超期，已升级至街道办事处。",
    "supervised": "事件 {code}（{category}）被区城管局督办，请于 {note}",
}


def notify(
    conn: psycopg.Connection, case_id: int, unit_code: str | None, kind: str, *, note: str | None = None
) -> None:
    """Write the notice of ``kind`` for ``unit_code`` about the case (no unit: nobody to tell)."""
    if not unit_code:
        return
    row = conn.execute(
        "SELECT c.code, cat.name, to_char(c.due_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), "
        "c.district_code FROM cases c JOIN case_categories cat ON cat.code = c.category WHERE c.id = %s",
        [case_id],
    ).fetchone()
    if row is None:
        return
    code, category, due, district = row
    message = MESSAGES[kind].format(code=code, category=category, due=due, note=note or "")
    conn.execute(
        "INSERT INTO case_notices (district_code, case_id, unit_code, kind, message_zh) VALUES (%s, %s, %s, %s, %s)",
        [district, case_id, unit_code, kind, message],
    )


def notices_for(principal: Principal, *, limit: int = 20) -> Steps[dict[str, Any]]:
    """The caller's unit's latest notices, each with whether the caller has read it, and the unread count."""
    if not principal.unit_code or principal.user_id is None:
        return {"unread": 0, "items": []}
    rows = yield Statement(
        "SELECT n.id, n.kind, n.message_zh, n.created_at, c.code, r.read_at IS NOT NULL, "
        " count(*) FILTER (WHERE r.read_at IS NULL) OVER () "
        "FROM case_notices n JOIN cases c ON c.id = n.case_id "
        "LEFT JOIN notice_reads r ON r.notice_id = n.id AND r.user_id = %(me)s "
        "WHERE n.unit_code = %(unit)s ORDER BY n.id DESC LIMIT %(limit)s",
        {"me": principal.user_id, "unit": principal.unit_code, "limit": limit},
    )
    unread = yield Statement(
        "SELECT count(*) FROM case_notices n WHERE n.unit_code = %s AND NOT EXISTS "
        "(SELECT 1 FROM notice_reads r WHERE r.notice_id = n.id AND r.user_id = %s)",
        [principal.unit_code, principal.user_id],
    )
    return {
        "unread": int(unread[0][0]),
        "items": [
            {"id": r[0], "kind": r[1], "message_zh": r[2], "at": r[3].isoformat(), "case": r[4], "read": r[5]}
            for r in rows
        ],
    }


def mark_read(conn: psycopg.Connection, principal: Principal) -> int:
    """Mark every notice of the caller's unit read for the caller; how many were unread."""
    if not principal.unit_code or principal.user_id is None:
        return 0
    with conn.transaction():
        done = conn.execute(
            "INSERT INTO notice_reads (notice_id, user_id) SELECT n.id, %s FROM case_notices n "
            "WHERE n.unit_code = %s ON CONFLICT DO NOTHING",
            [principal.user_id, principal.unit_code],
        )
    return done.rowcount


DELIVERY_STATES = ("pending", "delivered", "failed", "none")


def delivery_log(
    *, district_code: str, state: str | None = None, unit_code: str | None = None, limit: int = 100
) -> Steps[list[dict[str, Any]]]:
    """The webhook delivery log, newest first: each notice's unit, case, state (``pending`` still to
    send or retry, ``delivered``, ``failed`` after the last attempt, ``none``: the unit has no
    webhook), attempts, the receiver's status and error. The receiver's address is not read here:
    robot URLs carry their key."""
    rows = yield Statement(
        "SELECT n.id, n.created_at, n.unit_code, u.name, c.code, n.kind, n.webhook_state, n.webhook_attempts, "
        " n.webhook_status, n.webhook_error, n.webhook_next_at, n.webhook_done_at "
        "FROM case_notices n JOIN cases c ON c.id = n.case_id LEFT JOIN units u ON u.code = n.unit_code "
        "WHERE n.district_code = %(district)s "
        " AND (%(state)s::text IS NULL OR n.webhook_state = %(state)s) "
        " AND (%(unit)s::text IS NULL OR n.unit_code = %(unit)s) "
        "ORDER BY n.id DESC LIMIT %(limit)s",
        {"district": district_code, "state": state, "unit": unit_code, "limit": limit},
    )
    keys = ("id", "at", "unit_code", "unit_name", "case", "kind", "state", "attempts", "status", "error")
    return [
        {**dict(zip(keys, r[:10], strict=True)), "next_at": r[10] if r[6] == "pending" else None, "done_at": r[11]}
        for r in rows
    ]


# -- delivery ----------------------------------------------------------------------------------------------
class Channel(Protocol):
    """Somewhere a notice can be sent (a webhook, an SMS gateway …): raise on failure."""

    def send(self, unit_code: str, notice: Mapping[str, Any]) -> None:
        """Deliver ``notice`` to ``unit_code``'s people."""


@dataclass(frozen=True)
class Delivery:
    """What a pass found to send."""

    id: int
    unit_code: str
    kind: str
    message_zh: str
    case_code: str
    attempts: int


def robot_message(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON a 企业微信 / 钉钉 group robot accepts: a text message (and our own fields beside it)."""
    return {
        "msgtype": "text",
        "text": {"content": f"【社区物业化服务】{notice['message_zh']}"},
        "wuye": {"case": notice["case_code"], "kind": notice["kind"], "unit": notice["unit_code"]},
    }


class WebhookSender:
    """Every ``interval`` seconds, POST the pending notices of units with a webhook; a failure is
    retried after ``retry_seconds`` × 2^(attempts-1), up to ``max_attempts``, then logged as failed.
    Notices of units without a webhook are logged ``none`` (the in-app list still shows them)."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        urls: Mapping[str, str],
        interval: float,
        retry_seconds: float,
        max_attempts: int,
        timeout_s: float,
        batch: int = 20,
        leader: Leadership | None = None,
    ) -> None:
        self.pool, self.urls, self.interval = pool, dict(urls), interval
        self.leader = leader  # when several processes serve the database: sends only while it is held
        self.retry_seconds, self.max_attempts, self.timeout_s, self.batch = (
            retry_seconds,
            max_attempts,
            timeout_s,
            batch,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wuye-webhooks", daemon=True)
        self._client = httpx.Client(timeout=timeout_s)

    def start(self) -> None:
        """Start the background thread (not when the interval is 0)."""
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop, wait up to 10 s for it, close the HTTP client."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _due(self, conn: psycopg.Connection) -> Sequence[Delivery]:
        with conn.transaction():
            conn.execute(
                "UPDATE case_notices SET webhook_state = 'none', webhook_done_at = now() "
                "WHERE webhook_state = 'pending' AND unit_code <> ALL(%s)",
                [list(self.urls)],
            )
            rows = conn.execute(
                "SELECT n.id, n.unit_code, n.kind, n.message_zh, c.code, n.webhook_attempts FROM case_notices n "
                "JOIN cases c ON c.id = n.case_id WHERE n.webhook_state = 'pending' AND n.webhook_next_at <= now() "
                "ORDER BY n.webhook_next_at, n.id LIMIT %s",
                [self.batch],
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def _post(self, d: Delivery) -> tuple[int | None, str | None]:
        """POST one notice; (status, error) — error None when the receiver took it."""
        body = robot_message(
            {"message_zh": d.message_zh, "case_code": d.case_code, "kind": d.kind, "unit_code": d.unit_code}
        )
        try:
            answer = self._client.post(self.urls[d.unit_code], json=body)
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:300]
        if not answer.is_success:
            return answer.status_code, f"HTTP {answer.status_code}: {answer.text[:200]}"
        return answer.status_code, None

    def run_once(self) -> int:
        """One pass: send what is due, each to its receiver at the same time (a slow receiver holds
        up only its own); log each outcome; how many were delivered."""
        with self.pool.connection(timeout=max(self.interval, 5.0)) as conn:
            due = self._due(conn)
            if not due:
                return 0
            with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="wuye-webhook") as pool:
                outcomes = list(pool.map(self._post, due))
            delivered = 0
            for d, (status, error) in zip(due, outcomes, strict=True):
                attempts = d.attempts + 1
                if error is None:
                    state, wait = "delivered", 0.0
                    delivered += 1
                elif attempts >= self.max_attempts:
                    state, wait = "failed", 0.0
                else:
                    state, wait = "pending", self.retry_seconds * 2 ** (attempts - 1)
                with conn.transaction():
                    conn.execute(
                        "UPDATE case_notices SET webhook_state = %s, webhook_attempts = %s, webhook_url = %s, "
                        "webhook_status = %s, webhook_error = %s, "
                        "webhook_next_at = now() + make_interval(secs => %s), "
                        "webhook_done_at = CASE WHEN %s <> 'pending' THEN now() END WHERE id = %s",
                        [state, attempts, self.urls[d.unit_code], status, error, wait, state, d.id],
                    )
            return delivered

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.leader is not None and not self.leader.held():
                continue  # another process sends
            try:
                self.run_once()
            except (psycopg.OperationalError, PoolTimeout) as e:
                log.warning("webhook pass skipped: the database is unreachable (%s)", e)
            except Exception:  # keep the service up; the next pass tries again
                log.exception("webhook pass failed")
