"""Every route × every role → the status its declared rule implies.

The rule of a route is the :class:`api.auth.Guard` among its dependencies (it
both declares and enforces). A route without one fails here, so a new route
cannot ship without an access rule; a route whose parameters this file has no
sample for fails too, so the matrix covers it for real.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Guard
from geo import users
from geo.access import ROLES
from tests.conftest import DEFAULT_SCOPE, DISTRICT, settings_for

# A value for every path parameter any route uses (an existing object where that matters).
SAMPLES = {
    "collection_id": "zones",
    "feature_id": "jinling",
    "username": "nobody-here",
    "key_id": "999999",
    "z": "15",
    "x": "26661",
    "y": "13859",
    "tile_matrix_set_id": "WebMercatorQuad",
    "tileMatrixSetId": "WebMercatorQuad",
    "tms": "WebMercatorQuad",
    "version": "1",
    "code": "C-none",
    "service_code": "light_out",
    "service_request_id": "C-none",
    "token": "C-none",
    "photo_id": "1",
    "layer": "street_lights",
    "phase": "survey",
    "fmt": "png",
    "root": "app",
    "asset": "wuye-maps.js",
}


def _routes() -> list[Any]:
    """The app's API routes, flattened through included routers (FastAPI's route contexts)."""
    app = create_app()  # not started: only the route table is read
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _guard(route: Any) -> Guard | None:
    guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Guard)]
    return guards[0] if len(guards) == 1 else None


def test_every_route_declares_exactly_one_access_rule():
    missing = [f"{sorted(r.methods)} {r.path}" for r in _routes() if _guard(r) is None]
    assert missing == [], "routes without exactly one Guard dependency (api/auth.py): " + ", ".join(missing)


def test_every_path_parameter_has_a_sample():
    params = {p for r in _routes() for p in re.findall(r"{(\w+)(?::\w+)?}", r.path)}
    assert params <= set(SAMPLES), f"add samples for {sorted(params - set(SAMPLES))}"


CASES = [(route.path, method) for route in _routes() for method in sorted(route.methods - {"HEAD"})]


@pytest.fixture(scope="module")
def matrix_client(server, template_db):
    """A client, and fresh credentials per call (a route like /auth/logout revokes the one it gets)."""
    name = "wuye_access_matrix"
    url = server.create(name, template=template_db)
    made: dict[str, users.User] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for role in ROLES:
            if role != "anonymous":
                made[role] = users.create_user(conn, username=f"matrix-{role}", password="secret-pass", role=role,
                                               district_code=DISTRICT, actor="tests", **DEFAULT_SCOPE.get(role, {}))
    conn = psycopg.connect(url, autocommit=True)

    def headers(role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        token, _ = users.issue_token(conn, made[role], ttl=timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(settings_for(url))) as client:
        yield client, headers
    conn.close()
    server.drop(name)


@pytest.mark.parametrize(("path", "method"), CASES, ids=[f"{m} {p}" for p, m in CASES])
def test_route_answers_each_role_as_its_rule_says(matrix_client, path, method):
    client, headers = matrix_client
    route = next(r for r in _routes() if r.path == path and method in r.methods)
    guard = _guard(route)
    assert guard is not None
    url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: SAMPLES[m.group(1)], path)
    for role in ROLES:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = client.request(method, url, json=body, headers=headers(role))
        if role in guard.roles:
            assert response.status_code not in (401, 403), (role, response.status_code, response.text[:200])
        else:
            expected = 401 if role == "anonymous" else 403
            assert response.status_code == expected, (role, response.status_code, response.text[:200])
