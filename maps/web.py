"""The workbench's pages (portal, sign-in, case desk, API docs): Jinja2 templates of our own in
``maps/templates/web``, zh-CN first with ``lang=en``, every script and style served by this app
(htmx, Leaflet and Swagger UI from npm under ``/static/vendor``; no CDN).

Pages are built here from plain values the routes (api/workbench.py) read through geo/; this
module holds no rule of who may do what: the case page lists the actions geo/cases allows.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from geo.access.scope import Principal
from geo.workcal import calendar
from layers.catalogue import vocabulary
from maps.assets import app_asset, vendor

TEMPLATES = Path(__file__).resolve().parent / "templates" / "web"
HTMX_JS = vendor("htmx.org/dist/htmx.min.js")
LEAFLET_JS = vendor("leaflet/dist/leaflet.js")
LEAFLET_CSS = vendor("leaflet/dist/leaflet.css")
SWAGGER_JS = vendor("swagger-ui-dist/swagger-ui-bundle.js")
SWAGGER_CSS = vendor("swagger-ui-dist/swagger-ui.css")

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "system": "社区物业化服务 GIS",
        "about": "本系统服务于全区社区物业化工作：小区与片区图层、设施维护，"
        "群众报事的受理、立案、派遣、处置、核查与结案。",
        "nav": "导航",
        "menu": "菜单",  # the navigation bar's button on a phone
        "home": "首页",
        "maps": "地图",
        "map_maintenance": "设施维护图",
        "map_cases": "事件分布图",
        "map_remediation": "整治进度图",
        "map_plan": "规划绘制",
        "report": "我要报事",
        "desk": "事件办理",
        "docs": "API 文档",
        "ogc": "OGC 数据服务入口",
        "login": "登录",
        "logout": "退出",
        "signed_in_as": "当前用户",
        "scope": "范围",
        "scope_all": "全区",
        "username": "用户名",
        "password": "密码",
        "old_password": "原密码",
        "new_password": "新密码（至少 8 位）",
        "change_password": "修改密码",
        "password_changed": "密码已修改，请重新登录。",
        "attention": "待办",
        "new_cases": "新上报事件",
        "tasks_due_week": "本周到期整治任务",
        "overdue_cases": "超期事件",
        "open_cases": "办理中事件",
        "handled_cases": "待核查事件",
        "my_pages": "我的工作",
        "cases": "事件",
        "filters": "筛选",
        "state": "状态",
        "category": "类别",
        "zone": "小区",
        "subdistrict": "街道",
        "unit": "责任单位",
        "overdue": "超期",
        "unassigned": "未落点（待分拣）",
        "since": "起",
        "until": "止",
        "all": "全部",
        "apply": "筛选",
        "reset": "清除",
        "count": "件",
        "code": "编号",
        "reported_at": "上报时间",
        "due_at": "办理期限",
        "next_page": "下一页",
        "first_page": "第一页",
        "none": "没有符合条件的事件。",
        "position": "位置",
        "photos": "照片",
        "no_photos": "暂无照片",
        "history": "办理记录",
        "at": "时间",
        "actor": "操作人",
        "action": "操作",
        "note": "说明",
        "actions": "可办理的操作",
        "no_actions": "当前状态下您没有可办理的操作。",
        "upload_photo": "上传照片",
        "photo": "照片（可直接拍照）",
        "photo_kind": "照片类型",
        "choose": "请选择",
        "duplicate_of": "原事件编号",
        "lon": "经度",
        "lat": "纬度",
        "map_pick": "在地图上点击以选择新位置",
        "batch_dispatch": "批量派遣",
        "select": "选择",
        "dispatched_n": "已派遣 {n} 件",
        "failed": "未能办理",
        "done": "已办理",
        "error": "出错了",
        "back": "返回",
        "description": "描述",
        "reporter": "报事人",
        "facility": "设施",
        "docs_title": "API 文档（离线）",
        "lang_other": "English",
        "demo": "演示账号",
        "notices": "通知",
        "unread": "条未读",
        "mark_read": "全部标为已读",
        "no_notices": "暂无通知。",
        "supervised": "督办",
        "supervised_cases": "督办事件",
        "supervise": "督办",
        "deadline": "督办期限",
        "supervision_note": "督办意见",
        "unsupervise": "撤销督办",
        "unsupervise_note": "撤销理由",
        "supervision_escalated": "督办超期，已升级至街道",
        "stats": "统计图表",
        "stats_about": (
            "事件、按期结案、满意率、整治进度和物业费收缴的统计图，每张图可切换为数据表，可下载 CSV 和 XLSX。"
        ),
        "stats_loading": "正在读取统计数据……",
        "table_view": "数据表",
        "chart_view": "图表",
        "download_csv": "下载 CSV",
        "download_xlsx": "下载 XLSX",
        "faults": "设施故障",
        "faults_about": "辖区内故障和维修中的设施，按图层列出；点“报事”或“登记巡查”办理。",
        "layer": "图层",
        "facility_code": "设施编码",
        "condition": "状况",
        "last_inspection": "最近巡查",
        "never_inspected": "未巡查",
        "open_cases_linked": "未结事件",
        "report_case": "报事",
        "record_inspection": "登记巡查",
        "inspected_on": "巡查日期",
        "inspections": "巡查记录",
        "inspector": "巡查人",
        "case_reported": "事件已上报",
        "inspection_recorded": "巡查已登记",
        "no_faults": "没有故障或维修中的设施。",
        "shown_of": "本页显示 {n} 项（共 {total} 项），可翻页或按图层筛选。",
    },
    "en": {
        "system": "Community property-management GIS",
        "about": "Serving the district's community property-management programme: zones and sections, "
        "facility maintenance, and residents' reports registered, dispatched, handled, verified and closed.",
        "nav": "Navigation",
        "menu": "Menu",
        "home": "Home",
        "maps": "Maps",
        "map_maintenance": "Facilities map",
        "map_cases": "Cases map",
        "map_remediation": "Remediation map",
        "map_plan": "Planning",
        "report": "Report a problem",
        "desk": "Case desk",
        "docs": "API docs",
        "ogc": "OGC data service landing page",
        "login": "Sign in",
        "logout": "Sign out",
        "signed_in_as": "Signed in",
        "scope": "Scope",
        "scope_all": "whole district",
        "username": "Username",
        "password": "Password",
        "old_password": "Current password",
        "new_password": "New password (8 characters or more)",
        "change_password": "Change password",
        "password_changed": "Password changed: sign in again.",
        "attention": "Needs attention",
        "new_cases": "New cases",
        "tasks_due_week": "Remediation tasks due this week",
        "overdue_cases": "Overdue cases",
        "open_cases": "Cases in progress",
        "handled_cases": "Cases to verify",
        "my_pages": "My work",
        "cases": "Cases",
        "filters": "Filters",
        "state": "State",
        "category": "Category",
        "zone": "Zone",
        "subdistrict": "Sub-district",
        "unit": "Unit",
        "overdue": "Overdue",
        "unassigned": "Not placed (triage)",
        "since": "From",
        "until": "Until",
        "all": "All",
        "apply": "Filter",
        "reset": "Clear",
        "count": "cases",
        "code": "Number",
        "reported_at": "Reported",
        "due_at": "Due",
        "next_page": "Next page",
        "first_page": "First page",
        "none": "No case matches.",
        "position": "Position",
        "photos": "Photos",
        "no_photos": "No photos yet",
        "history": "History",
        "at": "When",
        "actor": "By",
        "action": "Action",
        "note": "Note",
        "actions": "What you can do now",
        "no_actions": "Nothing you can do in this state.",
        "upload_photo": "Upload photo",
        "photo": "Photo (the camera works too)",
        "photo_kind": "Photo kind",
        "choose": "Choose",
        "duplicate_of": "Original case number",
        "lon": "Longitude",
        "lat": "Latitude",
        "map_pick": "Click the map to choose the new position",
        "batch_dispatch": "Dispatch selected",
        "select": "Select",
        "dispatched_n": "{n} dispatched",
        "failed": "Not done",
        "done": "Done",
        "error": "Something went wrong",
        "back": "Back",
        "description": "Description",
        "reporter": "Reporter",
        "facility": "Facility",
        "docs_title": "API documentation (offline)",
        "lang_other": "中文",
        "demo": "Demo accounts",
        "notices": "Notices",
        "unread": "unread",
        "mark_read": "Mark all read",
        "no_notices": "No notices.",
        "supervised": "Supervised",
        "supervised_cases": "Supervised cases",
        "supervise": "Supervise",
        "deadline": "Supervision deadline",
        "supervision_note": "What the bureau asks",
        "unsupervise": "Withdraw supervision",
        "unsupervise_note": "Why",
        "supervision_escalated": "past the deadline: escalated to the sub-district",
        "stats": "Statistics",
        "stats_about": (
            "Charts of cases, on-time closure, satisfaction, remediation and fee collection; "
            "each switches to its table and downloads as CSV or XLSX."
        ),
        "stats_loading": "Reading the figures…",
        "table_view": "Table",
        "chart_view": "Chart",
        "download_csv": "Download CSV",
        "download_xlsx": "Download XLSX",
        "faults": "Facility faults",
        "faults_about": "Faulty and under-repair facilities of your area by layer; "
        "report a case or record an inspection from a row.",
        "layer": "Layer",
        "facility_code": "Facility code",
        "condition": "Condition",
        "last_inspection": "Last inspection",
        "never_inspected": "never inspected",
        "open_cases_linked": "Open cases",
        "report_case": "Report a case",
        "record_inspection": "Record an inspection",
        "inspected_on": "Inspected on",
        "inspections": "Inspections",
        "inspector": "Inspector",
        "case_reported": "Case reported",
        "inspection_recorded": "Inspection recorded",
        "no_faults": "No faulty or under-repair facility.",
        "shown_of": "{n} of {total} on this page: turn the page or filter by layer.",
    },
}
PHOTO_KINDS = {
    "zh": {"report": "报事照片", "handled": "处置照片", "before": "处置前", "after": "处置后"},
    "en": {"report": "As reported", "handled": "Handled", "before": "Before", "after": "After"},
}
ACTION_NAMES = {
    "zh": {
        "register": "立案",
        "reject": "驳回",
        "dispatch": "派遣",
        "start": "开始处置",
        "handle": "处置完毕",
        "verify": "核查结案",
        "reopen": "退回重办",
        "mark_duplicate": "标记重复",
        "recategorise": "更改类别",
        "move": "更正位置",
        "report": "上报",
        "assign": "分派",
        "escalate": "超期升级",
        "reassign": "重新分派",
        "supervise": "督办",
        "supervision_overdue": "督办超期升级",
        "unsupervise": "撤销督办",
    },
    "en": {
        "register": "Register",
        "reject": "Reject",
        "dispatch": "Dispatch",
        "start": "Start work",
        "handle": "Mark handled",
        "verify": "Verify and close",
        "reopen": "Send back",
        "mark_duplicate": "Mark duplicate",
        "recategorise": "Change category",
        "move": "Correct position",
        "report": "Reported",
        "assign": "Assigned",
        "escalate": "Escalated",
        "reassign": "Reassigned",
        "supervise": "Supervised",
        "supervision_overdue": "Supervision overdue: escalated",
        "unsupervise": "Supervision withdrawn",
    },
}


def local_time(value: object) -> str:
    """A timestamp (ISO text or datetime) as the programme's local time, ``YYYY-MM-DD HH:MM`` (the
    working calendar's zone, Asia/Shanghai); empty for none."""
    if not value:
        return ""
    return _local_text(value) if isinstance(value, str) else _local(value)


@lru_cache(maxsize=8192)
def _local_text(value: str) -> str:
    """:func:`local_time` of a timestamp's text, kept: a page of 50 cases shows 50 of them, and the next
    view of the page mostly the same 50 (parsing and converting them was a twentieth of the desk)."""
    return _local(value)


def _local(value: object) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(calendar().zone)
    return moment.strftime("%Y-%m-%d %H:%M")


def lang_of(value: str | None) -> str:
    """``en`` when asked for, else ``zh``."""
    return "en" if value == "en" else "zh"


def who(principal: Principal, lang: str) -> dict[str, Any] | None:
    """What the navigation bar says of the caller: name, role and scope (None when anonymous)."""
    if principal.is_anonymous:
        return None
    roles = vocabulary("roles").labels(lang)
    codes = (principal.subdistrict_code or "", *principal.zone_codes, principal.unit_code or "")
    scope = principal.scope_names or codes  # names when the sign-in lookup read them
    return {
        "username": principal.username,
        "role": principal.role,
        "role_label": roles.get(principal.role, principal.role),
        "scope": "、".join(s for s in scope if s) or TEXTS[lang]["scope_all"],
    }


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    auto_reload=False,  # the templates are part of the installed code: no file checks on every page
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["local"] = local_time
_env.globals.update(
    htmx_js=HTMX_JS,
    leaflet_js=LEAFLET_JS,
    leaflet_css=LEAFLET_CSS,
    swagger_js=SWAGGER_JS,
    swagger_css=SWAGGER_CSS,
    app_asset=app_asset,
)


def _language(lang: str) -> dict[str, Any]:
    """What every template gets of ``lang``: the code, the texts and the query string that keeps it."""
    return {"lang": lang, "t": TEXTS[lang], "q": "?lang=en" if lang == "en" else ""}


def fragment(name: str, *, lang: str, **context: Any) -> Markup:
    """A piece of a page (no navigation bar) with the texts of ``lang``, to be placed in a page as it is."""
    return Markup(_env.get_template(name).render(**_language(lang), **context))


def render(name: str, *, lang: str, principal: Principal, current: str = "", **context: Any) -> str:
    """Render template ``name`` with the navigation bar's caller, the texts of ``lang`` and ``context``."""
    return _env.get_template(name).render(
        **_language(lang),
        html_lang="en" if lang == "en" else "zh-CN",
        user=who(principal, lang),
        current=current,
        actions_named=ACTION_NAMES[lang],
        **context,
    )
