"""Corrections that leave a trace (issue 15): an administrator withdraws one answer or a whole imported
batch, or corrects an answer, with a reason; withdrawn answers stop counting and stay readable (history,
audit log); a withdrawn batch can be imported again; bad input names the field and writes nothing."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from tests.conftest import auth_headers, settings_for


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _csv(tmp_path, satisfied: int, total: int):
    path = tmp_path / "答卷.csv"
    rows = [f"jinling,2栋,2-{i:03d},2023-08-05,赵六,{'是' if i < satisfied else '否'}" for i in range(total)]
    path.write_text("小区,楼栋,户号,调查日期,调查员,是否满意\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _import(client, headers, path):
    return client.post("/surveys/import", files={"file": (path.name, path.read_bytes(), "text/csv")}, headers=headers)


def _figures(client, headers):
    s = client.get("/zones/jinling/acceptance", headers=headers).json()["survey"]
    return s["answers"], s["satisfied"]


def test_a_withdrawn_batch_stops_counting_stays_readable_and_can_be_imported_again(client, db_url, tmp_path):
    admin = auth_headers(db_url, "admin")
    path = _csv(tmp_path, 17, 20)
    first = _import(client, admin, path)
    assert first.status_code == 200, first.text
    batch = first.json()["batch"]
    assert _figures(client, admin) == (20, 17)
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    assert client.post(f"/survey/batches/{batch}/withdraw", json={"reason": "x"}, headers=team).status_code == 403
    no_reason = client.post(f"/survey/batches/{batch}/withdraw", json={"reason": "  "}, headers=admin)
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    assert client.post("/survey/batches/999999/withdraw", json={"reason": "x"}, headers=admin).status_code == 404
    assert _figures(client, admin) == (20, 17)  # nothing written by the refused calls

    done = client.post(f"/survey/batches/{batch}/withdraw", json={"reason": "录错了小区的答卷"}, headers=admin)
    assert done.status_code == 200 and done.json()["withdrawn"] == 20
    assert _figures(client, admin) == (0, 0)
    assert client.get("/zones/jinling/acceptance", headers=admin).json()["verdict"] is None
    again = client.post(f"/survey/batches/{batch}/withdraw", json={"reason": "再次"}, headers=admin)
    assert again.status_code == 409 and again.json()["field"] == "batch"
    # the same file again: accepted (the withdrawn answers hold no household's place)
    reimported = _import(client, admin, path)
    assert reimported.status_code == 200 and reimported.json()["inserted"] == 20
    assert _figures(client, admin) == (20, 17)
    with psycopg.connect(db_url) as conn:
        answer_id = conn.execute(
            "SELECT id FROM survey_answers WHERE batch_id = %s ORDER BY id LIMIT 1", [batch]
        ).fetchone()[0]
    trace = client.get(f"/survey/answers/{answer_id}/history", headers=admin).json()
    assert trace["counting"] is False and trace["answer"]["withdrawn_reason"] == "录错了小区的答卷"
    assert [(e["action"], e["reason"]) for e in trace["events"]] == [("withdraw", "录错了小区的答卷")]
    assert trace["events"][0]["before"]["household"] == "2-000"
    entries = client.get("/audit", params={"table": "survey_batches"}, headers=admin).json()
    assert any(e["action"] == "survey.withdraw_batch" and e["details"]["reason"] == "录错了小区的答卷" for e in entries)


def test_withdraw_and_correct_one_answer_with_a_reason(client, db_url, tmp_path):
    admin = auth_headers(db_url, "admin")
    _import(client, admin, _csv(tmp_path, 16, 20))
    with psycopg.connect(db_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM survey_answers ORDER BY household")]
    unhappy = ids[-1]
    assert _figures(client, admin) == (20, 16)
    for bad, field in (
        ({"reason": "x", "household": "9-9-999"}, "household"),
        ({"reason": "x", "scores": {"greening": 7}}, "scores"),
        ({"satisfied": True}, "reason"),
        ({"reason": "x"}, "changes"),
    ):
        response = client.patch(f"/survey/answers/{unhappy}", json=bad, headers=admin)
        assert response.status_code == 400, (bad, response.text)
        assert field in (response.json()["field"] or ""), (bad, response.json())
    assert _figures(client, admin) == (20, 16)

    corrected = client.patch(
        f"/survey/answers/{unhappy}",
        json={"reason": "调查员誊写错误，原卷为满意", "satisfied": True, "scores": {"greening": 4}},
        headers=admin,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["satisfied"] is True and corrected.json()["score_greening"] == 4
    assert _figures(client, admin) == (20, 17)
    withdrawn = client.post(f"/survey/answers/{ids[0]}/withdraw", json={"reason": "非本小区住户"}, headers=admin)
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_reason"] == "非本小区住户"
    assert _figures(client, admin) == (19, 16)
    assert client.post(f"/survey/answers/{ids[0]}/withdraw", json={"reason": "x"}, headers=admin).status_code == 409
    refused = client.patch(f"/survey/answers/{ids[0]}", json={"reason": "x", "satisfied": False}, headers=admin)
    assert refused.status_code == 409
    listed = client.get("/zones/jinling/survey", headers=admin).json()
    assert ids[0] not in {a["id"] for a in listed["items"]} and listed["answers"] == 19
    trace = client.get(f"/survey/answers/{unhappy}/history", headers=admin).json()
    (event,) = trace["events"]
    assert (event["action"], event["before"]["satisfied"], event["after"]["satisfied"]) == ("correct", False, True)
    # the household of a withdrawn answer may answer again
    again = client.post(
        "/zones/jinling/survey",
        json={"household": "2-000", "building": "2栋", "answered_on": "2023-08-06", "satisfied": True},
        headers=admin,
    )
    assert again.status_code == 201 and again.json()["replaced"] is False


def test_cli_withdraws_a_batch_with_its_reason(db_url, tmp_path, capsys):
    path = _csv(tmp_path, 10, 10)
    settings = settings_for(db_url)
    assert main(["survey", "import", str(path)], settings=settings) == 0
    with psycopg.connect(db_url) as conn:
        batch = conn.execute("SELECT max(id) FROM survey_batches").fetchone()[0]
    assert main(["survey", "withdraw", "--batch", str(batch)], settings=settings) == 1
    assert "reason" in capsys.readouterr().err
    assert main(["survey", "withdraw", "--batch", str(batch), "--reason", "重复导入"], settings=settings) == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM survey_answers WHERE withdrawn_at IS NULL").fetchone() == (0,)
    assert main(["survey", "import", str(path)], settings=settings) == 0


def test_withdrawing_from_an_issued_round_needs_new_version(client, db_url, tmp_path):
    admin = auth_headers(db_url, "admin")
    batch = _import(client, admin, _csv(tmp_path, 18, 20)).json()["batch"]
    with psycopg.connect(db_url) as conn:
        answer_id = conn.execute("SELECT min(id) FROM survey_answers").fetchone()[0]
        # an issued document of jinling's round 2023 (its PDF is not read here)
        conn.execute(
            "INSERT INTO acceptance_documents (district_code, number, year, seq, zone_code, round, version, verdict, "
            "figures, pdf, sha256, issued_by, issued_at) VALUES ('430104', '岳麓城管验〔2026〕1号', 2026, 1, "
            "'jinling', '2023', 1, 'pass', '{}', '\\x25504446', 'x', 'tests', now())"
        )
    for path, body in (
        (f"/survey/batches/{batch}/withdraw", {"reason": "重复"}),
        (f"/survey/answers/{answer_id}/withdraw", {"reason": "重复"}),
    ):
        refused = client.post(path, json=body, headers=admin)
        assert refused.status_code == 409 and refused.json()["field"] == "new_version", refused.text
        assert "岳麓城管验〔2026〕1号" in refused.json()["reason"]
    corrected = client.patch(f"/survey/answers/{answer_id}", json={"reason": "x", "satisfied": False}, headers=admin)
    assert corrected.status_code == 409 and corrected.json()["field"] == "new_version"
    assert _figures(client, admin) == (20, 18)  # nothing written
    assert (
        main(["survey", "withdraw", "--answer", str(answer_id), "--reason", "重复"], settings=settings_for(db_url)) == 1
    )
    done = client.post(f"/survey/batches/{batch}/withdraw", json={"reason": "重复", "new_version": True}, headers=admin)
    assert done.status_code == 200 and done.json()["withdrawn"] == 20
    assert _figures(client, admin) == (0, 0)
