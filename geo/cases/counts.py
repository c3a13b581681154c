"""The case desk's counts per state, kept between requests until a case changes.

Counting the cases of a caller's scope by state reads every case in that scope, closed ones included
(8 ms of the desk's 25 at 20,000 cases in a sub-district, and growing with each year of closed cases),
while the list beside it reads 50. Most views of the desk see the same counts as the view before: the
counts are kept here, per database, caller's scope and filter, and are good while the ``case_changes``
sequence (advanced by every statement that writes ``cases``, from any process: migration 0019) has not
moved. Reading the sequence costs one short statement.

Two things can leave a kept count behind the data, and both are bounded by :data:`MAX_AGE_S`:
``overdue`` depends on the clock as well as on the rows (a case becomes overdue without a write), and a
write that commits between this process reading the sequence and taking its snapshot is counted under
the sequence's new value. A kept count is therefore never older than ``MAX_AGE_S`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import astuple, replace
from typing import Any

import psycopg

from geo.access.scope import Principal
from geo.cases.workflow import CaseFilter, case_counts
from geo.steps import run

MAX_AGE_S = 10.0
MAX_KEPT = 1024  # callers' scopes × filters; the oldest is forgotten first

_kept: OrderedDict[tuple[Any, ...], tuple[int, float, dict[str, int]]] = OrderedDict()
_lock = threading.Lock()


def _version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT last_value + is_called::int FROM case_changes").fetchone()
    return int(row[0]) if row else 0


def kept_case_counts(
    conn: psycopg.Connection, principal: Principal, flt: CaseFilter, *, district_code: str, scoped_only: bool
) -> dict[str, int]:
    """:func:`geo.cases.workflow.case_counts`, kept while no case has changed (at most ``MAX_AGE_S``)."""
    info = conn.info
    key = (
        info.host,
        info.port,
        info.dbname,
        district_code,
        scoped_only,
        principal.username,
        principal.role,
        principal.subdistrict_code,
        principal.zone_codes,
        principal.unit_code,
        astuple(replace(flt, state=None, after=None, after_pinned=False, limit=0)),
    )
    version = _version(conn)
    now = time.monotonic()
    with _lock:
        hit = _kept.get(key)
        if hit is not None and hit[0] == version and now - hit[1] < MAX_AGE_S:
            _kept.move_to_end(key)
            return dict(hit[2])
    counts = run(conn, case_counts(principal, flt, district_code=district_code, scoped_only=scoped_only))
    with _lock:
        _kept[key] = (version, now, dict(counts))
        _kept.move_to_end(key)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return counts


def forget() -> None:
    """Drop every kept count (tests that change the clock)."""
    with _lock:
        _kept.clear()
