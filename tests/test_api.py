"""The service skeleton: app factory, pool in the lifespan, /health, the error table."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import STATUS, status_of
from geo import errors
from tests.conftest import settings_for


def test_health_reports_postgis_and_migrations(shared_db_url: str):
    app = create_app(settings_for(shared_db_url))
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "reachable"
    assert body["postgis"].startswith("3.")
    assert body["migrations"] == {"applied": True, "pending": []}


def test_health_is_degraded_when_migrations_are_pending(db_url: str):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM wuye_migrations WHERE name = 'layer:green_plots'")
    with TestClient(create_app(settings_for(db_url))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["migrations"]["pending"] == ["layer:green_plots"]


def test_unknown_route_answers_json_without_a_trace(shared_db_url: str):
    with TestClient(create_app(settings_for(shared_db_url))) as client:
        response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"
    assert "Traceback" not in response.text


def test_every_domain_error_has_a_status():
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.WuyeError) and c is not errors.WuyeError
    ]
    assert set(classes) <= set(STATUS), "add new domain errors to api/errors.STATUS"
    assert status_of(errors.ImportRejected("x")) == 400
