"""The door-to-door satisfaction survey (满意度调查): answers per household, and per-zone figures.

**One answer per household per round.** A round is a label such as ``2023``
(the default: the answer date's year) or ``2023-08``; the household id is
unique within its zone (e.g. ``5-2-301``). A second answer for the same
household and round is refused with the existing one named (409, or a row
problem in an import) unless the caller asks to replace it (``replace=True``,
API ``?replace=true``, CLI ``--replace``); a replacement overwrites the answer
in place and keeps its id.

Figures per zone (one grouped query): answers, satisfied, the rate (displayed
rounded *down*, so 84.96% never shows as 85.0%), the share of the zone's
households reached, and a 95% Wilson score interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import replace as replace_field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.io.tabular import blank, parse_date, read_table, rejection
from geo.programme import rounds
from geo.spatial.validate import Problem
from geo.workcal import today
from layers.catalogue import vocabulary

SERVICE_KINDS: dict[str, str] = vocabulary("service_kinds").zh  # the survey scores one per kind
SCORES = tuple(f"score_{k}" for k in SERVICE_KINDS)
ENTRY_ROLES = ("admin", "survey_team")
Z95 = 1.959963984540054
_YES = {"是", "满意", "yes", "y", "true", "t", "1", "√"}
_NO = {"否", "不满意", "no", "n", "false", "f", "0", "×"}
COLUMNS: dict[str, tuple[str, ...]] = {
    "round": ("round", "轮次"),
    "zone": ("zone", "zone_code", "小区", "小区编码"),
    "building": ("building", "楼栋", "栋"),
    "household": ("household", "household_id", "户号", "住户"),
    "answered_on": ("answered_on", "date", "日期", "调查日期"),
    "surveyor": ("surveyor", "调查员"),
    "satisfied": ("satisfied", "是否满意", "总体满意", "满意"),
    **{f"score_{k}": (f"score_{k}", k, v) for k, v in SERVICE_KINDS.items()},
    "remark": ("remark", "备注", "意见"),
}


@dataclass(frozen=True)
class Answer:
    """One household's answer, validated."""

    zone_code: str
    household: str
    answered_on: date
    surveyor: str
    satisfied: bool
    round: str | None = None
    building: str | None = None
    scores: dict[str, int | None] = field(default_factory=dict)
    remark: str | None = None
    round_kind: str | None = None  # the kind of a round this answer creates (first when not said)

    @property
    def round_label(self) -> str:
        """The answer's survey round, or its year when none was given."""
        return self.round or str(self.answered_on.year)


def parse_satisfied(value: Any) -> bool | None:
    """是/否, 满意/不满意, yes/no, 1/0 → bool; None when it is none of them."""
    if isinstance(value, bool):
        return value
    text = "" if blank(value) else str(value).strip().lower()
    return True if text in _YES else False if text in _NO else None


def wilson(satisfied: int, answers: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None without answers."""
    if answers <= 0:
        return None
    p = satisfied / answers
    denom = 1 + z * z / answers
    centre = (p + z * z / (2 * answers)) / denom
    half = z * math.sqrt(p * (1 - p) / answers + z * z / (4 * answers * answers)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_floor_text(satisfied: int, answers: int) -> str | None:
    """The rate with one decimal, rounded down in integers: 8496/10000 → '84.9%'."""
    if answers <= 0:
        return None
    permille = 1000 * satisfied // answers
    return f"{permille // 10}.{permille % 10}%"


def _zones(conn: psycopg.Connection, principal: Principal, district_code: str) -> tuple[dict[str, str], set[str]]:
    """Every zone (code and name → code), and the codes the caller may survey."""
    rows = conn.execute("SELECT code, name FROM zones WHERE district_code = %s", [district_code]).fetchall()
    lookup = {code: code for code, _ in rows} | {name: code for code, name in rows}
    predicate, params = zone_scope(principal, sql.SQL("z.code"))
    stmt = sql.SQL("SELECT z.code FROM zones z WHERE z.district_code = %(district)s AND {}").format(predicate)
    mine = {r[0] for r in conn.execute(stmt, {**params, "district": district_code})}
    return lookup, mine


def survey_zones(conn: psycopg.Connection, principal: Principal, *, district_code: str) -> list[dict[str, str]]:
    """The zones the caller may survey (code and name, in code order): the entry form's choices."""
    _, mine = _zones(conn, principal, district_code)
    rows = conn.execute(
        "SELECT code, name FROM zones WHERE district_code = %s AND code = ANY(%s) ORDER BY subdistrict_code, code",
        [district_code, sorted(mine)],
    ).fetchall()
    return [{"code": code, "name": name} for code, name in rows]


def _existing(conn: psycopg.Connection, answers: list[Answer], district_code: str) -> dict[tuple[str, str, str], Any]:
    """(round, zone, household) → (id, date, surveyor) of answers already stored."""
    if not answers:
        return {}
    rows = conn.execute(
        "SELECT s.round, s.zone_code, s.household, s.id, s.answered_on, s.surveyor FROM survey_answers s "
        "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(round, zone, household) "
        "ON s.round = k.round AND s.zone_code = k.zone AND s.household = k.household "
        "WHERE s.district_code = %s AND s.withdrawn_at IS NULL",
        [
            [a.round_label for a in answers],
            [a.zone_code for a in answers],
            [a.household for a in answers],
            district_code,
        ],
    ).fetchall()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


def _describe(existing: tuple[Any, ...]) -> str:
    return f"answer #{existing[0]} of {existing[1]} by {existing[2]}"


def add(
    conn: psycopg.Connection, principal: Principal, answer: Answer, *, district_code: str, replace: bool = False
) -> dict[str, Any]:
    """Enter one answer (survey team in scope); a second for the household is 409 unless ``replace``."""
    if principal.role not in ENTRY_ROLES:
        raise Forbidden(f"role '{principal.role}' may not enter survey answers; needs one of: {', '.join(ENTRY_ROLES)}")
    problems: list[Problem] = []
    checked = _check_row(_raw(answer), 1, *_zones(conn, principal, district_code), problems)
    if problems:
        p = problems[0]
        if p.field == "zone":
            raise NotFound(f"zone '{answer.zone_code}' does not exist", field="code")
        raise InvalidInput(p.reason if p.reason != "missing" else f"{p.field} is required", field=p.field)
    assert checked is not None
    kind = rounds.kind_code(answer.round_kind)
    label = rounds.check_label(checked.round_label)
    checked = replace_field(checked, round=label)
    use = [rounds.Use(label, frozenset([checked.zone_code]), checked.answered_on, checked.answered_on)]
    key = (label, checked.zone_code, checked.household)
    with conn.transaction():
        refused = rounds.problems_of_use(conn, use, kind=kind, district_code=district_code)
        if refused:
            raise InvalidInput(refused[checked.zone_code], field="round", reason_zh=f"答卷不能计入调查轮次「{label}」")
        rounds.record_use(conn, use, kind=kind, district_code=district_code, actor=principal.actor)
        ids = _write(conn, [checked], district_code=district_code, actor=principal.actor, replace=replace)
        if not ids:  # the household's answer is there already (or another writer won the race just now)
            existing = _existing(conn, [checked], district_code)[key]
            raise Conflict(
                f"household '{checked.household}' of zone '{checked.zone_code}' already answered in round "
                f"{label}: {_describe(existing)}; send replace=true to replace it",
                field="household",
                reason_zh=f"该户本轮已有答卷（#{existing[0]}），如需替换请指定 replace=true",
                existing_id=existing[0],
            )
    return {
        "id": ids[0][0],
        "round": label,
        "zone_code": checked.zone_code,
        "household": checked.household,
        "replaced": not ids[0][1],
    }


def _raw(answer: Answer) -> dict[str, Any]:
    return {
        "round": answer.round,
        "zone": answer.zone_code,
        "building": answer.building,
        "household": answer.household,
        "answered_on": answer.answered_on.isoformat(),
        "surveyor": answer.surveyor,
        "satisfied": answer.satisfied,
        "remark": answer.remark,
        **{s: answer.scores.get(s) for s in SCORES},
    }


def _check_row(
    values: dict[str, Any], i: int, lookup: dict[str, str], mine: set[str], problems: list[Problem]
) -> Answer | None:
    """Validate one row; append its problems; the Answer when it has none."""
    before = len(problems)
    zone_text = "" if blank(values["zone"]) else str(values["zone"]).strip()
    zone = lookup.get(zone_text)
    if not zone_text:
        problems.append(Problem(i, "zone", "missing"))
    elif zone is None:
        problems.append(Problem(i, "zone", f"zone '{zone_text}' does not exist"))
    elif zone not in mine:
        problems.append(Problem(i, "zone", f"zone '{zone_text}' is not in your survey scope"))
    household = "" if blank(values["household"]) else str(values["household"]).strip()
    if not household:
        problems.append(Problem(i, "household", "missing"))
    on = parse_date(values["answered_on"], i, "answered_on", problems, not_after=today())
    surveyor = "" if blank(values["surveyor"]) else str(values["surveyor"]).strip()
    if not surveyor:
        problems.append(Problem(i, "surveyor", "missing"))
    satisfied = parse_satisfied(values["satisfied"])
    if satisfied is None:
        problems.append(Problem(i, "satisfied", f"'{values['satisfied']}' is not 是/否 (yes/no)"))
    scores = {s: _score(values.get(s), i, s, problems) for s in SCORES}
    if len(problems) > before or zone is None or on is None or satisfied is None:
        return None
    text = {k: None if blank(values.get(k)) else str(values[k]).strip() for k in ("round", "building", "remark")}
    return Answer(
        zone,
        household,
        on,
        surveyor,
        satisfied,
        round=text["round"],
        building=text["building"],
        scores=scores,
        remark=text["remark"],
    )


def _score(value: Any, i: int, name: str, problems: list[Problem]) -> int | None:
    if blank(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if not number.is_integer() or not 1 <= number <= 5:
        problems.append(Problem(i, name, f"'{value}' is not a score from 1 to 5"))
        return None
    return int(number)


def _write(
    conn: psycopg.Connection,
    answers: list[Answer],
    *,
    district_code: str,
    actor: str,
    replace: bool,
    batch_id: int | None = None,
) -> list[tuple[int, bool]]:
    """Insert; on the (round, zone, household) key of a counting answer either overwrite it in place
    (``replace``) or leave it and return nothing for that row, so the database settles races.
    Returns (id, inserted) of each row written."""
    cols = [
        "district_code",
        "round",
        "zone_code",
        "building",
        "household",
        "answered_on",
        "surveyor",
        "satisfied",
        *SCORES,
        "remark",
        "actor",
        "batch_id",
    ]
    rows = [
        [
            district_code,
            a.round_label,
            a.zone_code,
            a.building,
            a.household,
            a.answered_on,
            a.surveyor,
            a.satisfied,
            *[a.scores.get(s) for s in SCORES],
            a.remark,
            actor,
            batch_id,
        ]
        for a in answers
    ]
    update = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols[3:])
    on_conflict = (
        sql.SQL("DO UPDATE SET {update}, created_at = now()").format(update=update)
        if replace
        else sql.SQL("DO NOTHING")
    )
    stmt = sql.SQL(
        "INSERT INTO survey_answers ({cols}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (district_code, round, zone_code, household) WHERE withdrawn_at IS NULL {on_conflict} "
        "RETURNING id, xmax = 0"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        arrays=sql.SQL(", ").join(
            sql.SQL("%s::{}[]").format(sql.SQL(t))
            for t in (
                "text",
                "text",
                "text",
                "text",
                "text",
                "date",
                "text",
                "boolean",
                *["smallint"] * len(SCORES),
                "text",
                "text",
                "bigint",
            )
        ),
        on_conflict=on_conflict,
    )
    return [(r[0], r[1]) for r in conn.execute(stmt, [list(col) for col in zip(*rows, strict=True)]).fetchall()]


def import_file(
    conn: psycopg.Connection,
    principal: Principal,
    path: Path,
    *,
    district_code: str,
    replace: bool = False,
    round_: str | None = None,
    round_kind: str | None = None,
) -> dict[str, Any]:
    """Import a survey team's CSV/XLSX: every row validated (unknown or out-of-scope zone, missing household,
    future or bad date, bad yes/no or score, a household twice in the file or already answered, a zone
    outside its round) before anything is written; one bad row rejects the file with row-level problems.
    The file's answers go into ``round_`` (else each row's round column, else the answer's year); a round
    is created on first use with ``round_kind`` (first unless said). The import is one batch."""
    if principal.role not in ENTRY_ROLES:
        raise Forbidden(
            f"role '{principal.role}' may not import survey answers; needs one of: {', '.join(ENTRY_ROLES)}"
        )
    frame = read_table(path, COLUMNS)
    return import_frame(
        conn,
        principal,
        frame,
        district_code=district_code,
        replace=replace,
        round_=round_,
        round_kind=round_kind,
        source=path.name,
    )


def _uses(answers: list[Answer]) -> list[rounds.Use]:
    by_round: dict[str, list[Answer]] = {}
    for a in answers:
        by_round.setdefault(a.round_label, []).append(a)
    return [
        rounds.Use(
            label,
            frozenset(a.zone_code for a in items),
            min(a.answered_on for a in items),
            max(a.answered_on for a in items),
        )
        for label, items in sorted(by_round.items())  # one lock order for every writer
    ]


def import_frame(
    conn: psycopg.Connection,
    principal: Principal,
    frame: pd.DataFrame,
    *,
    district_code: str,
    replace: bool = False,
    round_: str | None = None,
    round_kind: str | None = None,
    source: str = "import",
) -> dict[str, Any]:
    """:func:`import_file` on rows already read (columns as in ``COLUMNS``)."""
    kind = rounds.kind_code(round_kind)
    label = rounds.check_label(round_) if round_ is not None else None
    lookup, mine = _zones(conn, principal, district_code)
    problems: list[Problem] = []
    answers: list[tuple[int, Answer]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, record in enumerate(frame.to_dict("records"), start=1):
        answer = _check_row({str(k): v for k, v in record.items()}, i, lookup, mine, problems)
        if answer is None:
            continue
        if label is not None:
            answer = replace_field(answer, round=label)
        elif len(answer.round_label) > rounds.LABEL_MAX:
            problems.append(Problem(i, "round", f"round must be 1 to {rounds.LABEL_MAX} characters"))
            continue
        key = (answer.round_label, answer.zone_code, answer.household)
        if key in seen:
            problems.append(
                Problem(
                    i,
                    "household",
                    f"household '{answer.household}' of zone '{answer.zone_code}' "
                    f"is also on row {seen[key]} (one answer per household per round)",
                )
            )
            continue
        seen[key] = i
        answers.append((i, answer))
    uses = _uses([a for _, a in answers])
    with conn.transaction():
        refused = rounds.problems_of_use(conn, uses, kind=kind, district_code=district_code)
        problems += [Problem(i, "zone", refused[a.zone_code]) for i, a in answers if a.zone_code in refused]
        existing = _existing(conn, [a for _, a in answers], district_code)
        if not replace:
            problems += [
                Problem(
                    i,
                    "household",
                    f"household '{a.household}' of zone '{a.zone_code}' already answered "
                    f"in round {a.round_label}: {_describe(existing[k])}",
                )
                for i, a in answers
                if (k := (a.round_label, a.zone_code, a.household)) in existing
            ]
        if problems:
            raise rejection("the survey file", sorted(problems), len(frame))
        rounds.record_use(conn, uses, kind=kind, district_code=district_code, actor=principal.actor)
        batch = conn.execute(
            "INSERT INTO survey_batches (district_code, source, rows, actor) VALUES (%s, %s, %s, %s) RETURNING id",
            [district_code, source[:200], len(frame), principal.actor],
        ).fetchone()
        assert batch is not None
        written = _write(
            conn,
            [a for _, a in answers],
            district_code=district_code,
            actor=principal.actor,
            replace=replace,
            batch_id=batch[0],
        )
        if len(written) < len(answers):  # another writer answered for one of these households meanwhile
            raise Conflict(
                "another survey entry for these households was written during the import; import the file again",
                field="household",
                reason_zh="导入期间有其他答卷写入相同住户，请重新导入",
            )
    inserted = sum(1 for _, new in written if new)
    return {
        "rows": len(frame),
        "inserted": inserted,
        "replaced": len(written) - inserted,
        "batch": batch[0],
        "rounds": sorted(u.label for u in uses),
    }


def zone_figures(
    conn: psycopg.Connection,
    *,
    district_code: str,
    round_: str | None = None,
    zone_code: str | None = None,
    setting: str | None = None,
) -> dict[str, dict[str, Any]]:
    """zone → answers, satisfied, households and per-kind mean scores (one grouped query): of ``round_``
    when one is named, else of each zone's own judged round (:func:`geo.programme.rounds.judged_rounds`;
    ``setting`` is ``WUYE_SURVEY_ROUND``). Withdrawn answers do not count."""
    rows = conn.execute(
        "WITH judged AS (" + rounds.JUDGED_SQL + ") "
        "SELECT z.code, max(z.households), count(s.id), count(s.id) FILTER (WHERE s.satisfied), "
        + ", ".join(f"avg(s.{c})" for c in SCORES)
        + ", max(r.label), max(r.kind), max(j.chosen_by) "
        "FROM zones z JOIN judged j ON j.code = z.code "
        "LEFT JOIN survey_rounds r ON r.district_code = z.district_code "
        " AND r.label = COALESCE(%(round)s::text, j.round) "
        "LEFT JOIN survey_answers s ON s.zone_code = z.code AND s.round = r.label "
        " AND s.district_code = z.district_code AND s.withdrawn_at IS NULL "
        "WHERE z.district_code = %(district)s GROUP BY z.code",
        {"round": round_, "district": district_code, "zone": zone_code, "setting": setting},
    ).fetchall()
    out = {}
    for r in rows:
        means = {
            k: (round(float(v), 2) if v is not None else None) for k, v in zip(SERVICE_KINDS, r[4:-3], strict=True)
        }
        label, kind, chosen_by = r[-3:]
        out[r[0]] = figures(int(r[3]), int(r[2]), r[1], label or round_, means, kind=kind)
        out[r[0]]["round_chosen_by"] = "named" if round_ is not None else chosen_by
    return out


def household_warnings(answers: int, households: int | None) -> list[dict[str, str]]:
    """A plain warning when a zone has more answers than recorded households (share reached > 100%)."""
    if not households or answers <= households:
        return []
    return [
        {
            "code": "answers_exceed_households",
            "zh": f"答卷户数超过登记户数：答卷 {answers} 户，登记 {households} 户，入户覆盖率超过 100%，"
            "请核实登记户数或答卷",
            "en": f"answers ({answers}) exceed the recorded households ({households}): the share reached is "
            "over 100%; check the household register or the answers",
        }
    ]


def figures(
    satisfied: int,
    answers: int,
    households: int | None,
    round_: str | None,
    scores: dict[str, float | None] | None = None,
    *,
    kind: str | None = None,
) -> dict[str, Any]:
    """The survey figures of one zone, the rate in exact integers and a display rounded down.

    The share of households reached is shown as it is, also above 100% (answers over the recorded
    households), never capped: a cap would print a plausible 100% over a register or a survey that
    is wrong. Such a zone is flagged (``answers_exceed_households``) with a warning saying so."""
    interval = wilson(satisfied, answers)
    warnings = household_warnings(answers, households)
    return {
        "round": round_,
        "round_kind": kind,
        "round_kind_zh": rounds.KINDS.get(kind or ""),
        "round_chosen_by": None,
        "answers": answers,
        "satisfied": satisfied,
        "households": households,
        "rate_display": rate_floor_text(satisfied, answers),
        "rate": satisfied / answers if answers else None,
        "reached_display": rate_floor_text(answers, households) if households else None,
        "reached": answers / households if households else None,
        "answers_exceed_households": bool(warnings),
        "warnings": warnings,
        "wilson_95": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
        "mean_scores": scores or {},
    }


def zone_answers(
    conn: psycopg.Connection, principal: Principal, zone_code: str, *, district_code: str, round_: str | None
) -> list[dict[str, Any]]:
    """A zone's answers of a round (admins and the zone's survey team only)."""
    if principal.role not in ENTRY_ROLES:
        raise Forbidden("individual answers are shown to administrators and the zone's survey team only")
    _, mine = _zones(conn, principal, district_code)
    if zone_code not in mine:
        raise NotFound(f"zone '{zone_code}' does not exist", field="code")
    rows = conn.execute(
        "SELECT id, round, building, household, answered_on, surveyor, satisfied, remark FROM survey_answers "
        "WHERE district_code = %s AND zone_code = %s AND round = %s AND withdrawn_at IS NULL "
        "ORDER BY building, household",
        [district_code, zone_code, round_],
    ).fetchall()
    keys = ("id", "round", "building", "household", "answered_on", "surveyor", "satisfied", "remark")
    return [dict(zip(keys, (*r[:4], r[4].isoformat(), *r[5:]), strict=True)) for r in rows]
