"""Request ids, the access log and the log format.

:class:`RequestLogMiddleware` is the outermost middleware of the app: every request gets an id (a
valid incoming ``X-Request-ID``, else a fresh one) on ``request.state.request_id`` (the error body's
``request_id`` and the 413 of api.security read it there), answered in ``X-Request-ID``; one access
line per request (method, path, status, duration in ms, user or anonymous, id); an unhandled error
logs its traceback once, with the id, and answers the one 500 error body.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

access_log = logging.getLogger("wuye.access")
error_log = logging.getLogger("wuye.api")

# What we accept from a client (or a proxy) as its request id: short, printable, no spaces, so it
# cannot forge log lines.
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The incoming ``X-Request-ID`` when it is valid, else a new random id."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Give each request an id, log one access line, and log a 500's traceback once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(list(scope.get("headers") or []))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*(message.get("headers") or []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The one place a traceback is logged. Not re-raised: the server would log it again.
            error_log.exception("unhandled error [%s] %s %s", request_id, scope["method"], scope["path"])
            if not status:
                await _send_500(send_with_id, request_id)
            else:
                status = 500  # the answer was cut short
        finally:
            ms = (time.perf_counter() - started) * 1000
            user = state.get("user") or "anonymous"
            access_log.info(
                "%s %s %d %.1fms user=%s id=%s",
                scope["method"],
                scope["path"],
                status,
                ms,
                user,
                request_id,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(ms, 1),
                    "user": user,
                    "request_id": request_id,
                },
            )


async def _send_500(send: Send, request_id: str) -> None:
    body = json.dumps(
        error_body(500, "internal error; see the server log", request_id=request_id), ensure_ascii=False
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


_FIELDS = ("method", "path", "status", "duration_ms", "user", "request_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the access fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> dict[str, Any]:
    """Send the app's and uvicorn's logs to stderr as text or JSON; the logging config for uvicorn
    (whose own access log is off: ours has the request id and the user)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    JsonFormatter.converter = time.gmtime
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}},
        "loggers": {
            "wuye": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
        },
    }
    logging.config.dictConfig(config)
    return config
