"""Editing from desktop clients (issue 17 points 4 and 5): OPTIONS answers the methods the caller
may use, and a PUT or PATCH without If-Match is guarded by the version the body carries back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import auth_headers, settings_for
from tests.helpers import INSIDE, feature, point


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _allow(response: httpx.Response) -> set[str]:
    assert response.status_code == 204
    return {m.strip() for m in response.headers["allow"].split(",")}


def test_options_answers_the_methods_of_the_callers_role(client: TestClient, db_url: str) -> None:
    read = {"GET", "OPTIONS"}
    roles = {role: auth_headers(db_url, role) for role in ("admin", "planner", "resident")}
    for path in ("/collections/street_lights/items", "/collections/street_lights/items/any"):
        writes = {"POST"} if path.endswith("/items") else {"PUT", "PATCH", "DELETE"}
        assert _allow(client.options(path)) == read
        assert _allow(client.options(path, headers=roles["resident"])) == read
        assert _allow(client.options(path, headers=roles["planner"])) == read | writes
        assert _allow(client.options(path, headers=roles["admin"])) == read | writes
        # every method OPTIONS offers is one the route answers (not 405)
        for method in read - {"OPTIONS"}:
            assert client.request(method, path.replace("/any", "/nosuch")).status_code != 405, method
    # a layer Part 4 may not change offers no writes, even to an administrator
    assert _allow(client.options("/collections/districts/items", headers=roles["admin"])) == read
    assert client.options("/collections/nosuch/items").status_code == 404


def _history(url: str, code: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [
            (int(v), str(op))
            for v, op in conn.execute(
                "SELECT version, operation FROM feature_history WHERE layer = 'street_lights' AND feature_code = %s "
                "ORDER BY id",
                [code],
            )
        ]


def test_put_and_patch_without_if_match_use_the_body_version(client: TestClient, db_url: str) -> None:
    planner = auth_headers(db_url, "planner")
    made = client.post(
        "/collections/street_lights/items",
        json=feature(point(*INSIDE), code="DESK-1", condition="normal", power_w=60),
        headers=planner,
    )
    assert made.status_code == 201, made.text
    read = client.get("/collections/street_lights/items/DESK-1").json()
    assert read["properties"]["version"] == 1
    # PUT back what was read, changed, without If-Match: accepted, version 2
    read["properties"]["power_w"] = 80
    put = client.put("/collections/street_lights/items/DESK-1", json=read, headers=planner)
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == '"2"' and put.json()["properties"]["power_w"] == 80
    # the same stale body again (version 1): 412, nothing written
    read["properties"]["power_w"] = 90
    stale = client.put("/collections/street_lights/items/DESK-1", json=read, headers=planner)
    assert stale.status_code == 412 and stale.json()["field"] == "If-Match"
    # PATCH with the current version in its properties: accepted
    patch = client.patch(
        "/collections/street_lights/items/DESK-1",
        content=json.dumps({"properties": {"version": 2, "power_w": 100}}),
        headers={**planner, "Content-Type": "application/merge-patch+json"},
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["properties"]["version"] == 3 and patch.json()["properties"]["power_w"] == 100
    # neither If-Match nor a version: 428; a version that is not one: 400
    bare = {"properties": {"power_w": 1}}
    no_version = client.patch(
        "/collections/street_lights/items/DESK-1",
        content=json.dumps(bare),
        headers={**planner, "Content-Type": "application/merge-patch+json"},
    )
    assert no_version.status_code == 428
    del read["properties"]["version"]
    assert client.put("/collections/street_lights/items/DESK-1", json=read, headers=planner).status_code == 428
    read["properties"]["version"] = "3"
    bad = client.put("/collections/street_lights/items/DESK-1", json=read, headers=planner)
    assert bad.status_code == 400 and bad.json()["field"] == "properties.version"
    # If-Match, when given, is what counts
    read["properties"]["version"] = 1
    ok = client.put("/collections/street_lights/items/DESK-1", json=read, headers={**planner, "If-Match": '"3"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"4"'
    assert _history(db_url, "DESK-1") == [(1, "insert"), (2, "update"), (3, "update"), (4, "update")]
    assert client.get("/collections/street_lights/items/DESK-1").json()["properties"]["power_w"] == 90
