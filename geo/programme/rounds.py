"""Survey rounds as records (调查轮次): which answers a zone is judged on.

A round has a label (``2023``, ``2023补课``), a kind (``first`` 首次验收 or
``redo`` 补课, labels in ``layers/vocabulary.toml``), the zones it covers, its
dates and its organiser; every answer belongs to one. A round is created on its
first use (an answer or an import names it, with its kind; it then covers the
zones it is used for) or declared beforehand with its zones (it then refuses
answers for any other zone).

**Each zone is judged on its own round**: the round an administrator fixed for
the zone, else the round ``WUYE_SURVEY_ROUND`` names when that round covers the
zone, else the zone's latest round by date (its last answer day, then its first,
then when it was recorded) that has counting answers for the zone. A 补课 round
of one zone therefore changes no other zone's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from layers.catalogue import vocabulary

KINDS: dict[str, str] = vocabulary("round_kinds").zh
LABEL_MAX = 40


def kind_code(value: str | None, *, field: str = "round_kind") -> str | None:
    """A round kind from its code or Chinese label (首次验收/补课); None for none; 400 for another."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    for code, label in KINDS.items():
        if text in (code, label):
            return code
    raise InvalidInput(
        f"{field} '{text}' is not a round kind; one of: " + ", ".join(f"{c} ({n})" for c, n in KINDS.items()),
        field=field,
        reason_zh=f"调查轮次类型「{text}」无效，应为：" + "、".join(KINDS.values()),
    )


def check_label(label: str, *, field: str = "round") -> str:
    """A round label, trimmed; 400 when empty or too long."""
    text = label.strip()
    if not text or len(text) > LABEL_MAX or "\x00" in text:
        raise InvalidInput(
            f"{field} must be 1 to {LABEL_MAX} characters",
            field=field,
            reason_zh=f"调查轮次名称应为 1 至 {LABEL_MAX} 个字符",
        )
    return text


@dataclass(frozen=True)
class Use:
    """The answers a write brings to one round: its zones and answer dates."""

    label: str
    zones: frozenset[str]
    first_day: date
    last_day: date


def problems_of_use(
    conn: psycopg.Connection, uses: list[Use], *, kind: str | None, district_code: str
) -> dict[str, str]:
    """Zone → why answers of a use may not go into its round (a zone outside a declared round, a kind
    that contradicts the round's); checked before anything is written."""
    out: dict[str, str] = {}
    for use in uses:
        row = _get(conn, use.label, district_code)
        if row is None:
            continue
        if kind is not None and kind != row["kind"]:
            for zone in use.zones:
                out.setdefault(
                    zone,
                    f"round '{use.label}' is a {row['kind']} ({KINDS[row['kind']]}) round, not {kind} ({KINDS[kind]})",
                )
        if row["zones_fixed"]:
            for zone in sorted(use.zones - set(row["zone_codes"])):
                out.setdefault(
                    zone,
                    f"zone '{zone}' is not covered by round '{use.label}' (it covers: {', '.join(row['zone_codes'])})",
                )
    return out


def record_use(conn: psycopg.Connection, uses: list[Use], *, kind: str | None, district_code: str, actor: str) -> None:
    """Create each round on its first use (kind ``first`` unless said), else take in its new zones and
    widen its dates; in the caller's transaction. Races between writers are settled by the key."""
    for use in uses:
        conn.execute(
            "INSERT INTO survey_rounds (district_code, label, kind, zone_codes, starts_on, ends_on, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (district_code, label) DO NOTHING",
            [district_code, use.label, kind or "first", sorted(use.zones), use.first_day, use.last_day, actor],
        )
        conn.execute(
            "UPDATE survey_rounds SET zone_codes = ARRAY(SELECT DISTINCT z FROM unnest(zone_codes || %s::text[]) z "
            "ORDER BY z), starts_on = LEAST(starts_on, %s), ends_on = GREATEST(ends_on, %s) "
            "WHERE district_code = %s AND label = %s AND NOT zones_fixed",
            [sorted(use.zones), use.first_day, use.last_day, district_code, use.label],
        )


_COLUMNS = "label, kind, zone_codes, zones_fixed, starts_on, ends_on, organiser, created_by, created_at"
_SELECT = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS.split(", "))


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    keys = _COLUMNS.split(", ")
    out = dict(zip(keys, r, strict=True))
    out["kind_zh"] = KINDS[out["kind"]]
    for k in ("starts_on", "ends_on", "created_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    return out


def _get(conn: psycopg.Connection, label: str, district_code: str) -> dict[str, Any] | None:
    r = conn.execute(
        sql.SQL("SELECT {} FROM survey_rounds WHERE district_code = %s AND label = %s").format(_SELECT),
        [district_code, label],
    ).fetchone()
    return _row(r) if r else None


def get(conn: psycopg.Connection, label: str, *, district_code: str) -> dict[str, Any]:
    """One round; 404 when there is none of that label."""
    row = _get(conn, label, district_code)
    if row is None:
        raise NotFound(f"survey round '{label}' does not exist", field="round", reason_zh=f"调查轮次「{label}」不存在")
    return row


def rounds(conn: psycopg.Connection, *, district_code: str) -> list[dict[str, Any]]:
    """Every round of the district, latest first, with its counting answers per zone."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM survey_rounds WHERE district_code = %s "
            "ORDER BY ends_on DESC NULLS LAST, starts_on DESC NULLS LAST, created_at DESC, label DESC"
        ).format(_SELECT),
        [district_code],
    ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for label, zone, n in conn.execute(
        "SELECT round, zone_code, count(*) FROM survey_answers WHERE district_code = %s AND withdrawn_at IS NULL "
        "GROUP BY round, zone_code ORDER BY round, zone_code",
        [district_code],
    ):
        counts.setdefault(label, {})[zone] = n
    return [{**_row(r), "answers": counts.get(r[0], {})} for r in rows]


def declare(
    conn: psycopg.Connection,
    *,
    district_code: str,
    label: str,
    kind: str,
    zone_codes: list[str],
    starts_on: date | None,
    ends_on: date | None,
    organiser: str | None,
    actor: str,
) -> dict[str, Any]:
    """Declare a round with the zones it covers (it refuses answers for others); 409 when the label is taken."""
    label = check_label(label)
    code = kind_code(kind, field="kind") or "first"
    if not zone_codes:
        raise InvalidInput(
            "zones: a round covers at least one zone", field="zones", reason_zh="调查轮次至少应包括一个小区"
        )
    known = {r[0] for r in conn.execute("SELECT code FROM zones WHERE district_code = %s", [district_code])}
    unknown = [z for z in zone_codes if z not in known]
    if unknown:
        raise InvalidInput(
            f"zones: zone '{unknown[0]}' does not exist", field="zones", reason_zh=f"小区「{unknown[0]}」不存在"
        )
    if starts_on and ends_on and ends_on < starts_on:
        raise InvalidInput("ends_on is before starts_on", field="ends_on", reason_zh="结束日期早于开始日期")
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO survey_rounds (district_code, label, kind, zone_codes, zones_fixed, starts_on, ends_on, "
            "organiser, created_by) VALUES (%s, %s, %s, %s, true, %s, %s, %s, %s) "
            "ON CONFLICT (district_code, label) DO NOTHING RETURNING label",
            [district_code, label, code, sorted(set(zone_codes)), starts_on, ends_on, organiser, actor],
        ).fetchone()
        if inserted is None:
            raise Conflict(
                f"survey round '{label}' already exists", field="label", reason_zh=f"调查轮次「{label}」已存在"
            )
    return get(conn, label, district_code=district_code)


def fix_zone_round(
    conn: psycopg.Connection,
    role: str,
    zone_code: str,
    label: str | None,
    *,
    district_code: str,
    reason: str,
    actor: str,
) -> dict[str, Any]:
    """An administrator fixes the round a zone is judged on (``label`` None: back to its latest round)."""
    if role != "admin":
        raise Forbidden(
            "only an administrator fixes the round a zone is judged on", reason_zh="仅管理员可指定小区的评定轮次"
        )
    if not reason.strip():
        raise InvalidInput("reason is required", field="reason", reason_zh="须填写原因")
    if (
        conn.execute(
            "SELECT 1 FROM zones WHERE district_code = %s AND code = %s", [district_code, zone_code]
        ).fetchone()
        is None
    ):
        raise NotFound(f"zone '{zone_code}' does not exist", field="code", reason_zh=f"小区「{zone_code}」不存在")
    with conn.transaction():
        if label is None:
            conn.execute(
                "DELETE FROM survey_zone_rounds WHERE district_code = %s AND zone_code = %s", [district_code, zone_code]
            )
        else:
            row = get(conn, label, district_code=district_code)
            if zone_code not in row["zone_codes"]:
                raise InvalidInput(
                    f"round: zone '{zone_code}' is not covered by round '{label}'",
                    field="round",
                    reason_zh=f"小区「{zone_code}」不在调查轮次「{label}」范围内",
                )
            conn.execute(
                "INSERT INTO survey_zone_rounds (district_code, zone_code, round, reason, set_by) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (district_code, zone_code) DO UPDATE "
                "SET round = EXCLUDED.round, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now()",
                [district_code, zone_code, label, reason.strip(), actor],
            )
    return {"zone_code": zone_code, "round": label, "reason": reason.strip()}


# The judged round of each zone, one statement: fixed > setting (when it covers the zone) > latest with answers.
JUDGED_SQL = """
SELECT z.code,
       COALESCE(f.round, st.label, l.label) AS round,
       CASE WHEN f.round IS NOT NULL THEN 'fixed' WHEN st.label IS NOT NULL THEN 'setting'
            WHEN l.label IS NOT NULL THEN 'latest' END AS chosen_by
FROM zones z
LEFT JOIN survey_zone_rounds f ON f.district_code = z.district_code AND f.zone_code = z.code
LEFT JOIN survey_rounds st ON st.district_code = z.district_code AND st.label = %(setting)s
     AND z.code = ANY (st.zone_codes)
LEFT JOIN LATERAL (
    SELECT r.label FROM survey_rounds r
    WHERE r.district_code = z.district_code AND z.code = ANY (r.zone_codes)
      AND EXISTS (SELECT 1 FROM survey_answers s WHERE s.district_code = r.district_code AND s.round = r.label
                  AND s.zone_code = z.code AND s.withdrawn_at IS NULL)
    ORDER BY r.ends_on DESC NULLS LAST, r.starts_on DESC NULLS LAST, r.created_at DESC, r.label DESC
    LIMIT 1
) l ON true
WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s)
"""


def judged_rounds(
    conn: psycopg.Connection, *, district_code: str, setting: str | None = None, zone_code: str | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """zone → (the round it is judged on, how it was chosen: fixed, setting or latest)."""
    rows = conn.execute(JUDGED_SQL, {"district": district_code, "setting": setting, "zone": zone_code}).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}
