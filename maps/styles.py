"""Colours, legends and page texts of the maps (zh-CN first, ``lang=en`` falls back to English).

Layer titles and value labels (zh and en, in display order) come from the
layer catalogue and its vocabularies (``layers/vocabulary.toml``); this module
only adds what a map needs on top: colours per value and the words of the page
furniture.
"""

from __future__ import annotations

from typing import Any

from layers.catalogue import LayerSpec, vocabulary

# Every legend's colours stay apart for colour-blind readers: each pair at least ΔE 20 (CAM02-UCS)
# under a simulated deuteranopia, the condition and case-state colours together (the zone page
# shows both); tests/test_map_colours.py computes it with colorspacious.

# Facility condition (vocabulary ``conditions``): green, red, orange, dark grey.
CONDITION_COLOURS = {"normal": "#4db380", "faulty": "#b31a00", "repairing": "#ff8000", "removed": "#4d4d4d"}

# Case states (vocabulary ``case_states``): bright for the new and moving ones, dark for the ended ones.
STATE_COLOURS = {
    "reported": "#ffff00",
    "registered": "#cc3399",
    "dispatched": "#00ccff",
    "in_progress": "#3380ff",
    "handled": "#99ffb3",
    "reopened": "#4d0000",
    "closed": "#99ffff",
    "rejected": "#00004d",
    "duplicate": "#1a00cc",
}
OVERDUE_COLOUR = "#000000"  # the ring (thicker, larger) around an overdue case

# Zone phase (vocabulary ``phases``): the remediation map colours by it until remediation tasks exist.
PHASE_COLOURS = {
    "survey": "#f1eef6",
    "remediation": "#a6bddb",
    "rollout": "#3690c0",
    "service": "#045a8d",
    "acceptance": "#011f3b",
}
# Completion classes (share of remediation tasks verified done): light to dark purple, apart from the phases.
COMPLETION_BREAKS = [(0.0, "#fcfbfd"), (0.25, "#bcbddc"), (0.5, "#807dba"), (0.75, "#54278f"), (1.0, "#1a0433")]

# Patrol checkpoints on the week's map (巡更图): scanned every day, missed some days, never scanned.
PATROL_COLOURS = {"covered": "#1a9850", "missed": "#fdae61", "never": "#d73027"}

# A distinct symbol per facility kind (filled with the condition's colour); polygons are drawn as such.
SYMBOL_SHAPES = {
    "street_lights": "circle",
    "septic_tanks": "square",
    "litter_bins": "triangle",
    "manholes": "hexagon",
    "sports_equipment": "star",
    "drying_racks": "cross",
}
# Line facilities are drawn in the condition's colour; the kind is the dash pattern (and width).
LINE_DASHES = {"drains": "8 4", "roads": "", "ditches": "2 4", "walls": "12 3 2 3"}
LINE_WEIGHTS = {"roads": 5}
KIND_SWATCH = "#ffffff"  # the kind legend shows the shape, not a colour


def symbol_shape(spec: LayerSpec) -> str:
    """The symbol of a facility layer: points a shape each (a layer added later gets a diamond),
    lines "line" (told apart by :data:`LINE_DASHES`), polygons "polygon"."""
    if spec.is_linear:
        return "line"
    if "Point" not in spec.geometry:
        return "polygon"
    return SYMBOL_SHAPES.get(spec.name, "diamond")


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
        "supervised": "督办",
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
        "zoom_in": "放大查看",
        "here": "此处的要素",
        "reported_at": "上报时间",
        "nav": "导航",
        "nav_menu": "菜单",  # the navigation bar's button on a phone
        "nav_home": "首页",
        "nav_maintenance": "设施",
        "nav_cases": "事件",
        "nav_remediation": "整治",
        "nav_plan": "规划",
        "nav_report": "报事",
        "nav_login": "登录",
        "nav_logout": "退出",
        "nav_workbench": "工作台",
        "nav_faults": "设施故障",
        "nav_fees": "收费管理",
        "nav_admin": "系统管理",
        "nav_surveys": "入户调查",
        "nav_acceptance": "验收台",
        "nav_board": "整治看板",
        "nav_phases": "阶段进度",
        "nav_publicity": "宣传记录",
        "go_to": "定位到",
        "search_place": "搜索小区或街道",
        "no_place": "没有找到这个名称",
        "next_report": "再报一件",
        "follow": "查看办理进度",
        "follow_title": "事件进度",
        "history": "办理记录",
        "not_found": "没有这个事件编号",
        "need_position": "请先在地图上点选位置或使用定位",
        "network_error": "网络错误，请稍后重试（再次提交不会重复上报）",
        "sending": "正在提交……",
        "photo_sent": "照片已上传",
        "photo_failed": "照片上传失败",
        "category_required": "请选择类别",
        "gps_denied": "未允许定位，请在地图上点选位置",
        "gps_failed": "暂时无法定位，请在地图上点选位置",
        "submit_failed": "提交失败",
        "patrols": "巡更图",
        "nav_patrols": "巡更",
        "week_of": "所在周",
        "patrol_covered": "每天都已巡到",
        "patrol_missed": "有漏巡的日子",
        "patrol_never": "本周未巡到",
        "patrol_points": "巡更点",
        "patrol_scans": "本周打卡",
        "patrol_days_missed": "漏巡天数",
        "patrol_coverage": "覆盖率",
        "patrol_flagged": "覆盖率不足",
        "times": "次",
        "days": "天",
        "week_from": "周起",
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
        "supervised": "Supervised",
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
        "zoom_in": "Zoom in",
        "here": "Features here",
        "reported_at": "Reported",
        "nav": "Navigation",
        "nav_menu": "Menu",
        "nav_home": "Home",
        "nav_maintenance": "Facilities",
        "nav_cases": "Cases",
        "nav_remediation": "Remediation",
        "nav_plan": "Planning",
        "nav_report": "Report",
        "nav_login": "Sign in",
        "nav_logout": "Sign out",
        "nav_workbench": "Workbench",
        "nav_faults": "Facility faults",
        "nav_fees": "Fees",
        "nav_admin": "Administration",
        "nav_surveys": "Survey",
        "nav_acceptance": "Acceptance",
        "nav_board": "Remediation board",
        "nav_phases": "Phases",
        "nav_publicity": "Publicity",
        "go_to": "Go to",
        "search_place": "Search a zone or sub-district",
        "no_place": "No such name",
        "next_report": "Report another",
        "follow": "Follow this case",
        "follow_title": "Case progress",
        "history": "History",
        "not_found": "No case with this number",
        "need_position": "Tap the map or use your location first",
        "network_error": "Network error, please try again (a retry will not report twice)",
        "sending": "Sending…",
        "photo_sent": "Photo uploaded",
        "photo_failed": "Photo upload failed",
        "category_required": "Choose a category",
        "gps_denied": "Location not allowed: tap the map instead",
        "gps_failed": "No location for now: tap the map instead",
        "submit_failed": "Not sent",
        "patrols": "Security patrols",
        "nav_patrols": "Patrols",
        "week_of": "Week of",
        "patrol_covered": "Patrolled every day",
        "patrol_missed": "Missed on some days",
        "patrol_never": "Not patrolled this week",
        "patrol_points": "Checkpoints",
        "patrol_scans": "Scans this week",
        "patrol_days_missed": "Days missed",
        "patrol_coverage": "Coverage",
        "patrol_flagged": "Coverage too low",
        "times": "",
        "days": "",
        "week_from": "Week from",
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
        "weight": LINE_WEIGHTS.get(spec.name, s.get("weight", 2)),
        "radius": s.get("radius", 4),
        "dashArray": LINE_DASHES.get(spec.name, "6 3") if spec.is_linear else None,
    }
