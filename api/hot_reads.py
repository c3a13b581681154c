"""The busiest read, a page of a collection's items, served without FastAPI's routing and
dependency solving.

For a small page (the features benchmark's case (e): ten zones) FastAPI's own work per request —
matching the path against the routes at the app and again in the router, solving the route's
dependencies, its exception and exit-stack layers — cost about as much server time as all the
rest of the request (parsing, the statement, the answer). :class:`HotReads` sits inside the app's
own middlewares (request id and access log, body limit, security headers, CORS) and, for
``GET /collections/{collection_id}/items`` only, runs the very route function
(:func:`api.ogc.get_items`) after the very dependencies the route declares
(:data:`ITEMS_DEPENDENCIES`, checked against the registered route at start-up); an error goes to
the app's own exception handlers, as FastAPI would send it. Anything else (another path or
method, an app mounted under a root path) goes on to FastAPI unchanged; the route stays
registered there, which documents it in /api and declares its access rule.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import auth, ogc
from api.deps import clean_text
from api.openapi import ITEMS_PATH

_ITEMS = re.compile(r"/collections/([^/]+)/items")

# What FastAPI runs before the route function, in its order: the app's check of every text that
# comes in, then the OGC router's access rule.
ITEMS_DEPENDENCIES: tuple[Callable[..., Any], ...] = (clean_text, auth.PUBLIC)

Handler = Callable[[Request, Exception], Awaitable[Response]]


def route_dependencies(app: FastAPI, path: str, method: str) -> tuple[Callable[..., Any], ...]:
    """The dependencies FastAPI runs for ``method path``, outermost first."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.path == path and method in (route.methods or ()):
            return tuple(d.call for d in route.dependant.dependencies if d.call is not None)
    raise LookupError(f"no route {method} {path}")


class HotReads:
    """Serve ``GET /collections/{id}/items`` directly (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.served = 0  # requests answered here (the tests check that the route was not reached)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _ITEMS.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        self.served += 1
        collection_id = match.group(1)
        scope["path_params"] = {"collection_id": collection_id}
        request = Request(scope, receive)
        try:
            await clean_text(request)
            await auth.PUBLIC(request, request.headers.get("authorization"))
            response = await ogc.get_items(collection_id, request)
        except Exception as exc:
            handler = _handler(request.app, exc)
            if handler is None:
                raise  # as FastAPI would: the outer layers log it once and answer 500
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler(app: FastAPI, exc: Exception) -> Handler | None:
    """The app's handler for ``exc``, looked up as Starlette's exception middleware does (the
    catch-all ``Exception`` handler belongs to the outermost layer, as there)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler  # type: ignore[return-value]
    return None


def install(app: FastAPI) -> None:
    """Add the middleware, after checking that the items route still declares what it runs."""
    declared = route_dependencies(app, ITEMS_PATH, "GET")
    if declared != ITEMS_DEPENDENCIES:
        raise RuntimeError(
            f"GET {ITEMS_PATH} declares {declared}; api/hot_reads.py runs {ITEMS_DEPENDENCIES}: update it"
        )
    # Innermost of the app's own middlewares (add_middleware would put it outermost): the request
    # id, access log, body limit, security headers and CORS apply to its answers as to any other.
    app.user_middleware.append(Middleware(HotReads))
