"""OGC API Features (Parts 1-3) and Tiles: thin routes over geo.features, geo.cql and geo.tiles.

Routes parse nothing themselves beyond collecting the query string: geo/
validates every parameter (400 with the parameter's name) and builds the
SQL; the items and tile bodies are bytes straight from PostGIS.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from api import auth, openapi, workbench
from api.deps import read
from api.ogc_common import (
    CONFORMANCE,
    CRS_DOC,
    CRS_SCHEMA,
    F_DOC,
    FORMATS,
    GEOJSON,
    JSON,
    MVT,
    OPENAPI,
    CollectionId,
    FeatureId,
    Format,
    OutputCrs,
    QueryParam,
    base,
    check_lengths,
    declared,
    documented,
    json_response,
    layer,
    link,
    query_params,
    render_html,
    state,
    tile_response,
    wants_html,
)
from geo.errors import InvalidInput, NotFound
from geo.features import cql
from geo.features import items as ft
from geo.features import tiles as tl
from geo.features.cql import FUNCTIONS
from geo.settings import Settings
from geo.spatial import crs as crsmod
from layers.catalogue import Catalogue, LayerSpec
from maps import pages, qgis_styles

# Reads are public; api/ogc_edit.py guards the writes.
router = APIRouter(tags=["OGC API Features"], dependencies=[Depends(auth.PUBLIC)])
tiles_router = APIRouter(tags=["OGC API Tiles"], dependencies=[Depends(auth.PUBLIC)])


# -- landing, conformance, API document ------------------------------------------------------------
async def landing_links(request: Request, cat: Catalogue, settings: Settings, base_url: str) -> list[dict[str, str]]:
    """Links from the landing page to every map page and every zone's map."""
    spec = cat["zones"]
    query = ft.parse_items_query(spec, {"limit": "1000", "properties": "name", "sortby": "code"})
    body = orjson.loads(
        await read(
            request, ft.items(spec, query, district_code=settings.district.district_code, links=b"", page_href="")
        )
    )
    zones = [(f["id"], f["properties"].get("name") or f["id"]) for f in body["features"]]
    return pages.landing_links(base_url, zones)


@router.get("/", summary="入口 landing page（浏览器：门户首页）")
async def landing(request: Request, user: auth.CurrentUser, f: Format = None) -> Response:
    """The OGC landing page for JSON clients (and ``f=json`` / ``f=html``); a browser asking for
    HTML without ``f`` gets the portal (api/workbench.py), which links back here."""
    cat, settings = state(request)
    params = query_params(request, frozenset({"f", "lang"}))  # lang: the portal's language
    if params.get("lang") not in (None, "zh", "en"):
        raise InvalidInput("lang must be zh or en", field="lang")
    if f is None and wants_html(request, params):
        return await workbench.portal(request, user, settings)
    params.pop("lang", None)
    b = base(request)
    body = {
        "title": "wuye-gis 社区物业化服务 GIS",
        "description": f"{settings.district.district_name}社区物业化服务图层 (OGC API Features + Tiles)",
        "links": [
            link(f"{b}/", "self", JSON, "本页 this document"),
            link(f"{b}/?f=html", "alternate", "text/html", "本页 HTML"),
            link(f"{b}/api", "service-desc", OPENAPI, "API 定义 OpenAPI 3.0"),
            link(f"{b}/docs", "service-doc", "text/html", "API 文档 documentation"),
            link(f"{b}/conformance", "conformance", JSON, "一致性 conformance classes"),
            link(f"{b}/collections", "data", JSON, "图层 collections"),
            link(
                f"{b}/functions", "http://www.opengis.net/def/rel/ogc/1.0/functions", JSON, "过滤函数 filter functions"
            ),
            link(
                f"{b}/tileMatrixSets",
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                JSON,
                "瓦片矩阵集 tile matrix sets",
            ),
            link(
                f"{b}/tiles",
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                JSON,
                "全部图层矢量瓦片 vector tiles of all layers",
            ),
            *(await landing_links(request, cat, settings, b)),
        ],
    }
    return json_response(body, request, params, title="wuye-gis")


@router.get("/conformance", summary="一致性类 conformance classes")
def conformance(request: Request, f: Format = None) -> Response:
    params = query_params(request)
    return json_response({"conformsTo": CONFORMANCE}, request, params, title="Conformance")


@router.get("/functions", summary="CQL2 自定义函数 filter functions")
def functions(request: Request, f: Format = None) -> Response:
    params = query_params(request)
    return json_response({"functions": FUNCTIONS}, request, params, title="Functions")


# -- collections -------------------------------------------------------------------------------------
def collection_doc(spec: LayerSpec, b: str, extent: list[float] | None) -> dict[str, Any]:
    """The same description in /collections and /collections/{id}; ``extent`` is the bounding box of
    the layer's own features (none while it has none)."""
    c = f"{b}/collections/{spec.name}"
    doc: dict[str, Any] = {
        "id": spec.name,
        "title": f"{spec.title_zh} {spec.title_en}",
        "description": spec.description_zh or spec.title_zh,
        "itemType": "feature",
        "crs": crsmod.supported_crs(),
        "storageCrs": crsmod.crs_uri(spec.srid),
        "x-wuye-change": spec.change,
        "x-wuye-geometry": spec.geometry,
        "links": [
            link(c, "self", JSON, spec.title_zh),
            link(f"{c}?f=html", "alternate", "text/html", f"{spec.title_zh} HTML"),
            link(f"{c}/items", "items", GEOJSON, f"{spec.title_zh} 要素 items"),
            link(f"{c}/items?f=html", "items", "text/html", f"{spec.title_zh} 要素 HTML"),
            link(
                f"{c}/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "可查询属性 queryables",
            ),
            link(f"{c}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON, "矢量瓦片 vector tiles"),
            link(f"{c}/styles", "http://www.opengis.net/def/rel/ogc/1.0/styles", JSON, "样式 styles (QML, SLD)"),
        ],
    }
    if extent is not None:
        doc["extent"] = {"spatial": {"bbox": [extent], "crs": crsmod.CRS84}}
    return doc


@router.get("/collections", summary="图层列表 collections")
async def collections(request: Request, f: Format = None) -> Response:
    cat, settings = state(request)
    params = query_params(request)
    b = base(request)
    extents = await read(request, ft.layer_extents(settings.district.district_code))
    body = {
        "links": [
            link(f"{b}/collections", "self", JSON, "图层 collections"),
            link(f"{b}/collections?f=html", "alternate", "text/html", "图层 HTML"),
        ],
        "collections": [collection_doc(cat[name], b, extents.get(cat[name].table)) for name in cat],
        "crs": crsmod.supported_crs(),
    }
    return json_response(body, request, params, title="Collections 图层")


@router.get("/collections/{collection_id}", summary="图层 collection")
async def collection(collection_id: CollectionId, request: Request, f: Format = None) -> Response:
    cat, settings = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    extents = await read(request, ft.layer_extents(settings.district.district_code))
    return json_response(
        collection_doc(spec, base(request), extents.get(spec.table)), request, params, title=spec.title_zh
    )


@router.get("/collections/{collection_id}/queryables", summary="可查询属性 queryables")
def queryables(collection_id: CollectionId, request: Request, f: Format = None) -> Response:
    cat, _ = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    href = f"{base(request)}/collections/{spec.name}/queryables"
    return json_response(
        ft.queryables_schema(spec, href),
        request,
        params,
        title=f"{spec.title_zh} queryables",
        media_type="application/schema+json",
    )


# -- styles (OGC API Styles: QML and SLD for desktop GIS) ----------------------------------------------
STYLE_FORMATS = {"qml": qgis_styles.QML, "sld": qgis_styles.SLD}


@router.get("/collections/{collection_id}/styles", summary="图层样式 styles (QML, SLD)")
def styles(collection_id: CollectionId, request: Request, f: Format = None) -> Response:
    cat, _ = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    c = f"{base(request)}/collections/{spec.name}/styles"
    body = {
        "default": "default",
        "styles": [
            {
                "id": "default",
                "title": f"{spec.title_zh}（与网页地图一致 as the web maps）",
                "links": [
                    link(f"{c}/default?f={fmt}", "stylesheet", media, f"{fmt.upper()}")
                    for fmt, media in STYLE_FORMATS.items()
                ],
            }
        ],
        "links": [link(c, "self", JSON, "样式 styles")],
    }
    return json_response(body, request, params, title=f"{spec.title_zh} styles")


@router.get(
    "/collections/{collection_id}/styles/{style_id}",
    summary="图层样式文件 a style as QML or SLD",
    response_class=Response,
    responses={200: {"content": {qgis_styles.QML: {}, qgis_styles.SLD: {}}}},
)
def style(
    collection_id: CollectionId,
    style_id: str,
    request: Request,
    f: Annotated[
        str | None, declared("qml (QGIS, default) or sld", {"type": "string", "enum": list(STYLE_FORMATS)})
    ] = None,
) -> Response:
    cat, _ = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    if style_id != "default":
        raise NotFound(f"collection '{spec.name}' has no style '{style_id}'; see its /styles", field="styleId")
    fmt = params.get("f", "qml")
    if fmt not in STYLE_FORMATS:
        raise InvalidInput(f"f '{fmt}' is not one of {', '.join(STYLE_FORMATS)}", field="f")
    text = qgis_styles.qml(spec) if fmt == "qml" else qgis_styles.sld(spec)
    disposition = f'inline; filename="{spec.name}.{fmt}"'
    return Response(text, media_type=STYLE_FORMATS[fmt], headers={"Content-Disposition": disposition})


# -- items ---------------------------------------------------------------------------------------------
def _links_fragment(links: list[dict[str, str]]) -> bytes:
    return orjson.dumps(links)[1:-1]


@dataclass(frozen=True)
class ItemsRequest:
    """An items request, checked once: its layer, its query string and the parsed query."""

    spec: LayerSpec
    params: dict[str, str]
    query: ft.ItemsQuery


ITEMS_PARAMS = (
    QueryParam(
        "limit",
        f"features per page, 1..{ft.MAX_LIMIT}",
        {"type": "integer", "minimum": 1, "maximum": ft.MAX_LIMIT, "default": ft.DEFAULT_LIMIT},
    ),
    QueryParam(
        "bbox",
        "minx,miny,maxx,maxy (or 6 numbers with heights) in bbox-crs; features that intersect it",
        {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
    ),
    QueryParam("bbox-crs", "CRS of bbox (Part 2); CRS84 by default", {"type": "string", "format": "uri"}),
    QueryParam("crs", CRS_DOC, CRS_SCHEMA),
    QueryParam(
        "datetime",
        "an RFC 3339 instant or interval start/end ('..' for an open end), against updated_at",
        {},
        max_length=100,
    ),
    QueryParam(
        "properties",
        "comma-separated property names to return (see the collection's queryables)",
        {},
        max_length=2000,
    ),
    QueryParam(
        "sortby",
        "comma-separated property names, each with an optional + (ascending) or - (descending)",
        {},
        max_length=2000,
    ),
    QueryParam(
        "filter",
        f"a CQL2 filter (text or JSON) over the collection's queryables; see /functions; at most "
        f"{cql.MAX_TERMS} terms nested at most {cql.MAX_DEPTH} deep",
        {},
        max_length=cql.MAX_FILTER_CHARS,
    ),
    QueryParam(
        "filter-lang",
        "language of filter; guessed from its first character when absent",
        {"type": "string", "enum": ["cql2-text", "cql2-json"]},
    ),
    QueryParam(
        "filter-crs", "CRS of the filter's geometry literals; CRS84 by default", {"type": "string", "format": "uri"}
    ),
    QueryParam("cursor", "where a page starts: follow the next/prev links", {}, max_length=200),
    QueryParam("f", F_DOC, {"type": "string", "enum": list(FORMATS)}),
)


def items_request(collection_id: str, request: Request) -> ItemsRequest:
    """Every name and value of an items request, checked once by geo/ (``ITEMS_PARAMS`` document them).

    A collection's queryable attributes are parameters too (``zones?kind=resettlement``): they
    differ by collection, so /api lists them in the items operation's ``queryables`` parameter."""
    cat, _ = state(request)
    spec = layer(cat, collection_id)
    params = query_params(request, None)  # repeats refused here, names and values by parse_items_query
    check_lengths(params, ITEMS_PARAMS)
    return ItemsRequest(spec, params, ft.parse_items_query(spec, params))


@router.get(
    "/collections/{collection_id}/items",
    summary="要素 items",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, "text/html": {}}}},
    openapi_extra=documented(ITEMS_PARAMS),
)
async def get_items(collection_id: CollectionId, request: Request) -> Response:
    _, settings = state(request)
    checked = items_request(collection_id, request)
    spec, params, query = checked.spec, checked.params, checked.query
    html_view = wants_html(request, params)
    items_url = f"{base(request)}/collections/{spec.name}/items"
    keep = {k: v for k, v in params.items() if k != "cursor"}
    self_href = f"{items_url}?{urlencode(params)}" if params else items_url
    page_href = f"{items_url}?{urlencode({**keep, 'cursor': ''})}"
    alt = {**params, "f": "json" if html_view else "html"}
    links = [
        link(self_href, "self", "text/html" if html_view else GEOJSON, "本页 this page"),
        link(
            f"{items_url}?{urlencode(alt)}", "alternate", GEOJSON if html_view else "text/html", "另一格式 other format"
        ),
        link(f"{base(request)}/collections/{spec.name}", "collection", JSON, spec.title_zh),
    ]
    body = await read(
        request,
        ft.items(
            spec,
            query,
            district_code=settings.district.district_code,
            links=_links_fragment(links),
            page_href=page_href,
        ),
    )
    headers = {"Content-Crs": f"<{query.crs.uri}>"}
    if html_view:
        return HTMLResponse(render_html(f"{spec.title_zh} 要素", orjson.loads(body)), headers=headers)
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="单个要素 one feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, "text/html": {}}}},
)
async def get_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    request: Request,
    crs: OutputCrs = None,
    f: Format = None,
) -> Response:
    cat, settings = state(request)
    spec = layer(cat, collection_id)
    params = query_params(request, {"f", "crs"})
    out = crsmod.parse_crs(params.get("crs"))
    c = f"{base(request)}/collections/{spec.name}"
    links = [
        link(f"{c}/items/{feature_id}", "self", GEOJSON, "本要素 this feature"),
        link(f"{c}/items/{feature_id}?f=html", "alternate", "text/html", "HTML"),
        link(c, "collection", JSON, spec.title_zh),
        link(f"{c}/items/{feature_id}/history", "version-history", JSON, "历史版本 versions"),
    ]
    version, body = await read(
        request,
        ft.item(spec, feature_id, district_code=settings.district.district_code, out=out, links=_links_fragment(links)),
    )
    tag = f'"{version}"'
    headers = {"ETag": tag, "Content-Crs": f"<{out.uri}>"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    if wants_html(request, params):
        return HTMLResponse(render_html(f"{spec.title_zh} {feature_id}", orjson.loads(body)), headers=headers)
    return Response(body, media_type=GEOJSON, headers=headers)


# -- tiles -----------------------------------------------------------------------------------------------
@tiles_router.get("/tileMatrixSets", summary="瓦片矩阵集 tile matrix sets")
def tile_matrix_sets(request: Request, f: Format = None) -> Response:
    params = query_params(request)
    b = base(request)
    body = {
        "tileMatrixSets": [
            {
                "id": tl.TMS_ID,
                "title": "WebMercatorQuad",
                "links": [link(f"{b}/tileMatrixSets/{tl.TMS_ID}", "self", JSON, tl.TMS_ID)],
            }
        ]
    }
    return json_response(body, request, params, title="Tile matrix sets")


@tiles_router.get("/tileMatrixSets/{tms}", summary="瓦片矩阵集定义 tile matrix set")
def tile_matrix_set(tms: str, request: Request, f: Format = None) -> Response:
    params = query_params(request)
    tl.check_tile(tms, 0, 0, 0)
    return json_response(tl.tile_matrix_set(), request, params, title=tl.TMS_ID)


def _tileset(b: str, prefix: str, title: str, layers: list[LayerSpec], extent: list[float] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": title,
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
        "x-wuye-maxFeaturesPerTile": tl.MAX_FEATURES_PER_TILE,
        "links": [
            link(f"{b}{prefix}/{tl.TMS_ID}", "self", JSON, title),
            link(
                f"{b}/tileMatrixSets/{tl.TMS_ID}",
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                JSON,
                tl.TMS_ID,
            ),
            {
                "href": f"{b}{prefix}/{tl.TMS_ID}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}",
                "rel": "item",
                "type": MVT,
                "title": "MVT",
                "templated": True,
            },
        ],
        "x-wuye-overflow": "aggregated",
        "description": (
            f"每个瓦片每个图层最多 {tl.MAX_FEATURES_PER_TILE} 个要素；超过时该图层在这个瓦片中按 "
            f"{tl.AGGREGATE_CELLS}×{tl.AGGREGATE_CELLS} 网格聚合（aggregated=true，count 为格内要素数），不会丢弃要素。"
            f" At most {tl.MAX_FEATURES_PER_TILE} features per layer and tile: past that, the tile carries the "
            f"layer aggregated on a {tl.AGGREGATE_CELLS}×{tl.AGGREGATE_CELLS} grid (one point per cell with "
            "aggregated=true and count; each feature counted in exactly one tile), never cut short."
        ),
        "layers": [
            {
                "id": s.name,
                "title": s.title_zh,
                "dataType": "vector",
                "geometryDimension": 0 if "Point" in s.geometry else 2,
                "x-wuye-overflow": "aggregated",
                "propertiesSchema": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        **{a: {"type": "string"} for a in tl.map_attributes(s)},
                        "aggregated": {"type": "boolean", "description": "a cell of an aggregated tile"},
                        "count": {"type": "integer", "description": "features in the cell (aggregated tiles)"},
                        "detail": {"type": "string", "description": "count per value, e.g. normal:120,faulty:3"},
                    },
                },
            }
            for s in layers
        ],
    }
    if extent is not None:
        doc["boundingBox"] = {"lowerLeft": extent[:2], "upperRight": extent[2:], "crs": crsmod.CRS84}
        doc["tileMatrixSetLimits"] = [tl.tile_range(extent, z) for z in range(tl.MAX_ZOOM + 1)]
    return doc


def _tilesets_list(b: str, prefix: str, title: str) -> dict[str, Any]:
    return {
        "tilesets": [
            {
                "title": title,
                "dataType": "vector",
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "links": [link(f"{b}{prefix}/{tl.TMS_ID}", "self", JSON, title)],
            }
        ]
    }


@tiles_router.get("/tiles", summary="全部图层瓦片集 tilesets of all layers")
def dataset_tilesets(request: Request, f: Format = None) -> Response:
    params = query_params(request)
    return json_response(_tilesets_list(base(request), "/tiles", "全部图层"), request, params, title="Tilesets")


@tiles_router.get("/tiles/{tms}", summary="全部图层瓦片集 tileset of all layers")
async def dataset_tileset(tms: str, request: Request, f: Format = None) -> Response:
    cat, settings = state(request)
    params = query_params(request)
    tl.check_tile(tms, 0, 0, 0)
    extent = await read(request, ft.district_extent(settings.district.district_code))
    return json_response(
        _tileset(base(request), "/tiles", "全部图层", tl.tile_layers(cat), extent), request, params, title="Tileset"
    )


@tiles_router.get(
    "/tiles/{tms}/{z}/{x}/{y}",
    summary="全部图层矢量瓦片 MVT of all layers",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {}},
)
async def dataset_tile(tms: str, z: int, x: int, y: int, request: Request, f: Format = None) -> Response:
    cat, settings = state(request)
    query_params(request)
    tl.check_tile(tms, z, x, y)
    data = await read(request, tl.tile(tl.tile_layers(cat), z, x, y, district_code=settings.district.district_code))
    return tile_response(request, data)


@tiles_router.get("/collections/{collection_id}/tiles", summary="图层瓦片集 tilesets of a layer")
def collection_tilesets(collection_id: CollectionId, request: Request, f: Format = None) -> Response:
    cat, _ = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    return json_response(
        _tilesets_list(base(request), f"/collections/{spec.name}/tiles", spec.title_zh),
        request,
        params,
        title="Tilesets",
    )


@tiles_router.get("/collections/{collection_id}/tiles/{tms}", summary="图层瓦片集 tileset of a layer")
async def collection_tileset(collection_id: CollectionId, tms: str, request: Request, f: Format = None) -> Response:
    cat, settings = state(request)
    params = query_params(request)
    spec = layer(cat, collection_id)
    tl.check_tile(tms, 0, 0, 0)
    extent = await read(request, ft.district_extent(settings.district.district_code))
    return json_response(
        _tileset(base(request), f"/collections/{spec.name}/tiles", spec.title_zh, [spec], extent),
        request,
        params,
        title="Tileset",
    )


@tiles_router.get(
    "/collections/{collection_id}/tiles/{tms}/{z}/{x}/{y}",
    summary="图层矢量瓦片 MVT",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {}},
)
async def collection_tile(
    collection_id: CollectionId, tms: str, z: int, x: int, y: int, request: Request, f: Format = None
) -> Response:
    cat, settings = state(request)
    query_params(request)
    spec = layer(cat, collection_id)
    tl.check_tile(tms, z, x, y)
    data = await read(request, tl.tile([spec], z, x, y, district_code=settings.district.district_code))
    return tile_response(request, data)


# -- OpenAPI 3.0 -----------------------------------------------------------------------------------
# A request is matched against the routes in order, at the app and again inside this router: the
# busiest reads (an items page, one feature) are tried first.
router.routes.sort(
    key=lambda r: getattr(r, "path", "") not in (openapi.ITEMS_PATH, openapi.ITEMS_PATH + "/{feature_id}")
)


def _to_openapi30(node: Any) -> Any:
    """FastAPI writes JSON Schema 2020-12 (OpenAPI 3.1); 3.0 readers want nullable, not type null."""
    if isinstance(node, list):
        return [_to_openapi30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_openapi30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            out.pop(key)
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    for key in ("propertyNames", "$schema", "unevaluatedProperties", "prefixItems", "dependentRequired"):
        out.pop(key, None)  # JSON Schema 2019+ keywords that OpenAPI 3.0 does not know
    if "contentMediaType" in out:  # an uploaded file: 3.0 says format binary
        out.pop("contentMediaType")
        out.pop("contentEncoding", None)
        out["format"] = "binary"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out and isinstance(out["examples"], list) and "schema" not in out:
        examples = out.pop("examples")
        if examples and "type" in out:
            out["example"] = examples[0]
    return out


def api_document(request: Request) -> Response:
    """The OpenAPI 3.0 document (``/api``), built once per app: its routes are fixed once it serves."""
    params = query_params(request)
    app = request.app
    doc = getattr(app.state, "openapi_document", None)
    if doc is None:
        doc = app.state.openapi_document = openapi.document(app, state(request)[0], _to_openapi30)
    if wants_html(request, params):
        return HTMLResponse(
            f"<!doctype html><meta charset='utf-8'><title>API</title>"
            f"<p><a href='{base(request)}/docs'>Swagger UI</a></p><pre>"
            + html.escape(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
            + "</pre>"
        )
    return Response(orjson.dumps(doc), media_type=OPENAPI)


def install(app: FastAPI) -> None:
    """Mount the OGC routers and serve the OpenAPI 3.0 document at /api.

    Its endpoint is a module function reading ``request.app``, not a closure over ``app``: FastAPI
    keeps what it learnt of each endpoint and dependency in process-wide caches (thousands of
    entries) keyed by the callable, so a closure per app kept every app a process ever built alive
    (the test run's workers held ~250, 10 M objects, and each full garbage collection took 10 s)."""
    app.openapi_version = "3.0.3"
    app.include_router(router)
    app.include_router(tiles_router)
    app.get("/api", include_in_schema=False, dependencies=[Depends(auth.PUBLIC)])(api_document)
