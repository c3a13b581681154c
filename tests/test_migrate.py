"""Migrations: ordered, recorded, idempotent, and refusing when a spec and its table disagree."""

from __future__ import annotations

import psycopg
import pytest

from geo.errors import SchemaMismatch
from geo.store.migrate import applied, migrate, pending, plan


def test_fresh_database_gets_every_step_once(server, catalogue):
    url = server.create("wuye_migrate_fresh")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            ran = migrate(conn, catalogue)
            assert ran == [s.name for s in plan(catalogue)]
            assert ran[0] == "0001_core.sql"
            assert [r for r in ran if r.startswith("layer:")] == [f"layer:{n}" for n in catalogue]
            assert migrate(conn, catalogue) == []
            assert pending(conn, catalogue) == []
            assert set(applied(conn)) == set(ran)
            gist = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = ANY(%s)",
                [[f"{name}_geom_gist" for name in catalogue]],
            ).fetchone()
            assert gist == (len(catalogue),)
            assert ran.index("0003_cases.sql") > ran.index("layer:green_plots")  # a post-phase step
    finally:
        server.drop("wuye_migrate_fresh")


def test_migrate_refuses_when_a_table_drifts_from_its_spec(db_url, catalogue):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE zones ADD COLUMN colour text")
        conn.execute("ALTER TABLE street_lights ALTER COLUMN power_w TYPE text")
        with pytest.raises(SchemaMismatch) as err:
            migrate(conn, catalogue)
        message = err.value.message
        assert "layer 'zones': column 'colour' is in the table but not in the spec" in message
        assert "layer 'street_lights': column 'power_w' is text in the table but int4 in the spec" in message


def test_migrate_refuses_a_geometry_type_change(db_url, catalogue):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE litter_bins ALTER COLUMN geom TYPE geometry(Geometry, 4490)")
        with pytest.raises(SchemaMismatch, match="layer 'litter_bins': geometry is GEOMETRY"):
            migrate(conn, catalogue)
