"""Open311 GeoReport v2 (JSON) under ``/open311/v2/``: services, requests, tokens.

Errors answer the GeoReport error array ``[{"code": …, "description": …}]``
(see api/errors.py); POST needs an ``api_key`` issued by an administrator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query
from fastapi.responses import JSONResponse

from api.auth import PUBLIC
from api.deps import AppSettings, Connection
from geo.access import users
from geo.access.scope import Principal
from geo.cases import idempotency, open311
from geo.cases import workflow as cases
from geo.cases.categories import category
from geo.cases.shapes import Report
from geo.errors import InvalidInput, NotFound
from geo.steps import run

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], dependencies=[Depends(PUBLIC)])
Jurisdiction = Annotated[str | None, Query(max_length=40, description="this district's code (optional)")]


def _jurisdiction(settings: AppSettings, jurisdiction_id: str | None) -> None:
    if jurisdiction_id not in (None, "", settings.district.district_code):
        raise NotFound(
            f"jurisdiction_id '{jurisdiction_id}' is not served here (this is {settings.district.district_code})",
            field="jurisdiction_id",
        )


@router.get("/services.json", summary="服务列表 service list")
def get_services(settings: AppSettings, jurisdiction_id: Jurisdiction = None) -> list[dict[str, Any]]:
    """One service per case category."""
    _jurisdiction(settings, jurisdiction_id)
    return open311.services()


@router.get("/services/{service_code}.json", summary="服务定义 service definition")
def get_service(service_code: str, settings: AppSettings, jurisdiction_id: Jurisdiction = None) -> dict[str, Any]:
    """The service definition (no extra attributes: metadata is false for every service)."""
    _jurisdiction(settings, jurisdiction_id)
    try:
        found = category(service_code)
    except InvalidInput as e:
        raise NotFound(f"service_code '{service_code}' does not exist", field="service_code") from e
    return {"service_code": found.code, "attributes": []}


@router.post("/requests.json", summary="提交请求 create a service request")
def post_request(
    conn: Connection,
    settings: AppSettings,
    api_key: Annotated[str, Form(max_length=200)],
    service_code: Annotated[str, Form(max_length=40)],
    lat: Annotated[float | None, Form()] = None,
    long: Annotated[float | None, Form()] = None,
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    description: Annotated[str | None, Form(max_length=2000)] = None,
    first_name: Annotated[str | None, Form(max_length=50)] = None,
    last_name: Annotated[str | None, Form(max_length=50)] = None,
    phone: Annotated[str | None, Form(max_length=40)] = None,
    jurisdiction_id: Annotated[str | None, Form(max_length=40)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Create a request from a client application (positions are WGS84, as GeoReport says).

    A retry gets the first answer and makes no second case: with the same ``Idempotency-Key``
    (as native intake), or, without one, when it is identical and within 60 s."""
    _jurisdiction(settings, jurisdiction_id)
    client = users.client_for_api_key(conn, api_key)
    if lat is None or long is None:
        what = "address_string is not geocoded here; send lat and long" if address_string else "lat and long"
        raise InvalidInput(f"a location is required: {what}", field="lat")
    name = " ".join(p for p in (last_name, first_name) if p) or None
    caller = f"open311:{client}"
    payload = [service_code, lat, long, address_string, description, first_name, last_name, phone]
    claim = idempotency.claim_for(idempotency_key, caller=caller, payload=payload)
    if claim is None:
        claim = idempotency.repeat_claim(caller=caller, payload=payload)
        idempotency.expire_repeat(conn, claim)
    report = Report(
        category_code=service_code,
        lon=long,
        lat=lat,
        coord_sys="wgs84",
        description=description,
        reporter_name=name,
        reporter_phone=phone,
        source="open311",
        client_name=client,
    )
    replayed = False
    try:
        status, body = (
            201,
            run(
                conn,
                cases.report(
                    Principal(username=caller, role="anonymous"),
                    report,
                    district_code=settings.district.district_code,
                    claim=claim,
                ),
            ),
        )
    except idempotency.Claimed as e:
        (status, body), replayed = run(conn, idempotency.replay(e.claim)), True
    unit = body["properties"].get("unit_name")
    notice = f"已受理，责任单位：{unit}" if unit else "已受理，待人工分派"
    return JSONResponse(
        [{"service_request_id": body["id"], "service_notice": notice, "account_id": None}],
        status_code=status,
        headers={"Idempotent-Replayed": "true"} if replayed else {},
    )


@router.get("/requests.json", summary="请求列表 service requests")
def get_requests(
    conn: Connection,
    settings: AppSettings,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=500)] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: Annotated[str | None, Query(max_length=10)] = None,
    jurisdiction_id: Jurisdiction = None,
) -> list[dict[str, Any]]:
    """Requests, newest first: by default the last 90 days, at most 1000."""
    _jurisdiction(settings, jurisdiction_id)
    end = end_date or datetime.now(UTC)
    start = start_date or end - timedelta(days=open311.DEFAULT_DAYS)
    ids = [s.strip() for s in service_request_id.split(",") if s.strip()] if service_request_id else None
    codes = [category(s.strip()).code for s in service_code.split(",") if s.strip()] if service_code else None
    return open311.requests(
        conn,
        district_code=settings.district.district_code,
        ids=ids,
        service_codes=codes,
        start=start,
        end=end,
        status=status,
    )


@router.get("/requests/{service_request_id}.json", summary="单个请求 one service request")
def get_request(
    service_request_id: str, conn: Connection, settings: AppSettings, jurisdiction_id: Jurisdiction = None
) -> list[dict[str, Any]]:
    """One request, as a one-element array."""
    _jurisdiction(settings, jurisdiction_id)
    found = open311.requests(
        conn,
        district_code=settings.district.district_code,
        ids=[service_request_id],
        service_codes=None,
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.max.replace(tzinfo=UTC),
        status=None,
    )
    if not found:
        raise NotFound(f"service request '{service_request_id}' does not exist", field="service_request_id")
    return found


@router.get("/tokens/{token}.json", summary="令牌查询 request id from a token")
def get_token(token: str, conn: Connection, settings: AppSettings) -> list[dict[str, Any]]:
    """Requests are created at once, so the token handed out is the request id itself."""
    found = open311.requests(
        conn,
        district_code=settings.district.district_code,
        ids=[token],
        service_codes=None,
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.max.replace(tzinfo=UTC),
        status=None,
    )
    if not found:
        raise NotFound(f"token '{token}' is unknown", field="token")
    return [{"service_request_id": token, "token": token}]
