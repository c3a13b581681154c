"""Idempotency-Key handling: a retried request gets the first answer and creates nothing new.

The key row, holding the answer, is inserted by the same statement (or transaction)
as the work. A concurrent duplicate waits on the primary key until the first
commits, fails on it, which rolls its own work back, and then reads the first
answer (no double insert, no race window).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from geo.errors import InvalidInput
from geo.steps import Statement, Steps, one

MAX_KEY = 200


def request_hash(payload: Any) -> str:
    """A stable digest of the request, to tell a retry from a different request under the same key."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


CLAIM_CONSTRAINT = "idempotency_keys_pkey"


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key claimed by a caller for a request (its digest)."""

    key: str
    caller: str
    digest: str


class Claimed(Exception):
    """The key already holds an answer (a retry, or a concurrent duplicate that committed first)."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.key)
        self.claim = claim


def claim_for(key: str | None, *, caller: str, payload: Any) -> Claim | None:
    """The claim for a request's Idempotency-Key header (None without one); checks the key."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY:
        raise InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY} characters", field="Idempotency-Key")
    return Claim(key=key, caller=caller, digest=request_hash(payload))


REPEAT_WINDOW_S = 60


def repeat_claim(*, caller: str, payload: Any) -> Claim:
    """The implicit claim of a request sent without a key: an identical request from the same
    caller within ``REPEAT_WINDOW_S`` seconds is taken for a retry and gets the first answer."""
    digest = request_hash(payload)
    return Claim(key=f"repeat:{digest}", caller=caller, digest=digest)


def expire_repeat(conn: psycopg.Connection, claim: Claim) -> None:
    """Forget a ``repeat_claim`` answered more than ``REPEAT_WINDOW_S`` seconds ago (the same
    request later is a new one). Two concurrent identical requests still race on the primary key."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE caller = %s AND key = %s"
        " AND created_at < now() - make_interval(secs => %s)",
        [claim.caller, claim.key, REPEAT_WINDOW_S],
    )


_REPLAY = "SELECT request_hash, status, response FROM idempotency_keys WHERE key = %s AND caller = %s"


def _replayed(claim: Claim, row: tuple[Any, ...] | None) -> tuple[int, dict[str, Any]]:
    assert row is not None, "replay of a key that holds no answer"
    if row[0] != claim.digest:
        raise InvalidInput("Idempotency-Key was already used for a different request", field="Idempotency-Key")
    return int(row[1]), row[2]


def replay(claim: Claim) -> Steps[tuple[int, dict[str, Any]]]:
    """The stored answer for a claimed key; 400 when the key was used for a different request."""
    rows = yield Statement(_REPLAY, [claim.key, claim.caller])
    return _replayed(claim, one(rows))
