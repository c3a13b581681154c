"""Response models (api/models.py) against real answers: every body the API sends for cases, actions,
remediation, survey, acceptance and users validates against the model ``/api`` documents for it
(the models forbid undeclared members, so a field added or renamed on one side only fails here),
and ``/api`` references those models for these operations."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

from api import models
from api.app import create_app
from api.maps import local_server
from tests.conftest import auth_headers, settings_for


@pytest.fixture
def client(db_url: str, tmp_path):
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    with TestClient(create_app(settings)) as c:
        yield c


def _inside(db_url: str, zone: str) -> list[float]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
        ).fetchone()
    assert row is not None
    return [row[0], row[1]]


def valid(model: Any, response: Any, status: int = 200) -> Any:
    """The body, after checking the status and validating it against ``model``."""
    assert response.status_code == status, response.text
    body = response.json()
    TypeAdapter(model).validate_python(body, strict=False)
    return body


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def test_case_answers_match_their_models(client, db_url):
    admin = auth_headers(db_url, "admin")
    lon, lat = _inside(db_url, "jinling")
    report = {"category": "garbage_pile", "lon": lon, "lat": lat, "description": "楼下垃圾", "reporter_name": "王"}
    first = valid(models.ReportedCase, client.post("/cases", json=report), 201)
    again = valid(models.ReportedCase, client.post("/cases", json=report), 201)
    assert [d["code"] for d in again["possible_duplicates"]] == [first["id"]]
    code = first["id"]
    full = valid(models.CaseFeature, client.get(f"/cases/{code}", headers=admin))
    assert full["properties"]["full"] is True and full["properties"]["events"]
    public = valid(models.CaseFeature, client.get(f"/cases/{code}"))
    assert public["properties"]["location_precision_m"] == 50 and "events" not in public["properties"]
    page = valid(models.CaseCollection, client.get("/cases", params={"limit": 1}, headers=admin))
    assert page["numberReturned"] == 1 and page["next_after"] is not None
    for action, extra in (("register", {}), ("dispatch", {}), ("handle", {"note": "已清运"}), ("verify", {})):
        moved = client.post(f"/cases/{code}/actions", json={"action": action, **extra}, headers=admin)
        valid(models.CaseFeature, moved)
    assert moved.json()["properties"]["state"] == "closed"
    valid(list[models.Category], client.get("/cases/categories"))
    stats = valid(list[models.CaseStats], client.get("/cases/stats", headers=admin))
    assert {r["dimension"] for r in stats} >= {"zone", "category"}
    valid(models.CasePhoto, client.post(f"/cases/{code}/photos", files={"photo": ("a.jpg", JPEG)}, headers=admin), 201)
    photos = valid(list[models.CasePhoto], client.get(f"/cases/{code}/photos", headers=admin))
    assert len(photos) == 1


def test_remediation_answers_match_their_models(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    body = {
        "item": "路灯",
        "planned_start": "2023-04-01",
        "planned_end": "2023-04-30",
        "geometry": {"type": "Point", "coordinates": _inside(db_url, "yumin-south")},
    }
    created = valid(models.TaskFeature, client.post("/zones/yumin-south/remediation", json=body, headers=staff), 201)
    code = created["id"]
    valid(models.TaskFeature, client.post("/zones/yumin-south/remediation", json={"item": "walls"}, headers=staff), 201)
    photo = client.post(
        f"/remediation/{code}/photos", files={"photo": ("b.jpg", JPEG)}, data={"stage": "before"}, headers=staff
    )
    valid(models.TaskPhoto, photo, 201)
    for action in ("start", "finish"):
        valid(models.TaskFeature, client.post(f"/remediation/{code}/actions", json={"action": action}, headers=staff))
    detail = valid(models.TaskFeature, client.get(f"/remediation/{code}"))
    assert len(detail["properties"]["photos"]) == 1 and detail["properties"]["before_photos"]
    tasks = valid(models.TaskCollection, client.get("/remediation"))
    assert tasks["numberReturned"] == 2
    zone = valid(models.ZoneRemediation, client.get("/zones/yumin-south/remediation"))
    assert zone["progress"]["tasks"] == 2 and zone["phases"]
    progress = valid(list[models.Progress], client.get("/remediation/progress"))
    assert {r["level"] for r in progress} == {"zone", "subdistrict", "district"}
    valid(list[models.Phase], client.get("/zones/yumin-south/phases"))
    admin = auth_headers(db_url, "admin")
    put = client.put("/zones/yumin-south/phases/survey", json={"due_on": "2023-03-15", "reason": "延期"}, headers=admin)
    assert next(p for p in valid(list[models.Phase], put) if p["phase"] == "survey")["default_deadline"] is False
    table = valid(models.PhaseTable, client.get("/phases"))
    assert len(table["zones"]) == 10


def test_survey_and_acceptance_answers_match_their_models(client, db_url):
    admin = auth_headers(db_url, "admin")
    for i, satisfied in enumerate((True, True, False)):
        answer = {
            "household": f"1-{i}",
            "building": "1",
            "answered_on": "2023-06-01",
            "satisfied": satisfied,
            "scores": {"sanitation": 4},
        }
        valid(models.SavedAnswer, client.post("/zones/jinling/survey", json=answer, headers=admin), 201)
    survey = valid(models.ZoneSurvey, client.get("/zones/jinling/survey", headers=admin))
    assert (survey["answers"], survey["satisfied"]) == (3, 2) and len(survey["items"]) == 3
    csv = "zone,household,answered_on,surveyor,satisfied\njinling,9-1,2023-06-02,王五,是\n".encode()
    imported = client.post("/surveys/import", files={"file": ("s.csv", csv)}, headers=admin)
    assert valid(models.SurveyImport, imported) == {
        "rows": 1,
        "inserted": 1,
        "replaced": 0,
        "batch": 1,
        "rounds": ["2023"],
    }
    zone = valid(models.Acceptance, client.get("/zones/jinling/acceptance", headers=admin))
    assert zone["survey"]["answers"] == 4 and zone["verdict"] == "redo"
    summary = valid(list[models.Acceptance], client.get("/acceptance", headers=admin))
    assert len(summary) == 10


def test_user_answers_match_their_models(client, db_url):
    admin = auth_headers(db_url, "admin")
    new = {"username": "team-9", "password": "pw-123456", "role": "property_team", "zone_codes": ["jinling"]}
    valid(models.User, client.post("/admin/users", json=new, headers=admin), 201)
    changed = valid(models.User, client.patch("/admin/users/team-9", json={"disabled": True}, headers=admin))
    assert changed["disabled"] is True
    listed = valid(list[models.User], client.get("/admin/users", headers=admin))
    assert "team-9" in {u["username"] for u in listed}
    assert valid(models.Me, client.get("/auth/me", headers=admin))["role"] == "admin"
    assert valid(models.Me, client.get("/auth/me"))["role"] == "anonymous"


def test_fifty_concurrent_clients_on_a_real_port_get_answers_that_match_the_models(db_url):
    admin = auth_headers(db_url, "admin")
    lon, lat = _inside(db_url, "ansu")

    def client_session(url: str, i: int) -> str:
        with httpx.Client(base_url=url, timeout=120) as c:
            report = {"category": "garbage_pile", "lon": lon, "lat": lat + i * 1e-6, "reporter_name": f"r{i}"}
            code = valid(models.ReportedCase, c.post("/cases", json=report), 201)["id"]
            moved = valid(
                models.CaseFeature, c.post(f"/cases/{code}/actions", json={"action": "register"}, headers=admin)
            )
            assert moved["properties"]["state"] == "registered"
            valid(models.CaseFeature, c.get(f"/cases/{code}", headers=admin))
            valid(list[models.Progress], c.get("/remediation/progress"))
            valid(models.Me, c.get("/auth/me", headers=admin))
            return str(code)

    with local_server(create_app(settings_for(db_url))) as url, ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda i: client_session(url, i), range(50)))
    assert len(set(codes)) == 50
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cases WHERE state = 'registered'").fetchone() == (50,)


def test_a_drifted_answer_fails_its_model():
    # the check above can fail: a member the model does not declare, or one it needs, is refused
    body = {"id": 1, "round": "2023", "zone_code": "jinling", "household": "1-1", "replaced": False}
    models.SavedAnswer.model_validate(body)
    with pytest.raises(ValueError, match="extra"):
        models.SavedAnswer.model_validate({**body, "surveyor": "x"})
    with pytest.raises(ValueError, match="missing"):
        models.SavedAnswer.model_validate({k: v for k, v in body.items() if k != "replaced"})


# operation → (status, media type, the schema it must reference)
DOCUMENTED: dict[tuple[str, str], tuple[str, str, str]] = {
    ("post", "/cases"): ("201", "application/geo+json", "ReportedCase"),
    ("get", "/cases"): ("200", "application/geo+json", "CaseCollection"),
    ("get", "/cases/{code}"): ("200", "application/geo+json", "CaseFeature"),
    ("post", "/cases/{code}/actions"): ("200", "application/geo+json", "CaseFeature"),
    ("get", "/cases/categories"): ("200", "application/json", "Category"),
    ("get", "/cases/stats"): ("200", "application/json", "CaseStats"),
    ("post", "/cases/{code}/photos"): ("201", "application/json", "CasePhoto"),
    ("get", "/cases/{code}/photos"): ("200", "application/json", "CasePhoto"),
    ("get", "/remediation"): ("200", "application/geo+json", "TaskCollection"),
    ("get", "/remediation/progress"): ("200", "application/json", "Progress"),
    ("get", "/remediation/{code}"): ("200", "application/geo+json", "TaskFeature"),
    ("post", "/remediation/{code}/actions"): ("200", "application/geo+json", "TaskFeature"),
    ("post", "/remediation/{code}/photos"): ("201", "application/json", "TaskPhoto"),
    ("get", "/zones/{code}/remediation"): ("200", "application/geo+json", "ZoneRemediation"),
    ("post", "/zones/{code}/remediation"): ("201", "application/geo+json", "TaskFeature"),
    ("get", "/zones/{code}/phases"): ("200", "application/json", "Phase"),
    ("put", "/zones/{code}/phases/{phase}"): ("200", "application/json", "Phase"),
    ("get", "/phases"): ("200", "application/json", "PhaseTable"),
    ("post", "/zones/{code}/survey"): ("201", "application/json", "SavedAnswer"),
    ("get", "/zones/{code}/survey"): ("200", "application/json", "ZoneSurvey"),
    ("post", "/surveys/import"): ("200", "application/json", "SurveyImport"),
    ("get", "/zones/{code}/acceptance"): ("200", "application/json", "Acceptance"),
    ("get", "/acceptance"): ("200", "application/json", "Acceptance"),
    ("get", "/admin/users"): ("200", "application/json", "User"),
    ("post", "/admin/users"): ("201", "application/json", "User"),
    ("patch", "/admin/users/{username}"): ("200", "application/json", "User"),
    ("get", "/auth/me"): ("200", "application/json", "Me"),
}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_api_document_references_the_models(client):
    doc = client.get("/api").json()
    schemas = doc["components"]["schemas"]
    for (method, path), (status, media, name) in DOCUMENTED.items():
        content = doc["paths"][path][method]["responses"][status]["content"]
        assert f"#/components/schemas/{name}" in _refs(content[media]), (method, path, content)
        model = getattr(models, name)
        assert issubclass(model, BaseModel)
        # the document's schema is the model's: the same members, the same required ones
        assert set(schemas[name]["properties"]) == set(model.model_fields), name
        assert set(schemas[name].get("required", [])) == {k for k, f in model.model_fields.items() if f.is_required()}
