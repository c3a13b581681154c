"""Corrections of survey answers that leave a trace (issue 15).

An administrator withdraws one answer or a whole imported batch, or corrects an
answer, always with a reason. Nothing is deleted: a withdrawn answer keeps its
row (``withdrawn_at``, ``withdrawn_by``, ``withdrawn_reason``) and stops
counting; each move is a ``survey_answer_events`` row holding the answer as it
was (and as it became), and one ``audit_log`` row, so the audit trail reads it
back. A correction in a zone and round whose verdict was issued is refused (409, field
``new_version``) unless the caller says a new version will be issued: the issued document
never changes. Because only counting answers hold a household's place in a round, a
withdrawn batch can be imported again.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from geo.access.scope import Principal
from geo.access.users import audit
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.programme.surveys import SCORES

# What a correction may change; zone, round and household are the answer's identity: withdraw it and
# enter the right one instead.
CORRECTABLE = ("satisfied", "building", "surveyor", "remark", *SCORES)
_ANSWER = (
    "id, round, zone_code, building, household, answered_on, surveyor, satisfied, "
    + ", ".join(SCORES)
    + ", remark, actor, created_at, batch_id, withdrawn_at, withdrawn_by, withdrawn_reason"
)


def _admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden(
            "only an administrator withdraws or corrects survey answers", reason_zh="仅管理员可撤回或更正调查答卷"
        )


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text or "\x00" in text:
        raise InvalidInput("reason is required", field="reason", reason_zh="须填写撤回或更正的原因")
    return text[:2000]


def _issued_guard(
    conn: psycopg.Connection, answers: list[dict[str, Any]], district_code: str, new_version: bool
) -> None:
    """409 when a verdict was issued for the zone and round of one of ``answers``, unless the caller says a
    new version will be issued (the issued document itself never changes)."""
    if new_version or not answers:
        return
    row = conn.execute(
        "SELECT d.number, d.zone_code, d.round FROM acceptance_documents d "
        "JOIN unnest(%s::text[], %s::text[]) AS k(zone, round) ON d.zone_code = k.zone AND d.round = k.round "
        "WHERE d.district_code = %s ORDER BY d.issued_at DESC LIMIT 1",
        [[a["zone_code"] for a in answers], [a["round"] for a in answers], district_code],
    ).fetchone()
    if row is not None:
        raise Conflict(
            f"the verdict of zone '{row[1]}' for round '{row[2]}' was issued as {row[0]}; a correction does not "
            "change it: send new_version=true (--new-version) and issue a new version afterwards",
            field="new_version",
            reason_zh=f"该轮验收结论已签发（{row[0]}），更正须指定新版本（new_version）并重新签发",
            number=row[0],
        )


def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(_ANSWER.split(", "), row, strict=True))
    for k in ("answered_on", "created_at", "withdrawn_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    return out


def _answers(conn: psycopg.Connection, where: str, params: list[Any], *, lock: bool) -> list[dict[str, Any]]:
    stmt = sql.SQL("SELECT {cols} FROM survey_answers WHERE {where} ORDER BY id{lock}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in _ANSWER.split(", ")),
        where=sql.SQL(where),  # fixed text of this module, values bound
        lock=sql.SQL(" FOR UPDATE" if lock else ""),
    )
    rows = conn.execute(stmt, params).fetchall()
    return [_as_dict(r) for r in rows]


def _one(conn: psycopg.Connection, answer_id: int, district_code: str, *, lock: bool) -> dict[str, Any]:
    rows = _answers(conn, "district_code = %s AND id = %s", [district_code, answer_id], lock=lock)
    if not rows:
        raise NotFound(f"survey answer #{answer_id} does not exist", field="id", reason_zh=f"答卷 #{answer_id} 不存在")
    return rows[0]


def _event(
    conn: psycopg.Connection,
    district_code: str,
    answer: dict[str, Any],
    *,
    actor: str,
    action: str,
    reason: str,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        "INSERT INTO survey_answer_events (district_code, answer_id, batch_id, actor, action, reason, before, after) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            district_code,
            answer["id"],
            answer["batch_id"],
            actor,
            action,
            reason,
            Jsonb(answer),
            Jsonb(after) if after is not None else None,
        ],
    )


def withdraw_answer(
    conn: psycopg.Connection,
    principal: Principal,
    answer_id: int,
    *,
    reason: str,
    district_code: str,
    new_version: bool = False,
) -> dict[str, Any]:
    """Withdraw one answer (it stops counting; its row and the event keep it readable)."""
    _admin(principal)
    why = _reason(reason)
    with conn.transaction():
        answer = _one(conn, answer_id, district_code, lock=True)
        _issued_guard(conn, [answer], district_code, new_version)
        if answer["withdrawn_at"] is not None:
            raise Conflict(
                f"survey answer #{answer_id} was already withdrawn on {answer['withdrawn_at']}",
                field="id",
                reason_zh=f"答卷 #{answer_id} 已撤回",
            )
        conn.execute(
            "UPDATE survey_answers SET withdrawn_at = now(), withdrawn_by = %s, withdrawn_reason = %s WHERE id = %s",
            [principal.actor, why, answer_id],
        )
        _event(conn, district_code, answer, actor=principal.actor, action="withdraw", reason=why, after=None)
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="survey.withdraw",
            table="survey_answers",
            code=str(answer_id),
            details={"reason": why, "answer": answer},
        )
    return _one(conn, answer_id, district_code, lock=False)


def withdraw_batch(
    conn: psycopg.Connection,
    principal: Principal,
    batch_id: int,
    *,
    reason: str,
    district_code: str,
    new_version: bool = False,
) -> dict[str, Any]:
    """Withdraw every counting answer of an imported batch at once; the batch can then be imported again."""
    _admin(principal)
    why = _reason(reason)
    with conn.transaction():
        batch = conn.execute(
            "SELECT id, withdrawn_at FROM survey_batches WHERE district_code = %s AND id = %s FOR UPDATE",
            [district_code, batch_id],
        ).fetchone()
        if batch is None:
            raise NotFound(
                f"survey import batch {batch_id} does not exist", field="batch", reason_zh=f"导入批次 {batch_id} 不存在"
            )
        if batch[1] is not None:
            raise Conflict(
                f"survey import batch {batch_id} was already withdrawn on {batch[1].isoformat()}",
                field="batch",
                reason_zh=f"导入批次 {batch_id} 已撤回",
            )
        answers = _answers(
            conn, "district_code = %s AND batch_id = %s AND withdrawn_at IS NULL", [district_code, batch_id], lock=True
        )
        _issued_guard(conn, answers, district_code, new_version)
        conn.execute(
            "UPDATE survey_answers SET withdrawn_at = now(), withdrawn_by = %s, withdrawn_reason = %s "
            "WHERE district_code = %s AND batch_id = %s AND withdrawn_at IS NULL",
            [principal.actor, why, district_code, batch_id],
        )
        conn.execute(
            "UPDATE survey_batches SET withdrawn_at = now(), withdrawn_by = %s, withdrawn_reason = %s "
            "WHERE district_code = %s AND id = %s",
            [principal.actor, why, district_code, batch_id],
        )
        for answer in answers:
            _event(conn, district_code, answer, actor=principal.actor, action="withdraw", reason=why, after=None)
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="survey.withdraw_batch",
            table="survey_batches",
            code=str(batch_id),
            details={"reason": why, "answers": [a["id"] for a in answers]},
        )
    return {"batch": batch_id, "withdrawn": len(answers), "reason": why}


def correct_answer(
    conn: psycopg.Connection,
    principal: Principal,
    answer_id: int,
    changes: dict[str, Any],
    *,
    reason: str,
    district_code: str,
    new_version: bool = False,
) -> dict[str, Any]:
    """Correct a counting answer's satisfied/building/surveyor/remark/scores, keeping the old one in its event."""
    _admin(principal)
    why = _reason(reason)
    unknown = sorted(set(changes) - set(CORRECTABLE))
    if unknown:
        raise InvalidInput(
            f"{unknown[0]} cannot be corrected (only {', '.join(CORRECTABLE)}); withdraw the answer and enter it again",
            field=unknown[0],
            reason_zh="小区、轮次、户号不能更正：请撤回该答卷后重新录入",
        )
    if not changes:
        raise InvalidInput("nothing to correct", field="changes", reason_zh="未指定更正内容")
    for name in SCORES:
        value = changes.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5):
            raise InvalidInput(f"{name}: '{value}' is not a score from 1 to 5", field=name, reason_zh="评分应为 1 至 5")
    if "satisfied" in changes and not isinstance(changes["satisfied"], bool):
        raise InvalidInput("satisfied must be true or false", field="satisfied", reason_zh="是否满意应为是或否")
    if "surveyor" in changes and not (changes["surveyor"] or "").strip():
        raise InvalidInput("surveyor is required", field="surveyor", reason_zh="须填写调查员")
    with conn.transaction():
        answer = _one(conn, answer_id, district_code, lock=True)
        _issued_guard(conn, [answer], district_code, new_version)
        if answer["withdrawn_at"] is not None:
            raise Conflict(
                f"survey answer #{answer_id} was withdrawn; it cannot be corrected",
                field="id",
                reason_zh=f"答卷 #{answer_id} 已撤回，不能更正",
            )
        names = sorted(changes)
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
        conn.execute(
            sql.SQL("UPDATE survey_answers SET {} WHERE id = %s").format(assignments),
            [*(changes[n] for n in names), answer_id],
        )
        after = _one(conn, answer_id, district_code, lock=False)
        _event(conn, district_code, answer, actor=principal.actor, action="correct", reason=why, after=after)
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="survey.correct",
            table="survey_answers",
            code=str(answer_id),
            details={"reason": why, "before": {n: answer[n] for n in names}, "after": {n: after[n] for n in names}},
        )
    return after


def history(conn: psycopg.Connection, principal: Principal, answer_id: int, *, district_code: str) -> dict[str, Any]:
    """An answer as it is now (withdrawn ones too) and every withdrawal and correction of it, oldest first."""
    _admin(principal)
    answer = _one(conn, answer_id, district_code, lock=False)
    events = conn.execute(
        "SELECT at, actor, action, reason, before, after FROM survey_answer_events "
        "WHERE district_code = %s AND answer_id = %s ORDER BY at, id",
        [district_code, answer_id],
    ).fetchall()
    keys = ("at", "actor", "action", "reason", "before", "after")
    return {
        "answer": answer,
        "counting": answer["withdrawn_at"] is None,
        "events": [dict(zip(keys, (e[0].isoformat(), *e[1:]), strict=True)) for e in events],
    }
