"""Verdicts issued (签发) and frozen as acceptance documents (issue 15).

An administrator issues a zone's verdict for a round: the figures, the criteria
and the zone PDF are stored as one document with a number
(``WUYE_DOCUMENT_NUMBER_PATTERN``, e.g. ``岳麓城管验〔2026〕12号``: ``{year}`` and
the year's sequence ``{seq}``), its SHA-256, who issued it and when. It is
served as issued, byte for byte, forever; later answers or corrections change
the live figures, never the document. A corrected verdict is a new version for
the same zone and round, with a reason, naming the number it replaces. Live
figures carry their issue state: the zone's latest document for the round it is
judged on, or 「未签发」 (a draft).

The PDF is drawn by the caller (``render``: figures → PDF bytes; geo/ does not
draw), inside the numbering transaction so the document prints its own number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geo.access.scope import Principal
from geo.access.users import audit
from geo.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound
from geo.programme import acceptance, redo
from geo.settings import AcceptanceSettings
from geo.steps import Statement, Steps, one
from geo.workcal import calendar

_META = "id, number, zone_code, round, version, replaces, reason, verdict, sha256, issued_by, issued_at"


def document_number(pattern: str, *, year: int, seq: int) -> str:
    """The number of the year's ``seq``-th document from the pattern setting."""
    try:
        return pattern.format(year=year, seq=seq)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"WUYE_DOCUMENT_NUMBER_PATTERN '{pattern}' may use only {{year}} and {{seq}}: {e}",
            field="document_number_pattern",
        ) from e


def _meta(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(_META.split(", "), row, strict=True))
    out["issued_at"] = out["issued_at"].astimezone(calendar().zone).isoformat(timespec="seconds")
    return {**out, "state": "issued", "state_zh": acceptance.ISSUE_STATES["issued"]}


def _check_issue(principal: Principal, new_version: bool, reason: str | None) -> str | None:
    if principal.role != "admin":
        raise Forbidden("only an administrator issues a verdict", reason_zh="仅管理员可签发验收结论")
    why = (reason or "").strip() or None
    if new_version and why is None:
        raise InvalidInput("reason is required for a new version", field="reason", reason_zh="重新签发须说明更正原因")
    return why


def _lock(conn: psycopg.Connection, district_code: str) -> None:
    # one issuer at a time per district: the year's sequence has no gaps and no twins
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('acceptance_documents:' || %s))", [district_code])


def _previous(conn: psycopg.Connection, zone_code: str, label: str, district_code: str) -> tuple[Any, ...] | None:
    return conn.execute(
        f"SELECT {_META} FROM acceptance_documents WHERE district_code = %s AND zone_code = %s AND round = %s "  # noqa: S608  fixed column list
        "ORDER BY version DESC LIMIT 1",
        [district_code, zone_code, label],
    ).fetchone()


def _refusal(
    conn: psycopg.Connection, figures: dict[str, Any], *, district_code: str, new_version: bool, round_: str | None
) -> InvalidInput | Conflict | None:
    """Why this zone's verdict may not be issued now (None: it may), and the previous version."""
    zone_code = figures["zone"]["code"]
    label, answers = figures["survey"]["round"], figures["survey"]["answers"]
    if not label or answers == 0:
        return InvalidInput(
            f"round: zone '{zone_code}' has no counting answers in round '{label or round_ or '-'}': nothing to issue",
            field="round",
            reason_zh="该小区本轮无调查答卷，不能签发验收结论",
        )
    previous = _previous(conn, zone_code, label, district_code)
    if previous is not None and not new_version:
        return Conflict(
            f"the verdict of zone '{zone_code}' for round '{label}' was issued as {previous[1]}; "
            "send new_version=true with a reason to issue a corrected one",
            field="new_version",
            reason_zh=f"该轮验收结论已签发（{previous[1]}），如需更正请签发新版本并说明原因",
            number=previous[1],
        )
    if previous is None and new_version:
        return InvalidInput(
            f"new_version: zone '{zone_code}' has no issued verdict for round '{label}' to replace",
            field="new_version",
            reason_zh="该轮尚未签发，无可替代的版本",
        )
    if figures["survey"]["round_kind"] == "redo":
        waiting = redo.blocking(conn, zone_code, label, district_code=district_code)
        if waiting:
            return Conflict(
                f"redo_items: zone '{zone_code}' has {len(waiting)} unfinished redo item(s) "
                f"({', '.join(str(i['id']) for i in waiting)}): the 补课 round is issued when they are done",
                field="redo_items",
                reason_zh=f"该小区尚有 {len(waiting)} 项补课整改未完成，整改完成后方可签发补课结论",
                items=waiting,
            )
    return None


def _number(conn: psycopg.Connection, rules: AcceptanceSettings, *, district_code: str, year: int) -> tuple[int, str]:
    seq_row = conn.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM acceptance_documents WHERE district_code = %s AND year = %s",
        [district_code, year],
    ).fetchone()
    assert seq_row is not None
    seq = int(seq_row[0])
    return seq, document_number(rules.document_number_pattern, year=year, seq=seq)


def _frozen(
    conn: psycopg.Connection,
    principal: Principal,
    figures: dict[str, Any],
    *,
    district_code: str,
    rules: AcceptanceSettings,
    now: datetime,
    number: str,
    why: str | None,
) -> list[dict[str, Any]]:
    """Add to ``figures`` what the document says of itself: its issue, its own line of the verdict
    history (首次验收 补课 on …, 补课 通过 on …) and, for a 补课 verdict, the redo plan it opens (returned)."""
    zone_code, label = figures["zone"]["code"], figures["survey"]["round"]
    previous = _previous(conn, zone_code, label, district_code)
    version = (previous[4] + 1) if previous else 1
    figures["issue"] = {
        "state": "issued",
        "state_zh": acceptance.ISSUE_STATES["issued"],
        "number": number,
        "version": version,
        "replaces": previous[1] if previous else None,
        "reason": why,
        "issued_by": principal.actor,
        "issued_at": now.isoformat(timespec="seconds"),
    }
    figures["verdict_history"] = [
        *figures["verdict_history"],
        {
            "state": "issued",
            "number": number,
            "round": label,
            "round_kind": figures["survey"]["round_kind"],
            "round_kind_zh": figures["survey"]["round_kind_zh"],
            "version": version,
            "replaces": figures["issue"]["replaces"],
            "verdict": figures["verdict"],
            "verdict_zh": figures["verdict_zh"],
            "issued_by": principal.actor,
            "issued_at": figures["issue"]["issued_at"],
            "issued_on": now.date().isoformat(),
        },
    ]
    if previous is not None:  # a corrected version: the plan follows it
        redo.withdrawn_in(figures)
    opened = redo.planned(conn, figures, district_code=district_code, issued_on=now.date(), days=rules.redo_days)
    if opened:
        both = [*figures["redo"]["items"], *opened]
        figures["redo"] = {**redo.counts(both), "items": both}
    return opened


def _store(
    conn: psycopg.Connection,
    principal: Principal,
    figures: dict[str, Any],
    pdf: bytes,
    opened: list[dict[str, Any]],
    *,
    district_code: str,
    seq: int,
    now: datetime,
) -> dict[str, Any]:
    """Write the document, the redo items it opens and its audit line (in the caller's transaction)."""
    zone_code, label, issue_ = figures["zone"]["code"], figures["survey"]["round"], figures["issue"]
    digest = hashlib.sha256(pdf).hexdigest()
    row = conn.execute(
        "INSERT INTO acceptance_documents (district_code, number, year, seq, zone_code, round, version, replaces, "
        "reason, verdict, figures, pdf, sha256, issued_by, issued_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _META,
        [
            district_code,
            issue_["number"],
            now.year,
            seq,
            zone_code,
            label,
            issue_["version"],
            issue_["replaces"],
            issue_["reason"],
            figures["verdict"],
            Jsonb(figures),
            pdf,
            digest,
            principal.actor,
            now,
        ],
    ).fetchone()
    assert row is not None
    withdrawn = (
        redo.withdraw_met(conn, figures, district_code=district_code, number=issue_["number"], actor=principal.actor)
        if issue_["replaces"]
        else []
    )
    redo.open_items(
        conn, opened, document_id=int(row[0]), zone_code=zone_code, district_code=district_code, actor=principal.actor
    )
    audit(
        conn,
        district_code=district_code,
        actor=principal.actor,
        action="verdict.issue",
        table="acceptance_documents",
        code=issue_["number"],
        details={
            "zone": zone_code,
            "round": label,
            "version": issue_["version"],
            "sha256": digest,
            "reason": issue_["reason"],
            "redo_items": len(opened),
            "redo_withdrawn": withdrawn,
        },
    )
    return _meta(row)


def issue(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    rules: AcceptanceSettings,
    render: Callable[[dict[str, Any]], bytes],
    round_: str | None = None,
    new_version: bool = False,
    reason: str | None = None,
    fee_grace_months: int | None = None,
) -> dict[str, Any]:
    """Issue the zone's verdict for ``round_`` (default: the round it is judged on); 409 when that round's
    verdict is issued already unless ``new_version`` (with a reason), or when a 补课 round's verdict waits
    for unfinished redo items; 400 for a round without answers. A 补课 verdict opens the zone's redo plan."""
    why = _check_issue(principal, new_version, reason)
    with conn.transaction():
        _lock(conn, district_code)
        figures = acceptance.zone_acceptance(
            conn,
            zone_code,
            district_code=district_code,
            rules=rules,
            round_=round_,
            fee_grace_months=fee_grace_months,
        )
        refusal = _refusal(conn, figures, district_code=district_code, new_version=new_version, round_=round_)
        if refusal is not None:
            raise refusal
        now = datetime.now(calendar().zone)
        seq, number = _number(conn, rules, district_code=district_code, year=now.year)
        opened = _frozen(
            conn, principal, figures, district_code=district_code, rules=rules, now=now, number=number, why=why
        )
        pdf = render(figures)
        return _store(conn, principal, figures, pdf, opened, district_code=district_code, seq=seq, now=now)


def issue_all(
    conn: psycopg.Connection,
    principal: Principal,
    *,
    district_code: str,
    rules: AcceptanceSettings,
    render_all: Callable[[list[dict[str, Any]]], dict[str, bytes]],
    fee_grace_months: int | None = None,
) -> dict[str, Any]:
    """Issue the verdict of every zone that has one to issue (answers in its judged round, not issued
    yet, no redo items waiting): one query set for the district, then ``render_all`` (figures of every
    zone → zone code → PDF: one browser for all the maps), then every document in one transaction.
    Zones left out are listed with the reason (the error a single issue would answer)."""
    _check_issue(principal, False, None)
    with conn.transaction():
        _lock(conn, district_code)
        now = datetime.now(calendar().zone)
        first_seq, _ = _number(conn, rules, district_code=district_code, year=now.year)
        chosen: list[tuple[dict[str, Any], list[dict[str, Any]], int]] = []
        skipped = []
        for figures in acceptance.district_figures(
            conn, district_code=district_code, rules=rules, fee_grace_months=fee_grace_months
        ):
            refusal = _refusal(conn, figures, district_code=district_code, new_version=False, round_=None)
            if refusal is not None:
                skipped.append(
                    {
                        "zone_code": figures["zone"]["code"],
                        "field": refusal.field,
                        "reason": refusal.message,
                        "reason_zh": refusal.reason_zh,
                    }
                )
                continue
            seq = first_seq + len(chosen)
            number = document_number(rules.document_number_pattern, year=now.year, seq=seq)
            opened = _frozen(
                conn, principal, figures, district_code=district_code, rules=rules, now=now, number=number, why=None
            )
            chosen.append((figures, opened, seq))
        pdfs = render_all([f for f, _, _ in chosen]) if chosen else {}
        issued = [
            _store(
                conn,
                principal,
                figures,
                pdfs[figures["zone"]["code"]],
                opened,
                district_code=district_code,
                seq=seq,
                now=now,
            )
            for figures, opened, seq in chosen
        ]
    return {"issued": issued, "skipped": skipped}


def document(conn: psycopg.Connection, doc_id: int, *, district_code: str) -> dict[str, Any]:
    """An issued document: its metadata and the figures as frozen (404 when there is none)."""
    row = conn.execute(
        f"SELECT {_META}, figures FROM acceptance_documents WHERE district_code = %s AND id = %s",  # noqa: S608
        [district_code, doc_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"acceptance document {doc_id} does not exist", field="id", reason_zh="验收文书不存在")
    return {**_meta(row[:-1]), "figures": row[-1]}


_PDF_SQL = "SELECT pdf, sha256, number FROM acceptance_documents WHERE district_code = %s AND id = %s"


def _pdf_row(row: tuple[Any, ...] | None, doc_id: int) -> tuple[bytes, str, str]:
    if row is None:
        raise NotFound(f"acceptance document {doc_id} does not exist", field="id", reason_zh="验收文书不存在")
    return bytes(row[0]), row[1], row[2]


def document_pdf(doc_id: int, *, district_code: str) -> Steps[tuple[bytes, str, str]]:
    """An issued document's PDF as stored, its SHA-256 and its number."""
    rows = yield Statement(_PDF_SQL, [district_code, doc_id], binary=True)  # bytea as bytes, not hex
    return _pdf_row(one(rows), doc_id)
