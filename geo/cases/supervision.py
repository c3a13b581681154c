"""Supervision (督办, issue 20 point 4): the bureau (区城管局, role ``admin``) marks an open case as
supervised with a deadline day and a note.

The marks live on the case row (``supervised_at``, ``supervision_due`` …), so lists, counts and the
case's JSON read them with no join; each supervision is a ``supervise`` event in the case's history and
a ``supervised`` notice to the unit working it (geo/cases/notices.py), in the same transaction. A
supervised case still open after its deadline day is handed to its sub-district office, once
(``supervision_escalated_at`` set in the row that gets the ``supervision_overdue`` event), by the
service's periodic pass (geo/cases/jobs.py) beside the ordinary overdue escalation.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from geo.access.scope import Principal, require
from geo.cases import notices
from geo.cases.workflow import (
    CLOSED_STATES,
    MAX_DESCRIPTION,
    STATE_NAMES,
    case_detail,
    event,
    locked_case,
    trimmed_text,
)
from geo.errors import Conflict, InvalidInput
from geo.steps import run
from geo.workcal import today

SUPERVISORS = ("admin",)  # the bureau: 区城管局管理员 (layers/vocabulary.toml roles)


def _checked(deadline: date | None, note: str | None) -> tuple[date, str]:
    """The deadline (today or later) and the note (required), or a 400 naming the field."""
    if deadline is None:
        raise InvalidInput("deadline is required (YYYY-MM-DD)", field="deadline", reason_zh="请填写督办期限")
    if deadline < today():
        raise InvalidInput(
            f"deadline {deadline.isoformat()} is in the past; give today or a later day",
            field="deadline",
            reason_zh=f"督办期限 {deadline.isoformat()} 已过，请选择今天或以后的日期",
        )
    text = trimmed_text(note, "note", MAX_DESCRIPTION)
    if not text:
        raise InvalidInput("note is required: say what the bureau asks for", field="note", reason_zh="请填写督办意见")
    return deadline, text


def supervise(
    conn: psycopg.Connection,
    principal: Principal,
    code: str,
    *,
    deadline: date | None,
    note: str | None,
    district_code: str,
) -> dict[str, Any]:
    """Mark the open case ``code`` supervised until ``deadline`` with ``note`` (again: a new deadline and
    note, a new event); its unit is told. 403 for anyone but the bureau, 400 naming the bad field, 409
    for a closed case; nothing is written then. Returns the case as ``GET /cases/{code}`` shows it."""
    require(principal, *SUPERVISORS)
    deadline, text = _checked(deadline, note)
    with conn.transaction():
        case_id, state, _, unit, _ = locked_case(conn, principal, code, district_code)
        if state in CLOSED_STATES:
            raise Conflict(
                f"case '{code}' is {state}: only an open case can be supervised",
                field="code",
                reason_zh=f"事件已{STATE_NAMES[state]}，不能督办",
            )
        conn.execute(
            "UPDATE cases SET supervised_at = now(), supervised_by = %s, supervision_due = %s, supervision_note = %s, "
            "version = version + 1, updated_at = now() WHERE id = %s",
            [principal.actor, deadline, text, case_id],
        )
        event(
            conn,
            case_id,
            district_code=district_code,
            actor=principal.actor,
            action="supervise",
            from_state=state,
            to_state=None,  # not a move: the public history lists states only
            note=text,
            details={"deadline": deadline.isoformat(), "unit_code": unit},
        )
        notices.notify(conn, case_id, unit, "supervised", note=f"{deadline.isoformat()} 前办结。{text}")
    return run(conn, case_detail(code, principal=principal, district_code=district_code))


def unsupervise(
    conn: psycopg.Connection,
    principal: Principal,
    code: str,
    *,
    note: str | None,
    district_code: str,
) -> dict[str, Any]:
    """Withdraw the bureau's supervision of ``code`` (撤销督办: set by mistake, or settled another way)
    with a note saying why: the marks leave the row, an ``unsupervise`` event keeps what was withdrawn.
    403 for anyone but the bureau, 400 without a note, 409 for a case not supervised; nothing is
    written then. Returns the case as ``GET /cases/{code}`` shows it."""
    require(principal, *SUPERVISORS)
    text = trimmed_text(note, "note", MAX_DESCRIPTION)
    if not text:
        raise InvalidInput(
            "note is required: say why the supervision is withdrawn", field="note", reason_zh="请填写撤销督办的理由"
        )
    with conn.transaction():
        case_id, state, _, unit, _ = locked_case(conn, principal, code, district_code)
        row = conn.execute(
            "SELECT supervision_due, supervision_note FROM cases WHERE id = %s AND supervised_at IS NOT NULL", [case_id]
        ).fetchone()
        if row is None:
            raise Conflict(f"case '{code}' is not supervised", field="code", reason_zh="事件未被督办，无需撤销")
        due, was = row
        conn.execute(
            "UPDATE cases SET supervised_at = NULL, supervised_by = NULL, supervision_due = NULL, "
            "supervision_note = NULL, supervision_escalated_at = NULL, version = version + 1, updated_at = now() "
            "WHERE id = %s",
            [case_id],
        )
        event(
            conn,
            case_id,
            district_code=district_code,
            actor=principal.actor,
            action="unsupervise",
            from_state=state,
            to_state=None,  # not a move
            note=text,
            details={"deadline": due.isoformat(), "withdrawn_note": was, "unit_code": unit},
        )
    return run(conn, case_detail(code, principal=principal, district_code=district_code))


def escalate_supervised(conn: psycopg.Connection, *, district_code: str, actor: str = "system") -> int:
    """Hand each open supervised case past its deadline day to its sub-district office, once, with a
    ``supervision_overdue`` event and ``overdue`` notices to the old and the new unit."""
    with conn.transaction():
        rows = conn.execute(
            "WITH late AS (SELECT c.id, c.unit_code, s.office_unit, c.state, c.supervision_due FROM cases c "
            " JOIN subdistricts s ON s.code = c.subdistrict_code "
            " WHERE c.district_code = %s AND c.supervised_at IS NOT NULL AND c.supervision_escalated_at IS NULL "
            " AND c.state <> ALL(%s) AND c.supervision_due < %s FOR UPDATE OF c) "
            "UPDATE cases c SET supervision_escalated_at = now(), escalated_at = coalesce(c.escalated_at, now()), "
            "unit_code = late.office_unit, routing_rule = 'escalated', version = c.version + 1 "
            "FROM late WHERE c.id = late.id "
            "RETURNING c.id, late.unit_code, late.office_unit, late.state, late.supervision_due",
            [district_code, list(CLOSED_STATES), today()],
        ).fetchall()
        for case_id, old, new, state, due in rows:
            event(
                conn,
                case_id,
                district_code=district_code,
                actor=actor,
                action="supervision_overdue",
                from_state=state,
                to_state=state,
                note=f"督办期限 {due.isoformat()} 已过，升级至街道办事处 (supervision deadline passed)",
                details={"from_unit": old, "to_unit": new, "deadline": due.isoformat()},
            )
            for unit in {old, new} - {None}:
                notices.notify(conn, case_id, unit, "overdue")
    return len(rows)
