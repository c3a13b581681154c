"""The plan's four acceptance standards (issue 19 point 4), each made of criteria with their rule and
threshold in settings (:class:`geo.settings.AcceptanceSettings`):

- 脏乱差现象消除 (``clean``): ``cases`` — no open case of the kinds ``WUYE_STANDARD_CASE_KINDS``
  (sanitation, public order) overdue beyond ``WUYE_CASE_OVERDUE_GRACE_HOURS``; ``facilities`` — at
  least ``WUYE_MIN_FACILITIES_NORMAL_PERCENT`` of the zone's facilities (removed ones aside) normal at
  their last inspection (never inspected counts as not normal), compared in integers;
- 小区面貌改观 (``appearance``): ``remediation`` — tasks recorded and every one verified;
  ``remediation_photos`` — every task with a before and an after photo;
- 长效机制形成 (``mechanism``): ``property_service`` — a property-service unit in place (service
  started); ``fee_standard`` — a fee standard in force today; ``collection`` — once charging may have
  started (first chargeable month, ``WUYE_FEE_GRACE_MONTHS``), fees collected by amount ≥
  ``WUYE_MIN_COLLECTION_PERCENT`` of what was billed, compared exactly;
- 群众满意 (``satisfaction``): ``satisfaction`` ≥ ``WUYE_SATISFACTION_PASS_PERCENT`` (85), in integers.

A standard, or a single criterion, is switched off for a programme year with ``WUYE_CRITERIA_OFF``:
it is still shown, with ``enabled = false``, and fails nothing. Facts come from grouped queries over
all zones (or one), as the other acceptance figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from geo.programme.fees import first_chargeable
from geo.settings import STANDARD_CRITERIA, AcceptanceSettings
from layers.catalogue import CLOSED_CASE_STATES, vocabulary

SERVICE_KINDS: dict[str, str] = vocabulary("service_kinds").zh
SERVICE_KINDS_EN: dict[str, str] = vocabulary("service_kinds").labels("en")

_TITLES = vocabulary("acceptance_standards").zh
# standard -> (Chinese title, its criteria), in the plan's order
STANDARDS: dict[str, tuple[str, tuple[str, ...]]] = {k: (_TITLES[k], cs) for k, cs in STANDARD_CRITERIA.items()}
# the verdict lists criteria in this order: the three judged before the four standards first, as
# verdicts and redo plans have listed them since issue 15, then the standards' new ones
CRITERIA: tuple[str, ...] = (
    "satisfaction",
    "remediation",
    "cases",
    "facilities",
    "remediation_photos",
    "property_service",
    "fee_standard",
    "collection",
)
STANDARD_OF: dict[str, str] = {c: s for s, (_, members) in STANDARDS.items() for c in members}
assert set(CRITERIA) == set(STANDARD_OF), "every criterion belongs to one standard"


def failing(criterion: dict[str, Any]) -> bool:
    """A criterion the verdict fails on: not met and switched on (figures issued before the four
    standards carry no ``enabled``: every criterion was on)."""
    return not criterion["met"] and criterion.get("enabled", True)


def switched_off(criteria_off: dict[int, list[str]], year: int | None) -> set[str]:
    """The criteria switched off for zones of programme year ``year``."""
    named = set(criteria_off.get(year, [])) if year is not None else set()
    return {c for c in CRITERIA if c in named or STANDARD_OF[c] in named}


def _photos(conn: psycopg.Connection, district_code: str, zone_code: str | None) -> dict[str, tuple[int, int]]:
    """zone → (tasks, tasks with both a before and an after photo)."""
    rows = conn.execute(
        "SELECT t.zone_code, count(*), count(*) FILTER (WHERE p.before AND p.after) FROM remediation_tasks t "
        "LEFT JOIN LATERAL (SELECT bool_or(stage = 'before') AS before, bool_or(stage = 'after') AS after "
        "  FROM remediation_photos WHERE task_id = t.id) p ON true "
        "WHERE t.district_code = %(district)s AND (%(zone)s::text IS NULL OR t.zone_code = %(zone)s) GROUP BY 1",
        {"district": district_code, "zone": zone_code},
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _standard_cases(
    conn: psycopg.Connection, district_code: str, zone_code: str | None, kinds: list[str], grace_hours: int
) -> dict[str, int]:
    """zone → open cases of ``kinds`` overdue beyond the grace period."""
    rows = conn.execute(
        "SELECT c.zone_code, count(*) FROM cases c JOIN case_categories k ON k.code = c.category "
        "WHERE c.district_code = %(district)s AND c.zone_code IS NOT NULL AND k.kind = ANY(%(kinds)s) "
        "AND c.state <> ALL(%(closed)s) AND c.due_at + make_interval(hours => %(grace)s) < now() "
        "AND (%(zone)s::text IS NULL OR c.zone_code = %(zone)s) GROUP BY 1",
        {
            "district": district_code,
            "kinds": kinds,
            "closed": list(CLOSED_CASE_STATES),
            "grace": grace_hours,
            "zone": zone_code,
        },
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def zone_collection(
    conn: psycopg.Connection, *, district_code: str, start: date, end: date, zone_code: str | None = None
) -> dict[str, tuple[int, Decimal, Decimal]]:
    """zone → (bills, billed, paid) for the months ``start``..``end``: what was paid counts own payments and
    buildings' monthly totals, capped per zone at what was billed. Read from the per-building monthly
    sums the bill and payment writes keep (``fee_building_months``, migration 0017), not from every bill."""
    rows = conn.execute(
        "SELECT b.zone_code, sum(m.bills), sum(m.billed), least(sum(m.paid), sum(m.billed)) "
        "FROM fee_building_months m JOIN buildings b ON b.code = m.building_code AND b.district_code = m.district_code "
        "WHERE m.district_code = %(district)s AND m.period BETWEEN %(start)s AND %(end)s "
        "AND (%(zone)s::text IS NULL OR b.zone_code = %(zone)s) GROUP BY 1 HAVING sum(m.bills) > 0",
        {"district": district_code, "start": start, "end": end, "zone": zone_code},
    ).fetchall()
    return {r[0]: (int(r[1]), Decimal(r[2]), Decimal(r[3])) for r in rows}


def _mechanism(
    conn: psycopg.Connection, district_code: str, zone_code: str | None, on: date
) -> dict[str, dict[str, Any]]:
    """zone → service start and unit, the fee standard in force on ``on``, all bills to date and what was
    paid on them."""
    rows = conn.execute(
        "SELECT z.code, s.starts_on, s.unit_code, u.name, fs.document_number, fs.lower "
        "FROM zones z LEFT JOIN zone_services s ON s.district_code = z.district_code AND s.zone_code = z.code "
        "LEFT JOIN units u ON u.code = s.unit_code "
        "LEFT JOIN LATERAL (SELECT document_number, lower(effective) AS lower FROM fee_standards f "
        "  WHERE f.district_code = z.district_code AND f.zone_code = z.code "
        "  AND f.effective @> %(on)s::date) fs ON true "
        "WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s)",
        {"district": district_code, "on": on, "zone": zone_code},
    ).fetchall()
    money = zone_collection(conn, district_code=district_code, start=date(2000, 1, 1), end=on, zone_code=zone_code)
    keys = ("service_starts_on", "service_unit", "service_unit_name", "fee_document", "fee_effective_from")
    out = {}
    for code, *head in rows:
        bills, billed, paid = money.get(code, (0, Decimal(0), Decimal(0)))
        out[code] = {**dict(zip(keys, head, strict=True)), "bills": bills, "billed": billed, "paid": paid}
    return out


def facts(
    conn: psycopg.Connection,
    *,
    district_code: str,
    zone_code: str | None,
    case_kinds: list[str],
    grace_hours: int,
    on: date,
) -> dict[str, dict[str, Any]]:
    """zone → the facts the standards judge, beyond the figures acceptance has already."""
    photos = _photos(conn, district_code, zone_code)
    cases = _standard_cases(conn, district_code, zone_code, case_kinds, grace_hours)
    mechanism = _mechanism(conn, district_code, zone_code, on)
    return {
        zone: {**m, "photos": photos.get(zone, (0, 0)), "standard_cases_overdue": cases.get(zone, 0)}
        for zone, m in mechanism.items()
    }


def facility_share(conditions: dict[str, dict[str, int]]) -> tuple[int, int]:
    """(normal, counted) over a zone's facility layers: removed facilities are not counted, a facility
    never inspected (no condition) is counted and is not normal."""
    counted = normal = 0
    for by_condition in conditions.values():
        for condition, n in by_condition.items():
            if condition == "removed":
                continue
            counted += n
            normal += n if condition == "normal" else 0
    return normal, counted


def _pct(part: Decimal | int, whole: Decimal | int) -> str:
    """A share for people, rounded down to 0.1 (never shows a failing 94.96 as 95.0)."""
    if not whole:
        return "-"
    tenths = int(Decimal(part) * 1000 // Decimal(whole))
    return f"{tenths // 10}.{tenths % 10}%"


def _clean(figures: dict[str, Any], f: dict[str, Any], rules: AcceptanceSettings) -> list[dict[str, Any]]:
    kinds = "、".join(SERVICE_KINDS.get(k, k) for k in rules.standard_case_kinds)
    kinds_en = " or ".join(SERVICE_KINDS_EN.get(k, k) for k in rules.standard_case_kinds)
    normal, counted = facility_share(f["conditions"])
    need = rules.min_facilities_normal_percent
    return [
        {
            "criterion": "cases",
            "title_zh": f"无超期 {rules.case_overdue_grace_hours} 小时以上未结的{kinds}事件",
            "title_en": f"no {kinds_en} case open more than {rules.case_overdue_grace_hours} hours past its deadline",
            "met": f["standard_cases_overdue"] == 0,
            "detail_zh": f"超期未结 {figures['cases']['overdue']} 件，其中{kinds}超过宽限期 "
            f"{f['standard_cases_overdue']} 件",
            "detail_en": f"{figures['cases']['overdue']} overdue open, of which {f['standard_cases_overdue']} "
            f"{kinds_en} past the grace period",
        },
        {
            "criterion": "facilities",
            "title_zh": f"设施最近一次巡查正常率不低于 {need}%",
            "title_en": f"at least {need}% of the facilities normal at their last inspection",
            "met": counted > 0 and 100 * normal >= need * counted,
            "detail_zh": f"正常 {normal} / {counted} 处，正常率 {_pct(normal, counted)}" if counted else "未登记设施",
            "detail_en": f"{normal} of {counted} normal, {_pct(normal, counted)}" if counted else "no facilities",
        },
    ]


def _appearance(figures: dict[str, Any], f: dict[str, Any]) -> list[dict[str, Any]]:
    r = figures["remediation"]
    tasks, with_photos = f["photos"]
    return [
        {
            "criterion": "remediation",
            "title_zh": "整治任务全部验收",
            "title_en": "every remediation task verified",
            "met": r["tasks"] > 0 and r["verified"] == r["tasks"],
            "detail_zh": f"已验收 {r['verified']} / {r['tasks']} 项" if r["tasks"] else "未登记整治任务",
            "detail_en": f"{r['verified']} of {r['tasks']} verified" if r["tasks"] else "no remediation tasks",
        },
        {
            "criterion": "remediation_photos",
            "title_zh": "每项整治任务均有整治前、整治后照片",
            "title_en": "every remediation task has a before and an after photo",
            "met": tasks > 0 and with_photos == tasks,
            "detail_zh": f"前后照片齐全 {with_photos} / {tasks} 项" if tasks else "未登记整治任务",
            "detail_en": f"{with_photos} of {tasks} with both photos" if tasks else "no remediation tasks",
        },
    ]


def _collection(f: dict[str, Any], rules: AcceptanceSettings, grace_months: int, on: date) -> dict[str, Any]:
    need = rules.min_collection_percent
    title = {
        "title_zh": f"开始收费后收费率（按金额）不低于 {need}%",
        "title_en": f"fees collected at least {need}% of the amount billed once charging has started",
    }
    if f["service_starts_on"] is None:
        return {
            "criterion": "collection",
            **title,
            "met": False,
            "detail_zh": "尚未开始物业服务",
            "detail_en": "property service not started",
        }
    first = first_chargeable(f["service_starts_on"], grace_months)
    if on < first:
        detail = {"detail_zh": f"{first:%Y-%m} 起方可收费，尚未到收费期", "detail_en": f"chargeable from {first:%Y-%m}"}
        return {"criterion": "collection", **title, "met": True, **detail}
    billed, paid = f["billed"], f["paid"]
    if not billed:
        detail = {
            "detail_zh": f"{first:%Y-%m} 起可收费，尚未出账",
            "detail_en": f"chargeable from {first:%Y-%m}, no bills yet",
        }
        return {"criterion": "collection", **title, "met": False, **detail}
    detail = {
        "detail_zh": f"实收 {paid} / 应收 {billed} 元（{f['bills']} 户次），收费率 {_pct(paid, billed)}",
        "detail_en": f"paid {paid} of {billed} yuan billed ({f['bills']} bills), {_pct(paid, billed)}",
    }
    return {"criterion": "collection", **title, "met": 100 * paid >= need * billed, **detail}


def _mechanism_criteria(
    f: dict[str, Any], rules: AcceptanceSettings, grace_months: int, on: date
) -> list[dict[str, Any]]:
    started = f["service_starts_on"] is not None and f["service_starts_on"] <= on
    return [
        {
            "criterion": "property_service",
            "title_zh": "物业服务单位已进驻",
            "title_en": "a property-service unit in place",
            "met": started,
            "detail_zh": f"{f['service_unit_name'] or f['service_unit']}，{f['service_starts_on']} 起服务"
            if f["service_starts_on"] is not None
            else "未登记物业服务单位及开始日期",
            "detail_en": f"{f['service_unit_name'] or f['service_unit']}, serving from {f['service_starts_on']}"
            if f["service_starts_on"] is not None
            else "no property-service unit or start date recorded",
        },
        {
            "criterion": "fee_standard",
            "title_zh": "收费标准已经发改局核定",
            "title_en": "a fee standard approved by the pricing bureau",
            "met": f["fee_document"] is not None,
            "detail_zh": f"{f['fee_document']}，{f['fee_effective_from']} 起执行"
            if f["fee_document"] is not None
            else "无现行有效的收费标准",
            "detail_en": f"{f['fee_document']}, in force from {f['fee_effective_from']}"
            if f["fee_document"] is not None
            else "no fee standard in force",
        },
        _collection(f, rules, grace_months, on),
    ]


def _satisfaction(figures: dict[str, Any], rules: AcceptanceSettings) -> dict[str, Any]:
    s, pct = figures["survey"], rules.satisfaction_pass_percent
    answered = s["answers"] > 0
    return {
        "criterion": "satisfaction",
        "title_zh": f"满意度不低于 {pct}%",
        "title_en": f"satisfaction at least {pct}%",
        "met": answered and 100 * s["satisfied"] >= pct * s["answers"],
        "detail_zh": (
            f"满意 {s['satisfied']} / 答卷 {s['answers']}，满意度 {s['rate_display']}" if answered else "无调查答卷"
        ),
        "detail_en": (
            f"{s['satisfied']} satisfied of {s['answers']} answers, {s['rate_display']}"
            if answered
            else "no survey answers"
        ),
    }


def judged(
    figures: dict[str, Any], f: dict[str, Any], rules: AcceptanceSettings, *, grace_months: int, on: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The criteria (each with its standard and whether it is switched on) and the four standards of one
    zone from its figures and facts."""
    found = [
        *_clean(figures, f, rules),
        *_appearance(figures, f),
        *_mechanism_criteria(f, rules, grace_months, on),
        _satisfaction(figures, rules),
    ]
    off = switched_off(rules.criteria_off, figures["zone"]["programme_year"])
    criteria = [
        {**c, "standard": STANDARD_OF[c["criterion"]], "enabled": c["criterion"] not in off}
        for c in sorted(found, key=lambda c: CRITERIA.index(c["criterion"]))
    ]
    return criteria, standards_of(criteria)


def standards_of(criteria: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The four standards from their criteria: met when every criterion switched on is met; a standard
    with all its criteria switched off is itself off (``enabled = false``, ``met = None``)."""
    by_standard: dict[str, list[dict[str, Any]]] = {}
    for c in criteria:
        by_standard.setdefault(c["standard"], []).append(c)
    out = []
    for key, (title, _) in STANDARDS.items():
        on = [c for c in by_standard.get(key, []) if c["enabled"]]
        out.append(
            {
                "standard": key,
                "title_zh": title,
                "enabled": bool(on),
                "met": all(c["met"] for c in on) if on else None,
                "failed": [c["criterion"] for c in on if not c["met"]],
            }
        )
    return out
