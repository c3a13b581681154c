"""The planners' QGIS kit (issue 17 point 6): one QGIS project (``.qgz``) with every layer of the
catalogue connected to a wuye server, written by ``wuye qgis-project``.

- Every layer through the OGC API provider (``OAPIF``), which QGIS 3.28+ edits through Part 4; the
  facility layers only for the map window (``restrictToRequestBBOX``) and from 1:10,000 in.
- The facility point layers also as vector tiles (the ``/collections/{id}/tiles`` of the server),
  drawn when zoomed out beyond 1:10,000, where 40,000 lights would be too many to download.
- Grouped (区划与边界, 公共设施, 设施概览) and ordered as the catalogue says, points drawn over lines
  over polygons; each OGC layer styled by its QML of :mod:`maps.qgis_styles` (condition colours and
  symbols as the web maps, Chinese labels in a CJK font from 1:10,000 in).
- The project in CGCS2000 (EPSG:4490), which the server stores; measuring in EPSG:4547 is a project
  setting away (see README, QGIS 使用说明).

The project names no credentials: reading is public; editing needs a QGIS OAuth2 configuration
(password grant at ``/auth/token``) chosen on the layer, as the README explains.

Written by hand as QGIS's project XML (no PyQGIS needed to write it); tests/test_qgis.py opens it
with QGIS itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from layers.catalogue import Catalogue, LayerSpec
from maps.qgis_styles import qml

QGIS_VERSION = "3.22.16-Białowieża"
PROJECT_CRS = "EPSG:4490"
TILE_CRS = "EPSG:3857"
# Facility layers are read feature by feature only this close in (scale denominators); beyond it
# their tiles are drawn instead.
DETAIL_SCALE = 10_000
TILE_MAX_ZOOM = 19
GROUPS = {
    "boundaries": "区划与边界",
    "facilities": "公共设施",
    "overview": "设施概览（矢量瓦片）",
}


# QGIS's internal CRS ids (3.22's srs.db): QGIS reads the authid only when an srsid is present, and the
# authid then decides (QgsCoordinateReferenceSystem::readXml).
_SRSID = {"EPSG:4490": 27734, "EPSG:3857": 3857}


def _crs(authid: str) -> str:
    srid = authid.split(":")[1]
    return f"<spatialrefsys><srsid>{_SRSID[authid]}</srsid><srid>{srid}</srid><authid>{authid}</authid></spatialrefsys>"


def _layer_id(name: str, kind: str) -> str:
    return f"wuye_{kind}_{name}"


def _draw_order(spec: LayerSpec) -> int:
    """Points over lines over polygons (the layer tree's top is drawn last)."""
    return 0 if "Point" in spec.geometry else 1 if spec.is_linear else 2


def oapif_source(base: str, name: str, *, restrict: bool) -> str:
    """The OGC API provider's data source of a collection (as QGIS writes it)."""
    return f"url='{base}' typename='{name}' restrictToRequestBBOX='{int(restrict)}'"


def tile_source(base: str, name: str) -> str:
    """The vector tile layer's data source of a collection's WebMercatorQuad tiles."""
    url = f"{base}/collections/{name}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    return f"type=xyz&url={url}&zmin=0&zmax={TILE_MAX_ZOOM}"


def _style_body(spec: LayerSpec) -> str:
    """The QML's renderer and labelling, to sit inside the project's <maplayer>."""
    document = qml(spec).split("\n", 1)[1]  # past the DOCTYPE
    inner = document[document.index(">") + 1 : document.rindex("</qgis>")]
    return inner.split("<layerGeometryType>")[0]


def _vector_layer(spec: LayerSpec, base: str) -> str:
    detail = spec.facility
    scale = f' hasScaleBasedVisibilityFlag="1" maxScale="0" minScale="{DETAIL_SCALE}"' if detail else ""
    geometry = "Point" if "Point" in spec.geometry else "Line" if spec.is_linear else "Polygon"
    return (
        f'<maplayer type="vector" geometry="{geometry}" autoRefreshEnabled="0" readOnly="0"{scale}>'
        f"<id>{_layer_id(spec.name, 'oapif')}</id>"
        f"<datasource>{escape(oapif_source(base, spec.name, restrict=detail))}</datasource>"
        f"<layername>{escape(spec.title_zh)}</layername>"
        f"<srs>{_crs(PROJECT_CRS)}</srs>"
        '<provider encoding="UTF-8">OAPIF</provider>'
        f"<abstract>{escape(spec.description_zh or spec.title_en)}</abstract>"
        f"{_style_body(spec)}</maplayer>"
    )


def _tile_layer(spec: LayerSpec, base: str) -> str:
    return (
        f'<maplayer type="vector-tile" hasScaleBasedVisibilityFlag="1" maxScale="{DETAIL_SCALE}" minScale="1e+08">'
        f"<id>{_layer_id(spec.name, 'tiles')}</id>"
        f"<datasource>{escape(tile_source(base, spec.name))}</datasource>"
        f"<layername>{escape(spec.title_zh + '（瓦片）')}</layername>"
        f"<srs>{_crs(TILE_CRS)}</srs>"
        "</maplayer>"
    )


def _tree_layer(layer_id: str, title: str, source: str, provider: str) -> str:
    return (
        f"<layer-tree-layer id={quoteattr(layer_id)} name={quoteattr(title)} source={quoteattr(source)} "
        f'providerKey="{provider}" checked="Qt::Checked" expanded="0"><customproperties/></layer-tree-layer>'
    )


def _group(name: str, children: list[str]) -> str:
    return (
        f'<layer-tree-group name={quoteattr(name)} checked="Qt::Checked" expanded="1">'
        f"<customproperties/>{''.join(children)}</layer-tree-group>"
    )


def project_xml(catalogue: Catalogue, base: str, *, title: str = "wuye-gis 社区物业化服务") -> str:
    """The QGIS project (``.qgs``) of every catalogue layer on the server at ``base``."""
    base = base.rstrip("/")
    facilities = sorted((s for s in catalogue.values() if s.facility), key=lambda s: (_draw_order(s), s.order))
    others = sorted((s for s in catalogue.values() if not s.facility), key=lambda s: (_draw_order(s), -s.order))
    dense = [s for s in facilities if "Point" in s.geometry]
    tree = [
        _group(
            GROUPS["facilities"],
            [
                _tree_layer(_layer_id(s.name, "oapif"), s.title_zh, oapif_source(base, s.name, restrict=True), "OAPIF")
                for s in facilities
            ],
        ),
        _group(
            GROUPS["overview"],
            [
                _tree_layer(_layer_id(s.name, "tiles"), s.title_zh + "（瓦片）", tile_source(base, s.name), "")
                for s in dense
            ],
        ),
        _group(
            GROUPS["boundaries"],
            [
                _tree_layer(_layer_id(s.name, "oapif"), s.title_zh, oapif_source(base, s.name, restrict=False), "OAPIF")
                for s in others
            ],
        ),
    ]
    layers = [_vector_layer(s, base) for s in (*facilities, *others)] + [_tile_layer(s, base) for s in dense]
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(title)} version="{QGIS_VERSION}">'
        f"<title>{escape(title)}</title>"
        f"<projectCrs>{_crs(PROJECT_CRS)}</projectCrs>"
        f"<layer-tree-group><customproperties/>{''.join(tree)}</layer-tree-group>"
        f"<projectlayers>{''.join(layers)}</projectlayers>"
        '<properties><SpatialRefSys><ProjectionsEnabled type="int">1</ProjectionsEnabled>'
        f'<ProjectCrs type="QString">{PROJECT_CRS}</ProjectCrs></SpatialRefSys>'
        '<Measure><Ellipsoid type="QString">EPSG:7019</Ellipsoid></Measure>'
        '<Measurement><DistanceUnits type="QString">meters</DistanceUnits>'
        '<AreaUnits type="QString">m2</AreaUnits></Measurement></properties>'
        "</qgis>\n"
    )


def write_project(path: Path, catalogue: Catalogue, base: str) -> Path:
    """Write the project as a ``.qgz`` (a zip holding the ``.qgs``), or a plain ``.qgs``; its path."""
    xml = project_xml(catalogue, base)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".qgs":
        path.write_text(xml, encoding="utf-8")
        return path
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as qgz:
        qgz.writestr(path.with_suffix(".qgs").name, xml.encode("utf-8"))
    return path
