"""What the OGC routes (reads, writes, tiles) and the map routes share: media types, path
parameters, query-string checks, links, the JSON/HTML answer and the tile answer."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from geo.errors import InvalidInput, UnknownLayer
from geo.features import tiles as tl
from geo.settings import Settings
from geo.spatial import crs as crsmod
from layers.catalogue import Catalogue, LayerSpec

GEOJSON = "application/geo+json"
JSON = "application/json"
MVT = "application/vnd.mapbox-vector-tile"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/functions",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
]

CollectionId = Annotated[str, Path(description="collection (layer) name, e.g. zones")]
FeatureId = Annotated[str, Path(description="the feature's stable code")]


# -- declared query parameters -----------------------------------------------------------------------
# Each is declared as the string it is on the wire, with the schema clients should send in /api:
# geo/ parses and checks every value once (400 naming the parameter, never FastAPI's 422).
def declared(
    description: str, schema: dict[str, Any] | None = None, alias: str | None = None, *, max_length: int | None = None
) -> Any:
    if max_length is not None:  # free text: its longest value is declared and checked here
        schema = {"type": "string", "maxLength": max_length, **(schema or {})}
    extra = {"anyOf": [schema, {"type": "null"}]} if schema else None
    return Query(alias=alias, description=description, json_schema_extra=extra, max_length=max_length)


@dataclass(frozen=True)
class QueryParam:
    """A query parameter documented in /api and parsed by geo/ alone, not by FastAPI.

    On the busiest read (a small items page) FastAPI's checking of a dozen declared parameters
    cost about a third of the request, for values geo/ parses and checks again anyway. A route
    lists these in ``openapi_extra`` (:func:`documented`) and calls :func:`check_lengths`."""

    name: str
    description: str
    schema: dict[str, Any]
    max_length: int | None = None

    def openapi(self) -> dict[str, Any]:
        schema = dict(self.schema)
        if self.max_length is not None:
            schema = {"type": "string", "maxLength": self.max_length, **schema}
        return {"name": self.name, "in": "query", "required": False, "schema": schema, "description": self.description}


def documented(params: Sequence[QueryParam]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose query parameters are ``params``."""
    return {"parameters": [p.openapi() for p in params]}


def check_lengths(values: Mapping[str, str], params: Sequence[QueryParam]) -> None:
    """400 for a value longer than its parameter's declared ``maxLength``."""
    for p in params:
        value = values.get(p.name)
        if p.max_length is not None and value is not None and len(value) > p.max_length:
            raise InvalidInput(f"{p.name}: String should have at most {p.max_length} characters", field=p.name)


FORMATS = ("json", "html", "geojson", "jsonfg", "mvt")
F_DOC = "answer format: json (default) or html; without it a browser's Accept header picks html"
Format = Annotated[
    str | None,
    declared(F_DOC, {"type": "string", "enum": list(FORMATS)}),
]
CRS_DOC = "CRS of the answer's geometries (OGC API Features Part 2), as a URI or EPSG:n; CRS84 by default"
CRS_SCHEMA = {"type": "string", "format": "uri", "default": crsmod.CRS84}
OutputCrs = Annotated[str | None, declared(CRS_DOC, CRS_SCHEMA)]


# -- request helpers --------------------------------------------------------------------------------
def query_params(request: Request, allowed: set[str] | frozenset[str] | None = frozenset({"f"})) -> dict[str, str]:
    """The query string as a dict; a repeated key or one not in ``allowed`` is 400.

    ``allowed=None`` leaves the names to the caller's parser (the items query checks them once)."""
    seen: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in seen:
            raise InvalidInput(f"query parameter '{key}' is given more than once", field=key)
        seen[key] = value
    if allowed is None:
        return seen
    for key in seen:
        if key not in allowed:
            raise InvalidInput(f"unknown query parameter '{key}'", field=key)
    return seen


def wants_html(request: Request, params: dict[str, str]) -> bool:
    """``f=html``, or a browser's Accept header (text/html before any JSON type)."""
    f = params.get("f")
    if f is not None:
        if f not in ("html", "json", "geojson", "jsonfg", "mvt"):
            raise InvalidInput(f"f '{f}' is not one of html, json", field="f")
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def state(request: Request) -> tuple[Catalogue, Settings]:
    """The catalogue and settings on app.state, read directly: each sync dependency would cost a
    threadpool hop per request on the hottest paths."""
    return request.app.state.catalogue, request.app.state.settings


def layer(catalogue: Catalogue, collection_id: str) -> LayerSpec:
    """The catalogue's spec for a collection id (404 when there is none)."""
    if collection_id not in catalogue:
        raise UnknownLayer(f"no collection '{collection_id}'; see /collections", field="collectionId")
    return catalogue[collection_id]


def base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def json_response(
    body: Any,
    request: Request,
    params: dict[str, str],
    *,
    title: str,
    media_type: str = JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON, or the simple HTML view of the same body."""
    if wants_html(request, params):
        return HTMLResponse(render_html(title, body), headers=headers)
    return Response(orjson.dumps(body), media_type=media_type, headers=headers)


# -- HTML view ---------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return html.escape(orjson.dumps(value).decode()[:300])
    return html.escape("" if value is None else str(value))


def render_html(title: str, body: Any) -> str:
    """A plain page: the links, a table of the features or members, and the JSON itself."""
    parts = [
        f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if isinstance(body, dict):
        for key in ("description", "numberMatched", "numberReturned"):
            if key in body:
                parts.append(f"<p><b>{key}</b>: {_cell(body[key])}</p>")
        parts.append("<ul>")
        for lk in body.get("links", []):
            parts.append(
                f"<li><a href='{html.escape(lk['href'])}'>{html.escape(lk.get('title', lk['rel']))}"
                f"</a> ({html.escape(lk['rel'])}, {html.escape(lk.get('type', ''))})</li>"
            )
        parts.append("</ul>")
        rows = body.get("features") or body.get("collections")
        if rows is None and body.get("type") == "Feature":
            rows = [body]
        if rows:
            first = rows[0].get("properties", rows[0])
            cols = [c for c in first if not isinstance(first[c], dict | list) or c == "crs"][:12]
            parts.append("<table><tr><th>id</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
            for row in rows:
                props = row.get("properties", row)
                parts.append(
                    f"<tr><td>{_cell(row.get('id'))}</td>"
                    + "".join(f"<td>{_cell(props.get(c))}</td>" for c in cols)
                    + "</tr>"
                )
            parts.append("</table>")
    parts.append(
        "<details><summary>JSON</summary><pre>"
        + html.escape(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()[:200_000])
        + "</pre></details></body></html>"
    )
    return "".join(parts)


TILE_CACHE = "public, max-age=60, must-revalidate"


def tile_response(request: Request, data: bytes) -> Response:
    """A vector tile with its ETag: 304 when the client has it, 204 when it is empty."""
    tag = tl.etag(data)
    headers = {"ETag": tag, "Cache-Control": TILE_CACHE}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
