"""Idempotency-Key handling: a retried request gets the first answer and creates nothing new.

The key row is inserted first, in the same transaction as the work, so a
concurrent duplicate waits on the primary key until the first commits and
then reads its answer (no double insert, no race window).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from geo.errors import InvalidInput

MAX_KEY = 200


def request_hash(payload: Any) -> str:
    """A stable digest of the request, to tell a retry from a different request under the same key."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def once(conn: psycopg.Connection, *, key: str | None, caller: str, payload: Any,
         work: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any], bool]:
    """Run ``work`` once per (caller, key); returns (status, body, replayed)."""
    if key is None:
        status, body = work()
        return status, body, False
    if not key.strip() or len(key) > MAX_KEY:
        raise InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY} characters", field="Idempotency-Key")
    digest = request_hash(payload)
    with conn.transaction():
        claimed = conn.execute(
            "INSERT INTO idempotency_keys (key, caller, request_hash, status, response) "
            "VALUES (%s, %s, %s, 0, '{}') ON CONFLICT DO NOTHING RETURNING key",
            [key, caller, digest]).fetchone()
        if claimed is None:
            row = conn.execute("SELECT request_hash, status, response FROM idempotency_keys "
                               "WHERE key = %s AND caller = %s", [key, caller]).fetchone()
            assert row is not None
            if row[0] != digest:
                raise InvalidInput("Idempotency-Key was already used for a different request",
                                   field="Idempotency-Key")
            return int(row[1]), row[2], True
        status, body = work()
        conn.execute("UPDATE idempotency_keys SET status = %s, response = %s WHERE key = %s AND caller = %s",
                     [status, Jsonb(body), key, caller])
    return status, body, False
