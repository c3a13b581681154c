"""Map pages, their snapshots and the vendored browser assets: thin routes over maps/.

The pages are public shells; what they show comes from the feature, tile and
case endpoints, which apply the caller's access rules themselves.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts

from api import auth
from api.deps import AppCatalogue, AppSettings, Connection, run_with_connection
from api.inputs import Lang
from api.ogc_common import base, layer, tile_response
from geo.access.scope import ANONYMOUS
from geo.cases.workflow import case_exists
from geo.errors import ConfigError, NotFound
from geo.features import items as ft
from geo.features import overview
from geo.programme.remediation import WORKERS as FEE_ROLES  # the fees pages (api/fees_pages.py)
from geo.programme.surveys import ENTRY_ROLES as SURVEY_ROLES
from geo.spatial import crs as crsmod
from geo.steps import run
from maps import pages, snapshot, web
from maps.assets import resolve
from maps.settings import MapSettings

router = APIRouter(tags=["maps 地图"])
Size = Annotated[int, Query(ge=200, le=4000, description="pixels")]
STATIC_CACHE = "public, max-age=86400"
PROGRESS_PATH = "/remediation/progress"  # api/acceptance.py: verified share of tasks per zone
ZONE_TASKS_PATH = "/zones/{code}/remediation"  # api/acceptance.py: a zone's tasks with their states


def map_settings(request: Request) -> MapSettings:
    """The app's map settings (``WUYE_BASEMAP`` …), read once; tests may put their own on app.state."""
    found: MapSettings | None = getattr(request.app.state, "map_settings", None)
    if found is None:
        found = MapSettings()
        request.app.state.map_settings = found
    return found


AppMapSettings = Annotated[MapSettings, Depends(map_settings)]


def _html(body: str, settings: MapSettings) -> HTMLResponse:
    csp = pages.content_security_policy(settings)
    return HTMLResponse(body, headers={"Content-Security-Policy": csp} if csp else None)


def _common(conn: Any, settings: Any, cat: Any) -> dict[str, Any]:
    return {"catalogue": cat, "bounds": run(conn, ft.district_extent(settings.district.district_code))}


WORKBENCH_PATH = "/workbench"  # linked from the navigation bar once the app serves it
FAULTS_PATH = "/workbench/facilities"  # … and, for the roles that may open them, these two
ADMIN_PATH = "/workbench/admin"
SURVEYS_PATH = "/workbench/surveys"  # survey teams (api/workbench_survey.py)
ACCEPTANCE_PATH = "/workbench/acceptance"  # signed-in staff (api/workbench_acceptance.py)
BOARD_PATH, PHASES_PATH, PUBLICITY_PATH = "/workbench/remediation", "/workbench/phases", "/workbench/publicity"
FEES_PATH = "/workbench/fees"  # the fees pages (api/fees_pages.py)


def _opening(request: Request, conn: Any, settings: Any) -> dict[str, Any]:
    """Where a page opens (the programme zones) and the navigation bar's workbench link, if served."""
    return {
        "view": run(conn, ft.programme_extent(settings.district.district_code)),
        "workbench": _served(request, WORKBENCH_PATH),
        "user": _who(request),
    }


def _who(request: Request) -> dict[str, Any] | None:
    """Who the navigation bar names (the caller of the request; None when anonymous)."""
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    found = web.who(principal, web.lang_of(request.query_params.get("lang")))
    if found is not None:  # the workbench's pages the caller may open, when the app serves them
        allowed = {
            "faults": (auth.FAULT_ROLES, FAULTS_PATH),
            "surveys": (SURVEY_ROLES, SURVEYS_PATH),
            "acceptance": (auth.STAFF_ROLES, ACCEPTANCE_PATH),
            "board": (auth.PROGRAMME_PAGE_ROLES, BOARD_PATH),
            "phases": (auth.PROGRAMME_PAGE_ROLES, PHASES_PATH),
            "publicity": (auth.PROGRAMME_PAGE_ROLES, PUBLICITY_PATH),
            "fees": (FEE_ROLES, FEES_PATH),
            "admin": (auth.ADMIN_PAGES.roles, ADMIN_PATH),
        }
        found["pages"] = [
            (key, path)
            for key, (roles, path) in allowed.items()
            if principal.role in roles and _served(request, path) is not None
        ]
    return found


def _district_page(
    build: Callable[..., str],
    request: Request,
    conn: Any,
    settings: Any,
    cat: Any,
    ms: Any,
    lang: str,
    **extra: Any,
) -> HTMLResponse:
    """A map page of the district (``build`` one of maps.pages' builders): its extent, where it opens,
    the navigation bar's caller and workbench link, in ``lang``."""
    return _html(
        build(
            **_common(conn, settings, cat),
            **_opening(request, conn, settings),
            settings=ms,
            lang=lang,
            district_name=settings.district.district_name,
            **extra,
        ),
        ms,
    )


@router.get("/maps/maintenance", summary="设施维护图", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def maintenance_map(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    return _district_page(pages.maintenance_page, request, conn, settings, cat, ms, lang)


@router.get("/maps/cases", summary="事件分布图", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def cases_map(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    return _district_page(pages.cases_page, request, conn, settings, cat, ms, lang)


def _served(request: Request, path: str) -> str | None:
    """``path`` when the app serves GET on it (the remediation routes live in api/acceptance.py); the
    app's GET paths are gathered once, on the first page asked for, not on every page."""
    paths: frozenset[str] | None = getattr(request.app.state, "get_paths", None)
    if paths is None:
        paths = frozenset(
            c.original_route.path
            for c in iter_route_contexts(request.app.routes)
            if isinstance(c.original_route, APIRoute) and "GET" in (c.original_route.methods or ())
        )
        request.app.state.get_paths = paths
    return path if path in paths else None


@router.get("/maps/remediation", summary="整治进度图", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def remediation_map(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    return _district_page(
        pages.remediation_page,
        request,
        conn,
        settings,
        cat,
        ms,
        lang,
        progress_url=_served(request, PROGRESS_PATH),
        zone_tasks_url=_served(request, ZONE_TASKS_PATH),
    )


@router.get("/maps/patrols", summary="巡更图", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def patrols_map(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    """A week's patrol scans per checkpoint and the ones missed (the figures need a staff sign-in)."""
    return _district_page(pages.patrols_page, request, conn, settings, cat, ms, lang)


@router.get("/maps/plan", summary="规划绘制", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def plan_map(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    return _html(
        pages.plan_page(
            **_common(conn, settings, cat),
            settings=ms,
            lang=lang,
            district_name=settings.district.district_name,
            workbench=_served(request, WORKBENCH_PATH),
            user=_who(request),
        ),
        ms,
    )


@router.get("/report", summary="我要报事（手机页面）", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def report_page(
    request: Request, conn: Connection, settings: AppSettings, cat: AppCatalogue, ms: AppMapSettings, lang: Lang = "zh"
) -> HTMLResponse:
    return _district_page(pages.report_page, request, conn, settings, cat, ms, lang)


@router.get(
    "/report/{code}",
    summary="事件进度（公开页面）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=HTMLResponse,
    responses={404: {"description": "no such case: the page says so"}},
)
def follow_page(
    request: Request,
    code: str,
    conn: Connection,
    settings: AppSettings,
    cat: AppCatalogue,
    ms: AppMapSettings,
    lang: Lang = "zh",
) -> HTMLResponse:
    """A case's follow page: its public view (``GET /cases/{code}``) read by the page; 404 when unknown."""
    known = run(conn, case_exists(code, district_code=settings.district.district_code))
    page = _html(
        pages.follow_page(
            **_common(conn, settings, cat),
            **_opening(request, conn, settings),
            code=code,
            settings=ms,
            lang=lang,
            district_name=settings.district.district_name,
        ),
        ms,
    )
    page.status_code = 200 if known else 404
    return page


def _zone(conn: Any, cat: Any, settings: Any, code: str) -> dict[str, Any]:
    """The zone's feature (404 naming the code when there is none)."""
    try:
        _, body = run(
            conn,
            ft.item(
                cat["zones"], code, district_code=settings.district.district_code, out=crsmod.DEFAULT_CRS, links=b""
            ),
        )
    except NotFound as e:
        raise NotFound(f"no zone '{code}'; see /collections/zones/items", field="code") from e
    zone: dict[str, Any] = orjson.loads(body)
    return zone


@router.get("/maps/zones/{code}", summary="小区图", dependencies=[Depends(auth.PUBLIC)], response_class=HTMLResponse)
def zone_map(
    request: Request,
    code: str,
    conn: Connection,
    settings: AppSettings,
    cat: AppCatalogue,
    ms: AppMapSettings,
    lang: Lang = "zh",
    snapshot: bool = False,
) -> HTMLResponse:
    zone = _zone(conn, cat, settings, code)
    return _html(
        pages.zone_page(
            cat,
            zone,
            ms,
            lang=lang,
            district_name=settings.district.district_name,
            snapshot=snapshot,
            district_bounds=run(conn, ft.district_extent(settings.district.district_code)),
            workbench=_served(request, WORKBENCH_PATH),
            user=_who(request),
        ),
        ms,
    )


@router.get(
    "/maps/zones/{code}/snapshot.{fmt}",
    summary="小区图快照 PNG / PDF（验收用）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/pdf": {}}}},
)
async def zone_snapshot(
    code: str,
    fmt: Literal["png", "pdf"],
    request: Request,
    settings: AppSettings,
    cat: AppCatalogue,
    ms: AppMapSettings,
    width: Size = 1200,
    height: Size = 800,
    lang: Lang = "zh",
) -> Response:
    # 404 before any browser work; the connection is given back before the page is drawn, as the
    # page's own requests to this server need connections of their own.
    await run_with_connection(request, lambda conn: _zone(conn, cat, settings, code))
    url = base(request)
    render = snapshot.render_zone_png if fmt == "png" else snapshot.render_zone_pdf
    data = await run_in_threadpool(render, url, code, width, height, lang=lang, timeout_s=ms.snapshot_timeout_s)
    if fmt == "png":
        return Response(data, media_type="image/png")
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{code}.pdf"'}
    )


class _TtlCache:
    """Overview tiles for ``ttl`` seconds: the same staleness the tiles' ``Cache-Control: max-age=60``
    already allows any shared cache, and a low-zoom tile reads every feature of its layer."""

    def __init__(self, ttl: float = 60.0, size: int = 1024) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[tuple[Any, ...], tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < time.monotonic():
                return None
            return hit[1]

    def put(self, key: tuple[Any, ...], data: bytes) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
                while len(self._items) >= self.size:
                    self._items.pop(next(iter(self._items)))
            self._items[key] = (time.monotonic() + self.ttl, data)


_overview_cache = _TtlCache()


@router.get(
    "/maps/overview/{collection_id}/{z}/{x}/{y}",
    summary="点图层概览瓦片（按格网与状况汇总）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=Response,
    responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}, 204: {}},
)
def overview_tile(
    collection_id: str,
    z: int,
    x: int,
    y: int,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    cat: AppCatalogue,
) -> Response:
    """Features of a layer grouped per tile cell and condition, with counts (maps at low zoom)."""
    spec = layer(cat, collection_id)
    key = (spec.name, z, x, y, settings.district.district_code)
    data = _overview_cache.get(key)
    if data is None:
        data = overview.overview_tile(conn, spec, z, x, y, district_code=settings.district.district_code)
        _overview_cache.put(key, data)
    return tile_response(request, data)


@router.get(
    "/static/{root}/{asset:path}",
    summary="页面静态资源（npm 安装，不用 CDN）",
    dependencies=[Depends(auth.PUBLIC)],
    response_class=FileResponse,
    include_in_schema=False,
)
def static_asset(root: str, asset: str) -> FileResponse:
    path = resolve(root, asset)
    if path is None:
        raise NotFound(f"no static file '{root}/{asset}'", field="path")
    return FileResponse(path, headers={"Cache-Control": STATIC_CACHE})


@contextmanager
def local_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield its base URL
    (``wuye snapshot`` renders through it when no running server is given)."""
    import uvicorn

    # The socket stays bound from here on and is handed to uvicorn: a port picked, closed and bound
    # again could be taken by another process in between (seen once with three test processes).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="wuye-local-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the local server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
