"""Read-only database roles for desktop GIS users (issue 17 point 5).

A QGIS user who connects to PostGIS directly would bypass the service's rules (version, ETag,
history, validation): so desktop users get a login role that can read the layer tables and
nothing else (no users, tokens, cases or audit), in read-only transactions. Edits go through
the API, where every change gets its version and history row.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from geo.errors import InvalidInput
from layers.catalogue import Catalogue

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_readonly(conn: psycopg.Connection, catalogue: Catalogue, name: str, password: str) -> list[str]:
    """Create (or reset the password of) login role ``name`` that may SELECT the layer tables only;
    answer the tables it may read. One transaction: on any refusal nothing is granted."""
    if not ROLE_NAME.match(name):
        raise InvalidInput(
            f"role name '{name}' must be lower-case letters, digits and _ (at most 63, not starting with a digit)",
            field="name",
            reason_zh="角色名只能由小写字母、数字和下划线组成（不以数字开头，最多 63 个字符）",
        )
    if len(password) < 8:
        raise InvalidInput("the password needs at least 8 characters", field="password", reason_zh="密码至少 8 个字符")
    role = sql.Identifier(name)
    with conn.transaction():
        row = conn.execute("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", [name]).fetchone()
        if row is not None and row[0]:
            raise InvalidInput(
                f"role '{name}' is a superuser: choose another name",
                field="name",
                reason_zh="该角色是超级用户，请换一个名字",
            )
        verb = "CREATE" if row is None else "ALTER"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        database = conn.execute("SELECT current_database(), current_schema()").fetchone()
        assert database is not None
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database[0]), role))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(database[1]), role))
        tables = [spec.table for spec in catalogue.values()]
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables), role)
        )
    return tables
