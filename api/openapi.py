"""The OpenAPI 3.0 document at /api: FastAPI's document, told what the server really answers.

FastAPI documents a 422 for every operation with parameters, which this server never sends
(api/errors.py answers 400), and none of the errors it does send. This module replaces that,
in one place, from what each route declares: its access rule (api/auth.py Guard), its path
parameters, its method, its If-Match header. Every error response refers to the one
:class:`api.errors.ErrorBody` component (the Open311 routes to their specification's array).
It also lists each collection's queryable attributes as query parameters of the items operation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.auth import Guard
from api.errors import KINDS, ErrorBody
from geo.features import items as ft
from geo.inputs import PATH_MAX
from geo.spatial.validate import CODE_PATTERN
from layers.catalogue import Catalogue

ERROR_REF = "#/components/schemas/ErrorBody"
OPEN311_ERROR_REF = "#/components/schemas/Open311Error"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes with a rate limit of their own (sign-in: api/auth.py, geo/access/signin.py).
RATE_LIMITED = frozenset({("POST", "/auth/token"), ("POST", "/auth/password")})
ITEMS_PATH = "/collections/{collection_id}/items"

# What each status means on an operation, for its description in /api.
WHY: dict[int, str] = {
    400: "a parameter, header or body member is not valid (the body's field names it)",
    401: "no valid sign-in: the bearer token is missing, malformed or expired",
    403: "signed in, but the caller's role or scope does not allow this",
    404: "what the path names does not exist (or lies outside the caller's scope)",
    405: "the layer is read-only (generated or maintained by the service)",
    409: "the write conflicts with existing data (a duplicate code, a state that does not allow it)",
    412: "If-Match names a version that is no longer current: read the feature again",
    413: "the request body is larger than the service accepts",
    428: "this write needs If-Match with the version (ETag) that was read",
    429: "too many failed sign-ins: wait Retry-After seconds",
    503: "the database is unavailable",
}


def error_statuses(route: Any, method: str) -> list[int]:
    """The error statuses an operation can answer, derived from what the route declares.

    ``route`` is one of FastAPI's route contexts: the route as mounted, with its routers'
    dependencies (the Guard among them)."""
    statuses = {400, 401, 413, 503}  # any bearer token is checked, on public routes too
    guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Guard)]
    if any(not g.public for g in guards):
        statuses.add(403)
    if "{" in route.path:  # a path parameter names something that may not exist
        statuses.add(404)
    # ... and so do an Open311 jurisdiction_id and a basemap that is not configured (schemathesis
    # found these 404s undocumented: bench/security.py)
    if any(p.alias == "jurisdiction_id" for p in route.dependant.query_params) or route.path.startswith("/basemap/"):
        statuses.add(404)
    if method in WRITES:
        statuses.add(409)
        if route.path.startswith(ITEMS_PATH):  # OGC API Features Part 4
            statuses.add(405)
    if any(p.alias.lower() == "if-match" for p in route.dependant.header_params):
        statuses.add(412)
        if method in ("PUT", "PATCH", "DELETE"):  # replace, update, delete need it; restore does not
            statuses.add(428)
    if (method, route.path) in RATE_LIMITED:
        statuses.add(429)
    if route.path.startswith("/open311/"):  # GeoReport v2 folds 401 into 403
        statuses.discard(401)
        statuses.add(403)
    return sorted(statuses)


def _error_response(status: int, ref: str) -> dict[str, Any]:
    code, zh = KINDS[status]
    return {
        "description": f"{zh}: {WHY[status]} ({code})",
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }


def _components(doc: dict[str, Any], to_30: Any) -> None:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # the 422 bodies FastAPI adds
        schemas.pop(unused, None)
    schemas["ErrorBody"] = to_30(ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    schemas["Open311Error"] = {
        "type": "array",
        "description": "GeoReport v2 errors: an array of {code, description}",
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        },
    }


def _queryables_parameter(catalogue: Catalogue) -> dict[str, Any]:
    """The collection's attributes as query parameters (form style, exploded: ``?kind=x&phase=y``)."""
    lines = [
        "Equality filters on the collection's queryable attributes, one query parameter each "
        "(e.g. `?condition=faulty`); list attributes match when they contain the value. "
        "See /collections/{collectionId}/queryables. By collection:"
    ]
    lines += [f"- `{spec.name}`: {', '.join(ft.queryables(spec))}" for spec in catalogue.values()]
    return {
        "name": "queryables",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "description": "\n".join(lines),
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    }


def _feature_schemas(doc: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """One ``<layer>Feature`` schema per editable layer (its attributes with their types, ranges and
    ``maxLength``); the Part 4 bodies take one of them."""
    schemas = doc["components"]["schemas"]
    refs = []
    for spec in catalogue.values():
        if spec.change != "editable":
            continue
        props = {"code": {"type": "string", "maxLength": 80, "pattern": CODE_PATTERN.pattern}}
        props.update({a.name: ft.attribute_schema(a) for a in spec.attributes})
        name = f"{spec.name}Feature"
        schemas[name] = {
            "type": "object",
            "description": f"a feature of {spec.name} ({spec.title_zh}); GeoJSON, no 'crs' member (use Content-Crs)",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": {"type": "object", "description": f"GeoJSON {spec.geometry}, coordinates as numbers"},
                "properties": {"type": "object", "properties": props},
            },
        }
        refs.append({"$ref": f"#/components/schemas/{name}"})
    return {"oneOf": refs}


def _feature_body(operation: dict[str, Any], schema: dict[str, Any]) -> None:
    for content in operation.get("requestBody", {}).get("content", {}).values():
        content["schema"] = schema


def _items_parameters(doc: dict[str, Any], operation: dict[str, Any], catalogue: Catalogue) -> None:
    parameters = operation.setdefault("parameters", [])
    for i, parameter in enumerate(parameters):
        if parameter.get("name") == "bbox":  # bbox=minx,miny,maxx,maxy: one comma-separated value
            parameter.update(style="form", explode=False)
        elif parameter.get("name") == "limit":
            # As OGC API Features' own document does: the limit is a shared component, which is
            # where desktop clients look for the page size they may ask for (QGIS reads
            # components/parameters/limit: its schema's maximum and default).
            parameter.update(style="form", explode=False)
            doc["components"].setdefault("parameters", {})["limit"] = parameter
            parameters[i] = {"$ref": "#/components/parameters/limit"}
    parameters.append(_queryables_parameter(catalogue))


def document(app: FastAPI, catalogue: Catalogue, to_30: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``app``: no 422, each error status with the one error body."""
    doc: dict[str, Any] = to_30(app.openapi())
    _components(doc, to_30)
    routes = {
        (m, c.path): c
        for c in iter_route_contexts(app.routes)
        if isinstance(c.original_route, APIRoute)
        for m in c.methods or ()
    }
    feature = _feature_schemas(doc, catalogue)
    for path, operations in doc["paths"].items():
        for method_lower, operation in operations.items():
            if (method_lower, path) in (("post", ITEMS_PATH), ("put", ITEMS_PATH + "/{feature_id}")):
                _feature_body(operation, feature)
            method = method_lower.upper()
            route = routes.get((method, path))
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if route is None:
                continue
            ref = OPEN311_ERROR_REF if path.startswith("/open311/") else ERROR_REF
            for status in error_statuses(route, method):
                responses[str(status)] = _error_response(status, ref)
            if method == "GET" and path == ITEMS_PATH:
                _items_parameters(doc, operation, catalogue)
            _path_lengths(operation)
    return doc


def _path_lengths(operation: dict[str, Any]) -> None:
    """Every string path parameter without a length, enumeration or pattern of its own declares the
    limit that api/deps.py ``clean_text`` holds every path parameter to."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        declared = {"maxLength", "enum", "pattern"} & set(schema)
        if parameter.get("in") == "path" and schema.get("type") == "string" and not declared:
            schema["maxLength"] = PATH_MAX
