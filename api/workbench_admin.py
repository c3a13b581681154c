"""The administration pages (issue 20 point 7): users (add, role and scope, disable/enable, reset
password), api_keys (issue, shown once, revoke), the units with their details, the audit log with
filters and the webhook delivery log. Thin routes over the same geo/ functions as ``/admin/*``,
``/audit`` and ``/units``, under the same guards (api/auth.py): users and keys for administrators
and security administrators, the logs for administrators and audit administrators. A refused form
comes back with the reason in Chinese (the error body's ``reason_zh``) and what was typed kept
(passwords aside)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import ADMIN_PAGES, AUDITORS, SECURITY_ADMINS, CurrentUser, password_policy
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, form_day, refused
from api.workbench import Lang, page
from geo.access import users
from geo.access.audit import audit_entries
from geo.access.scope import Principal
from geo.cases import notices
from geo.errors import InvalidInput, NotFound, WuyeError
from geo.programme import responsibility
from geo.settings import Settings
from geo.spatial import reference
from geo.steps import run
from geo.workcal import calendar
from layers.catalogue import vocabulary
from maps import web, web_admin

router = APIRouter(tags=["workbench 工作台"])
AUDIT_PAGE = 100
FormText = Annotated[str | None, Form(max_length=200)]
FormLang = Annotated[str | None, Form(max_length=5)]


def _admin_page(request: Request, name: str, *, user: Principal, lang: str, **context: Any) -> HTMLResponse:
    """An administration page: the workbench's frame, the admin texts as ``a``, the sections the
    caller may open (their guards' roles)."""
    return page(
        request,
        name,
        principal=user,
        lang=lang,
        current="admin",
        a=web_admin.TEXTS[lang],
        may_users=user.role in SECURITY_ADMINS.roles,
        may_logs=user.role in AUDITORS.roles,
        **context,
    )


def _back(path: str, lang: str, **params: str) -> RedirectResponse:
    query = urlencode({**params, **({"lang": "en"} if lang == "en" else {})})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


# -- the front ----------------------------------------------------------------------------------------------
@router.get("/workbench/admin", summary="系统管理", dependencies=[Depends(ADMIN_PAGES)], response_class=HTMLResponse)
def admin_home(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The sections of administration the caller may open, with their counts."""
    district = settings.district.district_code
    counts: dict[str, int] = {"units": len(reference.units(conn, district))}
    if user.role in SECURITY_ADMINS.roles:
        counts["users"] = len(users.list_users(conn, district))
        counts["keys"] = sum(not k["revoked"] for k in users.list_api_keys(conn, district))
    if user.role in AUDITORS.roles:
        failed = run(conn, notices.delivery_log(district_code=district, state="failed", limit=1000))
        counts["failed"] = len(failed)
    return _admin_page(request, "admin.html", user=user, lang=web.lang_of(lang), counts=counts)


# -- users --------------------------------------------------------------------------------------------------
def _zones(text: str | None) -> tuple[str, ...]:
    return tuple(z for z in re.split(r"[\s,，、;；]+", text or "") if z)


def _roles(lang: str) -> dict[str, str]:
    return {k: v for k, v in vocabulary("roles").labels(lang).items() if k != "anonymous"}


def _scope(u: users.User, lang: str) -> str:
    parts = [u.subdistrict_code or "", *u.zone_codes, u.unit_code or ""]
    return "、".join(p for p in parts if p) or web.TEXTS[lang]["scope_all"]


def _users_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    district = settings.district.district_code
    listed = users.list_users(conn, district)
    return _admin_page(
        request,
        "admin_users.html",
        user=user,
        lang=lang,
        form=form,
        rows=[{**u.to_dict(), "scope": _scope(u, lang)} for u in listed],
        **_choices(conn, district, lang),
    )


def _choices(conn: psycopg.Connection, district: str, lang: str) -> dict[str, Any]:
    """What the role-and-scope fields offer: roles, sub-districts, units."""
    return {
        "roles": _roles(lang),
        "subdistricts": reference.subdistricts(conn, district),
        "units": reference.units(conn, district),
    }


@router.get(
    "/workbench/admin/users", summary="用户管理", dependencies=[Depends(SECURITY_ADMINS)], response_class=HTMLResponse
)
def users_page(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """Every user of the district (role, scope, enabled or not) and the form to add one."""
    language = web.lang_of(lang)
    done = request.query_params.get("added")
    message = f"{web_admin.TEXTS[language]['user_added']}：{done}" if done else ""
    return _users_page(request, conn, settings, user, language, form=FormState(message=message))


@router.post("/workbench/admin/users", summary="新增用户（页面表单）", dependencies=[Depends(SECURITY_ADMINS)])
def add_user_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[str, Form(max_length=40)],
    display_name: Annotated[str | None, Form(max_length=100)] = None,
    subdistrict_code: Annotated[str | None, Form(max_length=80)] = None,
    zone_codes: Annotated[str | None, Form(max_length=2000)] = None,
    unit_code: Annotated[str | None, Form(max_length=80)] = None,
    lang: FormLang = None,
) -> Response:
    """Add a user (as ``POST /admin/users``); refused, the page again with the reason in Chinese and
    what was typed kept (the password aside)."""
    language = web.lang_of(lang)
    try:
        users.check_grant(user, role)
        users.create_user(
            conn,
            username=username,
            password=password,
            role=role,
            district_code=settings.district.district_code,
            actor=user.actor,
            display_name=display_name or None,
            subdistrict_code=subdistrict_code or None,
            zone_codes=_zones(zone_codes),
            unit_code=unit_code or None,
            policy=password_policy(settings),
        )
    except WuyeError as error:
        kept = {
            "username": username,
            "display_name": display_name,
            "role": role,
            "subdistrict_code": subdistrict_code,
            "zone_codes": zone_codes,
            "unit_code": unit_code,
            "field": error.field,
        }
        return refused(error, partial(_users_page, request, conn, settings, user, language), kept)
    return _back("/workbench/admin/users", language, added=username)


def _user_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    username: str,
    lang: str,
    *,
    form: FormState = BLANK,
    password: str | None = None,
) -> HTMLResponse:
    shown = users.get_user(conn, username)
    return _admin_page(
        request,
        "admin_user.html",
        user=user,
        lang=lang,
        form=form,
        shown={**shown.to_dict(), "scope": _scope(shown, lang), "zones_text": ", ".join(shown.zone_codes)},
        password=password,
        **_choices(conn, settings.district.district_code, lang),
    )


@router.get(
    "/workbench/admin/users/{username}",
    summary="用户详情",
    dependencies=[Depends(SECURITY_ADMINS)],
    response_class=HTMLResponse,
)
def user_page(
    username: str, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """One user: role and scope to change, disable/enable, reset the password."""
    language = web.lang_of(lang)
    done = request.query_params.get("done")
    message = web_admin.TEXTS[language].get(f"user_{done}", "") if done else ""
    return _user_page(request, conn, settings, user, username, language, form=FormState(message=message))


def _user_change(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    username: str,
    lang: str,
    kept: dict[str, Any],
    *,
    done: str,
    role: str | None = None,
    disabled: bool | None = None,
) -> Response:
    """Change a user as ``PATCH /admin/users/{username}`` does; refused, the user's page again."""
    try:
        users.check_grant(user, role, current=users.get_user(conn, username).role)
        users.update_user(
            conn,
            username,
            actor=user.actor,
            district_code=settings.district.district_code,
            role=role or None,
            subdistrict_code=kept.get("subdistrict_code") or None,
            zone_codes=_zones(kept.get("zone_codes")) or None,
            unit_code=kept.get("unit_code") or None,
            disabled=disabled,
        )
    except WuyeError as error:
        again = partial(_user_page, request, conn, settings, user, username, lang)
        return refused(error, again, kept, not_found=("username",))
    return _back(f"/workbench/admin/users/{username}", lang, done=done)


@router.post(
    "/workbench/admin/users/{username}",
    summary="修改用户角色与范围（页面表单）",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def change_user_form(
    username: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    role: Annotated[str, Form(max_length=40)],
    subdistrict_code: Annotated[str | None, Form(max_length=80)] = None,
    zone_codes: Annotated[str | None, Form(max_length=2000)] = None,
    unit_code: Annotated[str | None, Form(max_length=80)] = None,
    lang: FormLang = None,
) -> Response:
    """A user's role and scope (a field left empty keeps its value)."""
    kept = {"role": role, "subdistrict_code": subdistrict_code, "zone_codes": zone_codes, "unit_code": unit_code}
    language = web.lang_of(lang)
    return _user_change(request, conn, settings, user, username, language, kept, done="saved", role=role)


@router.post(
    "/workbench/admin/users/{username}/disabled",
    summary="停用或启用用户（页面表单）",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def disable_user_form(
    username: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    disabled: Annotated[str, Form(max_length=5, pattern="^(true|false)$")],
    lang: FormLang = None,
) -> Response:
    """Disable (every session of the user ends) or enable an account."""
    off = disabled == "true"
    language = web.lang_of(lang)
    done = "disabled" if off else "enabled"
    return _user_change(request, conn, settings, user, username, language, {}, done=done, disabled=off)


@router.post(
    "/workbench/admin/users/{username}/password",
    summary="重置用户密码（页面表单）",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def reset_password_form(
    username: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    new_password: Annotated[str | None, Form(max_length=256)] = None,
    lang: FormLang = None,
) -> HTMLResponse:
    """Set the password (as ``POST /admin/users/{username}/password``); the page shows it this once."""
    language = web.lang_of(lang)
    try:
        users.check_grant(user, None, current=users.get_user(conn, username).role)
        password = users.reset_password(
            conn,
            username,
            new_password or None,
            actor=user.actor,
            district_code=settings.district.district_code,
            policy=password_policy(settings),
        )
    except WuyeError as error:
        again = partial(_user_page, request, conn, settings, user, username, language)
        return refused(error, again, not_found=("username",))
    return _user_page(request, conn, settings, user, username, language, password=password)


# -- api_keys -----------------------------------------------------------------------------------------------
def _keys_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
    issued: dict[str, Any] | None = None,
) -> HTMLResponse:
    keys = users.list_api_keys(conn, settings.district.district_code)
    return _admin_page(
        request,
        "admin_keys.html",
        user=user,
        lang=lang,
        form=form,
        issued=issued,
        keys=[{**k, "created_at": web.local_time(k["created_at"])} for k in reversed(keys)],
    )


@router.get(
    "/workbench/admin/api-keys",
    summary="Open311 api_key 管理",
    dependencies=[Depends(SECURITY_ADMINS)],
    response_class=HTMLResponse,
)
def keys_page(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The district's client keys (never their secrets), a form to issue one, a button to revoke."""
    language = web.lang_of(lang)
    revoked = request.query_params.get("revoked")
    message = f"{web_admin.TEXTS[language]['key_revoked']} {revoked}" if revoked else ""
    return _keys_page(request, conn, settings, user, language, form=FormState(message=message))


@router.post("/workbench/admin/api-keys", summary="签发 api_key（页面表单）", dependencies=[Depends(SECURITY_ADMINS)])
def issue_key_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    client_name: Annotated[str, Form(max_length=100)],
    lang: FormLang = None,
) -> HTMLResponse:
    """Issue a key (as ``POST /admin/api-keys``): this answer is the only time its secret is shown."""
    language = web.lang_of(lang)
    try:
        key_id, key = users.create_api_key(
            conn, client_name=client_name, district_code=settings.district.district_code, actor=user.actor
        )
    except WuyeError as error:
        kept = {"client_name": client_name}
        return refused(error, partial(_keys_page, request, conn, settings, user, language), kept)
    issued = {"id": key_id, "client_name": client_name.strip(), "api_key": key}
    return _keys_page(request, conn, settings, user, language, issued=issued)


@router.post(
    "/workbench/admin/api-keys/{key_id}/revoke",
    summary="吊销 api_key（页面表单）",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def revoke_key_form(
    key_id: int, conn: Connection, settings: AppSettings, user: CurrentUser, lang: FormLang = None
) -> Response:
    """Revoke a key (as ``DELETE /admin/api-keys/{key_id}``): clients using it get 401 from then on."""
    users.revoke_api_key(conn, key_id, district_code=settings.district.district_code, actor=user.actor)
    return _back("/workbench/admin/api-keys", web.lang_of(lang), revoked=str(key_id))


# -- units --------------------------------------------------------------------------------------------------
@router.get(
    "/workbench/admin/units", summary="责任单位", dependencies=[Depends(ADMIN_PAGES)], response_class=HTMLResponse
)
def units_page(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The district's units with their kind and duty (``GET /units``), whether each has a webhook."""
    listed = run(conn, responsibility.units(district_code=settings.district.district_code))
    hooks = settings.webhook.urls
    return _admin_page(
        request,
        "admin_units.html",
        user=user,
        lang=web.lang_of(lang),
        units=[{**u, "webhook": u["code"] in hooks} for u in listed],
    )


@router.get(
    "/workbench/admin/units/{code}",
    summary="责任单位详情",
    dependencies=[Depends(ADMIN_PAGES)],
    response_class=HTMLResponse,
)
def unit_page(
    code: str, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """One unit: kind, duty, webhook; its users (to those who manage users) and its latest
    deliveries (to those who read the logs)."""
    district = settings.district.district_code
    language = web.lang_of(lang)
    unit = next((u for u in run(conn, responsibility.units(district_code=district)) if u["code"] == code), None)
    if unit is None:
        raise NotFound(f"unit '{code}' does not exist", field="code", reason_zh=f"责任单位“{code}”不存在")
    members = None
    if user.role in SECURITY_ADMINS.roles:
        members = [u.to_dict() for u in users.list_users(conn, district) if u.unit_code == code]
    deliveries = None
    if user.role in AUDITORS.roles:
        deliveries = _deliveries(run(conn, notices.delivery_log(district_code=district, unit_code=code, limit=20)))
    return _admin_page(
        request,
        "admin_unit.html",
        user=user,
        lang=language,
        unit={**unit, "webhook": code in settings.webhook.urls},
        members=members,
        deliveries=deliveries,
        roles=_roles(language),
        delivery_states=web_admin.DELIVERY_STATES[language],
        notice_kinds=web_admin.NOTICE_KINDS[language],
    )


# -- the logs -----------------------------------------------------------------------------------------------
def _moment(value: str | None, field: str) -> datetime | None:
    """A point in time from a query (ISO 8601, as the page's own "older" link carries)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be a time (ISO 8601)", field=field, reason_zh=f"“{field}”须为时间（ISO 8601）"
        ) from None


@router.get(
    "/workbench/admin/audit", summary="审计记录（页面）", dependencies=[Depends(AUDITORS)], response_class=HTMLResponse
)
def audit_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    actor: Annotated[str | None, Query(max_length=64, description="操作人")] = None,
    action: Annotated[str | None, Query(max_length=64, description="操作（或其类别，如 user、case）")] = None,
    table: Annotated[str | None, Query(max_length=64, description="数据表")] = None,
    since: Annotated[str | None, Query(max_length=10, description="起（年-月-日）")] = None,
    until: Annotated[str | None, Query(max_length=10, description="止（年-月-日，含当日）")] = None,
    before: Annotated[str | None, Query(max_length=40, description="翻页：早于此时间")] = None,
    lang: Lang = None,
) -> HTMLResponse:
    """Who did what and when (``GET /audit``), filtered by who, what, table and a date range (the
    last day included), newest first, 100 a page."""
    zone = calendar().zone  # the days are the programme's local days
    first, last = form_day(since, "since"), form_day(until, "until")
    start = datetime.combine(first, time(), tzinfo=zone) if first else None
    end = datetime.combine(last, time(), tzinfo=zone) + timedelta(days=1) if last else None
    older = _moment(before, "before")
    if older is not None and (end is None or older < end):
        end = older
    rows = audit_entries(
        conn,
        district_code=settings.district.district_code,
        actor=actor or None,
        action=action or None,
        table=table or None,
        since=start,
        until=end,
        limit=AUDIT_PAGE,
    )
    params = {"actor": actor, "action": action, "table": table, "since": since, "until": until, "lang": lang}
    more = None
    if len(rows) == AUDIT_PAGE:
        more = "/workbench/admin/audit?" + urlencode(
            {k: v for k, v in {**params, "before": rows[-1]["at"]}.items() if v}
        )
    return _admin_page(
        request,
        "admin_audit.html",
        user=user,
        lang=web.lang_of(lang),
        f={k: v or "" for k, v in params.items()},
        rows=[{**r, "at": web.local_time(r["at"])} for r in rows],
        more=more,
        actions_known=sorted({"user", "api_key", "case", "feature", "import", *(r["action"] for r in rows)}),
    )


def _deliveries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **r,
            "at": web.local_time(r["at"]),
            "next_at": web.local_time(r["next_at"]),
            "done_at": web.local_time(r["done_at"]),
        }
        for r in rows
    ]


@router.get(
    "/workbench/admin/webhooks",
    summary="推送记录（页面）",
    dependencies=[Depends(AUDITORS)],
    response_class=HTMLResponse,
)
def webhooks_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    state: Annotated[str | None, Query(max_length=20, description="pending、delivered、failed 或 none")] = None,
    unit: Annotated[str | None, Query(max_length=80, description="责任单位编号")] = None,
    lang: Lang = None,
) -> HTMLResponse:
    """The webhook delivery log of case notices, newest first, by state and unit."""
    if state and state not in notices.DELIVERY_STATES:
        raise InvalidInput(
            f"state must be one of {', '.join(notices.DELIVERY_STATES)}",
            field="state",
            reason_zh="“state”须为 pending、delivered、failed 或 none",
        )
    district = settings.district.district_code
    language = web.lang_of(lang)
    rows = run(conn, notices.delivery_log(district_code=district, state=state or None, unit_code=unit or None))
    return _admin_page(
        request,
        "admin_webhooks.html",
        user=user,
        lang=language,
        f={"state": state or "", "unit": unit or ""},
        rows=_deliveries(rows),
        units=reference.units(conn, district),
        delivery_states=web_admin.DELIVERY_STATES[language],
        notice_kinds=web_admin.NOTICE_KINDS[language],
    )
