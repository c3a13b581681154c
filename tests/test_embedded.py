"""The embedded cluster: start/stop/start, stale pid recovery, relocation, clear errors."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
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
        url = embedded.ensure_database(cluster, "wuye")
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
        with psycopg.connect(embedded.server_url(cluster, "wuye")) as conn:
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


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    """``cmd`` run as the OS user ``nobody``, with no password file or variable of ours."""
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *cmd], env=env, cwd="/", capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another OS user needs root")
def test_another_os_user_is_refused_without_the_password(tmp_path: Path):
    cluster = embedded.locate(tmp_path / "home")
    try:
        state = embedded.start(cluster, fast=True, tcp=True)
        assert stat.S_IMODE(cluster.passfile.stat().st_mode) == 0o600
        assert stat.S_IMODE(cluster.run_dir.stat().st_mode) == 0o700
        embedded.ensure_database(cluster, "wuye")
        # `wuye db url` is what psql takes: it names the password file, not the password
        env = {**os.environ, "WUYE_HOME": str(tmp_path / "home"), "WUYE_DB_LISTEN_TCP": "true"}
        printed = subprocess.run(
            [sys.executable, "-m", "api.cli", "db", "url"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert "passfile=" in printed and embedded.password(cluster) not in printed
        psql = ["psql", "-w", "-At", printed, "-c", "SELECT current_user"]
        assert subprocess.run(psql, capture_output=True, text=True, check=True).stdout.strip() == "postgres"
        refused = _as_nobody(*psql)
        assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
        # with the password file: in (the app's and the CLI's way)
        with psycopg.connect(embedded.server_url(cluster, "postgres")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        with psycopg.connect(embedded.server_url(cluster, "postgres", tcp=True)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # another local user, over loopback TCP: asked for a password it does not have
        tcp = _as_nobody("psql", "-w", "-h", "127.0.0.1", "-p", str(state.port), "-U", "postgres", "-c", "SELECT 1")
        assert tcp.returncode != 0
        assert "password" in tcp.stderr, tcp.stderr
        # ... over the socket: cannot even reach it (its directory is 0700)
        sock = _as_nobody("psql", "-w", "-h", str(cluster.run_dir), "-p", str(state.port), "-U", "postgres")
        assert sock.returncode != 0
        assert "Permission denied" in sock.stderr or "password" in sock.stderr, sock.stderr
        # ... nor read the password file
        assert _as_nobody("cat", str(cluster.passfile)).returncode != 0
        # and a connection of ours without the password is refused too
        no_pass = f"host={cluster.run_dir} port={state.port} user=postgres dbname=postgres passfile=/dev/null"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(no_pass)
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)


def test_port_is_kept_and_socket_only_by_default(tmp_path: Path):
    cluster = embedded.locate(tmp_path / "home")
    try:
        first = embedded.start(cluster, fast=True)
        assert first.port == int(cluster.port_file.read_text())
        with socket.socket() as s:  # no TCP listener: the socket only
            assert s.connect_ex(("127.0.0.1", first.port or 0)) != 0
        embedded.stop(cluster)
        again = embedded.start(cluster, fast=True)
        assert again.port == first.port
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)


def test_a_trusting_cluster_of_an_older_version_is_given_a_password(tmp_path: Path):
    cluster = embedded.locate(tmp_path / "home")
    try:
        state = embedded.start(cluster, fast=True)
        # make it what `initdb -A trust` left: trust in pg_hba, no password, no password file
        with psycopg.connect(embedded.server_url(cluster, "postgres"), autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres PASSWORD NULL")
        (cluster.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        cluster.passfile.unlink()
        embedded.stop(cluster)
        no_pass = f"host={cluster.run_dir} port={state.port} user=postgres dbname=postgres passfile=/dev/null"
        embedded.start(cluster, fast=True)
        assert stat.S_IMODE(cluster.passfile.stat().st_mode) == 0o600
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(no_pass)
        with psycopg.connect(embedded.server_url(cluster, "postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded.stop(cluster)
        if cluster.relocated:
            shutil.rmtree(cluster.root, ignore_errors=True)
