"""Administration: users, Open311 api_keys, the audit trail, and each caller's own area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import AUDITORS, SECURITY_ADMINS, SIGNED_IN, CurrentUser, password_policy
from api.deps import AppSettings, Connection
from api.models import User
from geo.access import signin, users
from geo.access.area import my_area
from geo.access.audit import audit_entries

router = APIRouter(tags=["admin"])


class NewUser(BaseModel):
    """A user to create."""

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role: str = Field(max_length=40)
    display_name: str | None = Field(default=None, max_length=100)
    subdistrict_code: str | None = Field(default=None, max_length=80)
    zone_codes: list[Annotated[str, Field(max_length=80)]] = Field(default_factory=list, max_length=50)
    unit_code: str | None = Field(default=None, max_length=80)


class UserChange(BaseModel):
    """Fields an administrator may change."""

    role: str | None = Field(default=None, max_length=40)
    subdistrict_code: str | None = Field(default=None, max_length=80)
    zone_codes: list[Annotated[str, Field(max_length=80)]] | None = Field(default=None, max_length=50)
    unit_code: str | None = Field(default=None, max_length=80)
    disabled: bool | None = None


class PasswordReset(BaseModel):
    """A password an administrator sets; none: a random one is made (and answered once)."""

    new_password: str | None = Field(default=None, min_length=1, max_length=256)


class NewApiKey(BaseModel):
    """An Open311 client application."""

    client_name: str = Field(min_length=1, max_length=100)


@router.get("/admin/users", response_model=list[User], summary="用户列表", dependencies=[Depends(SECURITY_ADMINS)])
def get_users(conn: Connection, settings: AppSettings) -> list[dict[str, Any]]:
    """Every user of the district."""
    return [u.to_dict() for u in users.list_users(conn, settings.district.district_code)]


@router.post(
    "/admin/users", status_code=201, response_model=User, summary="新增用户", dependencies=[Depends(SECURITY_ADMINS)]
)
def post_user(body: NewUser, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """Create a user with a role and, for scoped roles, its scope."""
    users.check_grant(user, body.role)
    created = users.create_user(
        conn,
        username=body.username,
        password=body.password,
        role=body.role,
        district_code=settings.district.district_code,
        actor=user.actor,
        display_name=body.display_name,
        subdistrict_code=body.subdistrict_code,
        zone_codes=tuple(body.zone_codes),
        unit_code=body.unit_code,
        policy=password_policy(settings),
    )
    return created.to_dict()


@router.patch(
    "/admin/users/{username}",
    response_model=User,
    summary="修改用户角色、范围或停用",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def patch_user(
    username: str, body: UserChange, conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Change a user's role or scope, or disable (revoking every token) / enable them."""
    users.check_grant(user, body.role, current=users.get_user(conn, username).role)
    changed = users.update_user(
        conn,
        username,
        actor=user.actor,
        district_code=settings.district.district_code,
        role=body.role,
        subdistrict_code=body.subdistrict_code,
        zone_codes=tuple(body.zone_codes) if body.zone_codes is not None else None,
        unit_code=body.unit_code,
        disabled=body.disabled,
    )
    return changed.to_dict()


@router.post("/admin/users/{username}/password", summary="重置用户密码", dependencies=[Depends(SECURITY_ADMINS)])
def post_password_reset(
    username: Annotated[str, Path(max_length=64)],
    body: PasswordReset,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
) -> JSONResponse:
    """Set a user's password without the old one (a random one when none is given, answered this once);
    every session of the user ends. Only an administrator resets an administrator's password."""
    users.check_grant(user, None, current=users.get_user(conn, username).role)
    password = users.reset_password(
        conn,
        username,
        body.new_password,
        actor=user.actor,
        district_code=settings.district.district_code,
        policy=password_policy(settings),
    )
    return JSONResponse(
        {"username": username, "password": password, "generated": body.new_password is None},
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/admin/users/{username}/login-failures",
    summary="解除登录延时（清零失败次数）",
    dependencies=[Depends(SECURITY_ADMINS)],
)
def delete_login_failures(
    username: Annotated[str, Path(max_length=64)], conn: Connection, settings: AppSettings, user: CurrentUser
) -> dict[str, Any]:
    """Lift a username's sign-in delay (its count of failures starts again); an audit row says who did."""
    had = signin.clear(conn, username, actor=user.actor, district_code=settings.district.district_code)
    return {"username": username, "cleared": had}


@router.get("/admin/api-keys", summary="Open311 api_key 列表", dependencies=[Depends(SECURITY_ADMINS)])
def get_api_keys(conn: Connection, settings: AppSettings) -> list[dict[str, Any]]:
    """Client keys (never their secrets)."""
    return users.list_api_keys(conn, settings.district.district_code)


@router.post(
    "/admin/api-keys", status_code=201, summary="新增 Open311 api_key", dependencies=[Depends(SECURITY_ADMINS)]
)
def post_api_key(body: NewApiKey, conn: Connection, settings: AppSettings, user: CurrentUser) -> dict[str, Any]:
    """A new key for a client application; the secret is shown this once."""
    key_id, key = users.create_api_key(
        conn, client_name=body.client_name, district_code=settings.district.district_code, actor=user.actor
    )
    return {"id": key_id, "client_name": body.client_name, "api_key": key}


@router.delete(
    "/admin/api-keys/{key_id}", status_code=204, summary="吊销 api_key", dependencies=[Depends(SECURITY_ADMINS)]
)
def delete_api_key(key_id: int, conn: Connection, settings: AppSettings, user: CurrentUser) -> Response:
    """Revoke a key; clients using it get 401 from then on."""
    users.revoke_api_key(conn, key_id, district_code=settings.district.district_code, actor=user.actor)
    return Response(status_code=204)


@router.get("/audit", summary="审计记录", dependencies=[Depends(AUDITORS)])
def get_audit(
    conn: Connection,
    settings: AppSettings,
    user: Annotated[str | None, Query(max_length=64, description="actor")] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64, description="an action, or its kind (user, case …)")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Who changed what and when: admin actions, feature edits and imports, newest first."""
    return audit_entries(
        conn,
        district_code=settings.district.district_code,
        actor=user,
        table=table,
        action=action,
        since=since,
        until=until,
        limit=limit,
    )


@router.get("/me/area", summary="我的工作范围", dependencies=[Depends(SIGNED_IN)])
def get_my_area(conn: Connection, settings: AppSettings, user: CurrentUser) -> Response:
    """The zones (and own contract sections) the caller acts in, as GeoJSON."""
    return Response(
        my_area(conn, user, district_code=settings.district.district_code), media_type="application/geo+json"
    )
