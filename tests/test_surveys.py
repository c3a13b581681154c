"""The door-to-door survey: one answer per household per round, imports with row-level errors,
scope, and the per-zone figures (rate rounded down, reach, Wilson interval)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from api.app import create_app
from api.cli import main
from geo.programme import surveys
from geo.programme.remediation import today
from tests.conftest import auth_headers, settings_for


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _answer(household="3-1-201", **extra):
    return {
        "household": household,
        "building": "3栋",
        "answered_on": "2023-08-10",
        "satisfied": True,
        "scores": {"sanitation": 4, "greening": 5},
        **extra,
    }


def test_one_answer_per_household_per_round_second_refused_or_replaced(client, db_url):
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    first = client.post("/zones/jinling/survey", json=_answer(), headers=team)
    assert first.status_code == 201, first.text
    assert first.json()["round"] == "2023" and first.json()["replaced"] is False
    again = client.post("/zones/jinling/survey", json=_answer(satisfied=False), headers=team)
    assert again.status_code == 409
    assert f"answer #{first.json()['id']}" in again.json()["reason"] and again.json()["field"] == "household"
    assert again.json()["existing_id"] == first.json()["id"]
    replaced = client.post(
        "/zones/jinling/survey", params={"replace": "true"}, json=_answer(satisfied=False), headers=team
    )
    assert replaced.status_code == 201 and replaced.json()["replaced"] is True
    assert replaced.json()["id"] == first.json()["id"]
    # another round is another answer
    assert client.post("/zones/jinling/survey", json=_answer(round="2024-08"), headers=team).status_code == 201
    listed = client.get("/zones/jinling/survey", params={"round": "2023"}, headers=team).json()
    assert (listed["answers"], listed["satisfied"]) == (1, 0)
    assert listed["items"][0]["satisfied"] is False


def test_survey_scope_and_bad_single_answers(client, db_url):
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    assert client.post("/zones/lichen/survey", json=_answer(), headers=team).status_code == 404
    assert client.post("/zones/no-such/survey", json=_answer(), headers=team).status_code == 404
    future = (today() + timedelta(days=1)).isoformat()
    response = client.post("/zones/jinling/survey", json=_answer(answered_on=future), headers=team)
    assert response.status_code == 400 and "future" in response.json()["reason"]
    assert client.post("/zones/jinling/survey", json=_answer(household=""), headers=team).status_code == 400
    assert client.post("/zones/jinling/survey", json=_answer(scores={"sanitation": 6}), headers=team).status_code == 400
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    assert client.post("/zones/jinling/survey", json=_answer(), headers=staff).status_code == 403


def test_import_rejects_the_whole_file_with_every_bad_row(client, db_url, tmp_path):
    future = (today() + timedelta(days=3)).isoformat()
    path = tmp_path / "答卷.csv"
    path.write_text(
        "小区,楼栋,户号,调查日期,调查员,是否满意,公共环境卫生,备注\n"
        "金岭农民安置小区,1栋,1-1-101,2023-08-01,王五,是,5,\n"  # 1 fine
        "火星小区,1栋,1-1-102,2023-08-01,王五,是,,\n"  # 2 unknown zone
        "jinling,1栋,,2023-08-01,王五,否,,\n"  # 3 missing household
        f"jinling,1栋,1-1-104,{future},王五,是,,\n"  # 4 date in the future
        "jinling,1栋,1-1-101,2023-08-02,王五,否,,\n"  # 5 same household again
        "jinling,1栋,1-1-106,2023-08-01,王五,也许,9,\n"  # 6 bad yes/no and score
        "jinling,1栋,1-1-107,2023-13-01,,是,,\n",  # 7 bad date, missing surveyor
        encoding="utf-8",
    )
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    response = client.post("/surveys/import", files={"file": (path.name, path.read_bytes(), "text/csv")}, headers=team)
    assert response.status_code == 400
    problems = {(p["row"], p["field"]) for p in response.json()["problems"]}
    assert problems == {
        (2, "zone"),
        (3, "household"),
        (4, "answered_on"),
        (5, "household"),
        (6, "satisfied"),
        (6, "score_sanitation"),
        (7, "answered_on"),
        (7, "surveyor"),
    }
    reasons = {(p["row"], p["field"]): p["reason"] for p in response.json()["problems"]}
    assert "火星小区" in reasons[(2, "zone")] and "future" in reasons[(4, "answered_on")]
    assert "row 1" in reasons[(5, "household")]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM survey_answers").fetchone() == (0,)


def test_import_xlsx_then_an_already_answered_household_is_a_row_error(client, db_url, tmp_path):
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["zone", "building", "household", "date", "surveyor", "satisfied", "greening"])
    for i in range(20):
        sheet.append(["jinling", "2栋", f"2-1-{i:03d}", "2023-08-05", "赵六", "满意" if i < 17 else "不满意", 4])
    path = tmp_path / "round.xlsx"
    book.save(path)
    team = auth_headers(db_url, "survey_team", zone_codes=("jinling",))
    ok = client.post(
        "/surveys/import", files={"file": (path.name, path.read_bytes(), "application/octet-stream")}, headers=team
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert isinstance(body.pop("batch"), int)
    assert body == {"rows": 20, "inserted": 20, "replaced": 0, "rounds": ["2023"]}
    again = client.post(
        "/surveys/import", files={"file": (path.name, path.read_bytes(), "application/octet-stream")}, headers=team
    )
    assert again.status_code == 400 and len(again.json()["problems"]) == 20
    assert "already answered" in again.json()["problems"][0]["reason"]
    assert main(["survey", "import", str(path), "--replace"], settings=settings_for(db_url)) == 0
    with psycopg.connect(db_url) as conn:
        figures = surveys.zone_figures(conn, district_code="430104", round_="2023", zone_code="jinling")["jinling"]
    assert (figures["answers"], figures["satisfied"], figures["rate_display"]) == (20, 17, "85.0%")
    assert figures["mean_scores"]["greening"] == 4.0


def test_rate_display_rounds_down_and_wilson_interval():
    assert surveys.rate_floor_text(2124, 2500) == "84.9%"  # 84.96% never shows as 85.0%
    assert surveys.rate_floor_text(2125, 2500) == "85.0%"
    assert surveys.rate_floor_text(2, 3) == "66.6%"
    assert surveys.rate_floor_text(0, 0) is None
    low, high = surveys.wilson(0, 10)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = surveys.wilson(85, 100)  # type: ignore[misc]
    assert low == pytest.approx(0.7672, abs=1e-4) and high == pytest.approx(0.9069, abs=1e-4)
    assert surveys.wilson(0, 0) is None


def test_reach_is_the_share_of_the_zones_households(conn):
    from geo.access.scope import Principal

    admin = Principal(username="t", role="admin")
    households = conn.execute("SELECT households FROM zones WHERE code = 'lichen'").fetchone()[0]
    for i in range(7):
        surveys.add(conn, admin, surveys.Answer("lichen", f"h{i}", today(), "t", i != 0), district_code="430104")
    figures = surveys.zone_figures(conn, district_code="430104", round_=str(today().year), zone_code="lichen")
    assert figures["lichen"]["reached"] == pytest.approx(7 / households)
    assert figures["lichen"]["rate_display"] == "85.7%"
