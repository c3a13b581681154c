"""The one error body: every error status the API sends answers {code, status, reason, reason_zh,
field, request_id}, with the Chinese reason pages show and the field at fault."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import ErrorBody
from tests.conftest import auth_headers, settings_for

KEYS = {"code", "status", "reason", "reason_zh", "field", "request_id"}
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def client(shared_db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(shared_db_url))) as c:
        yield c


def check(response, status: int, field: str | None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= KEYS, body
    ErrorBody.model_validate(body)
    assert body["status"] == status
    assert body["field"] == field
    assert HAN.search(body["reason_zh"]), body["reason_zh"]
    assert body["reason"] and body["code"]
    return body


def test_bad_parameter_is_400_naming_it(client):
    body = check(client.get("/collections/zones/items", params={"limit": "unlimited"}), 400, "limit")
    assert body["code"] == "InvalidParameterValue"
    assert "limit" in body["reason_zh"]


def test_unknown_collection_is_404(client):
    body = check(client.get("/collections/nowhere/items"), 404, "collectionId")
    assert body["code"] == "NotFound"


def test_missing_credentials_are_401_with_a_bearer_challenge(client):
    response = client.get("/admin/users")
    check(response, 401, None)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_role_without_the_right_is_403(client, shared_db_url):
    check(client.get("/admin/users", headers=auth_headers(shared_db_url, "resident")), 403, None)


def test_a_write_without_if_match_is_428_and_a_stale_one_412(client, shared_db_url):
    headers = auth_headers(shared_db_url, "planner")
    patch = {"properties": {"name": "改名"}}
    check(client.patch("/collections/zones/items/jinling", json=patch, headers=headers), 428, "If-Match")
    stale = {**headers, "If-Match": '"999999"'}
    check(client.patch("/collections/zones/items/jinling", json=patch, headers=stale), 412, "If-Match")


def test_an_oversize_body_is_413_with_the_same_body(client):
    big = b"x" * (5 * 1024 * 1024 + 1)
    response = client.post("/cases", content=big, headers={"Content-Type": "application/json"})
    check(response, 413, "body")


def test_too_many_sign_ins_is_429_with_retry_after(shared_db_url):
    with TestClient(create_app(settings_for(shared_db_url))) as c:
        form = {"username": "nobody-429", "password": "wrong-password"}
        answers = [c.post("/auth/token", data=form) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    body = check(answers[5], 429, "username")
    assert int(answers[5].headers["Retry-After"]) > 0
    assert "秒" in body["reason_zh"]


def test_an_unknown_query_parameter_is_400_not_422(client):
    body = check(client.get("/collections", params={"foo": "bar"}), 400, "foo")
    assert body["status"] == 400
