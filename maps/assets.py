"""Browser assets served by our own app: folium and its plugins pointed at our npm copies.

The npm packages are installed at set-up (``make setup`` runs ``npm ci`` in
``maps/static``, pinned by ``package-lock.json``) and served under
``/static/vendor/``; our own scripts and styles live in ``maps/static/app``
and are served under ``/static/app/``. Nothing loads from a CDN: intranets
are offline and CDNs are slow or blocked.
"""

from __future__ import annotations

from pathlib import Path

import folium
from folium import plugins

STATIC = Path(__file__).resolve().parent / "static"
ROOTS = {"vendor": STATIC / "node_modules", "app": STATIC / "app"}
PREFIX = "/static"
# Polygon difference and intersection for the planner's split (the library Leaflet-Geoman itself uses).
POLYCLIP_JS = [("polyclip", "/static/vendor/polyclip-ts/dist/polyclip-ts.umd.min.js")]


def vendor(path: str) -> str:
    """URL of a file of an npm package, e.g. ``vendor('leaflet/dist/leaflet.js')``."""
    return f"{PREFIX}/vendor/{path}"


def app_asset(path: str) -> str:
    """URL of one of our own scripts or styles."""
    return f"{PREFIX}/app/{path}"


def resolve(root: str, path: str) -> Path | None:
    """The file behind ``/static/{root}/{path}``, or None (unknown root, outside it, missing)."""
    base = ROOTS.get(root)
    if base is None:
        return None
    target = (base / path).resolve()
    if not target.is_relative_to(base.resolve()) or not target.is_file():
        return None
    return target


def installed() -> bool:
    """Whether ``npm ci`` has run (Leaflet present)."""
    return (ROOTS["vendor"] / "leaflet" / "dist" / "leaflet.js").is_file()


def configure_folium() -> None:
    """Point folium and the plugins we use at our copies.

    Assign NEW lists: ``add_js_link`` and friends mutate the class-level lists
    shared by every instance, so editing them in place leaks between pages.
    """
    folium.Map.default_js = [
        ("leaflet", vendor("leaflet/dist/leaflet.js")),
        ("jquery", vendor("jquery/dist/jquery.min.js")),
        ("bootstrap", vendor("bootstrap/dist/js/bootstrap.bundle.min.js")),
        ("awesome_markers", vendor("leaflet.awesome-markers/dist/leaflet.awesome-markers.min.js")),
    ]
    folium.Map.default_css = [
        ("leaflet_css", vendor("leaflet/dist/leaflet.css")),
        ("bootstrap_css", vendor("bootstrap/dist/css/bootstrap.min.css")),
        ("awesome_markers_font_css", vendor("@fortawesome/fontawesome-free/css/all.min.css")),
        ("awesome_markers_css", vendor("leaflet.awesome-markers/dist/leaflet.awesome-markers.css")),
    ]
    plugins.MarkerCluster.default_js = [
        ("markerclusterjs", vendor("leaflet.markercluster/dist/leaflet.markercluster.js"))
    ]
    plugins.MarkerCluster.default_css = [
        ("markerclustercss", vendor("leaflet.markercluster/dist/MarkerCluster.css")),
        ("markerclusterdefaultcss", vendor("leaflet.markercluster/dist/MarkerCluster.Default.css")),
    ]
    plugins.GeoMan.default_js = [("geoman_js", vendor("@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js"))]
    plugins.GeoMan.default_css = [("geoman_css", vendor("@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css"))]
    plugins.HeatMap.default_js = [("leaflet-heat.js", vendor("leaflet.heat/dist/leaflet-heat.js"))]
    plugins.HeatMap.default_css = []
    plugins.VectorGridProtobuf.default_js = [
        ("vectorGrid", vendor("leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js"))
    ]
    plugins.VectorGridProtobuf.default_css = []


configure_folium()
