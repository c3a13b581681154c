"""Schema migrations: tables generated from layer specs plus ordered SQL files.

Order: SQL migrations of the ``pre`` phase (the default), then one step per
layer table (``layer:<name>``), then SQL migrations whose first line says
``-- phase: post`` (indexes, functions and changes on layer tables). Each step
runs in its own transaction and is recorded in ``wuye_migrations``; an
advisory lock keeps two migrators (``serve`` and the CLI) from racing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from geo.errors import SchemaMismatch
from layers.catalogue import COMMON_COLUMNS, Catalogue, LayerSpec

_LOCK_KEY = 0x57555945  # "WUYE"


@dataclass(frozen=True)
class Step:
    """One migration step: a name, a checksum and what it executes."""

    name: str
    checksum: str
    apply: Callable[[psycopg.Connection], None]


def layer_ddl(spec: LayerSpec) -> list[sql.Composed]:
    """CREATE TABLE and index statements for a layer, generated from its spec."""
    table = sql.Identifier(spec.table)
    columns = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t, _, _ in COMMON_COLUMNS]
    for attr in spec.attributes:
        ref = sql.SQL(" REFERENCES units (code)") if attr.references == "units" else sql.SQL("")
        null = sql.SQL(" NOT NULL") if attr.required else sql.SQL("")
        columns.append(sql.SQL("{} {}{}{}").format(sql.Identifier(attr.name), sql.SQL(attr.sql_type), null, ref))
    columns.append(sql.SQL("geom geometry({}, {}) NOT NULL").format(sql.SQL(spec.geometry), sql.Literal(spec.srid)))
    create = sql.SQL("CREATE TABLE {} (\n  {},\n  UNIQUE (code)\n)").format(table, sql.SQL(",\n  ").join(columns))
    index = sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(sql.Identifier(f"{spec.table}_geom_gist"), table)
    batch = sql.SQL("CREATE INDEX {} ON {} (batch_id)").format(sql.Identifier(f"{spec.table}_batch_idx"), table)
    if spec.is_linear and spec.zone_attribute:
        # the zone holding most of the line's length, unless named (function in migration 0012)
        zone = sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION wuye_line_zone()")
        zone_idx = sql.SQL("CREATE INDEX {} ON {} (zone_code)")
        return [
            create,
            index,
            batch,
            zone.format(sql.Identifier(f"{spec.table}_zone"), table),
            zone_idx.format(sql.Identifier(f"{spec.table}_zone_idx"), table),
        ]
    return [create, index, batch]


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expected_columns(spec: LayerSpec) -> dict[str, tuple[str, bool]]:
    """column -> (udt_name, nullable) as the spec says the table must be."""
    cols = {name: (udt, nullable) for name, _, udt, nullable in COMMON_COLUMNS}
    for attr in spec.attributes:
        cols[attr.name] = (attr.udt_name, not attr.required)
    cols["geom"] = ("geometry", False)
    return cols


def table_differences(conn: psycopg.Connection, spec: LayerSpec) -> list[str]:
    """How the live table differs from the spec (empty when they agree)."""
    rows = conn.execute(
        "SELECT column_name, udt_name, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        [spec.table],
    ).fetchall()
    live = {name: (udt, nullable) for name, udt, nullable in rows}
    problems = []
    for name, (udt, nullable) in expected_columns(spec).items():
        if name not in live:
            problems.append(f"column '{name}' is in the spec but not in the table")
        elif live[name][0] != udt:
            problems.append(f"column '{name}' is {live[name][0]} in the table but {udt} in the spec")
        elif live[name][1] != nullable:
            want = "optional" if nullable else "required"
            problems.append(f"column '{name}' is {want} in the spec but not in the table")
    for name in sorted(set(live) - set(expected_columns(spec))):
        problems.append(f"column '{name}' is in the table but not in the spec")
    geom = conn.execute(
        "SELECT type, srid FROM geometry_columns WHERE f_table_schema = current_schema() "
        "AND f_table_name = %s AND f_geometry_column = 'geom'",
        [spec.table],
    ).fetchone()
    if geom and (geom[0].lower() != spec.geometry.lower() or geom[1] != spec.srid):
        problems.append(f"geometry is {geom[0]}({geom[1]}) in the table but {spec.geometry}({spec.srid}) in the spec")
    return problems


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
    return bool(row and row[0])


def _layer_step(spec: LayerSpec) -> Step:
    statements = layer_ddl(spec)

    def apply(conn: psycopg.Connection) -> None:
        if _table_exists(conn, spec.table):
            return  # created by hand or by an older run: compared below, not recreated
        for stmt in statements:
            conn.execute(stmt)
        # a layer added to a database that already keeps layer figures (migration 0013, post
        # phase; on a new database that migration tracks every layer table itself)
        tracked = conn.execute("SELECT to_regprocedure('wuye_track_layer(text)') IS NOT NULL").fetchone()
        if tracked and tracked[0]:
            conn.execute("SELECT wuye_track_layer(%s)", [spec.table])

    text = "\n".join(s.as_string(None) for s in statements) if statements else ""
    return Step(name=f"layer:{spec.name}", checksum=_checksum(text), apply=apply)


def _sql_steps() -> tuple[list[Step], list[Step]]:
    pre: list[Step] = []
    post: list[Step] = []
    folder = resources.files("layers").joinpath("migrations")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")

        def apply(conn: psycopg.Connection, text: str = text) -> None:
            conn.execute(text.encode())  # a multi-statement script, no parameters

        step = Step(name=entry.name, checksum=_checksum(text), apply=apply)
        first = text.splitlines()[0].strip().lower() if text else ""
        (post if first == "-- phase: post" else pre).append(step)
    return pre, post


def plan(catalogue: Catalogue) -> list[Step]:
    """Every step in the order it applies."""
    pre, post = _sql_steps()
    return [*pre, *(_layer_step(catalogue[name]) for name in catalogue), *post]


def _bootstrap(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS wuye_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )


def applied(conn: psycopg.Connection) -> dict[str, str]:
    """Recorded migrations: name -> checksum (empty before the first migrate)."""
    if not _table_exists(conn, "wuye_migrations"):
        return {}
    return dict(conn.execute("SELECT name, checksum FROM wuye_migrations").fetchall())


def pending(conn: psycopg.Connection, catalogue: Catalogue) -> list[str]:
    """Names of the steps not applied yet."""
    done = applied(conn)
    return [s.name for s in plan(catalogue) if s.name not in done]


def check_specs(conn: psycopg.Connection, catalogue: Catalogue) -> None:
    """Raise :class:`SchemaMismatch` naming every difference between specs and tables."""
    problems = []
    for name in catalogue:
        spec = catalogue[name]
        if _table_exists(conn, spec.table):
            problems += [f"layer '{name}': {p}" for p in table_differences(conn, spec)]
    if problems:
        raise SchemaMismatch(
            "layer specs and live tables disagree (write a migration in layers/migrations/ "
            "or fix the spec): " + "; ".join(problems),
            differences=problems,
        )


def migrate(conn: psycopg.Connection, catalogue: Catalogue) -> list[str]:
    """Apply pending steps, each in its own transaction; return the names applied.

    Refuses, naming the difference, when a spec and its live table disagree.
    ``conn`` must be in autocommit mode (each step opens its own transaction).
    """
    _bootstrap(conn)
    conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
    try:
        done = applied(conn)
        ran = []
        for step in plan(catalogue):
            if step.name in done:
                continue
            with conn.transaction():
                step.apply(conn)
                conn.execute(
                    "INSERT INTO wuye_migrations (name, checksum) VALUES (%s, %s)",
                    [step.name, step.checksum],
                )
            ran.append(step.name)
        check_specs(conn, catalogue)
        # Every table the kept figures read moves the change counter (migration 0021), new ones too.
        if conn.execute("SELECT to_regproc('data_changes_watch') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            conn.execute("SELECT data_changes_watch()")
        # Data kept in layers/ as files and mirrored into tables (not a schema step).
        from geo.cases.categories import sync_categories

        sync_categories(conn)
        return ran
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
