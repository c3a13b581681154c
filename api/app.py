"""The FastAPI application factory: settings in, app out; the pool lives in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api import (
    acceptance,
    admin,
    auth,
    basemap,
    cases,
    errors,
    faults,
    fees_pages,
    hot_reads,
    logs,
    maps,
    ogc,
    ogc_edit,
    open311,
    patrols,
    programme,
    security,
    workbench,
    workbench_acceptance,
    workbench_admin,
    workbench_programme,
    workbench_stats,
    workbench_survey,
)
from api.deps import ConnectionGate, DatabaseWatch, clean_text
from geo.access import users
from geo.cases import notices
from geo.cases.jobs import Escalator
from geo.cases.leader import Leadership
from geo.settings import Settings
from geo.store import health
from geo.store.db import database_url, open_async_pool, open_pool
from layers.catalogue import Catalogue, load_catalogue

THREADS_PER_CONNECTION = 2  # worker threads per pooled connection (see the lifespan)
HEALTH_TIMEOUT_S = 1.0


def create_app(
    settings: Settings | None = None, *, catalogue: Catalogue | None = None, database: str | None = None
) -> FastAPI:
    """Build the app. ``database`` overrides the URL the settings resolve to (tests)."""
    settings = settings or Settings()
    catalogue = catalogue or load_catalogue()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database or database_url(settings.db)
        app.state.database_url = url
        app.state.pool = open_pool(url, settings.db)
        app.state.async_pool = await open_async_pool(url, settings.db)
        db = settings.db
        app.state.gate = ConnectionGate(db.pool_max_size, max_waiting=db.pool_max_waiting, timeout=db.pool_timeout_s)
        app.state.db_watch = DatabaseWatch(db.pool_timeout_s)
        # Worker threads and pool sized together: requests wait for a connection at the gate (in
        # the event loop), so at most pool_max_size threads hold connections and the rest are
        # free for the connection holders' own work and for routes that need none.
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS_PER_CONNECTION * db.pool_max_size + 8
        # One process of those serving this database (WUYE_WORKERS, other servers) runs the jobs.
        leader = Leadership(url, connect_timeout=db.pool_timeout_s)
        escalator = Escalator(
            app.state.pool,
            district_code=settings.district.district_code,
            grace=timedelta(hours=settings.cases.escalation_grace_hours),
            interval=settings.cases.escalation_interval_seconds,
            pii_days=settings.cases.pii_retention_days,
            audit_days=settings.auth.audit_retention_days,
            leader=leader,
        )
        escalator.start()
        hooks = settings.webhook
        sender = notices.WebhookSender(
            app.state.pool,
            urls=hooks.urls,
            interval=hooks.interval_seconds,
            retry_seconds=hooks.retry_seconds,
            max_attempts=hooks.max_attempts,
            timeout_s=hooks.timeout_s,
            leader=leader,
        )
        sender.start()
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
            sender.stop()
            leader.close()
            await app.state.async_pool.close()
            app.state.pool.close()

    app = FastAPI(
        title="wuye-gis 社区物业化服务 GIS",
        version="0.1.0",
        description="Zones, contract sections, facilities and problem reports of the district's "
        "community property-management programme.",
        lifespan=lifespan,
        docs_url=None,  # /docs is ours (api/workbench.py): Swagger UI served offline, reading /api
        redoc_url=None,  # (ReDoc loads from a CDN and a web worker: gone; /docs covers it)
        # one check of every text that comes in, before any route's own (issue 13)
        dependencies=[Depends(clean_text)],
    )
    app.state.settings = settings
    app.state.catalogue = catalogue
    errors.install(app)
    security.install(app, settings.server)
    app.add_middleware(logs.RequestLogMiddleware)  # outermost: the id is set before the body limit
    # The busiest routes first: a request is matched against the routes in this order.
    ogc.install(app)
    # The case desk and a case page are read by crowds of staff: matched before some 100 API routes
    # (their paths overlap none of the routers' after them).
    app.include_router(workbench.router)
    app.include_router(ogc_edit.router)  # writes (Part 4) beside the reads
    app.include_router(cases.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(open311.router)
    app.include_router(acceptance.router)
    app.include_router(programme.router)
    app.include_router(patrols.router)
    app.include_router(maps.router)
    app.include_router(faults.router)
    app.include_router(fees_pages.router)  # the fees pages (issue 21 point 6)
    app.include_router(workbench_admin.router)  # the administration pages (issue 20 point 7)
    app.include_router(workbench_stats.router)  # the statistics page (issue 21 point 7)
    app.include_router(workbench_survey.router)  # survey entry, import and answers (issue 21 point 4)
    app.include_router(workbench_acceptance.router)  # the acceptance desk (issue 21 point 5)
    app.include_router(workbench_programme.router)  # remediation board, phases, publicity (issue 21 points 1-3)
    app.state.error_page = workbench.error_page  # errors on page routes answer with a page
    basemap.install(app)  # WUYE_BASEMAP=mbtiles:/pmtiles: checked here, at start-up
    hot_reads.install(app)  # items pages without FastAPI's routing and dependency solving

    app.get(
        "/health",
        tags=["service"],
        summary="服务健康：数据库、迁移、照片目录与磁盘",
        dependencies=[Depends(auth.PUBLIC)],
    )(get_health)  # a module function, not a closure over this app: see api/ogc.py's install
    return app


async def get_health(request: Request) -> JSONResponse:
    """200 when all is well, else 503 naming each problem; answers within about a second."""
    state = request.app.state
    settings: Settings = state.settings
    body = await health.check(
        state.database_url,
        state.catalogue,
        photo_root=settings.db.home,
        min_free_mb=settings.server.min_free_disk_mb,
        timeout_s=HEALTH_TIMEOUT_S * 0.8,
    )
    ok = body["status"] == "ok"
    return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"})
