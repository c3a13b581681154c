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
from geo.errors import Conflict, InvalidInput, NotFound, Unauthenticated

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


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters", field="password")


def _check_scope(
    conn: psycopg.Connection, role: str, subdistrict: str | None, zones: tuple[str, ...], unit: str | None
) -> None:
    if role not in ROLES or role == "anonymous":
        raise InvalidInput(
            f"role '{role}' is not one of {', '.join(r for r in ROLES if r != 'anonymous')}", field="role"
        )
    need = SCOPED_ROLES.get(role)
    given = {"subdistrict_code": subdistrict, "zone_codes": zones, "unit_code": unit}
    if need and not given[need]:
        raise InvalidInput(f"role '{role}' needs a scope: {need}", field=need)
    if subdistrict and not conn.execute("SELECT 1 FROM subdistricts WHERE code = %s", [subdistrict]).fetchone():
        raise InvalidInput(f"sub-district '{subdistrict}' does not exist", field="subdistrict_code")
    if zones:
        known = {r[0] for r in conn.execute("SELECT code FROM zones WHERE code = ANY(%s)", [list(zones)])}
        missing = sorted(set(zones) - known)
        if missing:
            raise InvalidInput(f"zones {missing} do not exist", field="zone_codes")
    if unit and not conn.execute("SELECT 1 FROM units WHERE code = %s", [unit]).fetchone():
        raise InvalidInput(f"unit '{unit}' does not exist", field="unit_code")


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
) -> User:
    """Add a user; refuses a taken username, a weak password or a role without its scope."""
    _check_password(password)
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
            raise Conflict(f"user '{username}' already exists", field="username") from e
        except psycopg.errors.CheckViolation as e:
            raise InvalidInput("username must be 2-64 of A-Z a-z 0-9 _ . @ -", field="username") from e
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
        raise NotFound(f"user '{username}' does not exist", field="username")
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


def _revoke_all(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", [user_id])


def authenticate(conn: psycopg.Connection, username: str, password: str) -> User:
    """The user whose password this is, or Unauthenticated (same message either way)."""
    row = conn.execute(
        sql.SQL("SELECT {}, password_hash FROM users WHERE username = %s").format(_USER_COLUMNS), [username]
    ).fetchone()
    try:
        _HASHER.verify(row[-1] if row else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None or row[7]:
        raise Unauthenticated(
            "wrong username or password, or the account is disabled", reason_zh="用户名或密码错误，或账号已停用"
        )
    return _user(row[:-1])


def issue_token(conn: psycopg.Connection, user: User, *, ttl: timedelta) -> tuple[str, datetime]:
    """A new bearer token for ``user`` and its expiry."""
    token = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES (%s, %s, now() + %s) RETURNING expires_at",
        [_digest(token), user.id, ttl],
    ).fetchone()
    assert row is not None
    return token, row[0]


_TOKEN_SQL = (
    "SELECT u.id, u.username, u.role, u.subdistrict_code, u.zone_codes, u.unit_code, "
    "t.expires_at <= now(), t.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL "
    "FROM auth_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = %s"
)


def token_query(token: str) -> tuple[str, list[Any]]:
    """The statement and values that look a bearer token up (the caller executes it, sync or
    async, and hands the row to :func:`principal_from_token_row`)."""
    return _TOKEN_SQL, [_digest(token)]


def principal_from_token_row(row: Sequence[Any] | None) -> Principal:
    """The caller behind a token lookup's row; Unauthenticated when forged, expired, revoked or disabled."""
    if row is None:
        raise Unauthenticated("the bearer token is not valid", reason_zh="登录凭证无效，请重新登录")
    if row[6]:
        raise Unauthenticated("the bearer token has expired: sign in again", reason_zh="登录已过期，请重新登录")
    if row[7] or row[8]:
        raise Unauthenticated("the bearer token was revoked: sign in again", reason_zh="登录已失效，请重新登录")
    return Principal(
        username=row[1],
        role=row[2],
        user_id=row[0],
        subdistrict_code=row[3],
        zone_codes=tuple(row[4] or ()),
        unit_code=row[5],
    )


def principal_for_token(conn: psycopg.Connection, token: str) -> Principal:
    """The caller behind a bearer token; Unauthenticated when forged, expired, revoked or disabled."""
    query, params = token_query(token)
    return principal_from_token_row(conn.execute(query, params).fetchone())


def revoke_token(conn: psycopg.Connection, token: str) -> None:
    """Sign out: the token stops working."""
    conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL", [_digest(token)]
    )


def change_password(conn: psycopg.Connection, username: str, old: str, new: str) -> None:
    """Change one's own password (the old one must match); other sessions are signed out."""
    user = authenticate(conn, username, old)
    _check_password(new)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", [_HASHER.hash(new), user.id]
        )
        _revoke_all(conn, user.id)


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
            raise NotFound(f"api_key {key_id} does not exist or is already revoked", field="id")
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
