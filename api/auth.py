"""Authentication and per-route access rules.

Every route carries exactly one :class:`Guard` among its dependencies: it
both enforces the rule and declares it, so the access-matrix test can read
the rule of every route from the app itself (a route without one fails).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import AppSettings, Connection

# The caller is resolved in api.deps, before the request's connection is taken; re-exported here.
from api.deps import CurrentUser as CurrentUser
from api.deps import current_principal as current_principal
from api.models import Me
from geo.access import users
from geo.access.scope import ROLES, Principal, require
from geo.errors import InvalidInput, TooManyRequests, Unauthenticated

ALL_ROLES: tuple[str, ...] = tuple(ROLES)
STAFF_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r not in ("resident", "anonymous"))


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

    async def __call__(self, user: CurrentUser) -> Principal:
        if not self.public:
            require(user, *self.roles)
        return user

    def __repr__(self) -> str:
        return f"Guard{self.roles}"


PUBLIC = Guard(*ALL_ROLES, description="public")
SIGNED_IN = Guard(*(r for r in ALL_ROLES if r != "anonymous"), description="any signed-in user")
ADMIN = Guard("admin", description="administrators")
LAYER_EDITORS = Guard("admin", "planner", description="planners and administrators")


class LoginLimiter:
    """At most ``attempts`` failed logins per username and client in ``window`` seconds."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: tuple[str, str]) -> int:
        """Seconds to wait before the next try (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            seen = self._failures.get(key, deque())
            while seen and now - seen[0] > self.window:
                seen.popleft()
            if len(seen) < self.attempts:
                return 0
            return int(self.window - (now - seen[0])) + 1

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


router = APIRouter(tags=["auth"])


@router.post("/auth/token", summary="登录 (OAuth2 password flow)", dependencies=[Depends(PUBLIC)])
def login(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Exchange a username and password for a bearer token."""
    limiter: LoginLimiter = request.app.state.login_limiter
    key = (username, request.client.host if request.client else "?")
    wait = limiter.retry_after(key)
    if wait:
        raise TooManyRequests(
            f"too many failed sign-ins: try again in {wait} s",
            retry_after=wait,
            field="username",
            reason_zh=f"登录失败次数过多，请 {wait} 秒后再试",
        )
    if grant_type not in (None, "password"):
        raise InvalidInput("grant_type must be 'password'", field="grant_type")
    try:
        user = users.authenticate(conn, username, password)
    except Unauthenticated:
        limiter.failed(key)
        raise
    limiter.succeeded(key)
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


@router.post("/auth/password", summary="修改密码", dependencies=[Depends(SIGNED_IN)])
def change_password(
    conn: Connection,
    user: CurrentUser,
    old_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
) -> dict[str, str]:
    """Change one's own password; every session of the user is signed out."""
    users.change_password(conn, user.username, old_password, new_password)
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


LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · 社区物业化服务 GIS</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;background:#f4f6f8;margin:0}
main{max-width:360px;margin:8vh auto;background:#fff;padding:24px 28px;border-radius:8px;box-shadow:0 2px 8px #0002}
h1{font-size:20px;margin:0 0 16px}label{display:block;margin:12px 0 4px;font-size:14px}
input{width:100%;box-sizing:border-box;padding:8px;font-size:15px}button{margin-top:16px;width:100%;padding:9px;font-size:15px}
#msg{color:#b00;min-height:1.2em;font-size:14px}details{margin-top:18px;font-size:14px}
</style></head><body><main>
<h1>社区物业化服务 GIS · 登录</h1>
<form id="login"><label for="u">用户名</label><input id="u" name="username" autocomplete="username" required>
<label for="p">密码</label><input id="p" name="password" type="password" autocomplete="current-password" required>
<button type="submit">登录</button></form>
<p id="msg" role="alert"></p>
<details><summary>修改密码</summary><form id="change">
<label for="o">原密码</label><input id="o" name="old_password" type="password" required>
<label for="n">新密码（至少 8 位）</label><input id="n" name="new_password" type="password" minlength="8" required>
<button type="submit">修改密码</button></form></details>
</main>
<script>
const msg = document.getElementById("msg");
async function post(url, form, token) {
  const headers = token ? {"Authorization": "Bearer " + token} : {};
  const r = await fetch(url, {method: "POST", body: new URLSearchParams(new FormData(form)), headers});
  const body = await r.json();
  if (!r.ok) { throw new Error(body.reason_zh || body.reason || r.statusText); }
  return body;
}
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault(); msg.textContent = "";
  try {
    const body = await post("/auth/token", e.target);
    localStorage.setItem("wuye_token", body.access_token);
    const next = new URLSearchParams(location.search).get("next");
    msg.style.color = "#070"; msg.textContent = "登录成功：" + body.user.username + "（" + body.user.role_zh + "）";
    if (next && next.startsWith("/") && !next.startsWith("//")) { location.href = next; }
  } catch (err) { msg.style.color = "#b00"; msg.textContent = "登录失败：" + err.message; }
});
document.getElementById("change").addEventListener("submit", async (e) => {
  e.preventDefault(); msg.textContent = "";
  try {
    await post("/auth/password", e.target, localStorage.getItem("wuye_token"));
    localStorage.removeItem("wuye_token");
    msg.style.color = "#070"; msg.textContent = "密码已修改，请重新登录。";
  } catch (err) { msg.style.color = "#b00"; msg.textContent = "修改失败：" + err.message; }
});
</script></body></html>
"""


@router.get("/login", response_class=HTMLResponse, summary="登录页面", dependencies=[Depends(PUBLIC)])
def login_page() -> HTMLResponse:
    """The sign-in page (with password change) that the map pages send people to."""
    return HTMLResponse(LOGIN_PAGE)
