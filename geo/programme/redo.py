"""补课 is work with a deadline: the redo plan an issued 补课 verdict opens (issue 15).

Issuing a 补课 (redo) verdict (:func:`geo.programme.verdicts.issue`) opens one item per failed
criterion for the zone, unless the zone has that criterion's item still unfinished (a corrected
version carries it on). Each item has its responsible unit (the zone's sub-district office by
default), a deadline (``WUYE_REDO_DAYS`` calendar days after the issue day: the issue says days,
and the plan's deadlines are dates like the phase deadlines, not working hours like a case's), a
state (``layers/vocabulary.toml`` ``redo_states``) and its evidence (notes, photos, links to the
zone's remediation tasks or cases). An item is overdue as a case is: its deadline passed before it
was done, or before today while it is not. When the items are done, the zone's 补课 round is
surveyed and its verdict issued; until then issuing a verdict on a 补课 round is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.access.users import audit
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.io import photos
from geo.programme import standards
from geo.programme.standards import failing
from geo.workcal import today
from layers.catalogue import vocabulary

STATES: dict[str, str] = vocabulary("redo_states").zh
MOVES = ("open", "in_progress", "done")  # the states a person sets; ``withdrawn`` only a corrected verdict
UNFINISHED = ("open", "in_progress")
EVIDENCE_KINDS: dict[str, str] = vocabulary("redo_evidence_kinds").zh
CRITERIA = standards.CRITERIA  # the plan's four standards' criteria (issue 19)
STAFF = ("admin", "subdistrict_staff")  # who sets an item's unit and deadline, or adds one by hand
WORKERS = ("admin", "subdistrict_staff", "property_team")  # who reports progress and evidence
NOTE_MAX = 2000

_ITEM = (
    "SELECT i.id, i.zone_code, z.name, i.document_id, d.number, i.criterion, i.title_zh, i.detail_zh, "
    "i.unit_code, u.name, i.due_on, i.state, i.done_on, "
    "i.state <> 'withdrawn' AND i.due_on < coalesce(i.done_on, %(today)s) AS overdue, "
    "i.version, i.created_by, i.created_at, i.updated_by, i.updated_at "
    "FROM redo_items i JOIN zones z ON z.district_code = i.district_code AND z.code = i.zone_code "
    "LEFT JOIN acceptance_documents d ON d.district_code = i.district_code AND d.id = i.document_id "
    "LEFT JOIN units u ON u.code = i.unit_code "
)
_KEYS = [
    "id",
    "zone_code",
    "zone_name",
    "document_id",
    "document_number",
    "criterion",
    "title_zh",
    "detail_zh",
    "unit_code",
    "unit_name",
    "due_on",
    "state",
    "done_on",
    "overdue",
    "version",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
]


def due_on(issued_on: date, days: int) -> date:
    """An item's deadline: ``days`` calendar days after the issue day."""
    return issued_on + timedelta(days=days)


def office_unit(conn: psycopg.Connection, zone_code: str, *, district_code: str) -> tuple[str | None, str | None]:
    """The zone's sub-district office (code, name): an item's responsible unit unless one is named."""
    row = conn.execute(
        "SELECT u.code, u.name FROM zones z JOIN subdistricts s ON s.code = z.subdistrict_code "
        "LEFT JOIN units u ON u.code = s.office_unit WHERE z.district_code = %s AND z.code = %s",
        [district_code, zone_code],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def planned(
    conn: psycopg.Connection, figures: dict[str, Any], *, district_code: str, issued_on: date, days: int
) -> list[dict[str, Any]]:
    """The items a 补课 verdict with these figures opens: one per failed criterion the zone has no
    unfinished item for (not yet written: the caller writes them with the document)."""
    if figures["verdict"] != "redo":
        return []
    zone = figures["zone"]["code"]
    unfinished = {i["criterion"] for i in figures["redo"]["items"] if i["state"] in UNFINISHED}
    unit, unit_name = office_unit(conn, zone, district_code=district_code)
    return [
        {
            "criterion": c["criterion"],
            "title_zh": c["title_zh"],
            "detail_zh": c["detail_zh"],
            "unit_code": unit,
            "unit_name": unit_name,
            "due_on": due_on(issued_on, days).isoformat(),
            "state": "open",
            "state_zh": STATES["open"],
            "done_on": None,
            "overdue": False,
        }
        for c in figures["criteria"]
        if failing(c) and c["criterion"] not in unfinished
    ]


def open_items(
    conn: psycopg.Connection,
    items: Iterable[dict[str, Any]],
    *,
    document_id: int,
    zone_code: str,
    district_code: str,
    actor: str,
) -> list[int]:
    """Write the items :func:`planned` gave, for the document just issued (in the caller's transaction)."""
    ids = []
    for item in items:
        row = conn.execute(
            "INSERT INTO redo_items (district_code, zone_code, document_id, criterion, title_zh, detail_zh, "
            "unit_code, due_on, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [
                district_code,
                zone_code,
                document_id,
                item["criterion"],
                item["title_zh"],
                item["detail_zh"],
                item["unit_code"],
                item["due_on"],
                actor,
            ],
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def withdraw_met(
    conn: psycopg.Connection, figures: dict[str, Any], *, district_code: str, number: str, actor: str
) -> list[int]:
    """A corrected version no longer fails a criterion: the zone's unfinished items for it are withdrawn,
    with a note naming the new document (in the caller's transaction)."""
    met = [c["criterion"] for c in figures["criteria"] if not failing(c)]
    rows = conn.execute(
        "UPDATE redo_items SET state = 'withdrawn', version = version + 1, updated_by = %s, updated_at = now() "
        "WHERE district_code = %s AND zone_code = %s AND criterion = ANY(%s) AND state IN ('open', 'in_progress') "
        "RETURNING id",
        [actor, district_code, figures["zone"]["code"], met],
    ).fetchall()
    for (item_id,) in rows:
        _evidence(
            conn,
            item_id,
            "note",
            district_code=district_code,
            actor=actor,
            note=f"更正后的验收结论 {number} 认定该条件已符合，整改事项撤销",
        )
    return [int(r[0]) for r in rows]


def withdrawn_in(figures: dict[str, Any]) -> None:
    """The plan a corrected version prints: unfinished items of criteria it finds met, as withdrawn."""
    met = {c["criterion"] for c in figures["criteria"] if not failing(c)}
    items = [
        {**i, "state": "withdrawn", "state_zh": STATES["withdrawn"], "overdue": False}
        if i["state"] in UNFINISHED and i["criterion"] in met
        else i
        for i in figures["redo"]["items"]
    ]
    figures["redo"] = {**counts(items), "items": items}


def blocking(conn: psycopg.Connection, zone_code: str, label: str, *, district_code: str) -> list[dict[str, Any]]:
    """The zone's unfinished items that a verdict on 补课 round ``label`` waits for: all but those its
    own earlier versions opened (a corrected 补课-round verdict is not held up by its own plan)."""
    rows = conn.execute(
        "SELECT i.id, i.criterion, i.due_on FROM redo_items i "
        "LEFT JOIN acceptance_documents d ON d.district_code = i.district_code AND d.id = i.document_id "
        "WHERE i.district_code = %s AND i.zone_code = %s AND i.state IN ('open', 'in_progress') "
        "AND d.round IS DISTINCT FROM %s ORDER BY i.id",
        [district_code, zone_code, label],
    ).fetchall()
    return [{"id": r[0], "criterion": r[1], "due_on": r[2].isoformat()} for r in rows]


def _rows(
    conn: psycopg.Connection, where: sql.Composable, params: dict[str, Any], *, lock: bool = False
) -> list[dict[str, Any]]:
    stmt = sql.SQL(_ITEM) + sql.SQL("WHERE ") + where + sql.SQL(" ORDER BY i.zone_code, i.id")
    if lock:
        stmt += sql.SQL(" FOR UPDATE OF i")
    out = []
    for r in conn.execute(stmt, {"today": today(), **params}).fetchall():
        item = dict(zip(_KEYS, r, strict=True))
        item["state_zh"] = STATES[item["state"]]
        for k in ("due_on", "done_on"):
            item[k] = item[k].isoformat() if item[k] else None
        for k in ("created_at", "updated_at"):
            item[k] = item[k].isoformat(timespec="seconds")
        out.append(item)
    return out


def _with_evidence(conn: psycopg.Connection, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {i["id"]: {**i, "evidence": []} for i in items}
    if by_id:
        rows = conn.execute(
            "SELECT item_id, id, kind, note, ref, content_type, bytes, actor, at FROM redo_evidence "
            "WHERE item_id = ANY(%s) ORDER BY item_id, id",
            [list(by_id)],
        ).fetchall()
        for item_id, ev_id, kind, note, ref, content_type, size, actor, at in rows:
            entry: dict[str, Any] = {"id": ev_id, "kind": kind, "kind_zh": EVIDENCE_KINDS[kind], "note": note}
            entry["ref"] = ref
            entry["url"] = (
                f"/redo-items/{item_id}/photos/{ev_id}"
                if kind == "photo"
                else f"/remediation/{ref}"
                if kind == "task"
                else f"/cases/{ref}"
                if kind == "case"
                else None
            )
            entry |= {"content_type": content_type, "bytes": size, "actor": actor}
            entry["at"] = at.isoformat(timespec="seconds")
            by_id[item_id]["evidence"].append(entry)
    return list(by_id.values())


def items(
    conn: psycopg.Connection,
    *,
    district_code: str,
    zone_code: str | None = None,
    state: str | None = None,
    overdue: bool | None = None,
) -> list[dict[str, Any]]:
    """Redo items with their evidence, by zone then age; filtered by zone, state and overdue flag."""
    if state is not None and state not in STATES:
        raise InvalidInput(
            f"state '{state}' is not one of {', '.join(STATES)}",
            field="state",
            reason_zh="整改状态无效，应为：" + "、".join(STATES.values()),
        )
    where = sql.SQL(
        "i.district_code = %(district)s AND (%(zone)s::text IS NULL OR i.zone_code = %(zone)s) "
        "AND (%(state)s::text IS NULL OR i.state = %(state)s) "
        "AND (%(overdue)s::boolean IS NULL "
        "OR (i.state <> 'withdrawn' AND i.due_on < coalesce(i.done_on, %(today)s)) = %(overdue)s)"
    )
    rows = _rows(conn, where, {"district": district_code, "zone": zone_code, "state": state, "overdue": overdue})
    return _with_evidence(conn, rows)


def plan(conn: psycopg.Connection, zone_code: str, *, district_code: str) -> dict[str, Any]:
    """One zone's redo plan: its items with evidence and their counts (404 for an unknown zone)."""
    if (
        conn.execute(
            "SELECT 1 FROM zones WHERE district_code = %s AND code = %s", [district_code, zone_code]
        ).fetchone()
        is None
    ):
        raise NotFound(f"zone '{zone_code}' does not exist", field="code", reason_zh=f"小区「{zone_code}」不存在")
    found = items(conn, district_code=district_code, zone_code=zone_code)
    return {"zone_code": zone_code, **counts(found), "items": found}


def counts(found: list[dict[str, Any]]) -> dict[str, int]:
    """Items (withdrawn ones left out), done and overdue of a list of items."""
    return {
        "total": sum(i["state"] != "withdrawn" for i in found),
        "done": sum(i["state"] == "done" for i in found),
        "overdue": sum(bool(i["overdue"]) for i in found),
    }


def zone_summaries(conn: psycopg.Connection, *, district_code: str, zone_code: str | None) -> dict[str, dict[str, Any]]:
    """zone → its plan as the acceptance figures carry it: items (without evidence) and counts."""
    where = sql.SQL("i.district_code = %(district)s AND (%(zone)s::text IS NULL OR i.zone_code = %(zone)s)")
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for item in _rows(conn, where, {"district": district_code, "zone": zone_code}):
        brief = {k: item[k] for k in ("id", "criterion", "title_zh", "unit_name", "due_on", "state", "state_zh")}
        brief |= {"done_on": item["done_on"], "overdue": item["overdue"], "document_number": item["document_number"]}
        by_zone.setdefault(item["zone_code"], []).append(brief)
    return {zone: {**counts(found), "items": found} for zone, found in by_zone.items()}


EMPTY: dict[str, Any] = {"total": 0, "done": 0, "overdue": 0, "items": []}


# ------------------------------------------------------------------ writes


def _locked(conn: psycopg.Connection, principal: Principal, item_id: int, district_code: str) -> dict[str, Any]:
    """The item, locked, when it lies in the caller's zones (404 otherwise: existence is not leaked)."""
    predicate, params = zone_scope(principal, sql.SQL("i.zone_code"))
    where = sql.SQL("i.district_code = %(district)s AND i.id = %(item)s AND ") + predicate
    found = _rows(conn, where, {**params, "district": district_code, "item": item_id}, lock=True)
    if not found:
        raise NotFound(f"redo item {item_id} does not exist", field="item_id", reason_zh="补课整改事项不存在")
    return found[0]


def _unit(conn: psycopg.Connection, code: str) -> str:
    row = conn.execute("SELECT code FROM units WHERE code = %s", [code]).fetchone()
    if row is None:
        raise InvalidInput(f"unit: unit '{code}' does not exist", field="unit", reason_zh=f"责任单位「{code}」不存在")
    return str(row[0])


def _links(conn: psycopg.Connection, table: str, field: str, codes: list[str], zone: str, district: str) -> None:
    """Every linked task or case exists and lies in the item's zone (400 naming the first that does not)."""
    label = {"tasks": "整治任务", "cases": "事件"}[field]
    stmt = sql.SQL("SELECT code FROM {} WHERE district_code = %s AND zone_code = %s AND code = ANY(%s)").format(
        sql.Identifier(table)
    )
    found = {r[0] for r in conn.execute(stmt, [district, zone, codes])}
    missing = [c for c in codes if c not in found]
    if missing:
        raise InvalidInput(
            f"{field}: '{missing[0]}' is not a {table[:-1].replace('_', ' ')} of zone '{zone}'",
            field=field,
            reason_zh=f"{label}「{missing[0]}」不存在或不属于该小区",
        )


def _evidence(
    conn: psycopg.Connection, item_id: int, kind: str, *, district_code: str, actor: str, **values: Any
) -> int:
    row = conn.execute(
        "INSERT INTO redo_evidence (district_code, item_id, kind, note, ref, path, content_type, bytes, actor) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [
            district_code,
            item_id,
            kind,
            values.get("note"),
            values.get("ref"),
            values.get("path"),
            values.get("content_type"),
            values.get("bytes"),
            actor,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _check_update(principal: Principal, changes: dict[str, Any]) -> None:
    """What the request may change, before anything is read or written."""
    if principal.role not in WORKERS:
        raise Forbidden(
            f"role '{principal.role}' may not update redo items; needs one of: {', '.join(WORKERS)}",
            reason_zh="无权更新补课整改事项",
        )
    if ("unit" in changes or "due_on" in changes) and principal.role not in STAFF:
        raise Forbidden(
            "only sub-district staff and administrators set an item's unit or deadline",
            reason_zh="仅街道工作人员与管理员可调整责任单位或整改期限",
        )
    state = changes.get("state")
    if state is not None and state not in MOVES:
        raise InvalidInput(
            f"state '{state}' is not one of {', '.join(MOVES)}",
            field="state",
            reason_zh="整改状态无效，应为：" + "、".join(STATES[m] for m in MOVES),
        )
    note = changes.get("note")
    if note is not None and (not note.strip() or len(note) > NOTE_MAX or "\x00" in note):
        raise InvalidInput(f"note must be 1 to {NOTE_MAX} characters", field="note", reason_zh="说明内容无效")
    if changes.get("due_on") is None and "due_on" in changes:
        raise InvalidInput("due_on may not be empty", field="due_on", reason_zh="整改期限不能为空")


def update(
    conn: psycopg.Connection, principal: Principal, item_id: int, changes: dict[str, Any], *, district_code: str
) -> dict[str, Any]:
    """Move an item (state), set its unit or deadline (staff), add a note or links to the zone's
    remediation tasks and cases as evidence; one transaction, validated first. ``done`` needs evidence."""
    _check_update(principal, changes)
    with conn.transaction():
        item = _locked(conn, principal, item_id, district_code)
        zone = item["zone_code"]
        if item["state"] == "withdrawn":
            raise Conflict(
                f"state: redo item {item_id} was withdrawn by a corrected verdict: it takes no more moves",
                field="state",
                reason_zh="该整改事项已随更正后的验收结论撤销",
            )
        tasks, cases = list(changes.get("tasks") or []), list(changes.get("cases") or [])
        if tasks:
            _links(conn, "remediation_tasks", "tasks", tasks, zone, district_code)
        if cases:
            _links(conn, "cases", "cases", cases, zone, district_code)
        unit = _unit(conn, changes["unit"]) if changes.get("unit") else item["unit_code"]
        state = changes.get("state") or item["state"]
        adds = bool(tasks or cases or changes.get("note"))
        if state == "done" and item["state"] != "done":
            held = conn.execute("SELECT count(*) FROM redo_evidence WHERE item_id = %s", [item_id]).fetchone()
            if not adds and held == (0,):
                raise InvalidInput(
                    "state: an item is done with evidence: send a note, photos, tasks or cases first",
                    field="state",
                    reason_zh="完成整改须附说明、照片或关联的整治任务、事件",
                )
        if state != "done" and item["state"] == "done":
            twin = conn.execute(
                "SELECT id FROM redo_items WHERE district_code = %s AND zone_code = %s AND criterion = %s "
                "AND state IN ('open', 'in_progress') AND id <> %s",
                [district_code, zone, item["criterion"], item_id],
            ).fetchone()
            if twin is not None:
                raise Conflict(
                    f"state: zone '{zone}' has an unfinished item {twin[0]} for '{item['criterion']}' already",
                    field="state",
                    reason_zh="该小区此项已有未完成的整改事项",
                )
        done_on = (item["done_on"] or today().isoformat()) if state == "done" else None
        due = changes.get("due_on") or item["due_on"]
        conn.execute(
            "UPDATE redo_items SET state = %s, done_on = %s, unit_code = %s, due_on = %s, version = version + 1, "
            "updated_by = %s, updated_at = now() WHERE district_code = %s AND id = %s",
            [state, done_on, unit, due, principal.actor, district_code, item_id],
        )
        if changes.get("note"):
            _evidence(conn, item_id, "note", district_code=district_code, actor=principal.actor, note=changes["note"])
        for kind, codes in (("task", tasks), ("case", cases)):
            for code in codes:
                _evidence(conn, item_id, kind, district_code=district_code, actor=principal.actor, ref=code)
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="redo.update",
            table="redo_items",
            code=str(item_id),
            details={"zone": zone, "from": item["state"], "to": state, "unit": unit, "due_on": str(due)}
            | {"tasks": tasks, "cases": cases, "note": bool(changes.get("note"))},
        )
    return _item(conn, item_id, district_code)


def _item(conn: psycopg.Connection, item_id: int, district_code: str) -> dict[str, Any]:
    found = _rows(
        conn,
        sql.SQL("i.district_code = %(district)s AND i.id = %(item)s"),
        {"district": district_code, "item": item_id},
    )
    return _with_evidence(conn, found)[0]


def add(
    conn: psycopg.Connection,
    principal: Principal,
    zone_code: str,
    *,
    district_code: str,
    criterion: str,
    title_zh: str | None,
    unit: str | None,
    due: date | None,
    days: int,
) -> dict[str, Any]:
    """Add an item by hand to the open plan of a zone whose latest issued verdict is 补课; 400 naming
    ``code`` for a zone that passed (or has no issued 补课 verdict), nothing written."""
    if principal.role not in STAFF:
        raise Forbidden("only sub-district staff and administrators add redo items", reason_zh="无权新增补课整改事项")
    if criterion not in CRITERIA:
        raise InvalidInput(
            f"criterion '{criterion}' is not one of {', '.join(CRITERIA)}",
            field="criterion",
            reason_zh="验收条件无效，应为：" + "、".join(CRITERIA),
        )
    with conn.transaction():
        predicate, params = zone_scope(principal, sql.SQL("z.code"))
        zone = conn.execute(
            sql.SQL("SELECT z.code FROM zones z WHERE z.district_code = %(district)s AND z.code = %(zone)s AND ")
            + predicate,
            {**params, "district": district_code, "zone": zone_code},
        ).fetchone()
        if zone is None:
            raise NotFound(f"zone '{zone_code}' does not exist", field="code", reason_zh=f"小区「{zone_code}」不存在")
        latest = conn.execute(
            "SELECT id, number, verdict FROM acceptance_documents WHERE district_code = %s AND zone_code = %s "
            "ORDER BY issued_at DESC, id DESC LIMIT 1",
            [district_code, zone_code],
        ).fetchone()
        if latest is None or latest[2] != "redo":
            why = (
                f"passed ({latest[1]})" if latest is not None and latest[2] == "pass" else "has no issued 补课 verdict"
            )
            why_zh = (
                f"已通过验收（{latest[1]}）" if latest is not None and latest[2] == "pass" else "无已签发的补课结论"
            )
            raise InvalidInput(
                f"code: zone '{zone_code}' {why}: it has no redo plan to add to",
                field="code",
                reason_zh=f"小区「{zone_code}」{why_zh}，不能新增补课整改事项",
            )
        if any(i["criterion"] == criterion for i in blocking(conn, zone_code, "", district_code=district_code)):
            raise Conflict(
                f"criterion: zone '{zone_code}' has an unfinished item for '{criterion}' already",
                field="criterion",
                reason_zh="该小区此项已有未完成的整改事项",
            )
        unit_code = _unit(conn, unit) if unit else office_unit(conn, zone_code, district_code=district_code)[0]
        title = (title_zh or "").strip() or criterion
        row = conn.execute(
            "INSERT INTO redo_items (district_code, zone_code, document_id, criterion, title_zh, unit_code, due_on, "
            "created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [
                district_code,
                zone_code,
                latest[0],
                criterion,
                title[:200],
                unit_code,
                due or due_on(today(), days),
                principal.actor,
            ],
        ).fetchone()
        assert row is not None
        audit(
            conn,
            district_code=district_code,
            actor=principal.actor,
            action="redo.add",
            table="redo_items",
            code=str(row[0]),
            details={"zone": zone_code, "criterion": criterion, "document": latest[1]},
        )
    return _item(conn, int(row[0]), district_code)


def add_photo(
    conn: psycopg.Connection,
    principal: Principal,
    item_id: int,
    *,
    data: bytes,
    district_code: str,
    root: Path,
    max_bytes: int,
    note: str | None = None,
) -> dict[str, Any]:
    """Attach a photo to an item in the caller's zones as evidence (checked like a case photo: content
    sniffed, size-limited, a server-chosen name); its row and the file written together."""
    if principal.role not in WORKERS:
        raise Forbidden(f"role '{principal.role}' may not add evidence", reason_zh="无权上传补课整改照片")
    content_type, suffix = photos.checked(data, max_bytes)
    with conn.transaction():
        _locked(conn, principal, item_id, district_code)
        path = photos.new_path(root, "redo", str(item_id), suffix=suffix)
        ev = _evidence(
            conn,
            item_id,
            "photo",
            district_code=district_code,
            actor=principal.actor,
            note=(note or "").strip() or None,
            path=str(path.relative_to(root)),
            content_type=content_type,
            bytes=len(data),
        )
        conn.execute(
            "UPDATE redo_items SET version = version + 1, updated_by = %s, updated_at = now() "
            "WHERE district_code = %s AND id = %s",
            [principal.actor, district_code, item_id],
        )
        path.write_bytes(data)
    return _item(conn, item_id, district_code) | {"added": ev}


def photo_file(
    conn: psycopg.Connection, principal: Principal, item_id: int, photo_id: int, *, district_code: str, root: Path
) -> tuple[Path, str]:
    """The stored file and content type of an item's photo, for a caller whose zones cover it (404 else)."""
    predicate, params = zone_scope(principal, sql.SQL("i.zone_code"))
    stmt = (
        sql.SQL(
            "SELECT e.path, e.content_type FROM redo_evidence e JOIN redo_items i "
            "ON i.district_code = e.district_code AND i.id = e.item_id WHERE e.kind = 'photo' AND e.id = %(photo)s "
            "AND i.id = %(item)s AND i.district_code = %(district)s AND "
        )
        + predicate
    )
    row = conn.execute(stmt, {**params, "item": item_id, "photo": photo_id, "district": district_code}).fetchone()
    if row is None:
        raise NotFound(
            f"photo {photo_id} of redo item {item_id} does not exist", field="photo_id", reason_zh="照片不存在"
        )
    return root / row[0], str(row[1])
