"""Authentication and per-route access rules.

Every route carries exactly one :class:`Guard` among its dependencies: it
both enforces the rule and declares it, so the access-matrix test can read
the rule of every route from the app itself (a route without one fails).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import JSONResponse

from api.deps import AppSettings, Connection

# The caller is resolved in api.deps, before the request's connection is taken; re-exported here.
from api.deps import CurrentUser as CurrentUser
from api.deps import current_principal as current_principal
from api.models import Me
from geo.access import signin, users
from geo.access.scope import DUTY_ROLES, ROLES, Principal, require
from geo.errors import InvalidInput, TooManyRequests, Unauthenticated
from geo.settings import Settings

ALL_ROLES: tuple[str, ...] = tuple(ROLES)
# staff who work with the programme's data (not the separated duties, geo.access.scope.DUTY_ROLES)
STAFF_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r not in ("resident", "anonymous", *DUTY_ROLES))


class Guard:
    """A route's access rule: which roles may call it (public = everyone, anonymous too)."""

    def __init__(self, *roles: str, description: str = "", scoped: str | None = None) -> None:
        unknown = set(roles) - set(ALL_ROLES)
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        self.roles = roles
        self.description = description
        # The path parameter naming data inside or outside a caller's scope (a case code, say):
        # the access matrix then also expects 404 for an object outside a scoped caller's scope.
        self.scoped = scoped

    @property
    def public(self) -> bool:
        return "anonymous" in self.roles

    async def __call__(self, request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
        # The caller is resolved here, not through a CurrentUser dependency: FastAPI solves each
        # dependency of every request, and this one is on every route (see current_principal).
        user = await current_principal(request, authorization)
        if not self.public:
            require(user, *self.roles)
        return user

    def __repr__(self) -> str:
        return f"Guard{self.roles}"


PUBLIC = Guard(*ALL_ROLES, description="public")
SIGNED_IN = Guard(*(r for r in ALL_ROLES if r != "anonymous"), description="any signed-in user")
ADMIN = Guard("admin", description="administrators")
LAYER_EDITORS = Guard("admin", "planner", description="planners and administrators")
SECURITY_ADMINS = Guard("admin", "security_admin", description="administrators and security administrators")
AUDITORS = Guard("admin", "audit_admin", description="administrators and audit administrators")
# who looks after facilities in their area (the workbench's facility faults page)
FAULT_ROLES = ("admin", "subdistrict_staff", "property_team", "contractor")
# who opens the programme's pages (remediation board, phases, publicity; issue 21 points 1-3): staff
# who work in zones, and planners reading them; each sees the zones of its scope (zone_scope)
PROGRAMME_PAGE_ROLES = ("admin", "planner", "subdistrict_staff", "property_team")
ADMIN_PAGES = Guard(
    "admin", "security_admin", "audit_admin", description="administrators, security and audit administrators"
)


def _networks(setting: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in setting.split(",") if p.strip())


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: Request, trusted_proxies: str) -> str:
    """The client's address: the connection's peer, unless that peer is a trusted proxy
    (WUYE_TRUSTED_PROXIES), then the last address in X-Forwarded-For that is not a trusted proxy.
    From anyone else X-Forwarded-For is ignored, so it cannot be used to pose as many clients."""
    peer = request.client.host if request.client else "?"
    networks = _networks(trusted_proxies)
    if not networks or not _in(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop[:64]
    return peer


def password_policy(settings: Settings) -> users.PasswordPolicy:
    """The password rules of these settings (WUYE_PASSWORD_CLASSES, WUYE_PASSWORD_MAX_DAYS)."""
    return users.PasswordPolicy(classes=settings.auth.password_classes, max_days=settings.auth.password_max_days)


def login_limits(settings: Settings) -> signin.Limits:
    """The sign-in limits of these settings."""
    auth = settings.auth
    return signin.Limits(
        user_attempts=auth.login_attempts,
        address_attempts=auth.login_address_attempts,
        delay_s=auth.login_delay_seconds,
        max_delay_s=auth.login_max_delay_seconds,
        window_s=auth.login_window_seconds,
    )


router = APIRouter(tags=["auth"])


def refuse_switched_off_demo(conn: Any, settings: Any, user: users.User) -> None:
    """401 for a demo account (``wuye demo --users``) while ``WUYE_DEMO_USERS=false``."""
    if not settings.auth.demo_users and users.is_demo(conn, user.id):
        raise Unauthenticated(
            f"'{user.username}' is a demo account and demo accounts are switched off (WUYE_DEMO_USERS=false)",
            field="username",
            reason_zh="演示账号已停用",
        )


def sign_in(conn: psycopg.Connection, request: Request, settings: Settings, username: str, password: str) -> users.User:
    """The user of this username and password, under the sign-in limits (429 during a delay, no
    password checked), the password's age and the demo switch; shared by /auth/token and the
    pages' sign-in form."""
    limits = login_limits(settings)
    address = _reserved(conn, request, settings, username)  # no password is checked during a delay
    try:
        user = users.authenticate(conn, username, password, max_days=settings.auth.password_max_days)
    except users.PasswordExpired:  # the right password, too old: not a failure
        signin.succeeded(conn, username, address, limits)
        raise
    refuse_switched_off_demo(conn, settings, user)
    signin.succeeded(conn, username, address, limits)  # (a wrong password stays counted)
    return user


def change_own_password(
    conn: psycopg.Connection, request: Request, settings: Settings, username: str, old: str, new: str
) -> None:
    """Change a password knowing the old one: the old one checked under the sign-in limits, the new
    one held to the password policy; shared by /auth/password and the pages' form."""
    address = _reserved(conn, request, settings, username)
    users.change_password(conn, username, old, new, policy=password_policy(settings))
    signin.succeeded(conn, username, address, login_limits(settings))


@router.post("/auth/token", summary="登录 (OAuth2 password flow)", dependencies=[Depends(PUBLIC)])
def login(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str | None, Form(max_length=40)] = None,
) -> JSONResponse:
    """Exchange a username and password for a bearer token."""
    if grant_type not in (None, "password"):
        raise InvalidInput("grant_type must be 'password'", field="grant_type")
    user = sign_in(conn, request, settings, username, password)
    ttl = timedelta(minutes=settings.auth.token_minutes)
    with conn.transaction():
        token, expires = users.issue_token(conn, user, ttl=ttl)
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(ttl.total_seconds()),
            "expires_at": expires.isoformat(),
            "user": user.to_dict(),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/auth/logout", summary="退出登录", dependencies=[Depends(SIGNED_IN)])
def logout(conn: Connection, authorization: Annotated[str, Header()]) -> dict[str, str]:
    """Revoke the token of this request."""
    with conn.transaction():
        users.revoke_token(conn, authorization.partition(" ")[2].strip())
    return {"status": "signed out"}


def _reserved(conn: psycopg.Connection, request: Request, settings: Settings, username: str) -> str:
    """Count a password check against the sign-in limits (429 during a delay); the client address."""
    address = client_address(request, settings.auth.trusted_proxies)
    wait = signin.reserve(conn, username, address, login_limits(settings))
    if wait:
        raise TooManyRequests(
            f"too many failed sign-ins: try again in {wait} s",
            retry_after=wait,
            field="username",
            reason_zh=f"登录失败次数过多，请 {wait} 秒后再试",
        )
    return address


@router.post("/auth/password", summary="修改密码", dependencies=[Depends(PUBLIC)])
def change_password(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    old_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    username: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, str]:
    """Change one's own password (signed in, or with ``username`` when the old password has expired);
    every session of the user is signed out. The new one follows the password policy; the old one is
    checked under the sign-in limits."""
    if user.is_anonymous and not username:
        raise Unauthenticated("sign in first, or give the username", field="username")
    name = user.username if not user.is_anonymous else str(username)
    change_own_password(conn, request, settings, name, old_password, new_password)
    return {"status": "password changed; sign in again"}


@router.get("/auth/me", response_model=Me, summary="当前用户", dependencies=[Depends(PUBLIC)])
def me(user: CurrentUser) -> dict[str, Any]:
    """Who the caller is and what scope they act in."""
    return {
        "username": user.username,
        "role": user.role,
        "role_zh": ROLES[user.role],
        "subdistrict_code": user.subdistrict_code,
        "zone_codes": list(user.zone_codes),
        "unit_code": user.unit_code,
    }


# The sign-in page (GET/POST /login, with a session cookie for the pages) lives in api/workbench.py.
