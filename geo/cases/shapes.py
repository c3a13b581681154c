"""What a caller hands to intake and to the workflow: one frozen value each, instead of a dozen
keyword arguments that every caller (API, Open311, tests, benchmarks) had to repeat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CoordSys = Literal["cgcs2000", "wgs84", "gcj02", "bd09"]


@dataclass(frozen=True)
class Report:
    """A problem report as received: checked and converted by ``workflow.report`` (400 naming the field)."""

    category_code: str  # a category's code or its Chinese name
    lon: float
    lat: float
    coord_sys: CoordSys = "cgcs2000"
    description: str | None = None
    facility_code: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    source: Literal["native", "open311"] = "native"
    client_name: str | None = None  # the Open311 client application


@dataclass(frozen=True)
class CaseAction:
    """A workflow move and what it needs: ``note`` (reject, handle, reopen), ``unit_code`` (dispatch),
    ``duplicate_of`` (mark_duplicate), ``category_code`` (recategorise), ``lon``/``lat`` (move)."""

    action: str
    note: str | None = None
    unit_code: str | None = None
    duplicate_of: str | None = None
    category_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    coord_sys: CoordSys = "cgcs2000"
