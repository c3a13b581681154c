"""Items pages served by api/hot_reads.py answer exactly as the FastAPI route does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import hot_reads
from api.app import create_app
from tests.conftest import auth_headers, settings_for

# Headers that differ between any two answers, whoever makes them.
VARYING = {"date", "x-request-id"}


def _without_hot_reads(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not hot_reads.HotReads]
    return app


@pytest.fixture(scope="module")
def clients(shared_db_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    settings = settings_for(shared_db_url)
    with (
        TestClient(create_app(settings)) as hot,
        TestClient(_without_hot_reads(create_app(settings))) as plain,
    ):
        yield hot, plain


def _served(client: TestClient) -> int:
    """How many requests the app's HotReads middleware answered itself."""
    layer: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while layer is not None:
        if isinstance(layer, hot_reads.HotReads):
            return layer.served
        layer = getattr(layer, "app", None)
    return -1


def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    r = client.get(path, headers=headers)
    kept = {k: v for k, v in r.headers.items() if k not in VARYING}
    body: Any = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"", r.content)  # an HTML page's timeStamp
    if "json" in r.headers.get("content-type", ""):
        body = r.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
            body.pop("timeStamp", None)  # the second the page was made
    return r.status_code, kept, body


REQUESTS = [
    ("/collections/zones/items?limit=2", {}),
    ("/collections/zones/items?limit=2&f=html", {}),
    ("/collections/zones/items?limit=3", {"Accept": "text/html"}),
    ("/collections/street_lights/items?limit=5&condition=faulty&sortby=-code", {}),
    ("/collections/zones/items?limit=abc", {}),
    ("/collections/zones/items?limit=0", {}),
    ("/collections/zones/items?cursor=nope", {}),
    ("/collections/zones/items?colour=red", {}),
    ("/collections/zones/items?limit=2&limit=3", {}),
    ("/collections/zones/items?filter=households%20%3E%201e400", {}),
    ("/collections/zones/items?name=a%00b", {}),
    ("/collections/nowhere/items", {}),
    ("/collections/zones/items?bbox=1,2,3", {}),
    ("/collections/zones/items?crs=EPSG:9999", {}),
    ("/collections/zones/items?limit=1", {"Authorization": "Bearer not-a-token"}),
    ("/collections/zones/items?limit=1", {"Authorization": "Basic abc"}),
]


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
def test_answers_match_the_fastapi_route(clients: tuple[TestClient, TestClient], path: str, headers: dict[str, str]):
    hot, plain = clients
    before = _served(hot)
    assert _answer(hot, path, headers) == _answer(plain, path, headers)
    assert _served(hot) == before + 1  # the middleware answered, not FastAPI
    assert _served(plain) == -1


def test_a_signed_in_caller_and_the_next_page(clients: tuple[TestClient, TestClient], shared_db_url: str):
    hot, plain = clients
    token = auth_headers(shared_db_url, "planner")
    first = _answer(hot, "/collections/street_lights/items?limit=3", token)
    assert first == _answer(plain, "/collections/street_lights/items?limit=3", token)
    assert first[0] == 200 and first[2]["numberReturned"] == 3
    nxt = next(link["href"] for link in first[2]["links"] if link["rel"] == "next")
    path = nxt.split("testserver", 1)[1]
    assert _answer(hot, path, token) == _answer(plain, path, token)


def test_other_requests_go_on_to_fastapi(clients: tuple[TestClient, TestClient]):
    hot, _ = clients
    before = _served(hot)
    assert hot.get("/collections/zones/items/LC").status_code in (200, 404)
    assert hot.head("/collections/zones/items?limit=1").status_code in (200, 405)
    assert hot.get("/collections/zones").status_code == 200
    assert _served(hot) == before


def test_the_route_declares_what_the_middleware_runs(shared_db_url: str, monkeypatch: pytest.MonkeyPatch):
    """The app does not start when the items route's dependencies and the middleware's differ."""
    app = create_app(settings_for(shared_db_url))
    declared = hot_reads.route_dependencies(app, "/collections/{collection_id}/items", "GET")
    assert declared == hot_reads.ITEMS_DEPENDENCIES
    monkeypatch.setattr(hot_reads, "ITEMS_DEPENDENCIES", declared[:1])  # as if a dependency were added
    with pytest.raises(RuntimeError, match="hot_reads"):
        create_app(settings_for(shared_db_url))
