"""Reward funds (以奖代补) and performance points (绩效考核) (issue 19 point 5).

A zone's reward is ``WUYE_REWARD_AMOUNT`` per zone or per recorded household (``WUYE_REWARD_BASIS``),
or its own amount in ``WUYE_REWARD_ZONES``. It follows the zone's latest *issued* verdict, never the
live figures: released on an issued 通过, withheld while the latest issued verdict is 补课, pending
before any is issued (the plan: 补课 zones lose the government's reward until they pass).

A sub-district's points for a programme year come from its zones of that year, weighted by
``WUYE_POINTS_WEIGHTS``: weight × share for zones passed at first acceptance (the latest version of
the zone's first issued round is 通过), cases created in the year and closed on time, remediation
tasks finished by their planned end, and fees collected by amount for the year's months; minus the
redo weight for each 补课 verdict issued (the latest version of a round). Every part is listed with
its count, its base and its points. A part without a base (no closed cases, say) scores 0.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg

from geo.errors import InvalidInput
from geo.programme.standards import zone_collection
from geo.settings import POINT_PARTS, AcceptanceSettings
from geo.workcal import calendar
from layers.catalogue import CLOSED_CASE_STATES, vocabulary

STATES: dict[str, str] = vocabulary("reward_states").zh
PARTS: dict[str, str] = vocabulary("points_parts").zh
assert tuple(PARTS) == POINT_PARTS, "layers/vocabulary.toml points_parts names the parts WUYE_POINTS_WEIGHTS weighs"
_CENT = Decimal("0.01")


def reward_amount(code: str, households: int | None, rules: AcceptanceSettings) -> Decimal:
    """The zone's reward in yuan: its own amount, or the amount per zone or per recorded household."""
    if code in rules.reward_zones:
        return rules.reward_zones[code].quantize(_CENT)
    per = rules.reward_amount
    return (per if rules.reward_basis == "zone" else per * (households or 0)).quantize(_CENT)


def zone_reward(
    code: str, households: int | None, history: list[dict[str, Any]], rules: AcceptanceSettings
) -> dict[str, Any]:
    """The zone's reward and its state from its issued verdicts (oldest first)."""
    amount = reward_amount(code, households, rules)
    latest = history[-1] if history else None
    verdict = latest["verdict"] if latest else None
    state = {"pass": "released", "redo": "withheld"}.get(verdict or "", "pending")
    return {
        "basis": "zone" if code in rules.reward_zones else rules.reward_basis,
        "amount": str(amount),
        "state": state,
        "state_zh": STATES[state],
        "released": str(amount if state == "released" else Decimal(0).quantize(_CENT)),
        "document_number": latest["number"] if latest else None,
    }


def check_year(year: int) -> int:
    """A programme year: 400 naming ``year`` outside 2000..2100."""
    if not 2000 <= year <= 2100:
        raise InvalidInput(f"year: {year} is outside 2000..2100", field="year", reason_zh="年度须在 2000 至 2100 之间")
    return year


_ZONE_FACTS = (
    "WITH z AS (SELECT code, subdistrict_code, households FROM zones "
    "  WHERE district_code = %(district)s AND programme_year = %(year)s), "
    "latest AS (SELECT DISTINCT ON (d.zone_code, d.round) d.zone_code, d.round, d.verdict, d.number, d.issued_at, "
    "  min(d.issued_at) OVER (PARTITION BY d.zone_code, d.round) AS first_at "
    "  FROM acceptance_documents d JOIN z ON z.code = d.zone_code WHERE d.district_code = %(district)s "
    "  ORDER BY d.zone_code, d.round, d.version DESC), "
    "docs AS (SELECT zone_code, "
    "  (array_agg(verdict ORDER BY first_at))[1] AS first_verdict, "
    "  count(*) FILTER (WHERE verdict = 'redo') AS redo, "
    "  (array_agg(verdict ORDER BY issued_at DESC))[1] AS latest_verdict "
    "  FROM latest GROUP BY 1), "
    "cs AS (SELECT c.zone_code, count(*) FILTER (WHERE c.state = ANY(%(closed)s)) AS closed, "
    "  count(*) FILTER (WHERE c.state = 'closed' AND c.closed_at <= c.due_at) AS on_time "
    "  FROM cases c JOIN z ON z.code = c.zone_code WHERE c.district_code = %(district)s "
    "  AND c.created_at >= %(start)s::timestamp AT TIME ZONE %(tz)s "
    "  AND c.created_at < %(next)s::timestamp AT TIME ZONE %(tz)s GROUP BY 1), "
    "ts AS (SELECT t.zone_code, count(*) AS tasks, "
    "  count(*) FILTER (WHERE t.actual_end IS NOT NULL AND t.actual_end <= t.planned_end) AS on_schedule "
    "  FROM remediation_tasks t JOIN z ON z.code = t.zone_code WHERE t.district_code = %(district)s "
    "  AND t.planned_end IS NOT NULL GROUP BY 1) "
    "SELECT z.code, z.subdistrict_code, s.name, z.households, d.first_verdict, coalesce(d.redo, 0), "
    " d.latest_verdict, coalesce(cs.closed, 0), coalesce(cs.on_time, 0), coalesce(ts.tasks, 0), "
    " coalesce(ts.on_schedule, 0) "
    "FROM z LEFT JOIN subdistricts s ON s.code = z.subdistrict_code LEFT JOIN docs d ON d.zone_code = z.code "
    "LEFT JOIN cs ON cs.zone_code = z.code LEFT JOIN ts ON ts.zone_code = z.code ORDER BY 2, 1"
)


def _part(key: str, count: int | Decimal, base: int | Decimal, weights: dict[str, float]) -> dict[str, Any]:
    weight = Decimal(str(weights.get(key, 0)))
    if key == "redo":
        points, rate = (-weight * Decimal(count) if count else Decimal(0)), None  # never "-0.00"
    else:
        share = Decimal(count) / Decimal(base) if base else None
        points, rate = (weight * share if share is not None else Decimal(0)), share
    return {
        "part": key,
        "title_zh": PARTS[key],
        "count": str(count) if isinstance(count, Decimal) else count,
        "base": str(base) if isinstance(base, Decimal) else base,
        "rate": None if rate is None else float(rate.quantize(Decimal("0.0001"), ROUND_HALF_UP)),
        "weight": float(weight),
        "points": float(points.quantize(_CENT, ROUND_HALF_UP)),
    }


def _subdistrict(
    code: str, name: str | None, zones: list[tuple[Any, ...]], money: dict[str, Any], rules: AcceptanceSettings
) -> dict[str, Any]:
    w = rules.points_weights
    billed = sum((money.get(z[0], (0, Decimal(0), Decimal(0)))[1] for z in zones), Decimal(0))
    paid = sum((money.get(z[0], (0, Decimal(0), Decimal(0)))[2] for z in zones), Decimal(0))
    parts = [
        _part("first_pass", sum(z[4] == "pass" for z in zones), len(zones), w),
        _part("redo", sum(int(z[5]) for z in zones), 0, w),
        _part("case_on_time", sum(int(z[8]) for z in zones), sum(int(z[7]) for z in zones), w),
        _part("remediation_on_schedule", sum(int(z[10]) for z in zones), sum(int(z[9]) for z in zones), w),
        _part("collection", paid, billed, w),
    ]
    rewards = {s: Decimal(0) for s in STATES}
    for z in zones:
        state = {"pass": "released", "redo": "withheld"}.get(z[6] or "", "pending")
        rewards[state] += reward_amount(z[0], z[3], rules)
    return {
        "subdistrict_code": code,
        "subdistrict": name,
        "zones": [z[0] for z in zones],
        "points": float(sum((Decimal(str(p["points"])) for p in parts), Decimal(0))),
        "parts": parts,
        "reward": {s: str(v.quantize(_CENT)) for s, v in rewards.items()},
    }


def points(conn: psycopg.Connection, *, district_code: str, year: int, rules: AcceptanceSettings) -> dict[str, Any]:
    """Every sub-district's performance points for programme year ``year``, with their parts, and its
    zones' rewards by state."""
    check_year(year)
    start, nxt = date(year, 1, 1), date(year + 1, 1, 1)
    rows = conn.execute(
        _ZONE_FACTS,
        {
            "district": district_code,
            "year": year,
            "closed": list(CLOSED_CASE_STATES),
            "start": start,
            "next": nxt,
            "tz": calendar().zone.key,
        },
    ).fetchall()
    money = zone_collection(conn, district_code=district_code, start=start, end=date(year, 12, 1))
    by_sub: dict[tuple[str, str | None], list[tuple[Any, ...]]] = {}
    for row in rows:
        by_sub.setdefault((row[1], row[2]), []).append(row)
    return {
        "year": year,
        "weights": rules.points_weights,
        "subdistricts": [_subdistrict(code, name, zones, money, rules) for (code, name), zones in by_sub.items()],
    }


def points_of(
    conn: psycopg.Connection, rows: list[dict[str, Any]], *, district_code: str, rules: AcceptanceSettings
) -> list[dict[str, Any]]:
    """The points of every programme year the acceptance figures ``rows`` cover, oldest first (the
    district summary prints them)."""
    years = sorted({r["zone"]["programme_year"] for r in rows if r["zone"]["programme_year"]})
    return [points(conn, district_code=district_code, year=year, rules=rules) for year in years]
