"""补课 is work with a deadline (issue 15 point 4): an issued 补课 verdict opens a redo plan, one item per
failed criterion, the sub-district office responsible, due WUYE_REDO_DAYS after the issue; items move
with evidence (notes, photos, linked tasks and cases) and are flagged overdue as cases are; the 补课
round's verdict waits for them, then is issued; the verdict history (首次验收 补课, 补课 通过) is in the
figures, the zone PDF and the summary. Bad input names the field and writes nothing; a crowd of 50
on a real port reads the issued PDF and the plan."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import timedelta

import httpx
import psycopg
from openpyxl import load_workbook

from api.app import create_app
from api.maps import local_server
from api.models import IssuedAll, RedoItem, RedoItems, RedoPlan
from geo.settings import AcceptanceSettings
from geo.workcal import today
from tests.conftest import auth_headers, settings_for
from tests.test_acceptance import all_verified, answers
from tests.test_rounds import _pdf_text, _redo_csv

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
CLIENTS = 50


def _count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608  our own table names
    assert row is not None
    return int(row[0])


def _lichen_fails_twice(db_url: str) -> str:
    """lichen: 80% satisfied (2023, 首次验收) and one remediation task not verified: 补课 on two criteria.
    Returns the unverified task's code."""
    with psycopg.connect(db_url) as conn:
        all_verified(conn, "lichen")
        row = conn.execute(
            "UPDATE remediation_tasks SET state = 'done', verified_on = NULL WHERE id = (SELECT min(id) "
            "FROM remediation_tasks WHERE zone_code = 'lichen') RETURNING code"
        ).fetchone()
        answers(conn, "lichen", 80, 100)
        conn.commit()
    assert row is not None
    return str(row[0])


def _settings(db_url: str, **pool: int):
    settings = settings_for(db_url)
    settings.acceptance = AcceptanceSettings(redo_days=10)
    if pool:
        settings.db.pool_max_size = pool["size"]
    return settings


def test_a_redo_verdict_opens_a_plan_worked_to_done_then_the_redo_round_passes(db_url, tmp_path):
    task = _lichen_fails_twice(db_url)
    admin = auth_headers(db_url, "admin")
    office = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xianjiahu")
    elsewhere = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    team = auth_headers(db_url, "property_team", zone_codes=("lichen",))
    with (
        local_server(create_app(_settings(db_url))) as url,
        httpx.Client(base_url=url, timeout=180) as http,
    ):
        empty = http.get("/zones/lichen/redo-plan", headers=office)
        assert empty.status_code == 200 and RedoPlan.model_validate(empty.json()).total == 0

        first = http.post("/zones/lichen/verdicts", json={}, headers=admin)
        assert first.status_code == 201, first.text
        assert first.json()["verdict"] == "redo"
        plan = RedoPlan.model_validate(http.get("/zones/lichen/redo-plan", headers=office).json())
        due = (today() + timedelta(days=10)).isoformat()
        assert [(i.criterion, i.state, i.due_on, i.unit_name, i.overdue) for i in plan.items] == [
            ("satisfaction", "open", due, "咸嘉湖街道办事处", False),
            ("remediation", "open", due, "咸嘉湖街道办事处", False),
        ]
        assert {i.document_number for i in plan.items} == {first.json()["number"]}
        # the issued 补课 document prints the plan it opens
        text = _pdf_text(http.get(f"/verdicts/{first.json()['id']}.pdf", headers=office).content, tmp_path, "1.pdf")
        assert "补课整改计划" in text and due in text and "咸嘉湖街道办事处" in text
        satisfaction, remediation = plan.items

        # the 补课 round is surveyed, but its verdict waits for the plan: 409 naming redo_items, nothing written
        path = _redo_csv(tmp_path)
        imported = http.post(
            "/surveys/import",
            params={"round": "2023补课", "round_kind": "补课"},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
            headers=admin,
        )
        assert imported.status_code == 200, imported.text
        waiting = http.post("/zones/lichen/verdicts", json={}, headers=admin)
        assert waiting.status_code == 409 and waiting.json()["field"] == "redo_items", waiting.text
        assert waiting.json()["reason_zh"] and _count(db_url, "acceptance_documents") == 1

        # bad moves name the field and write nothing
        evidence_before = _count(db_url, "redo_evidence")
        for body, status, field in (
            ({"state": "done"}, 400, "state"),  # done needs evidence
            ({"state": "finished"}, 400, "state"),
            ({"tasks": ["no-such-task"], "note": "x"}, 400, "tasks"),
            ({"cases": ["C-none"]}, 400, "cases"),
            ({"unit": "no-such-unit"}, 400, "unit"),
            ({"colour": "red"}, 400, "colour"),
        ):
            r = http.patch(f"/redo-items/{remediation.id}", json=body, headers=office)
            assert (r.status_code, r.json()["field"]) == (status, field), (body, r.text)
        assert http.patch(f"/redo-items/{remediation.id}", json={"note": "x"}, headers=elsewhere).status_code == 404
        assert (
            http.patch(f"/redo-items/{remediation.id}", json={"due_on": "2030-01-01"}, headers=team).status_code == 403
        )
        assert _count(db_url, "redo_evidence") == evidence_before

        # work with evidence: the task verified and linked, a photo, a note; then done
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "UPDATE remediation_tasks SET state = 'verified', verified_on = DATE '2023-09-01' WHERE code = %s",
                [task],
            )
        linked = http.patch(
            f"/redo-items/{remediation.id}", json={"tasks": [task], "state": "in_progress"}, headers=team
        )
        assert linked.status_code == 200, linked.text
        shot = http.post(
            f"/redo-items/{remediation.id}/photos",
            files={"photo": ("after.jpg", JPEG, "image/jpeg")},
            data={"note": "围墙整修后"},
            headers=team,
        )
        assert shot.status_code == 201, shot.text
        item = RedoItem.model_validate(shot.json())
        photo = next(e for e in item.evidence if e.kind == "photo")
        assert photo.url is not None and http.get(photo.url, headers=office).content == JPEG
        assert http.get(photo.url, headers=elsewhere).status_code == 404
        done = RedoItem.model_validate(
            http.patch(f"/redo-items/{remediation.id}", json={"state": "done"}, headers=team).json()
        )
        assert (done.state, done.done_on, done.overdue) == ("done", today().isoformat(), False)
        assert [e.kind for e in done.evidence] == ["task", "photo"] and done.evidence[0].url == f"/remediation/{task}"

        # overdue as a case is: the deadline passed while it is not done
        moved = http.patch(f"/redo-items/{satisfaction.id}", json={"due_on": "2023-09-30"}, headers=office)
        assert moved.status_code == 200 and moved.json()["overdue"] is True
        late = RedoItems.model_validate(http.get("/redo-items", params={"overdue": "true"}, headers=office).json())
        assert [i.id for i in late.items] == [satisfaction.id] and late.overdue == 1
        assert http.get("/redo-items", params={"state": "nope"}, headers=office).json()["field"] == "state"
        figures = http.get("/zones/lichen/acceptance", headers=office).json()
        assert (figures["redo"]["total"], figures["redo"]["done"], figures["redo"]["overdue"]) == (2, 1, 1)
        assert "逾期" in _pdf_text(http.get("/acceptance?f=pdf", headers=office).content, tmp_path, "s.pdf")
        finished = http.patch(
            f"/redo-items/{satisfaction.id}", json={"note": "入户回访，整改到位", "state": "done"}, headers=office
        )
        assert finished.status_code == 200 and finished.json()["overdue"] is True  # done, but late

        # the items done, the 补课 round is issued: 补课 通过, and the history says so everywhere
        second = http.post("/zones/lichen/verdicts", json={}, headers=admin)
        assert second.status_code == 201, second.text
        assert (second.json()["verdict"], second.json()["round"]) == ("pass", "2023补课")
        history = http.get("/zones/lichen/verdicts", headers=office).json()["items"]
        assert [(h["round_kind_zh"], h["verdict_zh"]) for h in history] == [("首次验收", "补课"), ("补课", "通过")]
        text = _pdf_text(http.get(f"/verdicts/{second.json()['id']}.pdf", headers=office).content, tmp_path, "2.pdf")
        assert "验收经过" in text and "首次验收" in text and second.json()["number"] in text
        summary = _pdf_text(http.get("/acceptance?f=pdf", headers=office).content, tmp_path, "s2.pdf")
        assert first.json()["number"] in summary and second.json()["number"] in summary and "完成 2/2" in summary
        sheet = load_workbook(io.BytesIO(http.get("/acceptance?f=xlsx", headers=office).content)).active
        assert sheet is not None
        table = list(sheet.iter_rows(values_only=True))
        lichen = next(r for r in table if r[1] == "lichen")
        history_at, redo_at = table[0].index("验收经过"), table[0].index("补课整改")
        assert "补课 通过" in lichen[history_at] and lichen[redo_at] == "完成 2/2，逾期 1"

        # a redo item for a zone that passed: 400 naming the zone, nothing written
        items_before = _count(db_url, "redo_items")
        passed = http.post("/zones/lichen/redo-items", json={"criterion": "cases"}, headers=office)
        assert passed.status_code == 400 and passed.json()["field"] == "code" and passed.json()["reason_zh"]
        never = http.post("/zones/jinling/redo-items", json={"criterion": "cases"}, headers=admin)
        assert never.status_code == 400 and never.json()["field"] == "code"
        assert _count(db_url, "redo_items") == items_before


def test_issue_all_issues_what_can_be_issued_with_one_browser_and_lists_the_rest(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        for zone, satisfied in (("jinling", 90), ("daopo", 70)):
            all_verified(conn, zone)
            answers(conn, zone, satisfied, 100)
        conn.commit()
    admin = auth_headers(db_url, "admin")
    with (
        local_server(create_app(_settings(db_url))) as url,
        httpx.Client(base_url=url, timeout=300) as http,
    ):
        assert http.post("/verdicts/issue-all", headers=auth_headers(db_url, "planner")).status_code == 403
        done = http.post("/verdicts/issue-all", headers=admin)
        assert done.status_code == 201, done.text
        result = IssuedAll.model_validate(done.json())
        assert sorted((d.zone_code, d.verdict) for d in result.issued) == [("daopo", "redo"), ("jinling", "pass")]
        assert {s.field for s in result.skipped} == {"round"} and len(result.skipped) == 8
        numbers = sorted(d.number for d in result.issued)
        assert numbers[0].endswith("〕1号") and numbers[1].endswith("〕2号")
        for doc in result.issued:
            pdf = http.get(f"/verdicts/{doc.id}.pdf", headers=admin).content
            assert hashlib.sha256(pdf).hexdigest() == doc.sha256
            assert doc.number in _pdf_text(pdf, tmp_path, f"{doc.zone_code}.pdf")
        plan = RedoPlan.model_validate(http.get("/zones/daopo/redo-plan", headers=admin).json())
        assert [i.criterion for i in plan.items] == ["satisfaction"]
        again = IssuedAll.model_validate(http.post("/verdicts/issue-all", headers=admin).json())
        assert again.issued == [] and {s.field for s in again.skipped} == {"round", "new_version"}
    assert _count(db_url, "acceptance_documents") == 2


def test_fifty_clients_read_an_issued_pdf_and_the_redo_plan_on_a_real_port(db_url):
    _lichen_fails_twice(db_url)
    admin = auth_headers(db_url, "admin")
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xianjiahu")
    with local_server(create_app(_settings(db_url, size=60))) as url:
        doc = httpx.post(f"{url}/zones/lichen/verdicts", json={}, headers=admin, timeout=180).json()
        pdf = httpx.get(f"{url}/verdicts/{doc['id']}.pdf", headers=staff, timeout=60).content

        async def crowd() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=CLIENTS)
            async with httpx.AsyncClient(base_url=url, headers=staff, timeout=120, limits=limits) as http:

                async def client(i: int) -> list[httpx.Response]:
                    out = []
                    for _ in range(4):
                        out.append(await http.get(f"/verdicts/{doc['id']}.pdf"))
                        out.append(await http.get("/redo-items", params={"zone": "lichen"}))
                    return out

                return [r for rs in await asyncio.gather(*(client(i) for i in range(CLIENTS))) for r in rs]

        responses = asyncio.run(crowd())
        # kept in memory once read, yet every request is still signed in; the ETag answers 304
        assert httpx.get(f"{url}/verdicts/{doc['id']}.pdf", timeout=60).status_code == 401
        same = httpx.get(
            f"{url}/verdicts/{doc['id']}.pdf", headers={**staff, "If-None-Match": f'"{doc["sha256"]}"'}, timeout=60
        )
        assert same.status_code == 304 and same.content == b""
    assert len(responses) == CLIENTS * 8
    assert [r.status_code for r in responses if r.status_code != 200] == []
    pdfs = [r for r in responses if r.url.path.endswith(".pdf")]
    assert all(r.content == pdf and r.headers["x-content-sha256"] == doc["sha256"] for r in pdfs)
    plans = [RedoItems.model_validate(r.json()) for r in responses if r.url.path == "/redo-items"]
    assert {tuple(i.criterion for i in p.items) for p in plans} == {("satisfaction", "remediation")}


def test_cli_issues_all_and_writes_the_issued_pdfs_and_the_summary(db_url, tmp_path, capsys):
    from api.cli import main

    with psycopg.connect(db_url) as conn:
        all_verified(conn, "jinling")
        answers(conn, "jinling", 90, 100)
        conn.commit()
    settings = settings_for(db_url)
    out = tmp_path / "issued"
    assert main(["report", "acceptance", "--zone", "jinling", "--issue", "--out", str(out)], settings=settings) == 1
    assert "--issue" in capsys.readouterr().err and _count(db_url, "acceptance_documents") == 0
    assert main(["report", "acceptance", "--all", "--issue", "--out", str(out)], settings=settings) == 0
    said = capsys.readouterr().out
    assert "签发 issued" in said and "未签发 not issued lichen" in said
    assert sorted(p.name for p in out.iterdir()) == ["jinling.pdf", "summary.pdf", "summary.xlsx"]
    with psycopg.connect(db_url) as conn:
        number, pdf = conn.execute(
            "SELECT number, pdf FROM acceptance_documents WHERE zone_code = 'jinling'"
        ).fetchone()
    assert (out / "jinling.pdf").read_bytes() == bytes(pdf)  # as stored
    assert number in _pdf_text((out / "summary.pdf").read_bytes(), tmp_path, "summary.pdf")


def test_a_corrected_version_that_finds_a_criterion_met_withdraws_its_items(db_url, tmp_path):
    task = _lichen_fails_twice(db_url)
    admin = auth_headers(db_url, "admin")
    with (
        local_server(create_app(_settings(db_url))) as url,
        httpx.Client(base_url=url, headers=admin, timeout=180) as http,
    ):
        first = http.post("/zones/lichen/verdicts", json={})
        assert first.status_code == 201, first.text
        # the unverified task was a wrong record: corrected, the verdict is issued again
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "UPDATE remediation_tasks SET state = 'verified', verified_on = DATE '2023-07-01' WHERE code = %s",
                [task],
            )
        second = http.post("/zones/lichen/verdicts", json={"new_version": True, "reason": "整治验收记录更正"})
        assert second.status_code == 201, second.text
        plan = RedoPlan.model_validate(http.get("/zones/lichen/redo-plan").json())
        by_criterion = {i.criterion: i for i in plan.items}
        assert (by_criterion["remediation"].state, by_criterion["remediation"].overdue) == ("withdrawn", False)
        assert second.json()["number"] in (by_criterion["remediation"].evidence[0].note or "")
        assert by_criterion["satisfaction"].state == "open" and (plan.total, plan.done) == (1, 0)
        # no more moves for a withdrawn item; a person never sets that state
        moved = http.patch(f"/redo-items/{by_criterion['remediation'].id}", json={"state": "in_progress"})
        assert moved.status_code == 409 and moved.json()["field"] == "state"
        by_hand = http.patch(f"/redo-items/{by_criterion['satisfaction'].id}", json={"state": "withdrawn"})
        assert by_hand.status_code == 400 and by_hand.json()["field"] == "state"
        text = _pdf_text(http.get(f"/verdicts/{second.json()['id']}.pdf").content, tmp_path, "v2.pdf")
        assert "已撤销" in text and "待整改" in text
