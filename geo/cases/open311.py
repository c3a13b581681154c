"""Open311 GeoReport v2 views of cases: services and public request records.

Open311 records are public: no reporter fields, and positions rounded to
the 50 m grid as for every anonymous reader.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from geo.cases.categories import categories
from geo.cases.workflow import CLOSED_STATES, PUBLIC_POSITION, STATE_NAMES
from geo.errors import InvalidInput
from layers.catalogue import vocabulary

DEFAULT_DAYS = 90
MAX_REQUESTS = 1000


def services() -> list[dict[str, Any]]:
    """The service list: one Open311 service per case category."""
    kinds = vocabulary("service_kinds").zh
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": f"{kinds[c.kind]}：{c.name}",
            "metadata": False,
            "type": "realtime",
            "keywords": c.kind,
            "group": kinds[c.kind],
        }
        for c in categories().values()
    ]


REQUESTS_SQL = sql.SQL("""
SELECT c.code, c.state, c.category, cat.name, c.description IS NOT NULL, u.name, c.created_at, c.updated_at,
       c.due_at, ST_X(p), ST_Y(p), c.zone_code
FROM cases c
JOIN case_categories cat ON cat.code = c.category
LEFT JOIN units u ON u.code = c.unit_code
CROSS JOIN LATERAL {position} AS p
WHERE c.district_code = %(district)s
  AND (%(ids)s::text[] IS NULL OR c.code = ANY(%(ids)s::text[]))
  AND (%(ids)s::text[] IS NOT NULL OR (c.created_at >= %(start)s AND c.created_at <= %(end)s))
  AND (%(codes)s::text[] IS NULL OR c.category = ANY(%(codes)s::text[]))
  AND (%(status)s::text IS NULL OR (c.state = ANY(%(closed)s)) = (%(status)s = 'closed'))
ORDER BY c.created_at DESC
LIMIT %(limit)s
""").format(position=sql.SQL(PUBLIC_POSITION))  # a constant of geo.cases, not a value


def requests(
    conn: psycopg.Connection,
    *,
    district_code: str,
    ids: list[str] | None,
    service_codes: list[str] | None,
    start: datetime,
    end: datetime,
    status: str | None,
) -> list[dict[str, Any]]:
    """Service requests as GeoReport v2 records (newest first, at most 1000)."""
    if status not in (None, "open", "closed"):
        raise InvalidInput(f"status '{status}' must be open or closed", field="status")
    if end < start:
        raise InvalidInput("end_date is before start_date", field="end_date")
    rows = conn.execute(
        REQUESTS_SQL,
        {
            "district": district_code,
            "ids": ids,
            "start": start,
            "end": end,
            "codes": service_codes,
            "status": status,
            "closed": list(CLOSED_STATES),
            "limit": MAX_REQUESTS,
        },
    ).fetchall()
    return [_record(r) for r in rows]


def _record(r: tuple[Any, ...]) -> dict[str, Any]:
    code, state, service_code, service_name, _, unit, created, updated, due, lon, lat, zone = r
    record = {
        "service_request_id": code,
        "status": "closed" if state in CLOSED_STATES else "open",
        "status_notes": f"{state}：{STATE_NAMES[state]}",
        "service_name": service_name,
        "service_code": service_code,
        "description": None,
        "agency_responsible": unit,
        "service_notice": None,
        "requested_datetime": created.isoformat(timespec="seconds"),
        "updated_datetime": updated.isoformat(timespec="seconds"),
        "expected_datetime": due.isoformat(timespec="seconds") if due else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": round(float(lat), 6),
        "long": round(float(lon), 6),
        "media_url": None,
        "zone": zone,
    }
    # GeoReport's schemas type these fields as strings: leave out what we do not publish.
    return {k: v for k, v in record.items() if v is not None}
