"""The QGIS side of bench/desktop.py, run by the OS's python3 with its PyQGIS (headless):

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 bench/pyqgis_desktop.py BASE LAYER GPKG ROUNDS BBOX PNG

Per round, each with fresh layers: the OGC API layer opened (time, requests, the feature count QGIS
shows), then read completely (time, requests, features); the same layer from a GeoPackage export
opened and read; the layer's vector tiles drawn over the district (time, zoom, tile requests).
Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsNetworkAccessManager,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileBasicRenderer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

SEEN: list[str] = []


def _requests() -> list[str]:
    QgsApplication.processEvents()
    return SEEN


def _oapif(base: str, name: str) -> dict[str, Any]:
    before = len(_requests())
    t0 = time.perf_counter()
    layer = QgsVectorLayer(f"url='{base}' typename='{name}' restrictToRequestBBOX='0'", name, "OAPIF")
    shown = layer.featureCount()
    t_open = time.perf_counter() - t0
    open_requests = len(_requests()) - before
    n = sum(1 for _ in layer.getFeatures())
    t_all = time.perf_counter() - t0
    urls = _requests()[before:]
    return {
        "open_s": t_open,
        "open_requests": open_requests,
        "count_shown": shown,
        "load_s": t_all,
        "features": n,
        "requests": len(urls),
        "item_requests": sum(1 for u in urls if "/items" in u),
    }


def _gpkg(path: str, name: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    shown = layer.featureCount()
    t_open = time.perf_counter() - t0
    n = sum(1 for _ in layer.getFeatures())
    return {"open_s": t_open, "count_shown": shown, "load_s": time.perf_counter() - t0, "features": n}


def _tiles(base: str, name: str, bbox: list[float], png: str) -> dict[str, Any]:
    url = f"{base}/collections/{name}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    layer = QgsVectorTileLayer(f"type=xyz&url={url}&zmin=0&zmax=16", name)
    renderer = QgsVectorTileBasicRenderer()
    red = QColor("#d7301f")
    renderer.setStyles(QgsVectorTileBasicRenderer.simpleStyle(red, red, 0.5, red, 0.5, red, red, 1.0))
    layer.setRenderer(renderer)
    to_3857 = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance()
    )
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setOutputSize(QSize(512, 512))
    settings.setExtent(to_3857.transformBoundingBox(QgsRectangle(*bbox)))
    before = len(_requests())
    t0 = time.perf_counter()
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    elapsed = time.perf_counter() - t0
    job.renderedImage().save(png)
    tiles = [u for u in _requests()[before:] if "/tiles/" in u]
    return {
        "render_s": elapsed,
        "tile_requests": len(tiles),
        "zooms": sorted({int(u.split("/WebMercatorQuad/")[1].split("/")[0]) for u in tiles}),
        "errors": [str(e) for e in job.errors()],
    }


def main() -> int:
    base, name, gpkg, rounds, bbox, png = sys.argv[1:7]
    app = QgsApplication([], False)
    QgsApplication.initQgis()
    QgsNetworkAccessManager.instance().finished.connect(lambda reply: SEEN.append(reply.request().url().toString()))
    box = [float(v) for v in bbox.split(",")]
    out: dict[str, Any] = {"qgis": Qgis.version(), "rounds": []}
    for _ in range(int(rounds)):
        out["rounds"].append(
            {"oapif": _oapif(base, name), "gpkg": _gpkg(gpkg, name), "tiles": _tiles(base, name, box, png)}
        )
    print(json.dumps(out))
    QgsApplication.exitQgis()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
