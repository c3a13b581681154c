"""The planner page's configuration and words (``/maps/plan``, script ``wuye-plan.js``).

The page edits the layers whose spec says ``change = "editable"`` and that have a parent (zones,
contract sections); its attribute form chooses parents, units and vocabulary values from lists
(names shown, codes sent), never codes typed by hand.
"""

from __future__ import annotations

from typing import Any

from layers.catalogue import Attribute, Catalogue, LayerSpec

EDITABLE = ("zones", "contract_sections")
UNITS_PATH = "/units"  # api/maps.py: the district's responsible units (code, name, kind)

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "hint": "左侧工具：画多边形或矩形、编辑顶点、拖动、挖洞、删除；顶点靠近相邻边界时自动吸附。点选形状可改属性。",
        "new_layer": "新形状的图层",
        "code": "编码",
        "required": "必填",
        "new_shape": "新形状",
        "none_selected": "未选中形状（点击地图上的形状）",
        "split": "分割",
        "split_hint": "画出要分出去的部分，分出的部分成为新形状（属性相同，编码加 -2）。",
        "split_miss": "分割线没有把选中的形状分成两部分",
        "undo": "撤销",
        "save": "保存",
        "saving": "正在保存…",
        "saved": "已保存",
        "deleted": "已删除",
        "save_failed": "保存失败",
        "some_failed": "{n} 个形状未保存（共 {m} 个），原因见各形状旁；绘制已保留",
        "refused": "未保存",
        "http_error": "服务器拒绝",
        "offline": "无法连接服务器",
        "nothing": "没有需要保存的修改",
        "pending": "{n} 处修改未保存",
        "sign_in": "请先登录",
        "confirm_delete": "确定删除“{name}”吗？保存后生效。",
        "geometry_conflict": "图形冲突",
        "geometry": "图形",
        "overlap": "与已有形状重叠",
        "outside_parent": "超出上级范围",
        "missing_parent": "上级不存在",
        "conflict_412": "未保存 412：他人已修改此形状（现为第 {v} 版）。"
        "灰色虚线为已保存的形状，您的绘制仍保留；再次保存将覆盖。",
    },
    "en": {
        "hint": "Tools on the left: draw a polygon or rectangle, edit vertices, drag, cut a hole, delete; "
        "vertices snap to neighbouring boundaries. Click a shape to edit its attributes.",
        "new_layer": "Layer of new shapes",
        "code": "Code",
        "required": "required",
        "new_shape": "new shape",
        "none_selected": "No shape selected (click one on the map)",
        "split": "Split",
        "split_hint": "Draw the part to split off; it becomes a new shape (same attributes, code + -2).",
        "split_miss": "The drawing does not split the selected shape in two",
        "undo": "Undo",
        "save": "Save",
        "saving": "Saving…",
        "saved": "Saved",
        "deleted": "Deleted",
        "save_failed": "Save failed",
        "some_failed": "{n} of {m} shapes not saved; the reasons are next to each shape, the drawings are kept",
        "refused": "Not saved",
        "http_error": "refused by the server",
        "offline": "cannot reach the server",
        "nothing": "Nothing to save",
        "pending": "{n} unsaved changes",
        "sign_in": "Please sign in first",
        "confirm_delete": "Delete “{name}”? It takes effect when you save.",
        "geometry_conflict": "the shape conflicts with others",
        "geometry": "shape",
        "overlap": "overlaps",
        "outside_parent": "outside its parent",
        "missing_parent": "parent does not exist",
        "conflict_412": "Not saved 412: someone else changed this shape (now version {v}). The grey dashed line is "
        "the saved shape; your drawing is kept; saving again overwrites it.",
    },
}


def _choices(spec: LayerSpec, attr: Attribute) -> str | None:
    """Which list an attribute's value is chosen from: the parent layer's features or the units."""
    if spec.parent is not None and attr.name == spec.parent.attribute:
        return spec.parent.layer
    if attr.references == "units":
        return "units"
    return None


def _attribute(spec: LayerSpec, a: Attribute, lang: str) -> dict[str, Any]:
    return {
        "name": a.name,
        "title": a.title_en if lang == "en" else a.title_zh,
        "required": a.required,
        "type": a.type,
        "values": {k: a.label(k, lang) for k in a.values} if a.values else None,
        "choices": _choices(spec, a),
        "default": a.default,
    }


def plan_config(catalogue: Catalogue, layer_entry: Any, lang: str) -> dict[str, Any]:
    """What ``wuye-plan.js`` needs beyond the common page configuration."""
    editable = [catalogue[n] for n in EDITABLE if n in catalogue]
    return {
        "layers": [
            {**layer_entry(s, lang), "attributes": [_attribute(s, a, lang) for a in s.attributes]} for s in editable
        ],
        "unitsUrl": UNITS_PATH,
        "planTexts": TEXTS["en" if lang == "en" else "zh"],
    }
