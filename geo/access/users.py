"""Users, passwords (argon2), bearer tokens, Open311 api_keys and the audit log.

Tokens and keys are random secrets handed out once and stored as sha256
hashes, so a leaked database does not leak credentials, and revocation (or
disabling a user) takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import sql
from psycopg.types.json import Jsonb

from geo.access.scope import ROLES, Principal
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from geo.steps import Statement, Steps, one

_HASHER = PasswordHasher()
MIN_PASSWORD = 8
SCOPED_ROLES = {
    "subdistrict_staff": "subdistrict_code",
    "property_team": "zone_codes",
    "survey_team": "zone_codes",
    "contractor": "unit_code",
}


@cache
def dummy_hash() -> str:
    """A hash to verify against when the user does not exist: the same time either way, so
    response times do not reveal which usernames are taken. Made on first use (an argon2
    hash costs ~0.2 s, which every process importing this module paid); the app makes it
    at start-up."""
    return _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    """A user as administrators see it (never the password hash)."""

    id: int
    username: str
    role: str
    display_name: str | None
    subdistrict_code: str | None
    zone_codes: tuple[str, ...]
    unit_code: str | None
    disabled: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "username": self.username,
            "role": self.role,
            "role_zh": ROLES.get(self.role, self.role),
            "display_name": self.display_name,
            "subdistrict_code": self.subdistrict_code,
            "zone_codes": list(self.zone_codes),
            "unit_code": self.unit_code,
            "disabled": self.disabled,
        }


_USER_COLUMNS = sql.SQL(
    "id, username, role, display_name, subdistrict_code, zone_codes, unit_code, disabled_at IS NOT NULL"
)


def _user(row: tuple[Any, ...]) -> User:
    return User(
        id=row[0],
        username=row[1],
        role=row[2],
        display_name=row[3],
        subdistrict_code=row[4],
        zone_codes=tuple(row[5] or ()),
        unit_code=row[6],
        disabled=bool(row[7]),
    )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def audit(
    conn: psycopg.Connection,
    *,
    district_code: str,
    actor: str,
    action: str,
    table: str,
    code: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one row to the audit log (in the caller's transaction)."""
    conn.execute(
        "INSERT INTO audit_log (district_code, actor, action, table_name, record_code, details) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [district_code, actor, action, table, code, Jsonb(details) if details is not None else None],
    )


@dataclass(frozen=True)
class PasswordPolicy:
    """A deployment's password rules (等保 2.0): at least ``min_length`` characters from at least
    ``classes`` of the four classes (lower case, upper case, digits, others), not containing the
    username; ``max_days``: a password older than this must be changed before signing in again."""

    min_length: int = MIN_PASSWORD
    classes: int = 3
    max_days: int | None = None


class PasswordExpired(Forbidden):
    """The password is right but older than the policy allows: change it first."""


def _classes(password: str) -> int:
    return sum(
        (
            any(c.islower() and c.isascii() for c in password),
            any(c.isupper() and c.isascii() for c in password),
            any(c.isdigit() and c.isascii() for c in password),
            any(not (c.isascii() and c.isalnum()) for c in password),
        )
    )


def check_password(password: str, *, username: str, policy: PasswordPolicy | None) -> None:
    """Refuse a password that breaks ``policy`` (400 naming ``password``); without a policy (users made
    by tests and the demo loader) only its length is checked. The API and the CLI pass the deployment's."""
    if len(password) < (policy.min_length if policy else MIN_PASSWORD):
        n = policy.min_length if policy else MIN_PASSWORD
        raise InvalidInput(
            f"password must have at least {n} characters", field="password", reason_zh=f"密码至少 {n} 位"
        )
    if policy is None:
        return
    if _classes(password) < policy.classes:
        raise InvalidInput(
            f"password must mix at least {policy.classes} of: lower case, upper case, digits, other characters",
            field="password",
            reason_zh=f"密码须包含大写字母、小写字母、数字、其他字符中的至少 {policy.classes} 类",
        )
    if len(username) >= 2 and username.casefold() in password.casefold():
        raise InvalidInput("password must not contain the username", field="password", reason_zh="密码不能包含用户名")


_SCOPE_ZH = {"subdistrict_code": "街道", "zone_codes": "小区", "unit_code": "责任单位"}


def _check_scope(
    conn: psycopg.Connection, role: str, subdistrict: str | None, zones: tuple[str, ...], unit: str | None
) -> None:
    if role not in ROLES or role == "anonymous":
        raise InvalidInput(
            f"role '{role}' is not one of {', '.join(r for r in ROLES if r != 'anonymous')}",
            field="role",
            reason_zh=f"角色“{role}”不存在",
        )
    need = SCOPED_ROLES.get(role)
    given = {"subdistrict_code": subdistrict, "zone_codes": zones, "unit_code": unit}
    if need and not given[need]:
        raise InvalidInput(
            f"role '{role}' needs a scope: {need}", field=need, reason_zh=f"角色“{ROLES[role]}”须指定{_SCOPE_ZH[need]}"
        )
    # "" is checked like any code (schemathesis found unit_code "" answering 500 from the foreign key)
    exists = "SELECT 1 FROM subdistricts WHERE code = %s"
    if subdistrict is not None and not conn.execute(exists, [subdistrict]).fetchone():
        raise InvalidInput(
            f"sub-district '{subdistrict}' does not exist",
            field="subdistrict_code",
            reason_zh=f"街道“{subdistrict}”不存在",
        )
    if zones:
        known = {r[0] for r in conn.execute("SELECT code FROM zones WHERE code = ANY(%s)", [list(zones)])}
        missing = sorted(set(zones) - known)
        if missing:
            raise InvalidInput(
                f"zones {missing} do not exist", field="zone_codes", reason_zh=f"小区 {'、'.join(missing)} 不存在"
            )
    if unit is not None and not conn.execute("SELECT 1 FROM units WHERE code = %s", [unit]).fetchone():
        raise InvalidInput(f"unit '{unit}' does not exist", field="unit_code", reason_zh=f"责任单位“{unit}”不存在")


def check_grant(actor: Principal, role: str | None, *, current: str | None = None) -> None:
    """Separated duties: a security administrator manages users and roles, but neither makes nor
    changes a system administrator (that stays with the administrators), so it cannot raise itself."""
    if actor.role != "admin" and "admin" in (role, current):
        raise Forbidden(
            "only an administrator grants or changes the administrator role",
            field="role",
            reason_zh="只有系统管理员可以授予或修改系统管理员角色",
        )


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    password: str,
    role: str,
    district_code: str,
    actor: str,
    display_name: str | None = None,
    subdistrict_code: str | None = None,
    zone_codes: tuple[str, ...] = (),
    unit_code: str | None = None,
    policy: PasswordPolicy | None = None,
) -> User:
    """Add a user; refuses a taken username, a password ``policy`` refuses or a role without its scope."""
    check_password(password, username=username, policy=policy)
    _check_scope(conn, role, subdistrict_code, zone_codes, unit_code)
    with conn.transaction():
        try:
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO users (district_code, username, display_name, password_hash, role, "
                    "subdistrict_code, zone_codes, unit_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "RETURNING {cols}"
                ).format(cols=_USER_COLUMNS),
                [
                    district_code,
                    username,
                    display_name,
                    _HASHER.hash(password),
                    role,
                    subdistrict_code,
                    list(zone_codes),
                    unit_code,
                ],
            ).fetchone()
        except psycopg.errors.UniqueViolation as e:
            raise Conflict(
                f"user '{username}' already exists", field="username", reason_zh=f"用户名“{username}”已存在"
            ) from e
        except psycopg.errors.CheckViolation as e:
            raise InvalidInput(
                "username must be 2-64 of A-Z a-z 0-9 _ . @ -",
                field="username",
                reason_zh="用户名须为 2–64 位字母、数字或 _ . @ -",
            ) from e
        assert row is not None
        audit(
            conn,
            district_code=district_code,
            actor=actor,
            action="user.add",
            table="users",
            code=username,
            details={"role": role},
        )
    return _user(row)


def list_users(conn: psycopg.Connection, district_code: str) -> list[User]:
    """Every user of the district, by username."""
    rows = conn.execute(
        sql.SQL("SELECT {} FROM users WHERE district_code = %s ORDER BY username").format(_USER_COLUMNS),
        [district_code],
    ).fetchall()
    return [_user(r) for r in rows]


def get_user(conn: psycopg.Connection, username: str) -> User:
    """One user, or NotFound."""
    row = conn.execute(sql.SQL("SELECT {} FROM users WHERE username = %s").format(_USER_COLUMNS), [username]).fetchone()
    if row is None:
        raise NotFound(f"user '{username}' does not exist", field="username", reason_zh=f"用户“{username}”不存在")
    return _user(row)


def update_user(
    conn: psycopg.Connection,
    username: str,
    *,
    actor: str,
    district_code: str,
    role: str | None = None,
    subdistrict_code: str | None = None,
    zone_codes: tuple[str, ...] | None = None,
    unit_code: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change role/scope or disable/enable; disabling revokes every token of the user."""
    current = get_user(conn, username)
    new_role = role or current.role
    sub = subdistrict_code if subdistrict_code is not None else current.subdistrict_code
    zones = zone_codes if zone_codes is not None else current.zone_codes
    unit = unit_code if unit_code is not None else current.unit_code
    _check_scope(conn, new_role, sub, zones, unit)
    with conn.transaction():
        if current.role == "admin" and not current.disabled and (disabled or new_role != "admin"):
            _keep_an_administrator(conn, current, actor=actor, district_code=district_code)
        conn.execute(
            "UPDATE users SET role = %s, subdistrict_code = %s, zone_codes = %s, unit_code = %s, "
            "disabled_at = CASE WHEN %s::bool IS NULL THEN disabled_at WHEN %s THEN coalesce(disabled_at, now()) "
            "ELSE NULL END, updated_at = now() WHERE id = %s",
            [new_role, sub, list(zones), unit, disabled, disabled, current.id],
        )
        if disabled or new_role != current.role:
            _revoke_all(conn, current.id)
        audit(
            conn,
            district_code=district_code,
            actor=actor,
            action="user.update",
            table="users",
            code=username,
            details={"role": new_role, "disabled": disabled},
        )
    return get_user(conn, username)


def _keep_an_administrator(conn: psycopg.Connection, admin: User, *, actor: str, district_code: str) -> None:
    """Refuse (409) an administrator disabling or demoting themselves, and anyone disabling or
    demoting the district's last active administrator: nobody could manage users after that.
    The active administrators' rows are locked, so two admins removing each other at once are
    taken one after the other and the second is refused."""
    if actor == admin.username:
        raise Conflict(
            f"user '{admin.username}': administrators cannot disable or demote themselves; ask another administrator",
            field="username",
            reason_zh="不能停用或降级自己的管理员账号，请由另一位管理员操作",
        )
    # Every active admin row, the target's too, in one order: two requests lock the same rows in
    # the same order, so they queue instead of deadlocking on each other's target.
    active = conn.execute(
        "SELECT id FROM users WHERE district_code = %s AND role = 'admin' AND disabled_at IS NULL "
        "ORDER BY id FOR UPDATE",
        [district_code],
    ).fetchall()
    if not [row for row in active if row[0] != admin.id]:
        raise Conflict(
            f"user '{admin.username}' is the last active administrator: add another before disabling or demoting it",
            field="username",
            reason_zh="这是最后一位启用的管理员，不能停用或降级；请先添加另一位管理员",
        )


def _revoke_all(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", [user_id])


def authenticate(conn: psycopg.Connection, username: str, password: str, *, max_days: int | None = None) -> User:
    """The user whose password this is, or Unauthenticated (same message either way); PasswordExpired
    when it is right but older than ``max_days``."""
    row = conn.execute(
        sql.SQL(
            "SELECT {}, coalesce(password_changed_at < now() - make_interval(days => %s), false), password_hash "
            "FROM users WHERE username = %s"
        ).format(_USER_COLUMNS),
        [max_days, username],
    ).fetchone()
    try:
        _HASHER.verify(row[-1] if row else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None or row[7]:
        raise Unauthenticated(
            "wrong username or password, or the account is disabled", reason_zh="用户名或密码错误，或账号已停用"
        )
    if row[-2]:
        raise PasswordExpired(
            f"the password is older than {max_days} days: change it (POST /auth/password) before signing in",
            field="password",
            reason_zh=f"密码已超过 {max_days} 天未修改，请先修改密码",
        )
    return _user(row[:-2])


def issue_token(conn: psycopg.Connection, user: User, *, ttl: timedelta) -> tuple[str, datetime]:
    """A new bearer token for ``user`` and its expiry."""
    token = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES (%s, %s, now() + %s) RETURNING expires_at",
        [_digest(token), user.id, ttl],
    ).fetchone()
    assert row is not None
    return token, row[0]


# One statement: the token's user and state, and (at most once a minute, so that a busy session does not
# write on every request) the time it was last used, which WUYE_IDLE_MINUTES measures idleness from.
_TOKEN_SQL = (
    "WITH t AS (SELECT id, user_id, expires_at, revoked_at, last_used_at, "
    "  last_used_at <= now() - make_interval(mins => %(idle)s) AS idle "
    "  FROM auth_tokens WHERE token_hash = %(hash)s), "
    # SKIP LOCKED: when many requests of one session come at once, one touches the row and the others
    # go on without waiting for its lock (a queue on one row held the pool's connections: 503s)
    "touched AS (UPDATE auth_tokens a SET last_used_at = now() FROM ("
    "  SELECT x.id FROM auth_tokens x JOIN t ON x.id = t.id WHERE NOT t.idle "
    "  AND x.last_used_at < now() - interval '1 minute' AND t.expires_at > now() AND t.revoked_at IS NULL "
    "  FOR UPDATE OF x SKIP LOCKED) s WHERE a.id = s.id) "
    "SELECT u.id, u.username, u.role, u.subdistrict_code, u.zone_codes, u.unit_code, "
    "t.expires_at <= now(), t.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL, t.idle, "
    # the scope's names, for the navigation bar: the sub-district, the zones in their order, the unit
    "  ARRAY(SELECT n.name FROM ("
    "    SELECT 0 AS k, 0::bigint AS i, s.name FROM subdistricts s WHERE s.code = u.subdistrict_code "
    "    UNION ALL SELECT 1, c.i, z.name FROM unnest(u.zone_codes) WITH ORDINALITY AS c(code, i) "
    "      JOIN zones z ON z.code = c.code "
    "    UNION ALL SELECT 2, 0, n.name FROM units n WHERE n.code = u.unit_code) n ORDER BY n.k, n.i) "
    "FROM t JOIN users u ON u.id = t.user_id"
)
IDLE_MINUTES = 30


def principal_from_token_row(row: Sequence[Any] | None, *, idle_minutes: int = IDLE_MINUTES) -> Principal:
    """The caller behind a token lookup's row; Unauthenticated when forged, expired, idle too long,
    revoked or disabled."""
    if row is None:
        raise Unauthenticated("the bearer token is not valid", reason_zh="登录凭证无效，请重新登录")
    if row[6]:
        raise Unauthenticated("the bearer token has expired: sign in again", reason_zh="登录已过期，请重新登录")
    if row[7] or row[8]:
        raise Unauthenticated("the bearer token was revoked: sign in again", reason_zh="登录已失效，请重新登录")
    if row[9]:
        raise Unauthenticated(
            f"the session ended after {idle_minutes} minutes without use: sign in again",
            reason_zh=f"超过 {idle_minutes} 分钟未操作，登录已失效，请重新登录",
        )
    return Principal(
        username=row[1],
        role=row[2],
        user_id=row[0],
        subdistrict_code=row[3],
        zone_codes=tuple(row[4] or ()),
        unit_code=row[5],
        scope_names=tuple(row[10] or ()) if len(row) > 10 else (),
    )


def principal_for_token(token: str, *, idle_minutes: int = IDLE_MINUTES) -> Steps[Principal]:
    """The caller behind a bearer token; Unauthenticated when forged, expired, idle for more than
    ``idle_minutes``, revoked or disabled."""
    rows = yield Statement(_TOKEN_SQL, {"hash": _digest(token), "idle": idle_minutes})
    return principal_from_token_row(one(rows), idle_minutes=idle_minutes)


def revoke_token(conn: psycopg.Connection, token: str) -> None:
    """Sign out: the token stops working."""
    conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL", [_digest(token)]
    )


def change_password(
    conn: psycopg.Connection, username: str, old: str, new: str, *, policy: PasswordPolicy | None = None
) -> None:
    """Change a password (the old one must match, expired or not); every session is signed out."""
    user = authenticate(conn, username, old)
    check_password(new, username=username, policy=policy)
    if new == old:
        raise InvalidInput("the new password is the old one", field="new_password", reason_zh="新密码不能与原密码相同")
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, password_changed_at = now(), updated_at = now() WHERE id = %s",
            [_HASHER.hash(new), user.id],
        )
        _revoke_all(conn, user.id)


def reset_password(
    conn: psycopg.Connection,
    username: str,
    new: str | None,
    *,
    actor: str,
    district_code: str,
    policy: PasswordPolicy | None = None,
) -> str:
    """An administrator sets another user's password (``new``, or a random one when None) without
    knowing the old one; every session of the user ends and an audit row says who did it. The
    password, to hand over once. Refused (409) on the caller's own account (``actor``)."""
    user = get_user(conn, username)
    if actor == username:  # no old password asked: on one's own account a stolen session would take it over
        raise Conflict(
            f"user '{username}': nobody resets their own password here; change it with the old one at /auth/password",
            field="username",
            reason_zh="不能在这里重置自己的密码，请用原密码在「修改密码」（/auth/password）中修改",
        )
    password = new if new is not None else secrets.token_urlsafe(12)
    check_password(password, username=username, policy=policy)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, password_changed_at = now(), updated_at = now() WHERE id = %s",
            [_HASHER.hash(password), user.id],
        )
        _revoke_all(conn, user.id)
        audit(
            conn,
            district_code=district_code,
            actor=actor,
            action="user.password_reset",
            table="users",
            code=username,
            details={"generated": new is None},
        )
    return password


def create_api_key(conn: psycopg.Connection, *, client_name: str, district_code: str, actor: str) -> tuple[int, str]:
    """A new Open311 api_key (shown once) and its id."""
    if not client_name.strip():
        raise InvalidInput("client_name is required", field="client_name")
    key = "wk_" + secrets.token_urlsafe(24)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO api_keys (district_code, key_hash, client_name, created_by) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            [district_code, _digest(key), client_name.strip(), actor],
        ).fetchone()
        assert row is not None
        audit(
            conn,
            district_code=district_code,
            actor=actor,
            action="api_key.add",
            table="api_keys",
            code=str(row[0]),
            details={"client_name": client_name},
        )
    return int(row[0]), key


def revoke_api_key(conn: psycopg.Connection, key_id: int, *, district_code: str, actor: str) -> None:
    """Revoke an api_key by id."""
    with conn.transaction():
        cur = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", [key_id])
        if cur.rowcount == 0:
            raise NotFound(
                f"api_key {key_id} does not exist or is already revoked",
                field="id",
                reason_zh=f"api_key {key_id} 不存在或已吊销",
            )
        audit(
            conn, district_code=district_code, actor=actor, action="api_key.revoke", table="api_keys", code=str(key_id)
        )


def client_for_api_key(conn: psycopg.Connection, key: str) -> str:
    """The client application name of a valid api_key; Unauthenticated otherwise."""
    row = conn.execute(
        "SELECT client_name FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", [_digest(key)]
    ).fetchone()
    if row is None:
        raise Unauthenticated("api_key is not valid or was revoked", field="api_key", reason_zh="api_key 无效或已吊销")
    return str(row[0])


def list_api_keys(conn: psycopg.Connection, district_code: str) -> list[dict[str, Any]]:
    """Keys without their secrets."""
    cur = conn.execute(
        "SELECT id, client_name, created_by, created_at, revoked_at FROM api_keys WHERE district_code = %s ORDER BY id",
        [district_code],
    )
    return [
        {
            "id": r[0],
            "client_name": r[1],
            "created_by": r[2],
            "created_at": r[3].isoformat(),
            "revoked": r[4] is not None,
        }
        for r in cur
    ]


# -- demo accounts (issue 20: `wuye demo --users`) -------------------------------------------------------
DEMO_PREFIX = "demo-"


def is_demo(conn: psycopg.Connection, user_id: int) -> bool:
    """Whether the user is a demo account (signing in with one is refused when they are switched off)."""
    row = conn.execute("SELECT demo FROM users WHERE id = %s", [user_id]).fetchone()
    return bool(row and row[0])


def admin_count(conn: psycopg.Connection, district_code: str) -> int:
    """How many enabled administrators the district has (none: the first one is still to be made)."""
    row = conn.execute(
        "SELECT count(*) FROM users WHERE district_code = %s AND role = 'admin' AND disabled_at IS NULL",
        [district_code],
    ).fetchone()
    return int(row[0]) if row else 0


def _demo_scopes(conn: psycopg.Connection, district_code: str) -> dict[str, dict[str, Any]]:
    """A scope per scoped role read from the demo district itself: its first sub-district, the zones
    in it, its first contractor."""
    sub = conn.execute(
        "SELECT code FROM subdistricts WHERE district_code = %s ORDER BY code LIMIT 1", [district_code]
    ).fetchone()
    zones = [
        r[0]
        for r in conn.execute(
            "SELECT z.code FROM zones z JOIN subdistricts s ON ST_Intersects(s.geom, ST_PointOnSurface(z.geom)) "
            "WHERE s.code = %s ORDER BY z.code LIMIT 2",
            [sub[0] if sub else None],
        )
    ]
    contractor = conn.execute(
        "SELECT code FROM units WHERE district_code = %s AND kind = 'contractor' ORDER BY code LIMIT 1",
        [district_code],
    ).fetchone()
    if sub is None or not zones or contractor is None:
        raise InvalidInput(
            "the demo district is not loaded: run `wuye demo` first",
            field="district",
            reason_zh="演示数据尚未载入，请先运行 wuye demo",
        )
    return {
        "subdistrict_staff": {"subdistrict_code": sub[0]},
        "property_team": {"zone_codes": tuple(zones)},
        "survey_team": {"zone_codes": tuple(zones[:1])},
        "contractor": {"unit_code": contractor[0]},
    }


def create_demo_users(conn: psycopg.Connection, *, district_code: str, actor: str) -> list[tuple[User, str | None]]:
    """One demo account per role (``demo-<role>``), marked as demo, each with a new random password
    returned once; an account that already exists is left as it is (its password not shown again)."""
    scopes = _demo_scopes(conn, district_code)
    made: list[tuple[User, str | None]] = []
    for role in ROLES:
        if role == "anonymous":
            continue
        username = DEMO_PREFIX + role.replace("_", "-")
        existing = conn.execute("SELECT 1 FROM users WHERE username = %s", [username]).fetchone()
        if existing:
            made.append((get_user(conn, username), None))
            continue
        password = secrets.token_urlsafe(9)
        with conn.transaction():  # made and marked together
            user = create_user(
                conn,
                username=username,
                password=password,
                role=role,
                district_code=district_code,
                actor=actor,
                display_name=f"演示账号（{ROLES[role]}）",
                **scopes.get(role, {}),
            )
            conn.execute("UPDATE users SET demo = true WHERE id = %s", [user.id])
        made.append((user, password))
    return made
