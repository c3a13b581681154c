"""The FastAPI application factory: settings in, app out; the pool lives in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from api import acceptance, admin, auth, cases, errors, maps, ogc, ogc_edit, open311, security
from api.deps import AppCatalogue, Connection
from geo.access import users
from geo.cases.jobs import Escalator
from geo.settings import Settings
from geo.store.db import database_url, open_async_pool, open_pool
from geo.store.health import health
from layers.catalogue import Catalogue, load_catalogue


def create_app(
    settings: Settings | None = None, *, catalogue: Catalogue | None = None, database: str | None = None
) -> FastAPI:
    """Build the app. ``database`` overrides the URL the settings resolve to (tests)."""
    settings = settings or Settings()
    catalogue = catalogue or load_catalogue()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database or database_url(settings.db)
        app.state.pool = open_pool(url, settings.db)
        app.state.async_pool = await open_async_pool(url, settings.db)
        escalator = Escalator(
            app.state.pool,
            district_code=settings.district.district_code,
            grace=timedelta(hours=settings.cases.escalation_grace_hours),
            interval=settings.cases.escalation_interval_seconds,
        )
        escalator.start()
        users.dummy_hash()  # unknown usernames are verified against it: make it before any sign-in
        # What start-up built (modules, catalogue, pools) lives as long as the app: keep it out
        # of the cyclic collector's scans, whose full passes otherwise stall requests.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app that stops (tests start many) leaves its objects collectable
            escalator.stop()
            await app.state.async_pool.close()
            app.state.pool.close()

    app = FastAPI(
        title="wuye-gis 社区物业化服务 GIS",
        version="0.1.0",
        description="Zones, contract sections, facilities and problem reports of the district's "
        "community property-management programme.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalogue = catalogue
    app.state.login_limiter = auth.LoginLimiter(settings.auth.login_attempts, settings.auth.login_window_seconds)
    errors.install(app)
    security.install(app, settings.server)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(cases.router)
    app.include_router(open311.router)
    app.include_router(acceptance.router)
    app.include_router(maps.router)
    ogc.install(app)
    app.include_router(ogc_edit.router)  # writes (Part 4) beside the reads

    @app.get("/health", tags=["service"], summary="数据库、PostGIS 与迁移状态", dependencies=[Depends(auth.PUBLIC)])
    def get_health(conn: Connection, cat: AppCatalogue) -> JSONResponse:
        body: dict[str, Any] = health(conn, cat)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
