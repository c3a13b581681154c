"""Survey rounds as records (issue 15): each zone judged on its own round, so a 补课 re-survey of one
zone leaves the other nine exactly as they were (API, summary PDF, zone PDF); rounds declared with
their zones; a round an administrator fixes for a zone; existing answers migrated into rounds; the
household race settled by the database under a crowd on a real port."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.maps import local_server
from geo.programme import rounds
from geo.settings import AcceptanceSettings
from geo.store.migrate import plan
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.test_acceptance import all_verified, answers, judge


def _zones(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT code FROM zones WHERE district_code = %s ORDER BY code", [DISTRICT])]


def _first_round_everywhere(db_url: str) -> list[str]:
    """Every zone's remediation verified and a first round 2023: lichen 80% (补课), the others 90%."""
    with psycopg.connect(db_url) as conn:
        zones = _zones(conn)
        for zone in zones:
            all_verified(conn, zone)
            answers(conn, zone, 80 if zone == "lichen" else 90, 100)
        conn.commit()
    return zones


def _redo_csv(tmp_path: Path) -> Path:
    """The 补课 re-survey of lichen: 20 answers in October, 19 satisfied (95%)."""
    path = tmp_path / "丽臣补课.csv"
    rows = [f"lichen,1栋,1-{i:03d},2023-10-10,复查组,{'是' if i < 19 else '否'}" for i in range(20)]
    path.write_text("小区,楼栋,户号,调查日期,调查员,是否满意\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _without_time(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "generated_at"}


def _untimed(text: str) -> str:
    """A PDF's text without the moment it was drawn (the map's time stamp)."""
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", "<time>", text)


def _row_of(text: str, name: str) -> str:
    """The lines of a PDF's text naming ``name`` (its row in each table), spacing normalised (column
    widths may move)."""
    lines = [" ".join(ln.split()) for ln in text.splitlines() if name in ln]
    assert lines, name
    return " | ".join(lines)


def _pdf_text(pdf: bytes, tmp_path: Path, name: str) -> str:
    import subprocess

    path = tmp_path / name
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def test_a_redo_round_for_one_zone_leaves_the_other_nine_as_they_were(db_url, tmp_path):
    zones = _first_round_everywhere(db_url)
    assert len(zones) == 10
    admin = auth_headers(db_url, "admin")
    with local_server(create_app(settings_for(db_url))) as url, httpx.Client(base_url=url, timeout=180) as http:
        before = {r["zone"]["code"]: _without_time(r) for r in http.get("/acceptance", headers=admin).json()}
        assert before["lichen"]["verdict"] == "redo" and before["jinling"]["verdict"] == "pass"
        summary_before = _pdf_text(http.get("/acceptance?f=pdf", headers=admin).content, tmp_path, "s0.pdf")
        jinling_before = _pdf_text(http.get("/zones/jinling/acceptance.pdf", headers=admin).content, tmp_path, "j0.pdf")

        path = _redo_csv(tmp_path)
        imported = http.post(
            "/surveys/import",
            params={"round": "2023补课", "round_kind": "补课"},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
            headers=admin,
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["inserted"] == 20 and imported.json()["rounds"] == ["2023补课"]

        after = {r["zone"]["code"]: _without_time(r) for r in http.get("/acceptance", headers=admin).json()}
        summary_after = _pdf_text(http.get("/acceptance?f=pdf", headers=admin).content, tmp_path, "s1.pdf")
        jinling_after = _pdf_text(http.get("/zones/jinling/acceptance.pdf", headers=admin).content, tmp_path, "j1.pdf")
        lichen_pdf = _pdf_text(http.get("/zones/lichen/acceptance.pdf", headers=admin).content, tmp_path, "l1.pdf")
        listed = http.get("/survey-rounds", headers=admin).json()

    # the re-surveyed zone is judged on its 补课 round ...
    lichen = after["lichen"]
    assert (lichen["survey"]["round"], lichen["survey"]["round_kind"]) == ("2023补课", "redo")
    assert (lichen["survey"]["answers"], lichen["survey"]["satisfied"], lichen["verdict"]) == (20, 19, "pass")
    # ... and the other nine are exactly as they were, in the API ...
    for zone in zones:
        if zone != "lichen":
            assert after[zone] == before[zone], zone
            assert (after[zone]["survey"]["round"], after[zone]["verdict"]) == ("2023", "pass")
    # ... in the summary PDF (each other zone's row as it was) ...
    for zone in zones:
        if zone != "lichen":
            name = before[zone]["zone"]["name"]
            row_before, row_after = _row_of(summary_before, name), _row_of(summary_after, name)
            assert row_after == row_before and "90.0%" in row_after and "通过" in row_after, zone
    assert "2023补课" in summary_after and "2023补课" not in summary_before
    # ... and in another zone's PDF
    assert (
        _untimed(jinling_after) == _untimed(jinling_before) and "90.0%" in jinling_after and "首次验收" in jinling_after
    )
    assert "2023补课" in lichen_pdf and "95.0%" in lichen_pdf and "通过" in lichen_pdf
    by_label = {r["label"]: r for r in listed}
    assert by_label["2023补课"]["zone_codes"] == ["lichen"] and by_label["2023补课"]["kind_zh"] == "补课"
    assert by_label["2023补课"]["answers"] == {"lichen": 20}
    assert (by_label["2023补课"]["starts_on"], by_label["2023补课"]["ends_on"]) == ("2023-10-10", "2023-10-10")


def test_a_zone_is_judged_on_its_latest_round_or_the_one_an_admin_fixed(conn):
    all_verified(conn, "jinling")
    all_verified(conn, "lichen")
    answers(conn, "jinling", 50, 100, round_="2023")
    answers(conn, "lichen", 90, 100, round_="2023")
    answers(conn, "jinling", 95, 100, round_="2023补课", kind="redo", on="2023-10-01")
    assert judge(conn, "jinling")["survey"]["round"] == "2023补课"
    assert judge(conn, "jinling")["survey"]["round_chosen_by"] == "latest"
    assert judge(conn, "lichen")["survey"]["round"] == "2023"
    fixed = rounds.fix_zone_round(
        conn, "admin", "jinling", "2023", district_code=DISTRICT, reason="补课答卷待复核", actor="tests"
    )
    assert fixed["round"] == "2023"
    result = judge(conn, "jinling")
    assert (result["survey"]["round"], result["survey"]["round_chosen_by"], result["verdict"]) == (
        "2023",
        "fixed",
        "redo",
    )
    rounds.fix_zone_round(conn, "admin", "jinling", None, district_code=DISTRICT, reason="复核完毕", actor="tests")
    assert judge(conn, "jinling")["survey"]["round"] == "2023补课"
    # WUYE_SURVEY_ROUND judges only the zones that round covers
    setting = AcceptanceSettings(survey_round="2023补课")
    assert judge(conn, "jinling", setting)["survey"]["round_chosen_by"] == "setting"
    assert judge(conn, "lichen", setting)["survey"]["round"] == "2023"
    assert judge(conn, "lichen", setting)["verdict"] == "pass"


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608  test's own table names
    assert row is not None
    return int(row[0])


def test_declared_rounds_and_bad_input_name_the_field_and_write_nothing(client, db_url, tmp_path):
    admin = auth_headers(db_url, "admin")
    body = {"label": "2024补课", "kind": "补课", "zones": ["lichen"], "starts_on": "2024-03-01", "organiser": "街道办"}
    for bad, field in (
        ({**body, "zones": []}, "zones"),
        ({**body, "zones": ["火星"]}, "zones"),
        ({**body, "kind": "maybe"}, "kind"),
        ({**body, "ends_on": "2024-02-01"}, "ends_on"),
    ):
        response = client.post("/survey-rounds", json=bad, headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field and response.json()["reason_zh"]
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling", "lichen"))
    assert client.post("/survey-rounds", json=body, headers=team).status_code == 403
    assert _count(db_url, "survey_rounds") == 0
    created = client.post("/survey-rounds", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["zone_codes"] == ["lichen"]
    assert client.post("/survey-rounds", json=body, headers=admin).status_code == 409

    # an answer for a zone outside its declared round, or of the wrong kind: 400 naming the round
    answer = {"household": "1-1-101", "answered_on": "2024-03-02", "satisfied": True, "round": "2024补课"}
    outside = client.post("/zones/jinling/survey", json=answer, headers=team)
    assert outside.status_code == 400 and outside.json()["field"] == "round"
    assert "not covered" in outside.json()["reason"]
    wrong_kind = client.post("/zones/lichen/survey", json={**answer, "round_kind": "first"}, headers=team)
    assert wrong_kind.status_code == 400 and wrong_kind.json()["field"] == "round"
    bad_kind = client.post("/zones/lichen/survey", json={**answer, "round_kind": "x"}, headers=team)
    assert bad_kind.status_code == 400 and bad_kind.json()["field"] == "round_kind"
    path = tmp_path / "a.csv"
    path.write_text("小区,户号,调查日期,调查员,是否满意\nlichen,1,2024-03-02,王,是\njinling,2,2024-03-02,王,是\n")
    rejected = client.post(
        "/surveys/import",
        params={"round": "2024补课"},
        files={"file": (path.name, path.read_bytes(), "text/csv")},
        headers=team,
    )
    assert rejected.status_code == 400
    assert [(p["row"], p["field"]) for p in rejected.json()["problems"]] == [(2, "zone")]
    assert _count(db_url, "survey_answers") == 0 and _count(db_url, "survey_batches") == 0
    assert client.post("/zones/lichen/survey", json=answer, headers=team).status_code == 201

    # fixing a zone's round: admins only, a covering round, a reason
    fix = {"round": "2024补课", "reason": "复查"}
    assert client.put("/zones/lichen/survey-round", json=fix, headers=team).status_code == 403
    not_covered = client.put("/zones/jinling/survey-round", json=fix, headers=admin)
    assert not_covered.status_code == 400 and not_covered.json()["field"] == "round"
    unknown = client.put("/zones/lichen/survey-round", json={**fix, "round": "1999"}, headers=admin)
    assert unknown.status_code == 404 and unknown.json()["field"] == "round"
    assert _count(db_url, "survey_zone_rounds") == 0
    assert client.put("/zones/lichen/survey-round", json=fix, headers=admin).status_code == 200
    assert client.get("/zones/lichen/acceptance", headers=admin).json()["survey"]["round_chosen_by"] == "fixed"


def test_existing_answers_migrate_into_rounds_by_their_label(server, catalogue):
    name = "wuye_rounds_migration"
    url = server.create(name)
    try:
        steps = plan(catalogue)
        (step,) = [s for s in steps if s.name == "0007_rounds.sql"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            at = steps.index(step)
            for s in steps[:at]:  # the schema as it was before 0007
                s.apply(conn)
            conn.execute(
                "INSERT INTO survey_answers (district_code, round, zone_code, household, answered_on, surveyor, "
                "satisfied, actor) VALUES ('d', '2023', 'b', '1', '2023-08-02', 's', true, 't'), "
                "('d', '2023', 'a', '1', '2023-08-01', 's', true, 't'), "
                "('d', '2024', 'a', '1', '2024-05-01', 's', false, 't')"
            )
            step.apply(conn)
            for s in steps[at + 1 :]:  # and the later migrations take the data as 0007 left it
                s.apply(conn)
            rows = conn.execute(
                "SELECT label, kind, zone_codes, starts_on::text, ends_on::text FROM survey_rounds ORDER BY label"
            ).fetchall()
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute(
                    "INSERT INTO survey_answers (district_code, round, zone_code, household, answered_on, surveyor, "
                    "satisfied, actor) VALUES ('d', 'no-such-round', 'a', '2', '2023-08-02', 's', true, 't')"
                )
    finally:
        server.drop(name)
    assert rows == [
        ("2023", "first", ["a", "b"], "2023-08-01", "2023-08-02"),
        ("2024", "first", ["a"], "2024-05-01", "2024-05-01"),
    ]


def test_fifty_concurrent_answers_for_one_household_give_one_201_and_409s(db_url):
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    answer = {"household": "7-1-101", "answered_on": "2023-08-10", "satisfied": True, "round": "2023"}

    async def crowd(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=url, headers=team, timeout=120, limits=limits) as http:
            return await asyncio.gather(
                *(http.post("/zones/jinling/survey", json={**answer, "satisfied": i % 2 == 0}) for i in range(50))
            )

    settings = settings_for(db_url)
    # A pool for the whole crowd: with the default 8, a request's token lookup waiting for a second
    # pooled connection can time out into a 500 on a loaded machine (issue 12 points 1 and 3, handled
    # with the connection work); what is tested here is who wins the race.
    settings.db.pool_max_size = 60
    with local_server(create_app(settings)) as url:
        responses = asyncio.run(crowd(url))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 49, [r.text for r in responses if r.status_code not in (201, 409)][:2]
        winner = next(r.json() for r in responses if r.status_code == 201)
        assert {r.json()["existing_id"] for r in responses if r.status_code == 409} == {winner["id"]}
        # replace stays explicit: a replacement answers 201 on the same id
        replaced = httpx.post(
            f"{url}/zones/jinling/survey", params={"replace": "true"}, json=answer, headers=team, timeout=60
        )
        assert replaced.status_code == 201 and replaced.json()["id"] == winner["id"]
        assert replaced.json()["replaced"] is True
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM survey_answers WHERE household = '7-1-101'").fetchone() == (1,)


def test_cli_declares_lists_and_fixes_rounds(db_url, capsys):
    from api.cli import main

    settings = settings_for(db_url)
    assert main(["survey", "round-add", "2024补课", "--kind", "补课"], settings=settings) == 1
    assert "[zones]" in capsys.readouterr().err
    assert main(["survey", "judge", "lichen", "--round", "2024补课", "--reason", "复查"], settings=settings) == 1
    assert "[round]" in capsys.readouterr().err
    args = ["survey", "round-add", "2024补课", "--kind", "补课", "--zones", "lichen", "--starts", "2024-03-01"]
    assert main([*args, "--organiser", "观沙岭街道"], settings=settings) == 0
    assert main(["survey", "judge", "lichen", "--round", "2024补课"], settings=settings) == 1
    assert "[reason]" in capsys.readouterr().err
    assert main(["survey", "judge", "lichen", "--round", "2024补课", "--reason", "复查"], settings=settings) == 0
    capsys.readouterr()
    assert main(["survey", "rounds"], settings=settings) == 0
    assert "2024补课" in capsys.readouterr().out
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT zone_code, round, reason FROM survey_zone_rounds").fetchall() == [
            ("lichen", "2024补课", "复查")
        ]
