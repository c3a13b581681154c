"""`wuye db grant-readonly NAME` (issue 17 point 5): desktop users who connect to PostGIS directly
read the layer tables and cannot change them (edits go through the API, which keeps versions and
history) nor read anything else (users, tokens, cases)."""

from __future__ import annotations

import io
import os

import psycopg
import pytest
from psycopg import errors

from api.cli import main
from tests.conftest import settings_for


def test_readonly_role_reads_layers_and_nothing_else(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"qgis_viewer_{os.getpid()}"
    password = "viewer-secret-1"
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    try:
        assert main(["db", "grant-readonly", name, "--password-stdin"], settings=settings_for(db_url)) == 0
        with psycopg.connect(db_url, user=name, password=password, passfile="/dev/null", autocommit=True) as viewer:
            row = viewer.execute("SELECT count(*) FROM street_lights").fetchone()
            assert row is not None and row[0] > 0
            row = viewer.execute("SELECT count(*) FROM zones WHERE ST_IsValid(geom)").fetchone()
            assert row is not None and row[0] > 0
            with pytest.raises(errors.ReadOnlySqlTransaction):
                viewer.execute("UPDATE street_lights SET power_w = 1")
            for stmt in ("SET default_transaction_read_only = off", "SET transaction_read_only = off"):
                viewer.execute(stmt)  # switching read-only off still leaves it without the privilege
            with pytest.raises(errors.InsufficientPrivilege):
                viewer.execute("DELETE FROM street_lights")
            for secret in ("users", "feature_history"):
                with pytest.raises(errors.InsufficientPrivilege):
                    viewer.execute(f"SELECT 1 FROM {secret} LIMIT 1")  # noqa: S608 (fixed names)
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT count(*) FROM street_lights WHERE power_w = 1").fetchone()
        assert row is not None and row[0] == 0
        # a name that is not a plain role name is refused before anything is created
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        assert main(["db", "grant-readonly", "bad-name; DROP", "--password-stdin"], settings=settings_for(db_url)) == 1
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE IF EXISTS {name}")
