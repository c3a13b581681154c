"""Colours, legends and page texts of the maps (zh-CN first, ``lang=en`` falls back to English).

Layer titles and value labels (zh and en, in display order) come from the
layer catalogue and its vocabularies (``layers/vocabulary.toml``); this module
only adds what a map needs on top: colours per value and the words of the page
furniture.
"""

from __future__ import annotations

from typing import Any

from layers.catalogue import LayerSpec, vocabulary

# Facility condition (vocabulary ``conditions``): green, red, orange, grey.
CONDITION_COLOURS = {"normal": "#1a9641", "faulty": "#d7191c", "repairing": "#fdae61", "removed": "#969696"}

# Case states (vocabulary ``case_states``): open ones in warm colours, closed ones quiet.
STATE_COLOURS = {
    "reported": "#e6550d",
    "registered": "#fd8d3c",
    "dispatched": "#6baed6",
    "in_progress": "#3182bd",
    "handled": "#31a354",
    "reopened": "#a63603",
    "closed": "#969696",
    "rejected": "#bdbdbd",
    "duplicate": "#d9d9d9",
}
OVERDUE_COLOUR = "#ff0000"

# Zone phase (vocabulary ``phases``): the remediation map colours by it until remediation tasks exist.
PHASE_COLOURS = {
    "survey": "#fee5d9",
    "remediation": "#fcae91",
    "rollout": "#fb6a4a",
    "service": "#de2d26",
    "acceptance": "#a50f15",
}
# Completion classes (share of remediation tasks verified done).
COMPLETION_BREAKS = [(0.0, "#d7191c"), (0.25, "#fdae61"), (0.5, "#ffffbf"), (0.75, "#a6d96a"), (1.0, "#1a9641")]

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "remediation": "整治进度图",
        "maintenance": "设施维护图",
        "cases": "事件分布图",
        "plan": "规划绘制",
        "zone": "小区图",
        "report": "我要报事",
        "legend": "图例",
        "no_tasks": "暂无整治任务",
        "all_subdistricts": "全部街道",
        "subdistrict": "街道",
        "category": "类别",
        "state": "状态",
        "since": "起",
        "until": "止",
        "all": "全部",
        "heatmap": "热力图",
        "overdue": "超期",
        "apply": "筛选",
        "loading": "加载中……",
        "code": "编号",
        "condition": "状况",
        "last_maintained": "最近维护",
        "phase": "阶段",
        "households": "户数",
        "sections": "标段",
        "open_cases": "未结事件",
        "facilities": "设施",
        "date": "日期",
        "save": "保存",
        "layer": "图层",
        "name": "名称",
        "kind": "类型",
        "zone_code": "所属小区",
        "contractor_unit": "作业单位",
        "service_kinds": "服务内容",
        "saved": "已保存",
        "save_failed": "保存失败",
        "sign_in": "请先登录",
        "draw_hint": "用左侧工具绘制或编辑多边形，填写属性后保存。",
        "position": "位置",
        "use_gps": "使用定位",
        "tap_hint": "或在地图上点选位置",
        "description": "问题描述",
        "photo": "照片",
        "submit": "提交",
        "duplicates": "附近可能重复的事件",
        "case_no": "事件编号",
        "unit": "处理单位",
        "reported": "已受理",
        "zones": "小区",
        "districts": "行政区",
        "north": "北",
        "tasks": "整治项目",
        "completion": "完成率",
        "photo_needs_login": "登录后可上传照片",
        "none_found": "无",
    },
    "en": {
        "remediation": "Remediation progress",
        "maintenance": "Facility maintenance",
        "cases": "Cases",
        "plan": "Planning",
        "zone": "Zone",
        "report": "Report a problem",
        "legend": "Legend",
        "no_tasks": "No remediation tasks yet",
        "all_subdistricts": "All sub-districts",
        "subdistrict": "Sub-district",
        "category": "Category",
        "state": "State",
        "since": "From",
        "until": "To",
        "all": "All",
        "heatmap": "Heat map",
        "overdue": "Overdue",
        "apply": "Filter",
        "loading": "Loading…",
        "code": "Code",
        "condition": "Condition",
        "last_maintained": "Last maintained",
        "phase": "Phase",
        "households": "Households",
        "sections": "Sections",
        "open_cases": "Open cases",
        "facilities": "Facilities",
        "date": "Date",
        "save": "Save",
        "layer": "Layer",
        "name": "Name",
        "kind": "Kind",
        "zone_code": "Zone",
        "contractor_unit": "Contractor",
        "service_kinds": "Service kinds",
        "saved": "Saved",
        "save_failed": "Save failed",
        "sign_in": "Please sign in first",
        "draw_hint": "Draw or edit a polygon with the tools on the left, fill in its attributes, then save.",
        "position": "Position",
        "use_gps": "Use my location",
        "tap_hint": "or tap the map",
        "description": "Description",
        "photo": "Photo",
        "submit": "Submit",
        "duplicates": "Possible duplicates nearby",
        "case_no": "Case number",
        "unit": "Handled by",
        "reported": "Received",
        "zones": "Zones",
        "districts": "District",
        "north": "N",
        "tasks": "Remediation items",
        "completion": "Done",
        "photo_needs_login": "Sign in to attach a photo",
        "none_found": "none",
    },
}


def texts(lang: str) -> dict[str, str]:
    """The page words in ``lang`` (zh or en)."""
    return TEXTS["en" if lang == "en" else "zh"]


def layer_title(spec: LayerSpec, lang: str) -> str:
    """A layer's title in the page's language (zh or en)."""
    return spec.title_en if lang == "en" else spec.title_zh


def vocabulary_rows(name: str, colours: dict[str, str], lang: str) -> list[tuple[str, str]]:
    """(colour, label) legend rows of a vocabulary's coloured values, in its display order."""
    return [(colours[k], label) for k, label in vocabulary(name).labels(lang).items() if k in colours]


def legend(title: str, rows: list[tuple[str, str]], note: str | None = None) -> dict[str, Any]:
    """A legend block: a title, (colour, label) rows and an optional note."""
    return {"title": title, "rows": [{"colour": c, "label": label} for c, label in rows], "note": note}


def layer_style(spec: LayerSpec) -> dict[str, Any]:
    """The catalogue's style of a layer, with defaults a Leaflet path understands."""
    s = dict(spec.style)
    return {
        "color": s.get("color", "#3388ff"),
        "fillColor": s.get("fill_color", s.get("color", "#3388ff")),
        "fillOpacity": s.get("fill_opacity", 0.2),
        "weight": s.get("weight", 2),
        "radius": s.get("radius", 4),
    }
