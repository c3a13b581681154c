"""The case desk's counts per state, kept between views until a case changes.

Counting the cases of a caller's scope by state reads every case in that scope, closed ones included
(8 ms of the desk's 25 at 20,000 cases in a sub-district, and growing with each year of closed cases),
while the list beside it reads 50. Most views of the desk see the same counts as the view before: the
counts are kept (geo/kept.py) per caller's scope and filter while the ``case_changes`` sequence
(advanced by every statement that writes ``cases``: migration 0019) has not moved, and never longer than
geo/kept.py's ``MAX_AGE_S`` (``overdue`` depends on the clock as well as on the rows).
"""

from __future__ import annotations

from dataclasses import astuple, replace

from geo import kept as keeping
from geo.access.scope import Principal
from geo.cases.workflow import CaseFilter, case_counts
from geo.steps import Steps


def _key(principal: Principal, flt: CaseFilter, district_code: str, scoped_only: bool) -> tuple[object, ...]:
    return (
        "case_counts",
        district_code,
        scoped_only,
        principal.username,
        principal.role,
        principal.subdistrict_code,
        principal.zone_codes,
        principal.unit_code,
        astuple(replace(flt, state=None, after=None, after_pinned=False, limit=0)),
    )


def kept_case_counts(
    principal: Principal,
    flt: CaseFilter,
    *,
    district_code: str,
    scoped_only: bool,
    counters: keeping.Counters | None = None,
) -> Steps[dict[str, int]]:
    """:func:`geo.cases.workflow.case_counts`, kept while no case has changed (``counters``: see
    :func:`geo.kept.kept_read`)."""
    return keeping.kept_read(
        _key(principal, flt, district_code, scoped_only),
        lambda: case_counts(principal, flt, district_code=district_code, scoped_only=scoped_only),
        sequence=keeping.CASE_CHANGES,
        counters=counters,
    )
