"""Folium builders of the map pages: a light HTML shell, the data comes from our API.

Each builder returns the page's HTML. folium makes the Leaflet map, the asset
links (our served copies, see :mod:`maps.assets`) and the basemap; the
``WuyePage`` element hands the page's configuration (layers, legends, words,
where to read the data) to ``/static/app/wuye-maps.js``, which loads features
from our tile and feature endpoints. Page weight therefore does not grow with
the data. Every page sets ``window.wuyeReady = true`` once its data has been
drawn: browser tests and snapshots wait on it, never on a timer.
"""

from __future__ import annotations

import html
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium import plugins
from folium.elements import JSCSSMixin
from jinja2 import Template
from shapely.geometry import shape

from geo.features.overview import DETAIL_ZOOM, OVERVIEW_CELLS
from layers.catalogue import Catalogue, LayerSpec, vocabulary
from maps import basemap as local_basemap
from maps import plan, styles
from maps.assets import POLYCLIP_JS, app_asset
from maps.display import gcj02_grid
from maps.settings import MapSettings

# Tile URLs of the optional basemaps and the hosts their pages may load images from.
BASEMAPS: dict[str, dict[str, Any]] = {
    "osm": {
        "tiles": ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
        "attr": "© OpenStreetMap contributors",
        "hosts": ["https://tile.openstreetmap.org"],
    },
    "tianditu": {
        "tiles": [
            "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
            "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
        ],
        "attr": "© 天地图 Tianditu",
        "subdomains": "01234567",
        "hosts": ["https://*.tianditu.gov.cn"],
    },
    "amap": {
        "tiles": ["https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"],
        "attr": "© 高德地图 AMap (GCJ-02)",
        "subdomains": "1234",
        "hosts": ["https://*.is.autonavi.com"],
    },
}
MAX_ZOOM = 19


class WuyePage(JSCSSMixin, MacroElement):
    """Starts the page's script with its configuration once folium has made the map."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        wuye.start({{ this._parent.get_name() }}, {{ this.config | tojson }});
        {% endmacro %}
    """)

    def __init__(
        self,
        config: dict[str, Any],
        js: list[tuple[str, str]],
        css: list[tuple[str, str]],
        page_js: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self._name = "WuyePage"
        self.config = config
        # Instance lists: never mutate the class-level ones (shared by every page). A page's own
        # script (``page_js``, e.g. wuye-plan.js) comes after wuye-maps.js, whose helpers it uses.
        self.default_js = [*js, ("wuye_maps", app_asset("wuye-maps.js")), ("wuye_nav", app_asset("wuye-nav.js"))]
        self.default_js += [(name.removesuffix(".js"), app_asset(name)) for name in page_js]
        self.default_css = [
            *css,
            ("wuye_maps_css", app_asset("wuye-maps.css")),
            ("wuye_nav_css", app_asset("wuye-nav.css")),  # the navigation bar's menu on a phone
        ]


def content_security_policy(settings: MapSettings) -> str | None:
    """The page's CSP when a remote basemap is configured (None: the app's same-origin default)."""
    basemap = BASEMAPS.get(settings.basemap)
    if basemap is None:
        return None
    hosts = " ".join(basemap["hosts"])
    return (
        "default-src 'self'; img-src 'self' data: blob: " + hosts + "; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'self'; "
        "form-action 'self'; base-uri 'self'"
    )


def _layer_entry(spec: LayerSpec, lang: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": styles.layer_title(spec, lang),
        "geometry": spec.geometry,
        "style": {**styles.layer_style(spec), "shape": styles.symbol_shape(spec)},
    }


def _kind_legend(facilities: list[LayerSpec], lang: str) -> dict[str, Any]:
    """The facility kinds by their symbol (the colour is the condition's)."""
    rows = [
        {
            "colour": styles.KIND_SWATCH,
            "label": styles.layer_title(s, lang),
            "shape": styles.symbol_shape(s),
            **(
                {"dash": styles.layer_style(s)["dashArray"], "weight": styles.layer_style(s)["weight"]}
                if s.is_linear
                else {}
            ),
        }
        for s in facilities
    ]
    return {"title": styles.texts(lang)["facilities"], "rows": rows, "note": None}


def _condition_legend(lang: str) -> dict[str, Any]:
    rows = styles.vocabulary_rows("conditions", styles.CONDITION_COLOURS, lang)
    return styles.legend(styles.texts(lang)["condition"], rows)


def _state_legend(lang: str) -> dict[str, Any]:
    t = styles.texts(lang)
    rows = styles.vocabulary_rows("case_states", styles.STATE_COLOURS, lang)
    rows.append((styles.OVERDUE_COLOUR, t["overdue"]))
    return styles.legend(t["state"], rows)


def _phase_legend(lang: str) -> dict[str, Any]:
    t = styles.texts(lang)
    return styles.legend(t["phase"], styles.vocabulary_rows("phases", styles.PHASE_COLOURS, lang), note=t["no_tasks"])


def _labels(lang: str) -> dict[str, dict[str, str]]:
    """The labels the page script shows, by vocabulary and key (never by position)."""
    names = (
        "conditions",
        "case_states",
        "phases",
        "remediation_states",
        "remediation_items",
        "zone_kinds",
        "service_kinds",
    )
    return {n: vocabulary(n).labels(lang) for n in names}


def _orders() -> dict[str, list[str]]:
    """Display order of the vocabularies the page lists (its JSON objects reach the page key-sorted)."""
    return {n: list(vocabulary(n).labels("zh")) for n in ("conditions", "case_states", "phases")}


def nav_bar(lang: str, current: str, workbench: str | None = None, user: dict[str, Any] | None = None) -> str:
    """The navigation bar of every page: home (the portal), the maps, the workbench, and who is
    signed in with their role and scope, or the sign-in link.

    A page session (the ``wuye_session`` cookie) is known to the server, which names the caller
    here (``user``, from maps/web.py ``who``); a token kept by the page (``localStorage.wuye_token``)
    is known to the script only, which then shows the signed-in items.
    """
    t = styles.texts(lang)
    q = "?lang=en" if lang == "en" else ""
    items = [("home", "/" + q)] + [(k, p + q) for k, p in NAV_PAGES]
    parts = []
    for key, href in items:
        here = ' aria-current="page"' if key == current else ""
        parts.append(f'<a href="{html.escape(href)}"{here}>{html.escape(t["nav_" + key])}</a>')
    shown = "" if user else " hidden"
    if workbench and user:  # (a token kept by the page alone does not reach the workbench's pages)
        parts.append(f'<a href="{html.escape(workbench + q)}">{html.escape(t["nav_workbench"])}</a>')
        for key, path in user.get("pages", ()):  # the workbench's pages for the caller's role (api/maps.py)
            parts.append(f'<a href="{html.escape(path + q)}">{html.escape(t["nav_" + key])}</a>')
    if user:
        name, role, scope = (html.escape(user[k]) for k in ("username", "role_label", "scope"))
        parts.append(f'<span class="wuye-who" data-user="{name}">{name}（{role} · {scope}）</span>')
    else:  # the script sets the sign-in link's next= to the page itself
        parts.append(f'<a href="/login" class="wuye-nav-login" data-signed-out>{html.escape(t["nav_login"])}</a>')
    parts.append(
        '<form method="post" action="/logout" class="wuye-logout-form">'
        f'<button type="submit" class="wuye-nav-logout" data-signed-in{shown}>{html.escape(t["nav_logout"])}</button>'
        "</form>"
    )
    links = "".join(parts)
    # on a phone the links open under a menu button (wuye-nav.css, wuye-nav.js), as on the workbench's pages
    menu = (
        '<button type="button" class="wuye-nav-menu" aria-expanded="false" aria-controls="wuye-nav-links">'
        f'<span aria-hidden="true">☰</span> {html.escape(t["nav_menu"])}</button>'
    )
    return (
        f'<nav class="wuye-nav" aria-label="{html.escape(t["nav"])}">'
        f'{menu}<div class="wuye-nav-links" id="wuye-nav-links">{links}</div></nav>'
    )


NAV_PAGES = [
    ("maintenance", "/maps/maintenance"),
    ("cases", "/maps/cases"),
    ("remediation", "/maps/remediation"),
    ("plan", "/maps/plan"),
    ("patrols", "/maps/patrols"),
    ("report", "/report"),
]


def _base_config(
    page: str,
    title: str,
    lang: str,
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    view: list[float] | None = None,
    *,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What every page's script needs: words, bounds, the quiet base layers and the display shift; and
    for the navigation bar, the workbench's path and the caller (``nav_user``, dropped before the
    config reaches the page)."""
    base_layers = [
        _layer_entry(catalogue[n], lang)
        for n in ("districts", "subdistricts", "zones", "contract_sections")
        if n in catalogue
    ]
    return {
        "page": page,
        "title": title,
        "lang": lang,
        "workbench": workbench,
        "nav_user": user,
        "texts": styles.texts(lang),
        "bounds": bounds,
        "view": view or bounds,  # where the page opens: the programme zones, not the whole district
        "maxZoom": MAX_ZOOM,
        "baseLayers": base_layers if settings.basemap == "none" else [],
        "display": gcj02_grid(bounds) if settings.basemap == "amap" and bounds else None,
        "coordSys": "gcj02" if settings.basemap == "amap" else "cgcs2000",
        "conditionColours": styles.CONDITION_COLOURS,
        "stateColours": styles.STATE_COLOURS,
        "overdueColour": styles.OVERDUE_COLOUR,
        "phaseColours": styles.PHASE_COLOURS,
        "completionBreaks": styles.COMPLETION_BREAKS,
        "legends": [],
        "labels": _labels(lang),
        "orders": _orders(),
        "overviewCellPx": 512 // OVERVIEW_CELLS,
    }


def _map(settings: MapSettings, bounds: list[float] | None, *, still: bool = False) -> folium.Map:
    centre = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [28.23, 112.94]
    m = folium.Map(
        location=centre, zoom_start=13, tiles=None, max_zoom=MAX_ZOOM, control_scale=False, prefer_canvas=True
    )
    if still:  # snapshots: Leaflet's animations only cost frames, and a capture at the ready signal
        # caught facility tiles still fading in (they fade in over 200 ms after they arrive; opacity 0.78 seen)
        m.options.update(fadeAnimation=False, zoomAnimation=False, markerZoomAnimation=False)
    # Our pages use Leaflet alone: leave out folium's jQuery, Bootstrap and icon fonts (≈ 300 kB
    # of parsing per page). Instance lists, so the class defaults stay as maps.assets set them.
    m.default_js = [js for js in folium.Map.default_js if js[0] == "leaflet"]
    m.default_css = [css for css in folium.Map.default_css if css[0] == "leaflet_css"]
    basemap = BASEMAPS.get(settings.basemap)
    if basemap is not None:
        for url in basemap["tiles"]:
            folium.TileLayer(
                tiles=url.replace("{key}", settings.tianditu_key or ""),
                attr=basemap["attr"],
                subdomains=basemap.get("subdomains", "abc"),
                max_zoom=MAX_ZOOM,
                overlay=False,
                control=False,
            ).add_to(m)
    local = settings.local()  # WUYE_BASEMAP=mbtiles:/pmtiles: served by our app
    if local is not None:
        local_basemap.add_to(m, local, MAX_ZOOM)
    return m


def _render(
    m: folium.Map,
    title: str,
    config: dict[str, Any],
    js: list[tuple[str, str]] | None = None,
    css: list[tuple[str, str]] | None = None,
    body_html: str = "",
    page_js: tuple[str, ...] = (),
) -> str:
    root: Any = m.get_root()  # a branca Figure
    root.header.add_child(
        Element(
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            '<link rel="icon" href="data:,">'
        )
    )  # no favicon request (a 404 is a console error)
    if not config.get("snapshot"):  # paper has no links
        body_html = nav_bar(config["lang"], config["page"], config.get("workbench"), config.get("nav_user")) + body_html
    config.pop("nav_user", None)  # (the bar names the caller; the page's script needs nothing of it)
    if body_html:
        root.html.add_child(Element(body_html))
    WuyePage(config, js or [], css or [], page_js).add_to(m)
    page = m.get_root().render()
    # Han text in the zh-CN glyph variants (PDF, screen readers); folium writes a bare <html>.
    lang = "en" if config["lang"] == "en" else "zh-CN"
    return page.replace("<html>", f'<html lang="{lang}">', 1)


def _title(key: str, lang: str, district_name: str) -> str:
    t = styles.texts(lang)
    return f"{district_name} · {t[key]}" if lang != "en" else f"{t[key]} · {district_name}"


def maintenance_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """设施维护图: every facility layer as vector tiles (or, on a GCJ-02 basemap, paged GeoJSON),
    coloured by condition, one toggle per layer; popups read the feature when clicked."""
    title = _title("maintenance", lang, district_name)
    facilities = [catalogue[n] for n in catalogue if catalogue[n].facility]
    cfg = _base_config("maintenance", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    cfg["layers"] = [_layer_entry(s, lang) for s in facilities]
    cfg["detailZoom"] = DETAIL_ZOOM  # below it, point layers come as overview tiles (counts per cell)
    cfg["legends"] = [_kind_legend(facilities, lang), _condition_legend(lang)]
    return _render(_map(settings, bounds), title, cfg, plugins.VectorGridProtobuf.default_js)


def cases_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """事件分布图: cases by state (overdue ones ringed red), heat-map toggle, filters."""
    title = _title("cases", lang, district_name)
    cfg = _base_config("cases", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    cfg["legends"] = [_state_legend(lang)]
    return _render(_map(settings, bounds), title, cfg, plugins.HeatMap.default_js)


def remediation_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    progress_url: str | None = None,
    zone_tasks_url: str | None = None,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """整治进度图: zones coloured by remediation completion when tasks exist, else by phase
    with "暂无整治任务"; sub-district filter."""
    title = _title("remediation", lang, district_name)
    cfg = _base_config("remediation", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    cfg["baseLayers"] = [b for b in cfg["baseLayers"] if b["name"] != "zones"]
    cfg["legends"] = [_phase_legend(lang)]
    # Remediation progress (share of tasks verified) when the app serves it; else colour by phase.
    cfg["progressUrl"] = progress_url
    cfg["zoneTasksUrl"] = zone_tasks_url  # e.g. /zones/{code}/remediation: each item's state in the popup
    cfg["taskStates"] = {**vocabulary("remediation_states").labels(lang), "overdue": styles.texts(lang)["overdue"]}
    return _render(_map(settings, bounds), title, cfg)


def zone_page(
    catalogue: Catalogue,
    zone: dict[str, Any],
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    snapshot: bool = False,
    district_bounds: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """One zone: boundary, sections, facilities and open cases; ``snapshot`` hides the controls
    that mean nothing on paper and keeps title, legend, scale bar, north arrow and date."""
    t = styles.texts(lang)
    name = zone["properties"].get("name") or zone["id"]
    title_format = f"{{name}} · {t['zone']}" if lang != "en" else f"{t['zone']} · {{name}}"
    bounds = list(shape(zone["geometry"]).bounds)
    cfg = _base_config(
        "zone", title_format.replace("{name}", name), lang, catalogue, bounds, settings, workbench=workbench, user=user
    )
    cfg["zoneTitle"] = title_format  # wuye.showZone titles another zone the same way
    if cfg["display"] is not None and district_bounds:  # the shift grid covers the district, not just the zone
        cfg["display"] = gcj02_grid(district_bounds)
    cfg["baseLayers"] = [b for b in cfg["baseLayers"] if b["name"] not in ("zones", "contract_sections")]
    cfg["zone"] = zone["id"]
    cfg["snapshot"] = snapshot
    cfg["sectionLayer"] = (
        _layer_entry(catalogue["contract_sections"], lang) if "contract_sections" in catalogue else None
    )
    cfg["layers"] = [_layer_entry(catalogue[n], lang) for n in catalogue if catalogue[n].facility]
    cfg["detailZoom"] = DETAIL_ZOOM
    cfg["legends"] = [
        _kind_legend([catalogue[n] for n in catalogue if catalogue[n].facility], lang),
        _condition_legend(lang),
        _state_legend(lang),
    ]
    return _render(_map(settings, bounds, still=snapshot), cfg["title"], cfg, plugins.VectorGridProtobuf.default_js)


def patrols_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """巡更图 (issue 18 point 4): a week's scans per checkpoint and the ones missed, from
    ``GET /patrols/checkpoints``, with each zone's coverage from ``GET /patrols/coverage``; a week and a
    zone to choose. The figures are staff-only: the page asks a visitor to sign in."""
    t = styles.texts(lang)
    title = _title("patrols", lang, district_name)
    cfg = _base_config("patrols", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    cfg["patrolColours"] = styles.PATROL_COLOURS
    rows = [(styles.PATROL_COLOURS[k], t["patrol_" + k]) for k in ("covered", "missed", "never")]
    cfg["legends"] = [styles.legend(t["patrol_points"], rows)]
    return _render(_map(settings, bounds), title, cfg)


def plan_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """规划绘制: draw and edit zone and section polygons, saved through OGC API Features Part 4."""
    title = _title("plan", lang, district_name)
    cfg = _base_config("plan", title, lang, catalogue, bounds, settings, workbench=workbench, user=user)
    cfg["baseLayers"] = [b for b in cfg["baseLayers"] if b["name"] == "districts" or b["name"] == "subdistricts"]
    cfg.update(plan.plan_config(catalogue, _layer_entry, lang))
    return _render(
        _map(settings, bounds),
        title,
        cfg,
        [*plugins.GeoMan.default_js, *POLYCLIP_JS],
        [*plugins.GeoMan.default_css, ("wuye_plan_css", app_asset("wuye-plan.css"))],
        page_js=("wuye-plan.js",),
    )


def report_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    lang: str,
    district_name: str,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """我要报事: phone page — position by GPS or tap, category, description, photo; shows duplicates,
    then the case number and the unit it went to."""
    title = _title("report", lang, district_name)
    cfg = _base_config("report", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    return _render(_map(settings, bounds), title, cfg)


def follow_page(
    catalogue: Catalogue,
    bounds: list[float] | None,
    settings: MapSettings,
    *,
    code: str,
    lang: str,
    district_name: str,
    view: list[float] | None = None,
    workbench: str | None = None,
    user: dict[str, Any] | None = None,
) -> str:
    """事件进度: one case as the public sees it (state, category, unit, public history), by its number."""
    t = styles.texts(lang)
    title = f"{t['follow_title']} {code}"
    cfg = _base_config("follow", title, lang, catalogue, bounds, settings, view, workbench=workbench, user=user)
    cfg["page"] = "follow"
    cfg["caseCode"] = code
    cfg["baseLayers"] = [b for b in cfg["baseLayers"] if b["name"] != "districts"]
    return _render(_map(settings, bounds), title, cfg)


def landing_links(base: str, zones: list[tuple[str, str]], lang: str = "zh") -> list[dict[str, str]]:
    """Links of the HTML landing page to every map and every zone's map."""
    t = styles.texts(lang)
    pages = [
        ("remediation", "/maps/remediation"),
        ("maintenance", "/maps/maintenance"),
        ("cases", "/maps/cases"),
        ("plan", "/maps/plan"),
        ("report", "/report"),
    ]
    out = [
        {"href": f"{base}{path}", "rel": "related", "type": "text/html", "title": f"地图 map: {t[key]}"}
        for key, path in pages
    ]
    out += [
        {
            "href": f"{base}/maps/zones/{code}",
            "rel": "related",
            "type": "text/html",
            "title": f"小区图 zone map: {name}",
        }
        for code, name in zones
    ]
    return out
