"""先服务后收费 (serve first, charge after; issue 19 point 3).

The household register (户: building of the buildings layer, unit, room, occupied or empty, fee
category such as 低保户 with its reduction), fee standards per zone approved by 发改局 (yuan per
household per month, or per m² of floor area; effective dates, the approving document's number,
reductions by category; overlapping standards refused by the database), monthly bills per household
generated for a period by one set-based statement (idempotent: a bill exists once per household and
month), payments per household or as a building's monthly total, arrears, collection rates and fee
income against the zone's service cost.

Charging starts only at the first full month after the zone's service start date plus
``WUYE_FEE_GRACE_MONTHS`` (default 2): a bill or payment for an earlier month is 409 naming the rule
and the first chargeable month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg.types.range import Range

from geo.access.scope import Principal, zone_scope
from geo.access.users import audit
from geo.cases.workflow import PII_ROLES
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.io.tabular import blank, parse_date, read_table, rejection
from geo.programme.phases import first_full_month
from geo.programme.remediation import WORKERS, zone_in_scope
from geo.spatial.validate import Problem
from geo.steps import Statement, Steps
from geo.steps import run as run_steps
from geo.workcal import today
from layers.catalogue import vocabulary

CATEGORIES: dict[str, str] = vocabulary("fee_categories").zh
BASES: dict[str, str] = vocabulary("fee_bases").zh
HOUSEHOLD_COLUMNS = {
    "building": ("building", "building_code", "楼栋", "楼栋编码"),
    "unit": ("unit", "单元"),
    "room": ("room", "户号", "房号"),
    "occupied": ("occupied", "入住", "是否入住"),
    "fee_category": ("fee_category", "category", "收费类别"),
    "floor_area_m2": ("floor_area_m2", "area", "建筑面积"),
    "phone": ("phone", "电话", "联系电话", "手机"),
}
PAYMENT_COLUMNS = {
    "building": ("building", "building_code", "楼栋", "楼栋编码"),
    "unit": ("unit", "单元"),
    "room": ("room", "户号", "房号"),
    "period": ("period", "月份", "所属月份"),
    "amount": ("amount", "金额", "缴费金额"),
    "paid_on": ("paid_on", "缴费日期"),
    "households_paid": ("households_paid", "缴费户数"),
}
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,24}")
_YES = {"1", "true", "yes", "y", "是", "入住", "已入住"}
_NO = {"0", "false", "no", "n", "否", "空置", "未入住"}


def _category(value: str) -> str | None:
    return vocabulary("fee_categories").key_of(value)


def period_of(value: str | date, *, field: str = "period") -> date:
    """A month (YYYY-MM, or a date in it) as its first day; 400 naming ``field`` otherwise."""
    if isinstance(value, date):
        return value.replace(day=1)
    try:
        year, month = (int(p) for p in str(value).strip().replace("/", "-").split("-")[:2])
        return date(year, month, 1)
    except ValueError as e:
        raise InvalidInput(
            f"{field}: '{value}' is not a month (YYYY-MM)", field=field, reason_zh="月份格式须为 YYYY-MM"
        ) from e


def _add_months(day: date, months: int) -> date:
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    last = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return date(year, month, min(day.day, last))


def first_chargeable(starts_on: date, grace_months: int) -> date:
    """The first month a zone may be charged for: the first full month after its service start plus
    the grace months (service from 10 May 2023, 2 months' grace → August 2023)."""
    return first_full_month(_add_months(starts_on, grace_months))


def _charging_rule(conn: psycopg.Connection, zone_code: str, period: date, *, district_code: str, grace: int) -> None:
    """409 naming the rule and the first chargeable month when ``period`` is before it (or the zone has
    no service start recorded)."""
    row = conn.execute(
        "SELECT starts_on FROM zone_services WHERE district_code = %s AND zone_code = %s", [district_code, zone_code]
    ).fetchone()
    if row is None:
        raise Conflict(
            f"serve first, charge after (先服务后收费): zone '{zone_code}' has no service start recorded; "
            "no month may be charged yet",
            field="period",
            reason_zh=f"先服务后收费：小区 {zone_code} 尚未登记物业服务开始日期，不得收费",
            rule="fee_grace_months",
            first_chargeable_month=None,
        )
    first = first_chargeable(row[0], grace)
    if period < first:
        raise Conflict(
            f"serve first, charge after (先服务后收费, WUYE_FEE_GRACE_MONTHS={grace}): service in zone '{zone_code}' "
            f"started on {row[0]}; the first chargeable month is {first:%Y-%m}, not {period:%Y-%m}",
            field="period",
            reason_zh=f"先服务后收费：小区 {zone_code} 自 {first:%Y-%m} 起方可收费",
            rule="fee_grace_months",
            first_chargeable_month=f"{first:%Y-%m}",
        )


# ------------------------------------------------------------------ the household register


@dataclass(frozen=True)
class Household:
    """One checked row of the household register."""

    building: str
    unit: str
    room: str
    occupied: bool
    fee_category: str
    floor_area_m2: Decimal | None
    phone: str | None = None


def _buildings(conn: psycopg.Connection, principal: Principal, codes: set[str], district_code: str) -> dict[str, str]:
    """building code -> zone code, for the buildings in the caller's zones."""
    rows = conn.execute(
        "SELECT code, zone_code FROM buildings WHERE district_code = %s AND code = ANY(%s)",
        [district_code, list(codes)],
    ).fetchall()
    out = {}
    for code, zone in rows:
        try:
            zone_in_scope(conn, principal, zone, district_code)
        except NotFound:
            continue  # not "outside your zones": a scoped caller learns nothing beyond their scope
        out[code] = zone
    return out


def import_households(
    conn: psycopg.Connection, principal: Principal, path: Path, *, district_code: str
) -> dict[str, int]:
    """Import the household register from CSV/XLSX: every row checked first, one bad row rejects the
    file with every row's problems (nothing written); existing households (building, unit, room) are
    updated. Returns the counts."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not import households; needs one of: {', '.join(WORKERS)}")
    frame = read_table(path, HOUSEHOLD_COLUMNS)
    known = _buildings(conn, principal, {str(b).strip() for b in frame["building"] if not blank(b)}, district_code)
    problems: list[Problem] = []
    rows: list[Household] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, values in enumerate(frame.to_dict("records"), start=1):
        before = len(problems)
        building = "" if blank(values["building"]) else str(values["building"]).strip()
        if not building:
            problems.append(Problem(i, "building", "missing"))
        elif building not in known:
            problems.append(Problem(i, "building", f"building '{building}' does not exist"))
        unit = "" if blank(values["unit"]) else str(values["unit"]).strip()
        room = "" if blank(values["room"]) else str(values["room"]).strip()
        if not room:
            problems.append(Problem(i, "room", "missing"))
        key = (building, unit, room)
        if room and key in seen:
            problems.append(Problem(i, "room", f"household {building}-{unit}-{room} is also on row {seen[key]}"))
        seen.setdefault(key, i)
        raw = "" if blank(values["occupied"]) else str(values["occupied"]).strip().lower()
        occupied = True if not raw else (True if raw in _YES else False if raw in _NO else None)
        if occupied is None:
            problems.append(Problem(i, "occupied", f"'{values['occupied']}' is neither 是/入住 nor 否/空置"))
        category = "standard" if blank(values["fee_category"]) else _category(str(values["fee_category"]).strip())
        if category is None:
            allowed = ", ".join(f"{k} ({v})" for k, v in CATEGORIES.items())
            problems.append(Problem(i, "fee_category", f"'{values['fee_category']}' is not one of {allowed}"))
        area: Decimal | None = None
        if not blank(values["floor_area_m2"]):
            try:
                area = Decimal(str(values["floor_area_m2"]).strip())
            except InvalidOperation:
                area = Decimal(-1)
            if not area.is_finite() or area <= 0 or area >= 100_000:
                problems.append(Problem(i, "floor_area_m2", f"'{values['floor_area_m2']}' is not a positive area"))
        phone = None if blank(values["phone"]) else str(values["phone"]).strip()
        if phone is not None and not _PHONE.fullmatch(phone):
            problems.append(Problem(i, "phone", f"'{phone}' is not a phone number"))
        if len(problems) == before and occupied is not None and category is not None:
            rows.append(Household(building, unit, room, occupied, category, area, phone))
    if problems:
        raise rejection("households", problems, len(frame))
    with conn.transaction():
        result = conn.execute(
            "INSERT INTO households (district_code, building_code, unit, room, occupied, fee_category, floor_area_m2, "
            " phone, recorded_by) SELECT %s, b, u, r, o, c, a, t, %s FROM unnest(%s::text[], %s::text[], %s::text[], "
            " %s::boolean[], %s::text[], %s::numeric[], %s::text[]) AS x(b, u, r, o, c, a, t) "
            "ON CONFLICT (district_code, building_code, unit, room) DO UPDATE SET occupied = EXCLUDED.occupied, "
            " fee_category = EXCLUDED.fee_category, floor_area_m2 = EXCLUDED.floor_area_m2, phone = EXCLUDED.phone, "
            " recorded_by = EXCLUDED.recorded_by, recorded_at = now() RETURNING (xmax = 0)",
            [
                district_code,
                principal.actor,
                [h.building for h in rows],
                [h.unit for h in rows],
                [h.room for h in rows],
                [h.occupied for h in rows],
                [h.fee_category for h in rows],
                [h.floor_area_m2 for h in rows],
                [h.phone for h in rows],
            ],
        ).fetchall()
        inserted = sum(1 for r in result if r[0])
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="households.import",
            table="households",
            details={"file": path.name, "inserted": inserted, "updated": len(result) - inserted},
        )
    return {"rows": len(rows), "inserted": inserted, "updated": len(result) - inserted}


# ------------------------------------------------------------------ fee standards


def add_standard(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    basis: str,
    amount: Decimal,
    starts_on: date,
    ends_on: date | None,
    document_number: str,
    approved_by: str,
    reductions: dict[str, int],
) -> dict[str, Any]:
    """Record a fee standard approved by 发改局 for a zone (administrators; audited). Dates are
    inclusive; a standard overlapping another of the zone is 409 naming it (the database decides)."""
    if principal.role != "admin":
        raise Forbidden("only an administrator records a fee standard", reason_zh="仅管理员可登记收费标准")
    if basis not in BASES:
        raise InvalidInput(f"basis '{basis}' is not one of {', '.join(BASES)}", field="basis")
    if amount <= 0:
        raise InvalidInput(f"amount {amount} must be positive", field="amount", reason_zh="收费标准须为正数")
    if ends_on is not None and ends_on < starts_on:
        raise InvalidInput(f"ends_on {ends_on} is before starts_on {starts_on}", field="ends_on")
    number = document_number.strip()
    if not number:
        raise InvalidInput("document_number is required (the approving document)", field="document_number")
    for category, percent in reductions.items():
        if category not in CATEGORIES:
            raise InvalidInput(f"reductions: '{category}' is not one of {', '.join(CATEGORIES)}", field="reductions")
        if not 0 <= percent <= 100:
            raise InvalidInput(f"reductions: {category} {percent}% is not 0-100", field="reductions")
    with conn.transaction():
        zone_in_scope(conn, principal, zone_code, district_code)
        if conn.execute("SELECT 1 FROM units WHERE code = %s", [approved_by]).fetchone() is None:
            raise InvalidInput(f"approved_by: unit '{approved_by}' does not exist", field="approved_by")
        effective = Range(starts_on, ends_on, "[]")
        clash = conn.execute(
            "SELECT id, lower(effective), upper(effective) - 1, document_number FROM fee_standards "
            "WHERE district_code = %s AND zone_code = %s AND effective && %s ORDER BY lower(effective) LIMIT 1",
            [district_code, zone_code, effective],
        ).fetchone()
        if clash is not None:
            until = clash[2] or "open-ended"
            raise Conflict(
                f"fee standard {clash[0]} ({clash[3]}, {clash[1]} to {until}) of zone '{zone_code}' overlaps "
                f"{starts_on} to {ends_on or 'open-ended'}; end it first",
                field="starts_on",
                reason_zh=f"与已有收费标准（{clash[3]}）的执行期重叠",
                overlaps=int(clash[0]),
            )
        try:
            row = conn.execute(
                "INSERT INTO fee_standards (district_code, zone_code, basis, amount, effective, document_number, "
                "approved_by, reductions, recorded_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                [
                    district_code,
                    zone_code,
                    basis,
                    amount,
                    effective,
                    number,
                    approved_by,
                    Jsonb(reductions),
                    principal.actor,
                ],
            ).fetchone()
        except psycopg.errors.ExclusionViolation as e:  # a concurrent standard won the race
            raise Conflict(f"fee standard overlaps another of zone '{zone_code}'", field="starts_on") from e
        assert row is not None
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="fee_standard.add",
            table="fee_standards",
            code=str(row[0]),
            details={"zone": zone_code, "basis": basis, "amount": str(amount), "document": number},
        )
    return {"id": int(row[0])}


def standards(*, district_code: str, zone_code: str | None = None) -> Steps[list[dict[str, Any]]]:
    """The fee standards (of a zone), oldest first."""
    rows = yield Statement(
        "SELECT s.id, s.zone_code, s.basis, s.amount, lower(s.effective), upper(s.effective) - 1, s.document_number, "
        " s.approved_by, u.name, s.reductions FROM fee_standards s JOIN units u ON u.code = s.approved_by "
        "WHERE s.district_code = %s AND (%s::text IS NULL OR s.zone_code = %s) ORDER BY s.zone_code, s.effective",
        [district_code, zone_code, zone_code],
    )
    return [
        {
            "id": r[0],
            "zone_code": r[1],
            "basis": r[2],
            "basis_zh": BASES[r[2]],
            "amount": str(r[3]),
            "starts_on": r[4].isoformat(),
            "ends_on": r[5].isoformat() if r[5] else None,
            "document_number": r[6],
            "approved_by": r[7],
            "approved_by_name": r[8],
            "reductions": r[9],
        }
        for r in rows
    ]


# ------------------------------------------------------------------ bills

# One set-based statement: a bill per occupied household of every zone (or one) whose charging may
# have started by the period and whose standard covers it; households billed for the month already are
# left out (an anti-join: cheaper than ON CONFLICT's speculative insertion, a third of a run's time at
# 94,000 bills). Runs for the same month take turns (_BILL_RUN_LOCK), so a second run sees the first's
# bills; the primary key still refuses a duplicate.
_BILLS = (
    "INSERT INTO fee_bills (district_code, household_id, period, amount, standard_id) "
    "SELECT h.district_code, h.id, %(period)s, round(CASE s.basis WHEN 'household' THEN s.amount "
    "  ELSE s.amount * coalesce(h.floor_area_m2, 0) END "
    "  * (100 - coalesce((s.reductions ->> h.fee_category)::numeric, 0)) / 100, 2), s.id "
    "FROM households h JOIN buildings b ON b.code = h.building_code AND b.district_code = h.district_code "
    "JOIN zone_services v ON v.district_code = h.district_code AND v.zone_code = b.zone_code "
    "JOIN fee_standards s ON s.district_code = h.district_code AND s.zone_code = b.zone_code "
    " AND s.effective @> %(period)s::date "
    "WHERE h.district_code = %(district)s AND h.occupied AND (%(zone)s::text IS NULL OR b.zone_code = %(zone)s) "
    " AND %(period)s::date >= (date_trunc('month', (v.starts_on + make_interval(months => %(grace)s))::date - 1) "
    "  + interval '1 month')::date "
    " AND NOT EXISTS (SELECT 1 FROM fee_bills f WHERE f.household_id = h.id AND f.period = %(period)s)"
)
_BILL_RUN_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('fee_bills ' || %s || ' ' || %s::text, 0))"


def generate_bills(
    conn: psycopg.Connection,
    principal: Principal,
    period: date,
    *,
    district_code: str,
    grace_months: int,
    zone_code: str | None = None,
) -> dict[str, Any]:
    """Generate the month's bills (staff; a zone's, or every zone's that may be charged): one
    statement, idempotent. For one zone, a month before its first chargeable month is 409."""
    if principal.role not in ("admin", "subdistrict_staff"):
        raise Forbidden(f"role '{principal.role}' may not generate bills")
    if period > today().replace(day=1):
        raise InvalidInput(f"period {period:%Y-%m} is in the future", field="period")
    with conn.transaction():
        if zone_code is not None:
            zone_in_scope(conn, principal, zone_code, district_code)
            _charging_rule(conn, zone_code, period, district_code=district_code, grace=grace_months)
        elif principal.role != "admin":
            raise Forbidden("only an administrator generates every zone's bills; name a zone")
        conn.execute(_BILL_RUN_LOCK, [district_code, period])
        made = conn.execute(
            _BILLS, {"period": period, "district": district_code, "zone": zone_code, "grace": grace_months}
        ).rowcount
    return {"period": f"{period:%Y-%m}", "zone_code": zone_code, "created": made}


# ------------------------------------------------------------------ payments


def _household(conn: psycopg.Connection, principal: Principal, household_id: int, district_code: str) -> str:
    row = conn.execute(
        "SELECT b.zone_code FROM households h JOIN buildings b ON b.code = h.building_code "
        "AND b.district_code = h.district_code WHERE h.id = %s AND h.district_code = %s",
        [household_id, district_code],
    ).fetchone()
    if row is None:
        raise InvalidInput(f"household {household_id} does not exist", field="household_id", reason_zh="住户不存在")
    try:
        zone_in_scope(conn, principal, row[0], district_code)
    except NotFound as e:
        raise InvalidInput(f"household {household_id} does not exist", field="household_id") from e
    return str(row[0])


def record_payment(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    grace_months: int,
    period: date,
    amount: Decimal,
    paid_on: date,
    household_id: int | None = None,
    building_code: str | None = None,
    households_paid: int | None = None,
) -> dict[str, Any]:
    """A payment of one household for a month, or a building's monthly total (property team and
    staff in their zones). Refused: a negative or zero amount, an unknown household or building,
    a month before charging may start (409 naming the first chargeable month)."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not record payments; needs one of: {', '.join(WORKERS)}")
    if amount <= 0:
        raise InvalidInput(f"amount {amount} must be positive", field="amount", reason_zh="缴费金额须为正数")
    if (household_id is None) == (building_code is None):
        raise InvalidInput("name either household_id or building_code", field="household_id")
    if paid_on > today():
        raise InvalidInput(f"paid_on {paid_on} is in the future", field="paid_on")
    with conn.transaction():
        if household_id is not None:
            zone = _household(conn, principal, household_id, district_code)
        else:
            assert building_code is not None
            found = _buildings(conn, principal, {building_code}, district_code)
            if building_code not in found:
                raise InvalidInput(f"building '{building_code}' does not exist", field="building_code")
            zone = found[building_code]
        _charging_rule(conn, zone, period, district_code=district_code, grace=grace_months)
        row = conn.execute(
            "INSERT INTO fee_payments (district_code, household_id, building_code, households_paid, period, amount, "
            "paid_on, actor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [district_code, household_id, building_code, households_paid, period, amount, paid_on, principal.actor],
        ).fetchone()
        assert row is not None
    return {"id": int(row[0]), "zone_code": zone, "period": f"{period:%Y-%m}", "amount": str(amount)}


# ------------------------------------------------------------------ figures

# Collection rates from the per-building monthly sums (fee_building_months: migrations 0017 and 0018,
# kept by the bill and payment writes' triggers): ~24 rows per building instead of every bill, summed
# per building before the join (one pass, no index probe per building). Per building: own payments
# capped per bill, bills covered by them, plus the building's monthly totals, capped at what the
# building was billed; zones and sub-districts add up their buildings.
_RATES = (
    "WITH sums AS (SELECT m.building_code, sum(m.bills) AS bills, sum(m.billed) AS billed, "
    "  sum(m.paid_capped) AS paid, sum(m.bills_paid) AS paid_bills, sum(m.total_paid) AS total_amount, "
    "  sum(m.total_households) AS total_households FROM fee_building_months m "
    " WHERE m.district_code = %(district)s AND m.period BETWEEN %(start)s AND %(end)s "
    " AND (%(zone)s::text IS NULL OR m.building_code IN (SELECT code FROM buildings "
    "  WHERE district_code = %(district)s AND zone_code = %(zone)s)) GROUP BY 1 HAVING sum(m.bills) > 0), "
    # (the zone is chosen above, not here: PostgreSQL 15 drops an ORDER BY key that a WHERE makes constant,
    # though the grouping sets' totals have it NULL)
    "per_building AS (SELECT z.subdistrict_code, b.zone_code, s.* FROM sums s "
    " JOIN buildings b ON b.code = s.building_code AND b.district_code = %(district)s "
    " JOIN zones z ON z.code = b.zone_code AND z.district_code = b.district_code) "
    "SELECT CASE WHEN GROUPING(building_code) = 0 THEN 'building' WHEN GROUPING(zone_code) = 0 THEN 'zone' "
    "  ELSE 'subdistrict' END, subdistrict_code, zone_code, building_code, sum(bills), sum(billed), "
    " sum(least(paid + total_amount, billed)), sum(least(paid_bills + total_households, bills)) "
    "FROM per_building GROUP BY GROUPING SETS ((subdistrict_code, zone_code, building_code), "
    " (subdistrict_code, zone_code), (subdistrict_code)) ORDER BY 2, 3 NULLS FIRST, 4 NULLS FIRST"
)

# The same figures from every bill and payment: the reference the sums are tested against (and the
# benchmark's baseline); 16 s at 2.3 million bills.
_RATES_FROM_BILLS = (
    "WITH own AS (SELECT household_id, period, sum(amount) AS paid FROM fee_payments "
    " WHERE district_code = %(district)s AND household_id IS NOT NULL AND period BETWEEN %(start)s AND %(end)s "
    " GROUP BY 1, 2), "
    "billed AS (SELECT b.zone_code, z.subdistrict_code, h.building_code, f.household_id, f.amount, "
    "  coalesce(o.paid, 0) AS paid "
    " FROM fee_bills f LEFT JOIN own o ON o.household_id = f.household_id AND o.period = f.period "
    " JOIN households h ON h.id = f.household_id "
    " JOIN buildings b ON b.code = h.building_code AND b.district_code = h.district_code "
    " JOIN zones z ON z.code = b.zone_code AND z.district_code = b.district_code "
    " WHERE f.district_code = %(district)s AND f.period BETWEEN %(start)s AND %(end)s), "
    "totals AS (SELECT b.zone_code, z.subdistrict_code, p.building_code, sum(p.amount) AS amount, "
    "  sum(coalesce(p.households_paid, 0)) AS households FROM fee_payments p "
    " JOIN buildings b ON b.code = p.building_code AND b.district_code = p.district_code "
    " JOIN zones z ON z.code = b.zone_code AND z.district_code = b.district_code "
    " WHERE p.district_code = %(district)s AND p.building_code IS NOT NULL "
    " AND p.period BETWEEN %(start)s AND %(end)s GROUP BY 1, 2, 3), "
    "per_building AS (SELECT zone_code, subdistrict_code, building_code, count(*) AS bills, sum(amount) AS billed, "
    "  sum(least(paid, amount)) AS paid, count(*) FILTER (WHERE paid >= amount) AS paid_bills "
    " FROM billed GROUP BY 1, 2, 3) "
    "SELECT CASE WHEN GROUPING(pb.building_code) = 0 THEN 'building' WHEN GROUPING(pb.zone_code) = 0 THEN 'zone' "
    "  ELSE 'subdistrict' END, pb.subdistrict_code, pb.zone_code, pb.building_code, sum(pb.bills), sum(pb.billed), "
    " sum(least(pb.paid + coalesce(t.amount, 0), pb.billed)), "
    " sum(least(pb.paid_bills + coalesce(t.households, 0), pb.bills)) "
    "FROM per_building pb LEFT JOIN totals t ON t.building_code = pb.building_code "
    "WHERE %(zone)s::text IS NULL OR pb.zone_code = %(zone)s "
    "GROUP BY GROUPING SETS ((pb.subdistrict_code, pb.zone_code, pb.building_code), (pb.subdistrict_code, "
    " pb.zone_code), (pb.subdistrict_code)) ORDER BY 2, 3 NULLS FIRST, 4 NULLS FIRST"
)


def _percent(part: Decimal | int, whole: Decimal | int) -> float | None:
    return round(float(part) * 100 / float(whole), 1) if whole else None


def _rate_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "level": level,
            "subdistrict_code": sub,
            "zone_code": zone,
            "building_code": building,
            "bills": int(bills),
            "bills_paid": int(paid_bills),
            "billed": str(billed),
            "paid": str(paid),
            "rate_by_households": _percent(paid_bills, bills),
            "rate_by_amount": _percent(paid, billed),
        }
        for level, sub, zone, building, bills, billed, paid, paid_bills in rows
    ]


def collection(
    *, district_code: str, start: date, end: date, zone_code: str | None = None
) -> Steps[list[dict[str, Any]]]:
    """Collection rate per building, zone and sub-district for the months ``start``..``end``: by
    household bills (paid in full, or counted in a building's monthly total) and by amount. Read from
    the per-building monthly sums (``fee_building_months``)."""
    rows = yield Statement(_RATES, {"district": district_code, "start": start, "end": end, "zone": zone_code})
    return _rate_rows(rows)


def collection_from_bills(
    *, district_code: str, start: date, end: date, zone_code: str | None = None
) -> Steps[list[dict[str, Any]]]:
    """:func:`collection` computed from every bill and payment (the reference it is tested against)."""
    rows = yield Statement(
        _RATES_FROM_BILLS, {"district": district_code, "start": start, "end": end, "zone": zone_code}
    )
    return _rate_rows(rows)


def arrears(*, district_code: str, zone_code: str | None = None) -> Steps[list[dict[str, Any]]]:
    """Households owing money: billed minus paid (own payments), largest first."""
    rows = yield Statement(
        "SELECT h.id, h.building_code, h.unit, h.room, b.zone_code, sum(f.amount), "
        " coalesce((SELECT sum(p.amount) FROM fee_payments p WHERE p.household_id = h.id), 0), "
        " array_agg(to_char(f.period, 'YYYY-MM') ORDER BY f.period) FILTER (WHERE f.amount > coalesce(("
        "  SELECT sum(p.amount) FROM fee_payments p WHERE p.household_id = h.id AND p.period = f.period), 0)) "
        "FROM fee_bills f JOIN households h ON h.id = f.household_id "
        "JOIN buildings b ON b.code = h.building_code AND b.district_code = h.district_code "
        "WHERE f.district_code = %s AND (%s::text IS NULL OR b.zone_code = %s) GROUP BY h.id, b.zone_code",
        [district_code, zone_code, zone_code],
    )
    out = [
        {
            "household_id": hid,
            "building_code": building,
            "unit": unit,
            "room": room,
            "zone_code": zone,
            "billed": str(billed),
            "paid": str(paid),
            "owed": str(billed - paid),
            "months_owed": months or [],
        }
        for hid, building, unit, room, zone, billed, paid, months in rows
        if billed > paid
    ]
    return sorted(out, key=lambda r: (-Decimal(r["owed"]), r["household_id"]))


def income(*, district_code: str, start: date, end: date) -> Steps[list[dict[str, Any]]]:
    """Per zone, fee income for the months against the service cost for them (the subsidy the
    finance bureau pays is the difference)."""
    rows = yield Statement(
        "SELECT z.code, z.name, v.monthly_cost, "
        " (SELECT coalesce(sum(p.amount), 0) FROM fee_payments p LEFT JOIN households h ON h.id = p.household_id "
        "  JOIN buildings b ON b.code = coalesce(p.building_code, h.building_code) "
        "  AND b.district_code = p.district_code WHERE b.zone_code = z.code AND p.district_code = z.district_code "
        "  AND p.period BETWEEN %(start)s AND %(end)s), "
        " (SELECT count(*) FROM generate_series(greatest(%(start)s::date, date_trunc('month', v.starts_on)::date), "
        "  %(end)s::date, interval '1 month')) "
        "FROM zones z LEFT JOIN zone_services v ON v.district_code = z.district_code AND v.zone_code = z.code "
        "WHERE z.district_code = %(district)s ORDER BY z.subdistrict_code, z.code",
        {"district": district_code, "start": start, "end": end},
    )
    out = []
    for code, name, monthly, paid, months in rows:
        cost = (monthly or Decimal(0)) * months if monthly is not None else None
        out.append(
            {
                "zone_code": code,
                "zone_name": name,
                "months_served": int(months) if monthly is not None else 0,
                "service_cost": str(cost) if cost is not None else None,
                "fee_income": str(paid),
                "subsidy": str(max(cost - paid, Decimal(0))) if cost is not None else None,
                "income_percent_of_cost": _percent(paid, cost) if cost else None,
            }
        )
    return out


def parse_payment_rows(
    conn: psycopg.Connection, principal: Principal, path: Path, *, district_code: str, grace_months: int
) -> list[dict[str, Any]]:
    """Read and check a payments file (CSV/XLSX) row by row: a row names a household (building, unit, room)
    or a building's monthly total (building, households_paid, no room). Every problem is collected first.
    The reference :func:`import_payments`' set-based check is tested against (10,000 rows: 1.2-12 s)."""
    frame = read_table(path, PAYMENT_COLUMNS)
    buildings = _buildings(conn, principal, {str(b).strip() for b in frame["building"] if not blank(b)}, district_code)
    households = {
        (b, u, r): i
        for i, b, u, r in conn.execute(
            "SELECT id, building_code, unit, room FROM households WHERE district_code = %s AND building_code = ANY(%s)",
            [district_code, list(buildings)],
        )
    }
    starts: dict[str, date] = dict(
        conn.execute(
            "SELECT zone_code, starts_on FROM zone_services WHERE district_code = %s", [district_code]
        ).fetchall()
    )
    now = today()
    problems: list[Problem] = []
    out: list[dict[str, Any]] = []
    for i, values in enumerate(frame.to_dict("records"), start=1):
        before = len(problems)
        building = "" if blank(values["building"]) else str(values["building"]).strip()
        if building not in buildings:
            problems.append(Problem(i, "building", f"building '{building}' does not exist" if building else "missing"))
        unit = "" if blank(values["unit"]) else str(values["unit"]).strip()
        room = "" if blank(values["room"]) else str(values["room"]).strip()
        household = households.get((building, unit, room)) if room else None
        if room and building in buildings and household is None:
            problems.append(Problem(i, "room", f"household {building}-{unit}-{room} is not in the register"))
        try:
            period = period_of(str(values["period"]))
        except InvalidInput:
            problems.append(Problem(i, "period", f"'{values['period']}' is not a month (YYYY-MM)"))
            period = None
        try:
            amount = Decimal(str(values["amount"]).strip())
            if not amount.is_finite() or amount <= 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(Problem(i, "amount", f"'{values['amount']}' is not a positive amount"))
            amount = None
        paid_on = parse_date(values["paid_on"], i, "paid_on", problems, not_after=now)
        paid_count = None
        if not room and not blank(values["households_paid"]):
            try:
                paid_count = int(str(values["households_paid"]).strip())
                if paid_count < 0:
                    raise ValueError
            except ValueError:
                problems.append(Problem(i, "households_paid", f"'{values['households_paid']}' is not a count"))
        if period is not None and building in buildings:
            zone = buildings[building]
            if zone not in starts:
                problems.append(Problem(i, "period", f"zone '{zone}' has no service start: nothing is chargeable"))
            elif period < (first := first_chargeable(starts[zone], grace_months)):
                problems.append(Problem(i, "period", f"before the first chargeable month {first:%Y-%m} (先服务后收费)"))
        if len(problems) == before:
            out.append(
                {
                    "household_id": household,
                    "building_code": None if household else building,
                    "households_paid": paid_count,
                    "period": period,
                    "amount": amount,
                    "paid_on": paid_on,
                }
            )
    if problems:
        raise rejection("payments", problems, len(frame))
    return out


def _sql(name: str) -> str:
    return resources.files("geo.programme").joinpath("sql", name).read_text(encoding="utf-8")


_PAYMENT_CELLS = ("building", "unit", "room", "period", "amount", "paid_on", "households_paid")
_STRIPPED = ("building", "unit", "room")  # compared with the register's codes, as the row check strips them


def _copy_payment_rows(conn: psycopg.Connection, path: Path) -> int:
    """The file's cells into the temporary table payment_rows (blank cells NULL); its row count."""
    frame = read_table(path, PAYMENT_COLUMNS)
    conn.execute(
        "CREATE TEMP TABLE payment_rows (n integer PRIMARY KEY, building text, unit text, room text, period text, "
        " amount text, paid_on text, households_paid text) ON COMMIT DROP"
    )
    columns = [frame[c].tolist() for c in _PAYMENT_CELLS]
    with conn.cursor().copy(
        "COPY payment_rows (n, building, unit, room, period, amount, paid_on, households_paid) FROM STDIN"
    ) as copy:
        for i, cells in enumerate(zip(*columns, strict=True), start=1):
            copy.write_row(
                (
                    i,
                    *(
                        None if blank(v) else str(v).strip() if c in _STRIPPED else str(v)
                        for c, v in zip(_PAYMENT_CELLS, cells, strict=True)
                    ),
                ),
            )
    return len(frame)


def import_payments(
    conn: psycopg.Connection, principal: Principal, path: Path, *, district_code: str, grace_months: int
) -> dict[str, int]:
    """Import payments all-or-nothing with row errors like the other imports, set-based: the file into a
    temporary table (COPY), one statement naming every row's problems, one INSERT. The problems are the
    row-by-row check's (:func:`parse_payment_rows`, kept as the reference the tests hold it to)."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not import payments; needs one of: {', '.join(WORKERS)}")
    scope, scope_params = zone_scope(principal, sql.SQL("z.code"))
    valued = sql.SQL(_sql("payments_valued.sql")).format(scope=scope)
    params = {**scope_params, "district": district_code, "today": today(), "grace": grace_months}
    with conn.transaction():
        rows = _copy_payment_rows(conn, path)
        problems = conn.execute(valued + sql.SQL(_sql("payments_problems.sql")), params).fetchall()
        if problems:
            raise rejection("payments", [Problem(n, field, reason) for n, field, reason in problems], rows)
        n = conn.execute(
            sql.SQL(
                "INSERT INTO fee_payments (district_code, household_id, building_code, households_paid, period, "
                " amount, paid_on, source, actor) "
            )
            + valued
            + sql.SQL(
                "SELECT %(district)s, household_id, CASE WHEN household_id IS NULL THEN building END, "
                " CASE WHEN room = '' THEN paid_count END, month, value, day, 'import', "
                " %(actor)s FROM valued ORDER BY n"
            ),
            {**params, "actor": principal.actor},
        ).rowcount
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="payments.import",
            table="fee_payments",
            details={"file": path.name, "rows": n},
        )
        conn.execute("DROP TABLE payment_rows")
    return {"recorded": n}


# ------------------------------------------------------------------ the fees pages (issue 21 point 6)


def zone_overview(
    conn: psycopg.Connection, principal: Principal, *, district_code: str, start: date, end: date, grace_months: int
) -> list[dict[str, Any]]:
    """Per zone the caller acts in: its sub-district, the fee standard in force at ``end``, the first
    chargeable month and the collection figures of ``start``..``end`` (from the monthly sums), zones
    of no bills included (their figures None)."""
    scope, params = zone_scope(principal, sql.SQL("z.code"))
    rows = conn.execute(
        sql.SQL(
            "SELECT z.code, z.name, z.subdistrict_code, s.name, v.starts_on, f.amount, f.basis, f.document_number "
            "FROM zones z JOIN subdistricts s ON s.code = z.subdistrict_code AND s.district_code = z.district_code "
            "LEFT JOIN zone_services v ON v.district_code = z.district_code AND v.zone_code = z.code "
            "LEFT JOIN fee_standards f ON f.district_code = z.district_code AND f.zone_code = z.code "
            " AND f.effective @> %(end)s::date "
            "WHERE z.district_code = %(district)s AND {} ORDER BY z.subdistrict_code, z.code"
        ).format(scope),
        {**params, "district": district_code, "end": end},
    ).fetchall()
    figures = {
        r["zone_code"]: r
        for r in run_steps(conn, collection(district_code=district_code, start=start, end=end))
        if r["level"] == "zone"
    }
    out = []
    for code, name, sub, sub_name, starts_on, amount, basis, document in rows:
        first = first_chargeable(starts_on, grace_months) if starts_on else None
        out.append(
            {
                "zone_code": code,
                "zone_name": name,
                "subdistrict_code": sub,
                "subdistrict_name": sub_name,
                "service_starts_on": starts_on,
                "first_chargeable_month": f"{first:%Y-%m}" if first else None,
                "standard_amount": str(amount) if amount is not None else None,
                "standard_basis": basis,
                "document_number": document,
                "figures": figures.get(code),
            }
        )
    return out


def zone_buildings(
    conn: psycopg.Connection, principal: Principal, zone_code: str, *, district_code: str, start: date, end: date
) -> list[dict[str, Any]]:
    """The zone's buildings (404 outside the caller's zones) with their households and collection figures."""
    zone_in_scope(conn, principal, zone_code, district_code)
    figures = {
        r["building_code"]: r
        for r in run_steps(conn, collection(district_code=district_code, start=start, end=end, zone_code=zone_code))
        if r["level"] == "building"
    }
    rows = conn.execute(
        "SELECT b.code, b.name, count(h.id), count(h.id) FILTER (WHERE h.occupied) FROM buildings b "
        "LEFT JOIN households h ON h.district_code = b.district_code AND h.building_code = b.code "
        "WHERE b.district_code = %s AND b.zone_code = %s GROUP BY b.code, b.name ORDER BY b.code",
        [district_code, zone_code],
    ).fetchall()
    return [
        {"code": c, "name": n, "households": int(h), "occupied": int(o), "figures": figures.get(c)}
        for c, n, h, o in rows
    ]


def zone_map(
    conn: psycopg.Connection, principal: Principal, *, district_code: str, start: date, end: date, grace_months: int
) -> dict[str, Any]:
    """The caller's zones as GeoJSON (CRS84) with their collection rates, for the choropleth."""
    scope, params = zone_scope(principal, sql.SQL("z.code"))
    shapes: dict[str, Any] = dict(
        conn.execute(
            sql.SQL(
                "SELECT z.code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(z.geom, 0.00001), 6)::json FROM zones z "
                "WHERE z.district_code = %(district)s AND {}"
            ).format(scope),
            {**params, "district": district_code},
        ).fetchall()
    )
    features = []
    for zone in zone_overview(
        conn, principal, district_code=district_code, start=start, end=end, grace_months=grace_months
    ):
        f = zone["figures"] or {}
        features.append(
            {
                "type": "Feature",
                "id": zone["zone_code"],
                "geometry": shapes.get(zone["zone_code"]),
                "properties": {
                    "code": zone["zone_code"],
                    "name": zone["zone_name"],
                    "rate_by_amount": f.get("rate_by_amount"),
                    "rate_by_households": f.get("rate_by_households"),
                    "first_chargeable_month": zone["first_chargeable_month"],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def household_of(
    conn: psycopg.Connection, principal: Principal, building: str, unit: str, room: str, *, district_code: str
) -> int:
    """The household at building / unit / room in the caller's zones; 400 naming the field otherwise."""
    found = _buildings(conn, principal, {building}, district_code)
    if building not in found:
        raise InvalidInput(f"building '{building}' does not exist", field="building", reason_zh="楼栋不存在")
    row = conn.execute(
        "SELECT id FROM households WHERE district_code = %s AND building_code = %s AND unit = %s AND room = %s",
        [district_code, building, unit, room],
    ).fetchone()
    if row is None:
        raise InvalidInput(
            f"household {building}-{unit}-{room} is not in the register",
            field="room",
            reason_zh=f"住户 {building} {unit} 单元 {room} 室不在住户登记表中",
        )
    return int(row[0])


def _masked(phone: str | None) -> str | None:
    """A phone number as work roles see it (the cases' rule, geo/cases/workflow.py): 138****0000."""
    if phone is None:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "*" * len(phone)


def arrears_list(
    conn: psycopg.Connection, principal: Principal, zone_code: str, *, district_code: str
) -> list[dict[str, Any]]:
    """The zone's households owing money (404 outside the caller's zones), largest first, with their phone
    number masked unless the caller's role sees personal data (the guarded rules: PII_ROLES)."""
    zone_in_scope(conn, principal, zone_code, district_code)
    owed = run_steps(conn, arrears(district_code=district_code, zone_code=zone_code))
    phones: dict[int, str | None] = dict(
        conn.execute(
            "SELECT id, phone FROM households WHERE id = ANY(%s)", [[r["household_id"] for r in owed]]
        ).fetchall()
    )
    whole = principal.role in PII_ROLES
    return [
        {**r, "phone": phones.get(r["household_id"]) if whole else _masked(phones.get(r["household_id"]))} for r in owed
    ]
