"""Phases follow the work (issue 19): a zone's phase status is derived from its records, never typed.

==========  ===================================================================================
调查摸底      the zone's baseline record exists with its checklist complete (households, buildings
             and facilities inventoried, problems listed)
集中整治      the zone has remediation tasks and every one is verified
全面推进      property service has started: a service start date (today or earlier) and its unit
长效管理      the first full calendar month of service is over
考核验收      the zone's latest issued verdict (not replaced by a later version) is 通过
==========  ===================================================================================

A later phase is not done while an earlier one is not (it says which). Each phase's deadline is the
programme calendar's month (layers/vocabulary.toml ``phases``) in the zone's programme year, unless an
administrator gave the zone its own (with a reason, audited). A phase not done is ``overdue`` once its
deadline has passed, else ``in_progress`` (the first not done) or ``upcoming``; each says what is
missing. Reads are step generators (geo/steps.py): one statement for one zone or the whole district.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from geo.access.scope import Principal
from geo.access.users import audit
from geo.errors import Forbidden, InvalidInput, NotFound
from geo.programme.remediation import PHASES, STAFF, zone_in_scope
from geo.steps import Statement, Steps
from geo.workcal import today
from layers.catalogue import vocabulary

PUBLICITY_KINDS: dict[str, str] = vocabulary("publicity_kinds").zh
SERVICE_UNIT_KINDS = ("property_team", "district_company", "contractor")

_TABLE = (
    "SELECT z.code, z.name, z.subdistrict_code, coalesce(z.programme_year, %(year)s), "
    " b.surveyed_on, b.households_inventoried, b.buildings_inventoried, b.facilities_inventoried, "
    " coalesce(cardinality(b.problems), 0), b.zone_code IS NOT NULL, "
    " t.total, t.verified, t.last_verified, "
    " s.starts_on, s.unit_code, su.name, "
    " v.number, v.verdict, v.issued_at, "
    " (SELECT coalesce(json_object_agg(d.phase, d.due_on), '{}') FROM zone_phase_deadlines d "
    "  WHERE d.zone_code = z.code), "
    " (SELECT coalesce(json_object_agg(p.kind, p.n), '{}') FROM (SELECT kind, count(*) AS n "
    "  FROM publicity_records r WHERE r.district_code = z.district_code AND r.zone_code = z.code "
    "  GROUP BY kind) p) "
    "FROM zones z "
    "LEFT JOIN zone_baselines b ON b.district_code = z.district_code AND b.zone_code = z.code "
    "CROSS JOIN LATERAL (SELECT count(*) AS total, count(*) FILTER (WHERE r.state = 'verified') AS verified, "
    " max(r.verified_on) AS last_verified FROM remediation_tasks r "
    " WHERE r.district_code = z.district_code AND r.zone_code = z.code) t "
    "LEFT JOIN zone_services s ON s.district_code = z.district_code AND s.zone_code = z.code "
    "LEFT JOIN units su ON su.code = s.unit_code "
    "LEFT JOIN LATERAL (SELECT d.number, d.verdict, d.issued_at FROM acceptance_documents d "
    " WHERE d.district_code = z.district_code AND d.zone_code = z.code AND NOT EXISTS ("
    "  SELECT 1 FROM acceptance_documents n WHERE n.district_code = d.district_code AND n.replaces = d.number) "
    " ORDER BY d.issued_at DESC, d.id DESC LIMIT 1) v ON true "
    "WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s) "
    "ORDER BY z.subdistrict_code, z.code"
)


def _month_end(year: int, month: int) -> date:
    return date(year, month, _calendar.monthrange(year, month)[1])


def first_full_month(starts_on: date) -> date:
    """The first day of the first full calendar month of service starting on ``starts_on``."""
    if starts_on.day == 1:
        return starts_on
    return date(starts_on.year + starts_on.month // 12, starts_on.month % 12 + 1, 1)


def _facts(row: tuple[Any, ...], now: date) -> dict[str, tuple[bool, date | None, list[str]]]:
    """Each phase as its records say, before the order rule: (done, done on, what is missing)."""
    (_, _, _, _, surveyed_on, hh, bld, fac, problems, has_baseline, total, verified, last_verified,
     starts_on, unit_code, _, number, verdict, issued_at, _, _) = row  # fmt: skip
    out: dict[str, tuple[bool, date | None, list[str]]] = {}
    if not has_baseline:
        out["survey"] = (False, None, ["无摸底记录 no baseline record"])
    else:
        missing = [
            text
            for ok, text in (
                (hh, "住户未摸清 households not inventoried"),
                (bld, "楼栋未摸清 buildings not inventoried"),
                (fac, "设施未摸清 facilities not inventoried"),
                (problems > 0, "未列出问题清单 problems not listed"),
            )
            if not ok
        ]
        out["survey"] = (not missing, surveyed_on if not missing else None, missing)
    if total == 0:
        out["remediation"] = (False, None, ["无整治任务 no remediation tasks"])
    elif verified < total:
        out["remediation"] = (False, None, [f"{total - verified}/{total} 项整治任务未验收 tasks not verified"])
    else:
        out["remediation"] = (True, last_verified, [])
    if starts_on is None or unit_code is None:
        out["rollout"] = (False, None, ["未登记物业服务开始日期和服务单位 no service start date and unit"])
        out["service"] = (False, None, ["物业服务尚未开始 property service has not started"])
    elif starts_on > now:
        out["rollout"] = (False, None, [f"物业服务 {starts_on} 开始 service starts on {starts_on}"])
        out["service"] = (False, None, ["物业服务尚未开始 property service has not started"])
    else:
        out["rollout"] = (True, starts_on, [])
        first = first_full_month(starts_on)
        end = _month_end(first.year, first.month)
        if end < now:
            out["service"] = (True, end, [])
        else:
            month = f"{first:%Y-%m}"
            out["service"] = (False, None, [f"首个完整服务月 {month} 尚未结束 first full month of service not over"])
    if number is None:
        out["acceptance"] = (False, None, ["无签发的验收结论 no issued verdict"])
    elif verdict != "pass":
        out["acceptance"] = (False, None, [f"已签发结论 {number} 非通过 issued verdict is not a pass"])
    else:
        out["acceptance"] = (True, issued_at.date() if issued_at else None, [])
    return out


def _zone(row: tuple[Any, ...], now: date) -> dict[str, Any]:
    code, name, subdistrict, year, *_ = row
    service_unit, service_unit_name, own, publicity = row[14], row[15], row[19], row[20]
    facts = _facts(row, now)
    phases = []
    earlier_done = True
    current = None
    for key, (name_zh, month) in PHASES.items():
        recorded, done_on, missing = facts[key]
        done = recorded and earlier_done
        if recorded and not earlier_done:
            missing = [f"前一阶段「{PHASES[current][0]}」未完成 an earlier phase is not done"] if current else []
        due = date.fromisoformat(own[key]) if key in own else _month_end(int(year), month)
        if done:
            status = "done"
        elif due < now:
            status = "overdue"
        elif current is None:
            status = "in_progress"
        else:
            status = "upcoming"
        if not done and current is None:
            current = key
        earlier_done = done
        phases.append(
            {
                "phase": key,
                "phase_zh": name_zh,
                "due_on": due.isoformat(),
                "default_deadline": key not in own,
                "status": status,
                "overdue": status == "overdue",
                "done_on": done_on.isoformat() if done and done_on else None,
                "missing": missing,
            }
        )
    return {
        "zone_code": code,
        "zone_name": name,
        "subdistrict_code": subdistrict,
        "programme_year": int(year),
        "current_phase": current,
        "current_phase_zh": PHASES[current][0] if current else None,
        "service_unit": service_unit,
        "service_unit_name": service_unit_name,
        "publicity": {k: int(publicity.get(k, 0)) for k in PUBLICITY_KINDS},
        "phases": phases,
    }


def table(*, district_code: str, zone_code: str | None = None) -> Steps[list[dict[str, Any]]]:
    """Every zone (or one) × the plan's phases, derived from the records in one statement."""
    now = today()
    rows = yield Statement(_TABLE, {"year": now.year, "district": district_code, "zone": zone_code})
    return [_zone(r, now) for r in rows]


def zone(zone_code: str, *, district_code: str) -> Steps[list[dict[str, Any]]]:
    """One zone's phases; 404 for an unknown zone."""
    rows = yield from table(district_code=district_code, zone_code=zone_code)
    if not rows:
        raise NotFound(f"zone '{zone_code}' does not exist", field="code")
    phases: list[dict[str, Any]] = rows[0]["phases"]
    return phases


def district(*, district_code: str) -> Steps[dict[str, Any]]:
    """The district table: the phases (with their Chinese names and publicity kinds), each zone's row,
    and per phase how many zones have done it and how many are overdue."""
    zones = yield from table(district_code=district_code)
    summary = {
        key: {
            "done": sum(1 for z in zones for p in z["phases"] if p["phase"] == key and p["status"] == "done"),
            "overdue": sum(1 for z in zones for p in z["phases"] if p["phase"] == key and p["status"] == "overdue"),
        }
        for key in PHASES
    }
    return {
        "phases": [{"phase": k, "phase_zh": v[0], "month": v[1]} for k, v in PHASES.items()],
        "publicity_kinds": [{"kind": k, "kind_zh": v} for k, v in PUBLICITY_KINDS.items()],
        "zones": zones,
        "summary": summary,
    }


def set_deadline(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    phase: str,
    due_on: date,
    *,
    reason: str,
    district_code: str,
) -> None:
    """Give a zone its own deadline for a phase: administrators only, with a reason, audited (the
    deadline before and after). A sub-district moving its own deadline would clear its overdue flag."""
    if principal.role != "admin":
        raise Forbidden(
            f"role '{principal.role}' may not set a zone's deadline; only an administrator may",
            reason_zh="仅管理员可调整小区阶段期限",
        )
    if phase not in PHASES:
        raise InvalidInput(f"phase '{phase}' is not one of {', '.join(PHASES)}", field="phase")
    why = reason.strip()
    if not why:
        raise InvalidInput("reason is required to change a deadline", field="reason", reason_zh="调整期限须说明原因")
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        before = conn.execute(
            "SELECT due_on, reason FROM zone_phase_deadlines WHERE zone_code = %s AND phase = %s FOR UPDATE",
            [zone_code, phase],
        ).fetchone()
        conn.execute(
            "INSERT INTO zone_phase_deadlines (zone_code, phase, due_on, set_by, reason) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (zone_code, phase) DO UPDATE SET due_on = EXCLUDED.due_on, set_by = EXCLUDED.set_by, "
            "reason = EXCLUDED.reason, set_at = now()",
            [zone_code, phase, due_on, principal.actor, why],
        )
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="phase.deadline",
            table="zone_phase_deadlines",
            code=f"{zone_code}/{phase}",
            details={
                "zone": zone_code,
                "phase": phase,
                "before": before[0].isoformat() if before else None,
                "after": due_on.isoformat(),
                "reason": why,
            },
        )


def record_baseline(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    surveyed_on: date,
    households_inventoried: bool,
    buildings_inventoried: bool,
    facilities_inventoried: bool,
    problems: list[str],
    unit_code: str | None,
    note: str | None,
) -> None:
    """Record (or redo) a zone's baseline survey (调查摸底): staff in scope; audited."""
    if principal.role not in STAFF:
        raise Forbidden(f"role '{principal.role}' may not record a baseline; needs one of: {', '.join(STAFF)}")
    if surveyed_on > today():
        raise InvalidInput(f"surveyed_on {surveyed_on} is in the future", field="surveyed_on")
    listed = [p.strip() for p in problems if p.strip()]
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        if unit_code is not None:
            _unit(conn, unit_code, field="unit_code", district_code=district_code)
        conn.execute(
            "INSERT INTO zone_baselines (district_code, zone_code, surveyed_on, households_inventoried, "
            " buildings_inventoried, facilities_inventoried, problems, unit_code, note, recorded_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (district_code, zone_code) DO UPDATE SET "
            " surveyed_on = EXCLUDED.surveyed_on, households_inventoried = EXCLUDED.households_inventoried, "
            " buildings_inventoried = EXCLUDED.buildings_inventoried, "
            " facilities_inventoried = EXCLUDED.facilities_inventoried, problems = EXCLUDED.problems, "
            " unit_code = EXCLUDED.unit_code, note = EXCLUDED.note, recorded_by = EXCLUDED.recorded_by, "
            " recorded_at = now()",
            [
                district_code,
                zone_code,
                surveyed_on,
                households_inventoried,
                buildings_inventoried,
                facilities_inventoried,
                listed,
                unit_code,
                note,
                principal.actor,
            ],
        )
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="baseline.record",
            table="zone_baselines",
            code=zone_code,
            details={"surveyed_on": surveyed_on.isoformat(), "problems": len(listed)},
        )


def _unit(conn: psycopg.Connection, unit_code: str, *, field: str, district_code: str) -> str:
    """The unit's kind; 400 naming ``field`` for an unknown unit."""
    row = conn.execute(
        "SELECT kind FROM units WHERE code = %s AND district_code = %s", [unit_code, district_code]
    ).fetchone()
    if row is None:
        raise InvalidInput(f"{field}: unit '{unit_code}' does not exist", field=field, reason_zh="责任单位不存在")
    return str(row[0])


def record_service(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    starts_on: date,
    unit_code: str,
    monthly_cost: Decimal | None = None,
) -> None:
    """Record when property service starts in the zone and by which unit (全面推进), and what the
    service costs a month (the finance bureau's subsidy covers what fees do not): staff in scope; the
    unit must be a property-service unit (property team, district company or contractor); audited."""
    if principal.role not in STAFF:
        raise Forbidden(f"role '{principal.role}' may not record a service start; needs one of: {', '.join(STAFF)}")
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        kind = _unit(conn, unit_code, field="unit_code", district_code=district_code)
        if kind not in SERVICE_UNIT_KINDS:
            raise InvalidInput(
                f"unit_code: unit '{unit_code}' is a {kind}, not a property-service unit "
                f"({', '.join(SERVICE_UNIT_KINDS)})",
                field="unit_code",
                reason_zh="服务单位须为物业服务队、区属专业公司或维护作业单位",
            )
        before = conn.execute(
            "SELECT starts_on, unit_code FROM zone_services WHERE district_code = %s AND zone_code = %s FOR UPDATE",
            [district_code, zone_code],
        ).fetchone()
        conn.execute(
            "INSERT INTO zone_services (district_code, zone_code, starts_on, unit_code, monthly_cost, recorded_by) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (district_code, zone_code) DO UPDATE SET "
            "starts_on = EXCLUDED.starts_on, unit_code = EXCLUDED.unit_code, monthly_cost = EXCLUDED.monthly_cost, "
            "recorded_by = EXCLUDED.recorded_by, recorded_at = now()",
            [district_code, zone_code, starts_on, unit_code, monthly_cost, principal.actor],
        )
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="service.start",
            table="zone_services",
            code=zone_code,
            details={
                "before": {"starts_on": before[0].isoformat(), "unit": before[1]} if before else None,
                "after": {
                    "starts_on": starts_on.isoformat(),
                    "unit": unit_code,
                    "monthly_cost": str(monthly_cost) if monthly_cost is not None else None,
                },
            },
        )
