"""One table from domain errors to HTTP statuses, and the handlers that use it.

Bodies are JSON naming the field and the reason; no stack trace ever
reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
    e.SchemaMismatch: 500,
    e.ConfigError: 500,
    e.DatabaseUnavailable: 503,
}

_CODES = {
    400: "InvalidParameterValue",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    412: "PreconditionFailed",
    428: "PreconditionRequired",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    500: "ServerError",
    503: "ServiceUnavailable",
}


def status_of(error: e.WuyeError) -> int:
    """The HTTP status of a domain error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(status: int, reason: str, field: str | None = None, **details: object) -> dict[str, object]:
    """The JSON error body every endpoint answers with."""
    body: dict[str, object] = {"code": _CODES.get(status, "Error"), "status": status, "reason": reason}
    if field is not None:
        body["field"] = field
    body.update(details)
    return body


def _open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


def _open311_error(status: int, description: str) -> JSONResponse:
    """GeoReport v2 errors are an array of {code, description}; 401 is folded into 403 there."""
    status = 403 if status == 401 else status
    return JSONResponse([{"code": status, "description": description}], status_code=status)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.WuyeError)
    status = status_of(exc)
    if _open311(request):
        field = f"{exc.field}: " if exc.field else ""
        return _open311_error(status, field + exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.error("server-side error: %s", exc.message)
    return JSONResponse(error_body(status, exc.message, exc.field, **exc.details), status_code=status, headers=headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    # The OGC API answers 400, not FastAPI's 422, for bad parameters and bodies.
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    reason = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid"))
    if _open311(request):
        return _open311_error(400, reason)
    return JSONResponse(error_body(400, reason, field), status_code=400)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if _open311(request):
        return _open311_error(exc.status_code, str(exc.detail))
    return JSONResponse(
        error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body(500, "internal error; see the server log"), status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(e.WuyeError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
