"""Sign-in limits counted in the database (issue 13 point 5): failures per username (from every
address) and per client address, with a growing delay rather than a lock.

Each attempt first *reserves* its turn: in one transaction it locks the two counters (username,
address), refuses while either is in its delay, and otherwise counts itself as a failure, starting
the delay when the count reaches the limit. Only then is the password checked (outside the
transaction); a right one gives the reservation back. Concurrent attempts queue on the rows' locks,
so 50 parallel guesses check no more passwords than the limit allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg


@dataclass(frozen=True)
class Limits:
    """How many failures a username and an address may have before the delay, how long the first
    delay is (it doubles with each further failure, up to ``max_delay_s``), and after how long
    without a failure a counter starts again."""

    user_attempts: int = 5
    address_attempts: int = 20
    delay_s: float = 30.0
    max_delay_s: float = 900.0
    window_s: float = 3600.0


def _keys(username: str, address: str) -> list[tuple[str, str]]:
    return [("address", address[:256]), ("user", username[:256])]  # locked in this order, always


def _delay(limits: Limits, failures: int, free: int) -> timedelta:
    return timedelta(seconds=min(limits.max_delay_s, limits.delay_s * 2 ** max(0, failures - free)))


def reserve(conn: psycopg.Connection, username: str, address: str, limits: Limits) -> int:
    """Count this attempt before its password is checked; 0 when it may go ahead, else the seconds to
    wait (the attempt is then not counted and no password may be checked)."""
    keys = _keys(username, address)
    free = {"user": limits.user_attempts, "address": limits.address_attempts}
    with conn.transaction():
        conn.execute(
            "INSERT INTO login_failures (kind, key) VALUES (%s, %s), (%s, %s) ON CONFLICT DO NOTHING",
            [*keys[0], *keys[1]],
        )
        rows = conn.execute(
            "SELECT kind, key, failures, last_at, blocked_until, now() FROM login_failures "
            "WHERE (kind, key) IN ((%s, %s), (%s, %s)) ORDER BY kind, key FOR UPDATE",
            [*keys[0], *keys[1]],
        ).fetchall()
        now: datetime = rows[0][5]
        waits = [(until - now).total_seconds() for *_, until, _ in rows if until is not None and until > now]
        if waits:
            return max(1, math.ceil(max(waits)))
        for kind, key, failures, last_at, _, _ in rows:
            count = 1 if now - last_at > timedelta(seconds=limits.window_s) else failures + 1
            until = now + _delay(limits, count, free[kind]) if count >= free[kind] else None
            conn.execute(
                "UPDATE login_failures SET failures = %s, last_at = %s, blocked_until = %s "
                "WHERE kind = %s AND key = %s",
                [count, now, until, kind, key],
            )
    return 0


def succeeded(conn: psycopg.Connection, username: str, address: str, limits: Limits) -> None:
    """A right password: the username starts afresh; the address gets its reservation back."""
    with conn.transaction():
        conn.execute("DELETE FROM login_failures WHERE kind = 'user' AND key = %s", [username[:256]])
        conn.execute(
            "UPDATE login_failures SET failures = greatest(failures - 1, 0), "
            "blocked_until = CASE WHEN failures - 1 < %s THEN NULL ELSE blocked_until END "
            "WHERE kind = 'address' AND key = %s",
            [limits.address_attempts, address[:256]],
        )


def clear(conn: psycopg.Connection, username: str, *, actor: str, district_code: str) -> bool:
    """An administrator lifts a username's delay (its count starts again), with an audit row; whether
    there was a count to clear."""
    with conn.transaction():
        row = conn.execute(
            "DELETE FROM login_failures WHERE kind = 'user' AND key = %s RETURNING failures", [username[:256]]
        ).fetchone()
        conn.execute(
            "INSERT INTO audit_log (district_code, actor, action, table_name, record_code, details) "
            "VALUES (%s, %s, 'user.clear_login_failures', 'users', %s, NULL)",
            [district_code, actor, username],
        )
    return row is not None and row[0] > 0


def failures(conn: psycopg.Connection, username: str) -> int:
    """A username's current count of failed sign-ins."""
    row = conn.execute("SELECT failures FROM login_failures WHERE kind = 'user' AND key = %s", [username]).fetchone()
    return int(row[0]) if row else 0
