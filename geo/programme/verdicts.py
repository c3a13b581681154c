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
from geo.programme import acceptance
from geo.settings import AcceptanceSettings
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
) -> dict[str, Any]:
    """Issue the zone's verdict for ``round_`` (default: the round it is judged on); 409 when that round's
    verdict is issued already unless ``new_version`` (with a reason); 400 for a round without answers."""
    if principal.role != "admin":
        raise Forbidden("only an administrator issues a verdict", reason_zh="仅管理员可签发验收结论")
    why = (reason or "").strip() or None
    if new_version and why is None:
        raise InvalidInput("reason is required for a new version", field="reason", reason_zh="重新签发须说明更正原因")
    with conn.transaction():
        # one issuer at a time per district: the year's sequence has no gaps and no twins
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('acceptance_documents:' || %s))", [district_code])
        figures = acceptance.zone_acceptance(conn, zone_code, district_code=district_code, rules=rules, round_=round_)
        label, answers = figures["survey"]["round"], figures["survey"]["answers"]
        if not label or answers == 0:
            raise InvalidInput(
                f"round: zone '{zone_code}' has no counting answers in round '{label or round_ or '-'}': "
                "nothing to issue",
                field="round",
                reason_zh="该小区本轮无调查答卷，不能签发验收结论",
            )
        previous = conn.execute(
            f"SELECT {_META} FROM acceptance_documents WHERE district_code = %s AND zone_code = %s AND round = %s "  # noqa: S608  fixed column list
            "ORDER BY version DESC LIMIT 1",
            [district_code, zone_code, label],
        ).fetchone()
        if previous is not None and not new_version:
            raise Conflict(
                f"the verdict of zone '{zone_code}' for round '{label}' was issued as {previous[1]}; "
                "send new_version=true with a reason to issue a corrected one",
                field="new_version",
                reason_zh=f"该轮验收结论已签发（{previous[1]}），如需更正请签发新版本并说明原因",
                number=previous[1],
            )
        if previous is None and new_version:
            raise InvalidInput(
                f"new_version: zone '{zone_code}' has no issued verdict for round '{label}' to replace",
                field="new_version",
                reason_zh="该轮尚未签发，无可替代的版本",
            )
        now = datetime.now(calendar().zone)
        seq_row = conn.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM acceptance_documents WHERE district_code = %s AND year = %s",
            [district_code, now.year],
        ).fetchone()
        assert seq_row is not None
        number = document_number(rules.document_number_pattern, year=now.year, seq=int(seq_row[0]))
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
        # the document's own history ends with itself (首次验收 补课 on …, 补课 通过 on …)
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
        pdf = render(figures)
        digest = hashlib.sha256(pdf).hexdigest()
        row = conn.execute(
            "INSERT INTO acceptance_documents (district_code, number, year, seq, zone_code, round, version, replaces, "
            "reason, verdict, figures, pdf, sha256, issued_by, issued_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _META,
            [
                district_code,
                number,
                now.year,
                seq_row[0],
                zone_code,
                label,
                version,
                figures["issue"]["replaces"],
                why,
                figures["verdict"],
                Jsonb(figures),
                pdf,
                digest,
                principal.actor,
                now,
            ],
        ).fetchone()
        assert row is not None
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="verdict.issue",
            table="acceptance_documents",
            code=number,
            details={"zone": zone_code, "round": label, "version": version, "sha256": digest, "reason": why},
        )
    return _meta(row)


def document(conn: psycopg.Connection, doc_id: int, *, district_code: str) -> dict[str, Any]:
    """An issued document: its metadata and the figures as frozen (404 when there is none)."""
    row = conn.execute(
        f"SELECT {_META}, figures FROM acceptance_documents WHERE district_code = %s AND id = %s",  # noqa: S608
        [district_code, doc_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"acceptance document {doc_id} does not exist", field="id", reason_zh="验收文书不存在")
    return {**_meta(row[:-1]), "figures": row[-1]}


def document_pdf(conn: psycopg.Connection, doc_id: int, *, district_code: str) -> tuple[bytes, str, str]:
    """An issued document's PDF as stored, its SHA-256 and its number."""
    row = conn.execute(
        "SELECT pdf, sha256, number FROM acceptance_documents WHERE district_code = %s AND id = %s",
        [district_code, doc_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"acceptance document {doc_id} does not exist", field="id", reason_zh="验收文书不存在")
    return bytes(row[0]), row[1], row[2]
