"""Layer styles for desktop GIS, from the same specs and colours as the web maps (issue 17 point 6).

QML (QGIS's style file, read by QGIS 3.22's "Load Style") and SLD (OGC Styled Layer
Descriptor 1.1 with Symbology Encoding, as QGIS writes it; read by QGIS and GeoServer): facility
points in the web maps' symbol per kind (circle, square, triangle, hexagon, star, cross) coloured by
condition with the Chinese labels of the vocabulary; polygons with the spec's outline and fill;
names labelled in a CJK font from 1:10,000 in. Served at ``/collections/{id}/styles/default?f=qml|sld``
and written by ``wuye styles``.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from layers.catalogue import LayerSpec, vocabulary
from maps.styles import CONDITION_COLOURS, LINE_DASHES, LINE_WEIGHTS, symbol_shape

QML = "application/vnd.qgis.qml"
SLD = "application/vnd.ogc.sld+xml;version=1.1"
CJK_FONT = "Noto Sans CJK SC"
LABEL_MAX_SCALE = 10_000  # names are shown from 1:10,000 in (closer)
# Every shape of ``maps.styles.SYMBOL_SHAPES`` (and the "diamond" of a layer added later) in QGIS's simple-marker
# names; SLD 1.1 knows only six well-known marks, so the hexagon and the diamond fall back to "x" and "square".
_QML_SHAPES = {
    "circle": "circle",
    "square": "square",
    "triangle": "triangle",
    "hexagon": "hexagon",
    "star": "star",
    "cross": "cross_fill",
    "diamond": "diamond",
}
_SLD_SHAPES = {
    "circle": "circle",
    "square": "square",
    "triangle": "triangle",
    "hexagon": "x",
    "star": "star",
    "cross": "cross",
    "diamond": "square",
}


def _rgba(hex_colour: str, alpha: float = 1.0) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(alpha * 255)}"


def condition_attribute(spec: LayerSpec) -> str | None:
    """The attribute facility points are coloured by (condition), when the layer has it."""
    return next((a.name for a in spec.attributes if a.vocabulary == "conditions"), None)


def _props(values: dict[str, str]) -> str:
    return "".join(f"<prop k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in values.items())


def _marker(spec: LayerSpec, colour: str, name: str) -> str:
    size = 2 * float(spec.style.get("radius", 4))
    props = {
        "name": _QML_SHAPES[symbol_shape(spec)],
        "color": _rgba(colour),
        "outline_color": "255,255,255,255",
        "outline_width": "1",
        "outline_width_unit": "Pixel",
        "size": f"{size:g}",
        "size_unit": "Pixel",
    }
    return (
        f'<symbol type="marker" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleMarker" enabled="1" locked="0" pass="0">{_props(props)}</layer></symbol>'
    )


def _fill(spec: LayerSpec, name: str) -> str:
    st = spec.style
    props = {
        "color": _rgba(str(st.get("fill_color", st.get("color", "#888888"))), float(st.get("fill_opacity", 0.2))),
        "style": "solid",
        "outline_color": _rgba(str(st.get("color", "#444444"))),
        "outline_style": "dash" if st.get("dash_array") else "solid",
        "outline_width": f"{float(st.get('weight', 1)):g}",
        "outline_width_unit": "Pixel",
    }
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">{_props(props)}</layer></symbol>'
    )


def _labels(spec: LayerSpec) -> str:
    if "name" not in spec.attribute_names:
        return ""
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName="name" fontFamily={quoteattr(CJK_FONT)} fontSize="9" fontSizeUnit="Point" '
        'textColor="20,20,20,255" isExpression="0">'
        '<text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255"/>'
        "</text-style>"
        f'<rendering scaleVisibility="1" scaleMin="1" scaleMax="{LABEL_MAX_SCALE}" obstacle="1"/>'
        "</settings></labeling>"
    )


def qml(spec: LayerSpec) -> str:
    """The layer's QGIS style file (QML)."""
    attr = condition_attribute(spec)
    if ("Point" in spec.geometry or spec.is_linear) and attr:
        labels = vocabulary("conditions").zh
        keys = list(CONDITION_COLOURS)
        categories = "".join(
            f'<category render="true" symbol="{i}" value={quoteattr(k)} label={quoteattr(labels.get(k, k))}/>'
            for i, k in enumerate(keys)
        )
        symbol_of = _line if spec.is_linear else _marker
        symbols = "".join(symbol_of(spec, CONDITION_COLOURS[k], str(i)) for i, k in enumerate(keys))
        renderer = (
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(attr)} symbollevels="0" forceraster="0" '
            f'enableorderby="0"><categories>{categories}</categories><symbols>{symbols}</symbols></renderer-v2>'
        )
    else:
        colour = str(spec.style.get("color", "#888888"))
        symbol = (
            _marker(spec, colour, "0")
            if "Point" in spec.geometry
            else _line(spec, colour, "0")
            if spec.is_linear
            else _fill(spec, "0")
        )
        renderer = (
            '<renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" enableorderby="0">'
            f"<symbols>{symbol}</symbols></renderer-v2>"
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis version="3.22.16" styleCategories="Symbology|Labeling">{renderer}{_labels(spec)}'
        f"<layerGeometryType>{_geometry_type(spec)}</layerGeometryType></qgis>\n"
    )


def _line(spec: LayerSpec, colour: str, name: str) -> str:
    """A line facility in the condition's colour, its kind told by the web maps' dash pattern."""
    dash = LINE_DASHES.get(spec.name, "")
    props = {
        "line_color": _rgba(colour),
        "line_width": f"{LINE_WEIGHTS.get(spec.name, 3):g}",
        "line_width_unit": "Pixel",
        "capstyle": "round",
        "joinstyle": "round",
    }
    if dash:
        props |= {"use_custom_dash": "1", "customdash": dash.replace(" ", ";"), "customdash_unit": "Pixel"}
    return (
        f'<symbol type="line" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleLine" enabled="1" locked="0" pass="0">{_props(props)}</layer></symbol>'
    )


def _geometry_type(spec: LayerSpec) -> int:
    """QGIS's geometry type of a layer: 0 points, 1 lines, 2 polygons."""
    return 0 if "Point" in spec.geometry else 1 if spec.is_linear else 2


def _sld_point(spec: LayerSpec, colour: str) -> str:
    size = 2 * float(spec.style.get("radius", 4))
    return (
        "<se:PointSymbolizer><se:Graphic><se:Mark>"
        f"<se:WellKnownName>{_SLD_SHAPES[symbol_shape(spec)]}</se:WellKnownName>"
        f'<se:Fill><se:SvgParameter name="fill">{colour}</se:SvgParameter></se:Fill>'
        '<se:Stroke><se:SvgParameter name="stroke">#ffffff</se:SvgParameter></se:Stroke>'
        f"</se:Mark><se:Size>{size:g}</se:Size></se:Graphic></se:PointSymbolizer>"
    )


def _sld_line(spec: LayerSpec, colour: str) -> str:
    dash = LINE_DASHES.get(spec.name, "")
    dashes = f'<se:SvgParameter name="stroke-dasharray">{dash}</se:SvgParameter>' if dash else ""
    return (
        f'<se:LineSymbolizer><se:Stroke><se:SvgParameter name="stroke">{colour}</se:SvgParameter>'
        f'<se:SvgParameter name="stroke-width">{LINE_WEIGHTS.get(spec.name, 3):g}</se:SvgParameter>{dashes}'
        "</se:Stroke></se:LineSymbolizer>"
    )


def _sld_polygon(spec: LayerSpec) -> str:
    st = spec.style
    dash = (
        f'<se:SvgParameter name="stroke-dasharray">{st["dash_array"]}</se:SvgParameter>' if st.get("dash_array") else ""
    )
    return (
        "<se:PolygonSymbolizer><se:Fill>"
        f'<se:SvgParameter name="fill">{st.get("fill_color", st.get("color", "#888888"))}</se:SvgParameter>'
        f'<se:SvgParameter name="fill-opacity">{float(st.get("fill_opacity", 0.2)):g}</se:SvgParameter></se:Fill>'
        f'<se:Stroke><se:SvgParameter name="stroke">{st.get("color", "#444444")}</se:SvgParameter>'
        f'<se:SvgParameter name="stroke-width">{float(st.get("weight", 1)):g}</se:SvgParameter>{dash}</se:Stroke>'
        "</se:PolygonSymbolizer>"
    )


def sld(spec: LayerSpec) -> str:
    """The layer's style as an SLD 1.1 / Symbology Encoding document (QGIS, GeoServer)."""
    attr = condition_attribute(spec)
    rules: list[str] = []
    if ("Point" in spec.geometry or spec.is_linear) and attr:
        labels = vocabulary("conditions").zh
        symbolizer = _sld_line if spec.is_linear else _sld_point
        for key, colour in CONDITION_COLOURS.items():
            rules.append(
                f"<se:Rule><se:Name>{key}</se:Name><se:Description><se:Title>{labels.get(key, key)}</se:Title>"
                "</se:Description><ogc:Filter><ogc:PropertyIsEqualTo>"
                f"<ogc:PropertyName>{attr}</ogc:PropertyName><ogc:Literal>{key}</ogc:Literal>"
                f"</ogc:PropertyIsEqualTo></ogc:Filter>{symbolizer(spec, colour)}</se:Rule>"
            )
    else:
        colour = str(spec.style.get("color", "#888888"))
        body = (
            _sld_point(spec, colour)
            if "Point" in spec.geometry
            else _sld_line(spec, colour)
            if spec.is_linear
            else _sld_polygon(spec)
        )
        rules.append(f"<se:Rule><se:Name>{spec.name}</se:Name>{body}</se:Rule>")
    if "name" in spec.attribute_names:
        rules.append(
            f"<se:Rule><se:Name>labels</se:Name><se:MaxScaleDenominator>{LABEL_MAX_SCALE}</se:MaxScaleDenominator>"
            "<se:TextSymbolizer><se:Label><ogc:PropertyName>name</ogc:PropertyName></se:Label>"
            f'<se:Font><se:SvgParameter name="font-family">{CJK_FONT}</se:SvgParameter>'
            '<se:SvgParameter name="font-size">12</se:SvgParameter></se:Font></se:TextSymbolizer></se:Rule>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:se="http://www.opengis.net/se" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<NamedLayer><se:Name>{spec.name}</se:Name><UserStyle><se:Name>{spec.title_zh}</se:Name>"
        f"<se:FeatureTypeStyle>{''.join(rules)}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>\n"
    )
