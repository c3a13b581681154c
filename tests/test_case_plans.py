"""The shape of the case list's statement in PostgreSQL's plan: the caller's scope predicate (two
sub-selects, over ``zones`` and ``contract_sections``) is planned once per use in a WHERE clause and
once for the per-row visibility, not once for every private field of the GeoJSON. Pulled up into the
statement, each of a dozen uses of ``full`` was the whole predicate again: the desk's list (two
branches) carried it 34 times and PostgreSQL, which plans the list afresh on every request (a custom
plan), took longer to plan it than to run it. Real PostGIS."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql

from geo.access.scope import Principal
from geo.cases import workflow as cases
from geo.steps import Statement
from tests.conftest import DISTRICT


def _plan(conn: psycopg.Connection, principal: Principal, flt: cases.CaseFilter) -> str:
    steps = cases.list_cases(principal, flt, district_code=DISTRICT, scoped_only=True)
    statement = next(steps)
    assert isinstance(statement, Statement)
    rows = conn.execute(sql.SQL("EXPLAIN (COSTS OFF) {}").format(statement.query), statement.params).fetchall()
    return "\n".join(str(r[0]) for r in rows)


@pytest.mark.parametrize("pinned", [True, False], ids=["desk, supervised first", "plain list"])
def test_the_scope_is_planned_once_per_use_not_once_per_field(conn: psycopg.Connection, pinned: bool) -> None:
    who = Principal(username="plan-staff", role="subdistrict_staff", user_id=0, subdistrict_code="xihu")
    plan = _plan(conn, who, cases.CaseFilter(limit=50, pin_supervised=pinned))
    branches = 2 if pinned else 1
    zone_scans = len(re.findall(r" on zones\b", plan))
    # per branch: the list's filter (the case is in the caller's area or theirs) and the row's visibility
    assert 0 < zone_scans <= 2 * branches, plan
