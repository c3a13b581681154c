"""The acceptance verdict per zone (考核验收), computed, never typed.

A zone passes only when every criterion of the plan's four standards holds
(:mod:`geo.programme.standards`: 脏乱差现象消除, 小区面貌改观, 长效机制形成, 群众满意), each
criterion with its rule and threshold in settings, and any of them switched off for a programme year
(``WUYE_CRITERIA_OFF``). Satisfaction is ``100 × satisfied ≥ P × answers`` in integers (P =
``WUYE_SATISFACTION_PASS_PERCENT``, 85): 84.96% fails though it would print as 85.0% with rounding,
so every display rounds down.

Each zone is judged on its own survey round (:mod:`geo.programme.rounds`): a
补课 round of one zone changes no other zone's figures.

A zone without survey answers gets **no verdict** (``verdict = None``), said
plainly, with the other criteria still listed. Otherwise a failed criterion
means 补课 (redo), every failed criterion named. The figures of all zones come
from one query set (:func:`district_figures`), one zone's from the same
statements filtered (:func:`zone_acceptance`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from geo.errors import NotFound
from geo.programme import inspections, patrols, phases, redo, rewards, rounds, standards, surveys
from geo.programme.fees import first_chargeable
from geo.settings import AcceptanceSettings, ProgrammeSettings
from geo.steps import run
from geo.store.kept import kept
from geo.workcal import calendar, today
from layers.catalogue import CLOSED_CASE_STATES, vocabulary

# verdict -> Chinese label (layers/vocabulary.toml; its key ``none`` is the verdict None: no answers)
VERDICTS: dict[str | None, str] = {(None if k == "none" else k): v for k, v in vocabulary("verdicts").zh.items()}
ISSUE_STATES = vocabulary("issue_states").zh  # unissued / issued -> Chinese label
UNISSUED = {"state": "unissued", "state_zh": ISSUE_STATES["unissued"]}


def _zone_rows(conn: psycopg.Connection, district_code: str, zone_code: str | None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT z.code, z.name, z.kind, z.households, z.phase, z.programme_year, s.name, c.name, u.name "
        "FROM zones z LEFT JOIN subdistricts s ON s.code = z.subdistrict_code "
        "LEFT JOIN LATERAL (SELECT name FROM communities c WHERE ST_Intersects(c.geom, ST_PointOnSurface(z.geom)) "
        "  LIMIT 1) c ON true "
        "LEFT JOIN units u ON u.code = z.property_unit "
        "WHERE z.district_code = %s AND (%s::text IS NULL OR z.code = %s) ORDER BY z.subdistrict_code, z.code",
        [district_code, zone_code, zone_code],
    ).fetchall()


def _remediation(conn: psycopg.Connection, district_code: str, zone_code: str | None) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT zone_code, item, title, state, planned_end, actual_end, verified_on FROM remediation_tasks "
        "WHERE district_code = %s AND (%s::text IS NULL OR zone_code = %s) ORDER BY zone_code, id",
        [district_code, zone_code, zone_code],
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for zone, item, title, state, planned_end, actual_end, verified_on in rows:
        entry = out.setdefault(zone, {"tasks": 0, "verified": 0, "items": []})
        entry["tasks"] += 1
        entry["verified"] += state == "verified"
        entry["items"].append(
            {
                "item": item,
                "title": title,
                "state": state,
                "planned_end": _iso(planned_end),
                "actual_end": _iso(actual_end),
                "verified_on": _iso(verified_on),
            }
        )
    return out


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _cases(
    conn: psycopg.Connection, district_code: str, zone_code: str | None, grace: timedelta
) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        "SELECT zone_code, count(*), count(*) FILTER (WHERE state <> ALL(%(closed)s)), "
        " count(*) FILTER (WHERE state = 'closed'), "
        " count(*) FILTER (WHERE state = 'closed' AND closed_at <= due_at), "
        " count(*) FILTER (WHERE state <> ALL(%(closed)s) AND due_at < now()), "
        " count(*) FILTER (WHERE state <> ALL(%(closed)s) AND due_at + %(grace)s < now()) "
        "FROM cases WHERE district_code = %(district)s AND zone_code IS NOT NULL "
        " AND (%(zone)s::text IS NULL OR zone_code = %(zone)s) GROUP BY zone_code",
        {"closed": list(CLOSED_CASE_STATES), "grace": grace, "district": district_code, "zone": zone_code},
    ).fetchall()
    keys = ("cases", "open", "closed", "closed_on_time", "overdue", "overdue_beyond_grace")
    return {r[0]: dict(zip(keys, map(int, r[1:]), strict=True)) for r in rows}


def _issued(
    conn: psycopg.Connection, district_code: str, zone_code: str | None
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(zone, round) → its latest issued document; zone → every issued document, oldest first (the
    verdict history: 首次验收 补课 on …, 补课 通过 on …)."""
    rows = conn.execute(
        "SELECT d.zone_code, d.round, d.id, d.number, d.version, d.replaces, d.verdict, d.sha256, d.issued_by, "
        "d.issued_at, r.kind FROM acceptance_documents d "
        "JOIN survey_rounds r ON r.district_code = d.district_code AND r.label = d.round "
        "WHERE d.district_code = %s AND (%s::text IS NULL OR d.zone_code = %s) ORDER BY d.zone_code, d.issued_at, d.id",
        [district_code, zone_code, zone_code],
    ).fetchall()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    zone_tz = calendar().zone
    for zone, label, doc_id, number, version, replaces, verdict, sha, by, at, kind in rows:
        entry = {
            "state": "issued",
            "state_zh": ISSUE_STATES["issued"],
            "id": doc_id,
            "number": number,
            "round": label,
            "round_kind": kind,
            "round_kind_zh": rounds.KINDS.get(kind),
            "version": version,
            "replaces": replaces,
            "verdict": verdict,
            "verdict_zh": VERDICTS.get(verdict),
            "sha256": sha,
            "issued_by": by,
            "issued_at": at.astimezone(zone_tz).isoformat(timespec="seconds"),
            "issued_on": at.astimezone(zone_tz).date().isoformat(),
        }
        latest[(zone, label)] = entry  # ordered by time: the last one is the latest version
        history.setdefault(zone, []).append(entry)
    return latest, history


def kept_district_figures(
    conn: psycopg.Connection,
    *,
    district_code: str,
    rules: AcceptanceSettings,
    with_conditions: bool = True,
    fee_grace_months: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`district_figures` of every zone, kept until a row under them changes (geo/store/kept.py:
    the acceptance desk and ``GET /acceptance`` read them on every view, 70 ms at 100,000 households)."""
    key = ("district_figures", district_code, repr(rules), with_conditions, fee_grace_months, today())
    return kept(
        conn,
        key,
        lambda: district_figures(
            conn,
            district_code=district_code,
            rules=rules,
            with_conditions=with_conditions,
            fee_grace_months=fee_grace_months,
        ),
    )


def district_figures(
    conn: psycopg.Connection,
    *,
    district_code: str,
    rules: AcceptanceSettings,
    zone_code: str | None = None,
    with_conditions: bool = True,
    round_: str | None = None,
    fee_grace_months: int | None = None,
) -> list[dict[str, Any]]:
    """The acceptance figures and verdict of every zone (or one), from one set of grouped queries: each
    zone on its own judged round (or ``round_`` when named), with its issue state (「未签发」 unless the
    verdict of that round was issued), its verdict history and its reward (以奖代补).
    ``with_conditions=False`` leaves the per-layer facility counts out of the figures (the facility
    criterion is judged all the same); ``fee_grace_months`` defaults to ``WUYE_FEE_GRACE_MONTHS``."""
    grace_months = ProgrammeSettings().fee_grace_months if fee_grace_months is None else fee_grace_months
    grace = timedelta(hours=rules.case_overdue_grace_hours)
    zones = _zone_rows(conn, district_code, zone_code)
    # each zone on its own round: a re-survey of one zone changes no other zone's figures
    survey = surveys.zone_figures(
        conn, district_code=district_code, zone_code=zone_code, setting=rules.survey_round, round_=round_
    )
    issued, history = _issued(conn, district_code, zone_code)
    plans = redo.zone_summaries(conn, district_code=district_code, zone_code=zone_code)
    remediation = _remediation(conn, district_code, zone_code)
    case_counts = _cases(conn, district_code, zone_code, grace)
    # the facility criterion needs the counts whether the figures list them or not
    conditions = inspections.condition_counts(conn, district_code=district_code, zone_code=zone_code)
    now = datetime.now(calendar().zone)
    facts = standards.facts(
        conn,
        district_code=district_code,
        zone_code=zone_code,
        case_kinds=rules.standard_case_kinds,
        grace_hours=rules.case_overdue_grace_hours,
        on=now.date(),
    )
    programme = {z["zone_code"]: z for z in run(conn, phases.table(district_code=district_code, zone_code=zone_code))}
    # security patrols: the last full week (Monday to Sunday) before this one
    week = patrols.period_of(now.date() - timedelta(days=7), "week")
    patrol = {
        p["zone_code"]: p
        for p in patrols.coverage(
            conn,
            district_code=district_code,
            start=week[0],
            end=week[1],
            min_scans=rules.patrol_min_scans,
            min_coverage=rules.min_patrol_coverage,
            zone_code=zone_code,
        )
    }
    out = []
    for code, name, kind, households, phase, year, subdistrict, community, unit in zones:
        figures: dict[str, Any] = {
            "zone": {
                "code": code,
                "name": name,
                "kind": kind,
                "households": households,
                "phase": phase,
                "programme_year": year,
                "subdistrict": subdistrict,
                "community": community,
                "property_unit": unit,
            },
            "survey": survey.get(code) or surveys.figures(0, 0, households, None),
            "remediation": remediation.get(code, {"tasks": 0, "verified": 0, "items": []}),
            "cases": case_counts.get(
                code, dict.fromkeys(("cases", "open", "closed", "closed_on_time", "overdue", "overdue_beyond_grace"), 0)
            ),
            "facilities": conditions.get(code, {}) if with_conditions else {},
            "patrol": patrol.get(code),
            "rules": rules.model_dump(mode="json"),
            "generated_at": now.isoformat(timespec="seconds"),
        }
        zone_facts = {**facts[code], "conditions": conditions.get(code, {})}
        figures.update(verdict(figures, rules, zone_facts, grace_months=grace_months, on=now.date()))
        figures["issue"] = issued.get((code, figures["survey"]["round"])) or dict(UNISSUED)
        figures["verdict_history"] = history.get(code, [])
        figures["reward"] = rewards.zone_reward(code, households, figures["verdict_history"], rules)
        figures["programme"] = _programme(programme.get(code), facts[code], grace_months)
        figures["redo"] = plans.get(code) or {**redo.EMPTY, "items": []}
        out.append(figures)
    return out


def _programme(row: dict[str, Any] | None, f: dict[str, Any], grace_months: int) -> dict[str, Any]:
    """The zone's programme as the reports print it (issue 19 point 7): its phases (done / in progress /
    overdue, what is missing), its publicity by kind, and its fees to date."""
    starts = f["service_starts_on"]
    return {
        "current_phase": row["current_phase"] if row else None,
        "current_phase_zh": row["current_phase_zh"] if row else None,
        "phases": row["phases"] if row else [],
        "publicity": row["publicity"] if row else {},
        "fees": {
            "service_starts_on": _iso(starts),
            "service_unit": f["service_unit_name"] or f["service_unit"],
            "first_chargeable_month": f"{first_chargeable(starts, grace_months):%Y-%m}" if starts else None,
            "fee_document": f["fee_document"],
            "bills": f["bills"],
            "billed": f"{f['billed']:.2f}",
            "paid": f"{f['paid']:.2f}",
        },
    }


def verdict(
    figures: dict[str, Any], rules: AcceptanceSettings, facts: dict[str, Any], *, grace_months: int, on: date
) -> dict[str, Any]:
    """The verdict from a zone's figures and the facts of the four standards (integers or decimals
    only in the comparisons): 补课 naming every failed criterion switched on, no verdict without answers."""
    criteria, four = standards.judged(figures, facts, rules, grace_months=grace_months, on=on)
    answered = figures["survey"]["answers"] > 0
    failed = [k["criterion"] for k in criteria if k["enabled"] and not k["met"]]
    result = None if not answered else ("pass" if not failed else "redo")
    return {
        "verdict": result,
        "verdict_zh": VERDICTS[result],
        "criteria": criteria,
        "standards": four,
        "failed": failed,
        "failed_standards": [s["standard"] for s in four if s["met"] is False],
        "verdict_note": "no survey answers in this round: no verdict" if not answered else None,
    }


def zone_acceptance(
    conn: psycopg.Connection,
    zone_code: str,
    *,
    district_code: str,
    rules: AcceptanceSettings,
    with_conditions: bool = True,
    round_: str | None = None,
    fee_grace_months: int | None = None,
) -> dict[str, Any]:
    """One zone's figures and verdict (on its judged round, or ``round_``); 404 for an unknown zone."""
    rows = district_figures(
        conn,
        district_code=district_code,
        rules=rules,
        zone_code=zone_code,
        with_conditions=with_conditions,
        round_=round_,
        fee_grace_months=fee_grace_months,
    )
    if not rows:
        raise NotFound(f"zone '{zone_code}' does not exist", field="code")
    return rows[0]


def zone_codes(conn: psycopg.Connection, *, district_code: str) -> list[str]:
    """Every zone's code, in report order."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT code FROM zones WHERE district_code = %s ORDER BY subdistrict_code, code", [district_code]
        )
    ]
