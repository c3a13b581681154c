"""The embedded cluster: start/stop/start, stale pid recovery, relocation, clear errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from geo.errors import ConfigError
from geo.store import embedded


def test_start_stop_start_with_a_stale_pid_file(tmp_path: Path):
    cluster = embedded.locate(tmp_path / "home")
    try:
        first = embedded.start(cluster, fast=True)
        assert first.running and first.port
        assert embedded.start(cluster, fast=True).pid == first.pid  # idempotent
        url = embedded.ensure_database(first.port, "wuye")
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            assert conn.execute("SELECT ST_SRID(ST_SetSRID(ST_MakePoint(1, 2), 4490))").fetchone() == (4490,)
        assert embedded.stop(cluster) is True
        assert embedded.status(cluster).running is False
        assert embedded.stop(cluster) is False
        # a crash leaves postmaster.pid behind, naming a process that is gone
        pidfile = cluster.data / "postmaster.pid"
        pidfile.write_text(f"999999\n{cluster.data}\n0\n5432\n/tmp\n127.0.0.1\n0 0\nready\n")
        again = embedded.start(cluster, fast=True)
        assert again.running and again.pid != 999999
        with psycopg.connect(embedded.server_url(again.port or 0, "wuye")) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone() is not None
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="relocation for the postgres user happens only as root")
def test_unreachable_home_is_relocated_to_var_tmp(tmp_path: Path):
    home = tmp_path / "private"
    home.mkdir()
    home.chmod(0o700)  # as under /root: the postgres user cannot traverse it
    cluster = embedded.locate(home)
    assert cluster.relocated and str(cluster.root).startswith("/var/tmp/wuye-")
    assert embedded.locate(home) == cluster  # the same checkout always maps to the same place


def test_long_socket_path_is_relocated(tmp_path: Path):
    home = tmp_path / ("d" * 60) / ("e" * 60)
    cluster = embedded.locate(home)
    assert cluster.relocated and str(cluster.root).startswith("/var/tmp/wuye-")
    assert len(str(cluster.run_dir / ".s.PGSQL.65535")) <= embedded.SOCKET_PATH_LIMIT


def test_missing_postgis_names_the_packages(tmp_path: Path):
    fake = tmp_path / "13" / "bin"
    fake.mkdir(parents=True)
    with pytest.raises(
        ConfigError, match="PostGIS is not installed for PostgreSQL 13: install them with: apt-get install"
    ):
        embedded.check_postgis(fake)
