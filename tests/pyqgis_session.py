"""A planner's QGIS session against a running wuye server, headless: run by the OS's python3
with its PyQGIS (Debian's python3-qgis), not the project's venv, so it imports nothing of ours.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/pyqgis_session.py PLAN.json

PLAN.json: {"base": URL, "username", "password", "collections": [ids], "filtered": {"layer",
"subset", "bbox"}, "tiles": {"layer", "zoom"}, "styles": {"layers": [ids]}, "edit": {"layer", "code",
"attribute", "value"}, "png": path, "project": {"path"}}. What QGIS saw is printed as one JSON object on
stdout; tests/test_qgis.py judges
it against the database. Everything goes through QGIS's own machinery: the OAPIF provider for
layers, the vector tile layer and map renderer for tiles, QGIS's network manager for the rest.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsBlockingNetworkRequest,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsJsonExporter,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsNetworkAccessManager,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileBasicRenderer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QByteArray, QSize, Qt, QUrl
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtNetwork import QNetworkRequest

REQUESTS: list[str] = []


def _seen(reply: Any) -> None:
    REQUESTS.append(reply.request().url().toString())


def _requests() -> list[str]:
    """The URLs of every reply QGIS's network manager finished so far (its signals are queued)."""
    QgsApplication.processEvents()
    return REQUESTS


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request through QGIS's network manager (QgsBlockingNetworkRequest): (status, JSON body)."""
    req = QNetworkRequest(QUrl(url))
    for name, value in (headers or {}).items():
        req.setRawHeader(name.encode(), value.encode())
    blocking = QgsBlockingNetworkRequest()
    if method == "GET":
        blocking.get(req, True)
    elif method == "POST":
        blocking.post(req, QByteArray(body or b""), True)
    elif method == "PUT":
        blocking.put(req, QByteArray(body or b""))
    else:
        raise ValueError(method)
    reply = blocking.reply()
    status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
    content = bytes(reply.content())
    try:
        return int(status or 0), json.loads(content.decode("utf-8")) if content else None
    except ValueError:
        return int(status or 0), content.decode("utf-8", "replace")


def _layer(base: str, name: str, *, restrict: bool = False) -> QgsVectorLayer:
    uri = f"url='{base}' typename='{name}' restrictToRequestBBOX='{int(restrict)}'"
    return QgsVectorLayer(uri, name, "OAPIF")


def _load(base: str, name: str) -> dict[str, Any]:
    """A layer as QGIS opens it: the count it shows before downloading, then every feature."""
    before = len(_requests())
    layer = _layer(base, name)
    out: dict[str, Any] = {"valid": layer.isValid()}
    if not layer.isValid():
        return out
    out["count_shown"] = layer.featureCount()  # from the first request's numberMatched
    out["requests_to_open"] = len(_requests()) - before
    feats = list(layer.getFeatures())
    out["count_read"] = len(feats)
    out["requests"] = len(_requests()) - before
    out["page_limits"] = sorted(
        {u.split("limit=")[1].split("&")[0] for u in _requests()[before:] if "/items" in u and "limit=" in u}
    )
    fields = layer.fields()
    out["fields"] = {f.name(): f.typeName() for f in fields}
    codes = {}
    for f in feats:
        g = f.geometry()
        point = g.centroid().asPoint() if not g.isEmpty() else None
        codes[str(f["code"])] = {
            "attributes": {fields[i].name(): _plain(v) for i, v in enumerate(f.attributes())},
            "centroid": [point.x(), point.y()] if point else None,
        }
    first = sorted(codes)[:3]
    out["sample"] = {c: codes[c] for c in first}
    out["codes"] = sorted(codes)
    ext = layer.extent()
    out["extent"] = [ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()]
    return out


def _plain(value: Any) -> Any:
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    if hasattr(value, "toString") and not isinstance(value, str):
        return value.toString(Qt.ISODate)
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _filtered(base: str, plan: dict[str, Any]) -> dict[str, Any]:
    layer = _layer(base, plan["layer"])
    layer.setSubsetString(plan["subset"])
    by_subset = sum(1 for _ in layer.getFeatures())
    windowed = _layer(base, plan["layer"], restrict=True)  # only the map window is requested (bbox=)
    minx, miny, maxx, maxy = plan["bbox"]
    before = len(_requests())
    by_rect = sum(
        1 for _ in windowed.getFeatures(QgsFeatureRequest().setFilterRect(QgsRectangle(minx, miny, maxx, maxy)))
    )
    bbox_requests = [u for u in _requests()[before:] if "bbox=" in u]
    return {"subset": by_subset, "rect": by_rect, "bbox_requests": len(bbox_requests)}


def _tiles(base: str, plan: dict[str, Any], png: str) -> dict[str, Any]:
    """The layer's vector tiles drawn by QGIS's renderer over the collection's extent."""
    name, zoom = plan["layer"], int(plan["zoom"])
    url = f"{base}/collections/{name}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    layer = QgsVectorTileLayer(f"type=xyz&url={url}&zmin=0&zmax={zoom}", f"{name} tiles")
    if not layer.isValid():
        return {"valid": False}
    renderer = QgsVectorTileBasicRenderer()
    red = QColor("#d7301f")
    style = QgsVectorTileBasicRenderer.simpleStyle(red, red, 0.5, red, 0.5, red, red, 2.0)
    renderer.setStyles(style)
    layer.setRenderer(renderer)
    minx, miny, maxx, maxy = plan["bbox"]
    to_3857 = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance()
    )
    extent = to_3857.transformBoundingBox(QgsRectangle(minx, miny, maxx, maxy))
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    size = int(plan.get("pixels", 1024))
    settings.setOutputSize(QSize(size, size))
    settings.setExtent(extent)
    settings.setBackgroundColor(QColor(255, 255, 255))
    before = len(_requests())
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(png)
    drawn = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            if QColor(image.pixel(x, y)).red() > 150 and QColor(image.pixel(x, y)).green() < 120:
                drawn += 1
    tile_urls = [u for u in _requests()[before:] if "/tiles/" in u]
    return {
        "valid": True,
        "drawn_pixels": drawn,
        "tile_requests": len(tile_urls),
        "zooms": sorted({int(u.split("/WebMercatorQuad/")[1].split("/")[0]) for u in tile_urls}),
        "errors": [str(e) for e in job.errors()],
    }


def _sign_in_and_edit(base: str, plan: dict[str, Any]) -> dict[str, Any]:
    """The OAuth2 resource-owner password grant (RFC 6749 4.3) as QGIS's OAuth2 method sends it, then
    a feature of the OAPIF layer sent back with a change and the version it was read at."""
    form = (
        f"grant_type=password&username={QUrl.toPercentEncoding(plan['username']).data().decode()}"
        f"&password={QUrl.toPercentEncoding(plan['password']).data().decode()}&client_id=qgis&scope="
    ).encode()
    status, token = _http(
        "POST", f"{base}/auth/token", form, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*"}
    )
    out: dict[str, Any] = {"token_status": status, "token_type": (token or {}).get("token_type")}
    if status != 200:
        return out
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    edit = plan["edit"]
    layer = _layer(base, edit["layer"])
    request = QgsFeatureRequest().setFilterExpression(f"\"code\" = '{edit['code']}'")
    feature = next(layer.getFeatures(request))
    out["version_before"] = feature["version"]
    feature[edit["attribute"]] = edit["value"]
    exporter = QgsJsonExporter(layer, 7)
    exporter.setIncludeAttributes(True)
    body = json.loads(exporter.exportFeature(feature))
    body.pop("bbox", None)
    body["properties"].pop("id", None)  # the OAPIF provider's field for the feature's id: it is body["id"]
    status, answer = _http(
        "PUT",
        f"{base}/collections/{edit['layer']}/items/{edit['code']}",
        json.dumps(body).encode(),
        {**bearer, "Content-Type": "application/geo+json"},
    )
    out["put_status"] = status
    out["put_answer"] = answer if status != 200 else None
    again = next(_layer(base, edit["layer"]).getFeatures(request))  # a fresh layer: read back through QGIS
    out["version_after"] = again["version"]
    out["value_after"] = _plain(again[edit["attribute"]])
    status, history = _http("GET", f"{base}/collections/{edit['layer']}/items/{edit['code']}/history", None, bearer)
    out["history_status"] = status
    out["history"] = history
    # the same stale feature again: refused
    status, _ = _http(
        "PUT",
        f"{base}/collections/{edit['layer']}/items/{edit['code']}",
        json.dumps(body).encode(),
        {**bearer, "Content-Type": "application/geo+json"},
    )
    out["stale_put_status"] = status
    return out


def _styles(base: str, plan: dict[str, Any], folder: str) -> dict[str, Any]:
    """Each layer's QML and SLD from /collections/{id}/styles, loaded into its OAPIF layer by QGIS."""
    out: dict[str, Any] = {}
    for name in plan["layers"]:
        status, listing = _http("GET", f"{base}/collections/{name}/styles")
        hrefs = {lk["href"].rsplit("f=", 1)[1]: lk["href"] for lk in listing["styles"][0]["links"]}
        for fmt, href in sorted(hrefs.items()):
            status, text = _http("GET", href)
            path = os.path.join(folder, f"{name}.{fmt}")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            layer = _layer(base, name)
            message, ok = layer.loadNamedStyle(path) if fmt == "qml" else layer.loadSldStyle(path)
            renderer = layer.renderer()
            seen: dict[str, Any] = {"status": status, "ok": ok, "message": message, "renderer": renderer.type()}
            if renderer.type() == "categorizedSymbol":
                seen["categories"] = {c.value(): [c.label(), c.symbol().color().name()] for c in renderer.categories()}
                seen["symbol_types"] = sorted({int(c.symbol().type()) for c in renderer.categories()})
            elif renderer.type() == "RuleRenderer":
                seen["rules"] = [r.label() for r in renderer.rootRule().children()]
            elif renderer.type() == "singleSymbol":
                seen["colour"] = renderer.symbol().color().name()
            if layer.labelsEnabled():
                settings = layer.labeling().settings()
                seen["label"] = [settings.fieldName, settings.format().font().family(), settings.minimumScale]
            out[f"{name}.{fmt}"] = seen
    return out


def _project(plan: dict[str, Any]) -> dict[str, Any]:
    """The kit's project (``wuye qgis-project``) as QGIS opens it: its CRS, groups and layers."""
    project = QgsProject.instance()
    out: dict[str, Any] = {"ok": project.read(plan["path"]), "crs": project.crs().authid(), "groups": []}
    for group in project.layerTreeRoot().children():
        out["groups"].append([group.name(), [child.name() for child in group.children()]])
    layers: dict[str, Any] = {}
    for layer in project.mapLayers().values():
        seen: dict[str, Any] = {
            "name": layer.name(),
            "valid": layer.isValid(),
            "provider": layer.providerType(),
            "crs": layer.crs().authid(),
            "scale": [layer.hasScaleBasedVisibility(), layer.minimumScale(), layer.maximumScale()],
        }
        if isinstance(layer, QgsVectorLayer):
            renderer = layer.renderer()
            seen["renderer"] = renderer.type() if renderer else None
            if renderer is not None and renderer.type() == "categorizedSymbol":
                seen["categories"] = {c.value(): c.label() for c in renderer.categories()}
                seen["symbol_types"] = sorted({int(c.symbol().type()) for c in renderer.categories()})
            seen["count"] = layer.featureCount()
            seen["labels"] = layer.labelsEnabled()
        layers[layer.id()] = seen
    out["layers"] = layers
    project.clear()
    return out


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    app = QgsApplication([], False)
    QgsApplication.initQgis()
    QgsNetworkAccessManager.instance().finished.connect(_seen)
    base = plan["base"]
    result: dict[str, Any] = {"qgis": Qgis.version()}
    result["layers"] = {name: _load(base, name) for name in plan["collections"]}
    result["filtered"] = _filtered(base, plan["filtered"])
    result["tiles"] = _tiles(base, plan["tiles"], plan["png"])
    result["styles"] = _styles(base, plan["styles"], os.path.dirname(plan["png"]))
    result["edit"] = _sign_in_and_edit(base, plan)
    if "project" in plan:
        result["project"] = _project(plan["project"])
    print(json.dumps(result, ensure_ascii=False))
    QgsApplication.exitQgis()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
