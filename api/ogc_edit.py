"""OGC API Features Part 4 (create, replace, update, delete), feature history and restore.

Planners and administrators only (the LAYER_EDITORS guard); each route hands
the parsed body to geo.edits, which validates, checks If-Match and writes the
feature with its history row in one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Header, Request, Response

from api import auth
from api.deps import AppCatalogue, AppSettings, Connection
from api.ogc_common import GEOJSON, JSON, CollectionId, FeatureId, Format, base, layer, link, query_params
from geo.access.scope import LAYER_EDITORS, Principal
from geo.errors import InvalidInput
from geo.features import edits
from geo.features import items as ft
from geo.spatial import crs as crsmod
from geo.steps import run
from layers.catalogue import Catalogue, LayerSpec

router = APIRouter(tags=["OGC API Features: edits"])

Editor = Annotated[Principal, Depends(auth.LAYER_EDITORS)]
FeatureBody = Annotated[
    dict[str, Any], Body(description="a GeoJSON Feature (CRS84 unless Content-Crs says)", media_type=GEOJSON)
]
PatchBody = Annotated[
    dict[str, Any],
    Body(description="JSON merge patch (RFC 7396) of a Feature", media_type="application/merge-patch+json"),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the ETag (version) you read; a PUT or PATCH may instead carry it as the body's "
        "properties.version (as desktop clients send features back)",
    ),
]
ContentCrs = Annotated[str | None, Header(alias="Content-Crs", description="CRS of the body's geometry")]


def _geometry(spec: LayerSpec, geometry: Any, content_crs: str | None) -> Any:
    crs = crsmod.parse_crs(content_crs.strip().strip("<>") if content_crs else None, field="Content-Crs")
    return edits.parse_geometry(geometry, srid=crs.srid, lat_first=crs.lat_first, storage_srid=spec.srid)


def _writable(request: Request, cat: Catalogue, collection_id: str) -> LayerSpec:
    """The layer an edit is for: no query parameters, a known and writable collection."""
    query_params(request, frozenset())
    spec = layer(cat, collection_id)
    edits.check_writable(spec)
    return spec


def _feature_response(
    request: Request,
    conn: Any,
    spec: LayerSpec,
    code: str,
    district: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    c = f"{base(request)}/collections/{spec.name}"
    links = orjson.dumps(
        [link(f"{c}/items/{code}", "self", GEOJSON, "本要素 this feature"), link(c, "collection", JSON, spec.title_zh)]
    )[1:-1]
    version, body = run(conn, ft.item(spec, code, district_code=district, out=crsmod.DEFAULT_CRS, links=links))
    return Response(body, status_code=status, media_type=GEOJSON, headers={"ETag": f'"{version}"', **(headers or {})})


@router.post(
    "/collections/{collection_id}/items",
    status_code=201,
    summary="新增要素 create a feature",
    response_class=Response,
    responses={201: {"content": {GEOJSON: {}}}},
)
def create_item(
    collection_id: CollectionId,
    body: FeatureBody,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    user: Editor,
    content_crs: ContentCrs = None,
) -> Response:
    spec = _writable(request, cat, collection_id)
    props, geometry = edits.parse_feature(body)
    if "id" in body and "code" not in props:
        props = {**props, "code": body["id"]}
    district = settings.district.district_code
    written = edits.create(
        conn, cat, spec, props, _geometry(spec, geometry, content_crs), district_code=district, principal=user
    )
    location = f"{base(request)}/collections/{spec.name}/items/{written.code}"
    return _feature_response(request, conn, spec, written.code, district, 201, {"Location": location})


@router.put(
    "/collections/{collection_id}/items/{feature_id}",
    summary="替换要素 replace a feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def replace_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    body: FeatureBody,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    user: Editor,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
) -> Response:
    spec = _writable(request, cat, collection_id)
    props, geometry = edits.parse_feature(body)
    expected = edits.expected_version_of(if_match, props)
    district = settings.district.district_code
    edits.replace(
        conn,
        cat,
        spec,
        feature_id,
        props,
        _geometry(spec, geometry, content_crs),
        expected=expected,
        district_code=district,
        principal=user,
    )
    return _feature_response(request, conn, spec, feature_id, district)


@router.patch(
    "/collections/{collection_id}/items/{feature_id}",
    summary="修改要素 update (merge patch)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def update_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    body: PatchBody,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    user: Editor,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
) -> Response:
    spec = _writable(request, cat, collection_id)
    edits.refuse_crs_member(body, "body")
    expected = edits.expected_version_of(if_match, body.get("properties"))
    if "geometry" in body and body["geometry"] is None:
        raise InvalidInput("geometry cannot be removed: every feature has one", field="geometry")
    geom = _geometry(spec, body["geometry"], content_crs) if "geometry" in body else None
    district = settings.district.district_code
    edits.update(conn, cat, spec, feature_id, body, geom, expected=expected, district_code=district, principal=user)
    return _feature_response(request, conn, spec, feature_id, district)


# -- OPTIONS: what the caller may do (OGC API Features Part 4 clients probe before offering edits) --
Caller = Annotated[Principal, Depends(auth.PUBLIC)]


def _allow(cat: Catalogue, collection_id: str, user: Principal, writes: tuple[str, ...]) -> Response:
    spec = layer(cat, collection_id)
    methods = ["GET", "OPTIONS"]
    if spec.change == "editable" and user.role in LAYER_EDITORS:
        methods += writes
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})


@router.options(
    "/collections/{collection_id}/items",
    status_code=204,
    summary="可用操作 methods the caller may use on the items",
    response_class=Response,
)
def items_options(collection_id: CollectionId, request: Request, cat: AppCatalogue, user: Caller) -> Response:
    query_params(request, frozenset())
    return _allow(cat, collection_id, user, ("POST",))


@router.options(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    summary="可用操作 methods the caller may use on one feature",
    response_class=Response,
)
def item_options(
    collection_id: CollectionId, feature_id: FeatureId, request: Request, cat: AppCatalogue, user: Caller
) -> Response:
    query_params(request, frozenset())
    return _allow(cat, collection_id, user, ("PUT", "PATCH", "DELETE"))


@router.delete(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    summary="删除要素 delete a feature",
    response_class=Response,
)
def delete_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    user: Editor,
    if_match: IfMatch = None,
) -> Response:
    spec = _writable(request, cat, collection_id)
    expected = edits.expected_version(if_match)
    edits.delete(
        conn, spec, feature_id, expected=expected, district_code=settings.district.district_code, principal=user
    )
    return Response(status_code=204)


@router.get(
    "/collections/{collection_id}/items/{feature_id}/history",
    summary="历史版本 versions (planners and administrators: it names the editors)",
    dependencies=[Depends(auth.LAYER_EDITORS)],
)
def item_history(
    collection_id: CollectionId,
    feature_id: FeatureId,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    f: Format = None,
) -> Response:
    query_params(request)
    spec = layer(cat, collection_id)
    body = edits.history(conn, spec, feature_id, district_code=settings.district.district_code)
    return Response(body, media_type=JSON)


@router.post(
    "/collections/{collection_id}/items/{feature_id}/history/{version}/restore",
    summary="恢复历史版本 restore a version (as a new version)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def restore_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    version: int,
    request: Request,
    conn: Connection,
    cat: AppCatalogue,
    settings: AppSettings,
    user: Editor,
    if_match: IfMatch = None,
) -> Response:
    query_params(request, frozenset())
    spec = layer(cat, collection_id)
    expected = edits.expected_version(if_match) if if_match else None
    district = settings.district.district_code
    edits.restore(conn, cat, spec, feature_id, version, expected=expected, district_code=district, principal=user)
    return _feature_response(request, conn, spec, feature_id, district)
