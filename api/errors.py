"""One table from domain errors to HTTP statuses, one error body, and the handlers that use them.

Every error the API answers (Open311 aside, whose specification fixes its own array) has the body
:class:`ErrorBody`: ``{code, status, reason, reason_zh, field, request_id}``. ``reason`` is for
developers and logs, ``reason_zh`` is what pages show people, ``field`` names the parameter, header
or body member at fault (``null`` when none), and ``request_id`` ties the answer to the server's log
line (``null`` until the request-id middleware has run). No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo import errors as e

log = logging.getLogger("wuye.api")

STATUS: dict[type[e.WuyeError], int] = {
    e.InvalidInput: 400,
    e.ImportRejected: 400,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.UnknownLayer: 404,
    e.NotFound: 404,
    e.LayerNotWritable: 405,
    e.Conflict: 409,
    e.PreconditionFailed: 412,
    e.PayloadTooLarge: 413,
    e.PreconditionRequired: 428,
    e.TooManyRequests: 429,
    e.SchemaMismatch: 500,
    e.ConfigError: 500,
    e.DatabaseUnavailable: 503,
    e.ServiceBusy: 503,
}

# status → (code, what the status means to a person, in Chinese)
KINDS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameterValue", "请求有误"),
    401: ("Unauthorized", "请先登录，或登录已失效"),
    403: ("Forbidden", "无权进行此操作"),
    404: ("NotFound", "未找到"),
    405: ("MethodNotAllowed", "不允许此操作"),
    409: ("Conflict", "与现有数据冲突"),
    412: ("PreconditionFailed", "数据已被他人修改，请刷新后重试"),
    413: ("PayloadTooLarge", "提交的内容过大"),
    415: ("UnsupportedMediaType", "不支持的内容类型"),
    428: ("PreconditionRequired", "修改须带上版本标记（If-Match）"),
    429: ("TooManyRequests", "尝试次数过多，请稍后再试"),
    500: ("ServerError", "服务器内部错误，请联系管理员"),
    503: ("ServiceUnavailable", "服务暂时不可用，请稍后再试"),
}


class ErrorBody(BaseModel):
    """The one error body of the API (Open311 routes answer their specification's array instead)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="machine-readable kind, e.g. InvalidParameterValue, NotFound, Conflict")
    status: int = Field(description="the HTTP status, repeated")
    reason: str = Field(description="what is wrong, for developers and logs")
    reason_zh: str = Field(description="what is wrong, in Chinese: what pages show people")
    field: str | None = Field(description="the parameter, header or body member at fault; null when none")
    request_id: str | None = Field(description="the request's id (X-Request-ID), as in the server's log")


def status_of(error: e.WuyeError) -> int:
    """The HTTP status of a domain error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def general_reason_zh(status: int, field: str | None) -> str:
    """The Chinese reason of a status, naming the field when there is one."""
    text = KINDS.get(status, ("Error", "请求未能完成"))[1]
    return f"{text}（字段：{field}）" if field else text


def error_body(
    status: int,
    reason: str,
    field: str | None = None,
    *,
    reason_zh: str | None = None,
    request_id: str | None = None,
    **details: object,
) -> dict[str, object]:
    """The JSON error body every endpoint answers with (see :class:`ErrorBody`)."""
    body: dict[str, object] = {
        "code": KINDS.get(status, ("Error", ""))[0],
        "status": status,
        "reason": reason,
        "reason_zh": reason_zh or general_reason_zh(status, field),
        "field": field,
        "request_id": request_id,
    }
    body.update({k: v for k, v in details.items() if k not in body})
    return body


def request_id_of(request: Request) -> str | None:
    """The id the request-id middleware gave this request, if it ran."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def error_response(
    request: Request,
    status: int,
    reason: str,
    field: str | None = None,
    *,
    reason_zh: str | None = None,
    headers: dict[str, str] | None = None,
    **details: object,
) -> Response:
    """An error answer with the one body; every handler below ends here. A page route answers with
    a page naming the body's ``reason_zh`` (``app.state.error_page``, set by api/workbench.py)."""
    body = error_body(status, reason, field, reason_zh=reason_zh, request_id=request_id_of(request), **details)
    error_page = getattr(request.app.state, "error_page", None)
    if error_page is not None:
        shown = error_page(request, status, body)
        if shown is not None:
            shown.headers.update(headers or {})
            return shown
    return JSONResponse(body, status_code=status, headers=headers)


def _open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


def _open311_error(status: int, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """GeoReport v2 errors are an array of {code, description}; 401 is folded into 403 there."""
    status = 403 if status == 401 else status
    return JSONResponse([{"code": status, "description": description}], status_code=status, headers=headers)


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.WuyeError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, e.TooManyRequests | e.ServiceBusy):
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if status == 503:  # the database's state (away, busy): worth a line, not an alarm
        log.warning("unavailable [%s]: %s", request_id_of(request), exc.message)
    elif status >= 500:
        log.error("server-side error [%s]: %s", request_id_of(request), exc.message)
    if _open311(request):
        field = f"{exc.field}: " if exc.field else ""
        return _open311_error(
            status, field + exc.message, {"Retry-After": headers["Retry-After"]} if status == 503 else None
        )
    return error_response(
        request, status, exc.message, exc.field, reason_zh=exc.reason_zh, headers=headers or None, **exc.details
    )


async def _validation(request: Request, exc: Exception) -> Response:
    # The OGC API answers 400, not FastAPI's 422, for bad parameters and bodies.
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    reason = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid"))
    if _open311(request):
        return _open311_error(400, reason)
    return error_response(request, 400, reason, field)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _open311(request):
        return _open311_error(exc.status_code, str(exc.detail))
    return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


# What a client is told to wait when the database is away or busy: about the time a restart or
# a queue takes, and short enough for a person to retry by hand.
RETRY_AFTER_S = 5


def _database_error(exc: Exception, pool_timeout_s: float = RETRY_AFTER_S) -> e.DatabaseUnavailable:
    """The domain error of a driver or pool failure: all are 503, "try again later"; a full pool
    tells the client to wait about as long as the pool's own wait bound."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return e.DatabaseUnavailable(
            f"the database cancelled the statement: {str(exc).strip()}",
            reason_zh="查询超时已被取消，请缩小查询范围或稍后再试",
        )
    if isinstance(exc, psycopg_pool.TooManyRequests | psycopg_pool.PoolTimeout):
        wait = max(1, math.ceil(pool_timeout_s))
        return e.ServiceBusy(
            f"no database connection is free: {str(exc).strip()}; try again in {wait} s",
            retry_after=wait,
            reason_zh=f"服务繁忙（数据库连接已满），请 {wait} 秒后再试",
        )
    return e.DatabaseUnavailable(
        f"the database is unavailable: {str(exc).strip()[:300]}", reason_zh="数据库暂时无法连接，请稍后再试"
    )


async def _driver(request: Request, exc: Exception) -> Response:
    settings = getattr(request.app.state, "settings", None)
    timeout = settings.db.pool_timeout_s if settings is not None else RETRY_AFTER_S
    return await _domain(request, _database_error(exc, timeout))


async def _limit(request: Request, exc: Exception) -> Response:
    # The database's input limits (migration 0010: <column>_len, <column>_range) are the last line
    # behind the API's own checks: a write that reaches them is bad input, not a server fault.
    assert isinstance(exc, psycopg.errors.CheckViolation)
    name = exc.diag.constraint_name or ""
    for suffix, what, what_zh in (("_len", "is too long", "过长"), ("_range", "is out of range", "超出允许范围")):
        if name.endswith(suffix):
            field = name.removesuffix(suffix)
            error = e.InvalidInput(f"{field} {what} ({name})", field=field, reason_zh=f"“{field}”{what_zh}")
            return await _domain(request, error)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(request, 500, "internal error; see the server log")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(e.WuyeError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    # Connection failures, statement timeouts and a full pool are the database's state, not a bug.
    for driver_error in (
        psycopg.OperationalError,  # QueryCanceled (statement_timeout) is one
        psycopg.InterfaceError,  # "the connection is closed"
        psycopg_pool.PoolTimeout,
        psycopg_pool.TooManyRequests,
        psycopg_pool.PoolClosed,
    ):
        app.add_exception_handler(driver_error, _driver)
    app.add_exception_handler(psycopg.errors.CheckViolation, _limit)
    app.add_exception_handler(Exception, _unexpected)
