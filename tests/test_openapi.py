"""The OpenAPI document at /api says what the server does: its parameters, its errors, no 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from api.app import create_app
from geo.features import cql
from geo.features import items as ft
from tests.conftest import settings_for

ERROR_REF = "#/components/schemas/ErrorBody"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def client(shared_db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(shared_db_url))) as c:
        yield c


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    response = client.get("/api")
    assert response.status_code == 200
    return dict(response.json())


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _schema_ref(response: dict[str, Any]) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_the_document_is_valid_openapi_3_0_and_oas30_is_claimed(client: TestClient, doc: dict[str, Any]):
    assert doc["openapi"] == "3.0.3"
    validate(doc)  # openapi-spec-validator, as client generators check it
    conforms = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conforms


def test_no_operation_documents_422(doc: dict[str, Any]):
    documented = [f"{m.upper()} {p}" for p, m, op in _operations(doc) if "422" in op.get("responses", {})]
    assert documented == []
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert '"422"' not in json.dumps(doc)


def test_every_operation_documents_its_errors_with_the_one_error_body(doc: dict[str, Any]):
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) >= {"code", "status", "reason", "reason_zh"}
    assert "request_id" in doc["components"]["schemas"]["ErrorBody"]["properties"]
    seen = 0
    for path, method, op in _operations(doc):
        responses = op["responses"]
        open311 = path.startswith("/open311/")
        expected = {"400", "413", "503", "403" if open311 else "401"}
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), f"{method.upper()} {path}: {sorted(responses)}"
        ref = "#/components/schemas/Open311Error" if open311 else ERROR_REF
        for status, response in responses.items():
            if status[0] in "45":
                assert _schema_ref(response) == ref, f"{method.upper()} {path} {status}"
                assert response["description"]
        seen += 1
    assert seen > 50


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/collections", {"400", "401", "413", "503"}),
        ("get", "/collections/{collection_id}/items", {"400", "401", "404", "413", "503"}),
        ("post", "/collections/{collection_id}/items", {"401", "403", "404", "405", "409"}),
        ("put", "/collections/{collection_id}/items/{feature_id}", {"403", "405", "409", "412", "428"}),
        ("patch", "/collections/{collection_id}/items/{feature_id}", {"403", "405", "409", "412", "428"}),
        ("delete", "/collections/{collection_id}/items/{feature_id}", {"403", "405", "412", "428"}),
        ("post", "/auth/token", {"400", "429"}),
        ("get", "/admin/users", {"401", "403"}),
    ],
)
def test_operations_document_the_statuses_they_answer(doc: dict[str, Any], method: str, path: str, statuses: set):
    assert statuses <= set(doc["paths"][path][method]["responses"])


def test_public_reads_do_not_claim_403_and_reads_no_write_statuses(doc: dict[str, Any]):
    items = doc["paths"]["/collections/{collection_id}/items"]["get"]["responses"]
    assert not {"403", "405", "409", "412", "428", "429"} & set(items)
    assert "404" not in doc["paths"]["/conformance"]["get"]["responses"]


def test_the_statuses_the_server_answers_are_documented(client: TestClient, doc: dict[str, Any]):
    answers = {
        ("get", "/collections/{collection_id}/items"): client.get("/collections/nosuch/items").status_code,
        ("put", "/collections/{collection_id}/items/{feature_id}"): client.put(
            "/collections/zones/items/x", json={}
        ).status_code,
        ("get", "/collections"): client.get("/collections", params={"foo": "1"}).status_code,
        ("get", "/conformance"): client.get("/conformance", headers={"Authorization": "Basic x"}).status_code,
    }
    assert set(answers.values()) == {404, 401, 400}
    for (method, path), status in answers.items():
        assert str(status) in doc["paths"][path][method]["responses"], (method, path, status)


def test_items_operation_lists_its_query_parameters(doc: dict[str, Any]):
    op = doc["paths"]["/collections/{collection_id}/items"]["get"]
    shared = doc["components"]["parameters"]
    resolved = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in op["parameters"]]
    params = {p["name"]: p for p in resolved}
    assert {
        "collection_id",
        "limit",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "properties",
        "sortby",
        "filter",
        "filter-lang",
        "filter-crs",
        "cursor",
        "f",
        "queryables",
    } <= set(params)
    assert {n for n, p in params.items() if p["in"] != "query"} == {"collection_id", "authorization"}
    limit = params["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, ft.MAX_LIMIT)
    # where QGIS reads the page size it may ask for: components/parameters/limit, by reference
    assert {"$ref": "#/components/parameters/limit"} in op["parameters"]
    assert (shared["limit"]["schema"]["maximum"], shared["limit"]["schema"]["default"]) == (
        ft.MAX_LIMIT,
        ft.DEFAULT_LIMIT,
    )
    assert params["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql2-json"]
    attributes = params["queryables"]
    assert (attributes["style"], attributes["explode"], attributes["schema"]["type"]) == ("form", True, "object")
    assert "`street_lights`: code, " in attributes["description"] and "condition" in attributes["description"]
    one = {p["name"] for p in doc["paths"]["/collections/{collection_id}/items/{feature_id}"]["get"]["parameters"]}
    assert {"crs", "f"} <= one


def test_declared_parameters_are_still_checked_by_the_server(client: TestClient):
    assert client.get("/collections/zones/items", params={"foo": "bar"}).json()["field"] == "foo"
    assert client.get("/collections/zones/items?limit=1&limit=2").json()["field"] == "limit"
    assert client.get("/collections/zones/items?kind=x&kind=y").json()["field"] == "kind"
    assert client.get("/collections/zones/items", params={"limit": "1.5"}).json()["field"] == "limit"
    assert client.get("/collections/zones/items", params={"f": "xml"}).json()["field"] == "f"
    assert client.get("/conformance", params={"crs": "EPSG:4326"}).json()["field"] == "crs"
    assert client.get("/collections/zones/items", params={"limit": 2}).json()["numberReturned"] == 2


def test_a_filter_is_translated_once_per_request(client: TestClient, monkeypatch: pytest.MonkeyPatch):
    made: list[object] = []
    original = cql._Translator.__init__

    def counting(self: Any, *args: Any) -> None:
        made.append(self)
        original(self, *args)

    monkeypatch.setattr(cql._Translator, "__init__", counting)
    r = client.get("/collections/zones/items", params={"filter": "households > 0 AND name LIKE '%'"})
    assert r.status_code == 200 and r.json()["numberReturned"] > 0
    assert len(made) == 1


def test_link_titles_are_bound_values_not_sql_text(client: TestClient, shared_db_url: str, catalogue):
    query = ft.parse_items_query(catalogue["zones"], {"limit": "2"})
    stmt, values = ft.items_statement(
        catalogue["zones"], query, district_code="430104", links=b"", page_href="/x?cursor="
    )
    with psycopg.connect(shared_db_url) as conn:
        text = stmt.decode() if isinstance(stmt, bytes) else stmt.as_string(conn)
    assert ft.NEXT_TITLE not in text and ft.PREV_TITLE not in text and "下一页" not in text
    assert (values["next_title"], values["prev_title"]) == (ft.NEXT_TITLE, ft.PREV_TITLE)
    first = client.get("/collections/zones/items", params={"limit": 2}).json()
    nxt = next(lk for lk in first["links"] if lk["rel"] == "next")
    assert nxt["title"] == ft.NEXT_TITLE
    second = client.get(nxt["href"]).json()
    assert next(lk for lk in second["links"] if lk["rel"] == "prev")["title"] == ft.PREV_TITLE


def test_a_kept_statement_text_binds_the_values_of_its_own_request(catalogue):
    """A whole layer's first page reuses its statement's text; the district, the page's values and
    any filter or cursor are never taken from an earlier request."""
    spec = catalogue["zones"]
    first = ft.items_statement(
        spec, ft.parse_items_query(spec, {"limit": "2"}), district_code="430104", links=b"", page_href="/a"
    )
    again = ft.items_statement(
        spec, ft.parse_items_query(spec, {"limit": "7"}), district_code="430104", links=b"", page_href="/b"
    )
    assert isinstance(again[0], bytes)
    first_text = first[0] if isinstance(first[0], bytes) else first[0].as_bytes(None)
    assert again[0] == first_text
    assert (again[1]["limit"], again[1]["fetch"], again[1]["page_href"]) == (7, 8, "/b")
    assert {k: v for k, v in again[1].items() if k[1:].isdigit()} == {
        k: v for k, v in first[1].items() if k[1:].isdigit()
    }
    other = ft.items_statement(
        spec, ft.parse_items_query(spec, {"limit": "2"}), district_code="430105", links=b"", page_href="/a"
    )
    assert "430105" in other[1].values() and "430104" not in other[1].values()
    filtered = ft.items_statement(
        spec, ft.parse_items_query(spec, {"kind": "resettlement"}), district_code="430104", links=b"", page_href="/a"
    )
    assert not isinstance(filtered[0], bytes) and "resettlement" in filtered[1].values()


def test_every_string_path_parameter_declares_a_maximum_length(doc: dict[str, Any]):
    shared = doc["components"].get("parameters", {})
    missing = [
        (method, path, p["name"])
        for path, method, op in _operations(doc)
        for p in (shared[q["$ref"].rsplit("/", 1)[1]] if "$ref" in q else q for q in op.get("parameters", []))
        if p["in"] == "path"
        and p["schema"].get("type") == "string"
        and not {"maxLength", "enum", "pattern"} & set(p["schema"])
    ]
    assert missing == []


@pytest.mark.parametrize(
    "path", ["/zones/{}/acceptance", "/collections/zones/items/{}", "/remediation/{}", "/cases/{}"]
)
def test_a_path_parameter_over_its_length_is_400_naming_it(client: TestClient, doc: dict[str, Any], path: str):
    response = client.get(path.format("x" * 201))
    assert response.status_code == 400, response.text
    assert response.json()["field"] in ("code", "feature_id")
    assert client.get(path.format("x" * 80)).status_code in (401, 404)  # within the limit: not refused for it


def test_no_route_is_shadowed_by_another_on_the_same_path_and_method(client: TestClient):
    """Two routes on one path and method: the first answers, the document shows the last (GET /units
    answered the programme's units while /api described the planner's list: schemathesis ST108)."""
    from collections import Counter

    from fastapi.routing import APIRoute, iter_route_contexts

    routes = [c.original_route for c in iter_route_contexts(client.app.routes)]  # type: ignore[attr-defined]
    seen = Counter(
        (route.path, method) for route in routes if isinstance(route, APIRoute) for method in route.methods or ()
    )
    assert len(seen) > 100
    assert [key for key, n in seen.items() if n > 1] == []


def test_the_unit_list_answers_what_the_document_says(client: TestClient, doc: dict[str, Any]):
    schema = doc["paths"]["/units"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    item = schema["items"]
    while "$ref" in item:
        item = doc["components"]["schemas"][item["$ref"].rsplit("/", 1)[1]]
    units = client.get("/units").json()
    assert units and set(item["required"]) <= set(units[0])
    assert all(set(u) <= set(item["properties"]) for u in units)
    # the planner's form shows each unit's kind by name in the page's language
    assert {u["kind_label"] for u in units} >= {"物业服务企业"} or all(u["kind_label"] for u in units)
    english = client.get("/units", params={"lang": "en"}).json()
    assert [u["code"] for u in english] == [u["code"] for u in units]
    assert any(e["kind_label"] != u["kind_label"] for e, u in zip(english, units, strict=True))
