"""The embedded PostGIS cluster: a private PostgreSQL under ``WUYE_HOME`` (``./var``).

Created with ``initdb`` and run with ``pg_ctl`` from the machine's PostgreSQL.
It asks for a password (scram-sha-256): generated at ``initdb`` and kept in
``$WUYE_HOME/db.pgpass`` (mode 0600, libpq's passfile format, so psql reads it
through ``passfile=`` and the password never appears in a URL or a command
line). It listens on its unix socket (directory mode 0700) and, only when asked,
on loopback TCP (with the same password). Its port is chosen once and kept in
``$WUYE_HOME/db.port``, so a server running against it reconnects after a
``wuye db stop`` / ``wuye db start``. A cluster made by an older version with
``trust`` is given a password and switched over on its next start. ``initdb`` and
``postgres`` refuse to run as root, so as root the server runs as the
``postgres`` OS user; when that user cannot reach the state directory (a
checkout under a mode-0700 ``/root``) or the socket path would pass the
107-byte limit of ``sun_path``, the cluster lives under
``/var/tmp/wuye-<hash>`` instead.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from geo.errors import ConfigError

SOCKET_PATH_LIMIT = 107
_INSTALL_HINT = (
    "install them with: apt-get install -y postgresql postgresql-15-postgis-3 "
    "(or your distribution's postgresql + postgis packages)"
)


@dataclass(frozen=True)
class Cluster:
    """Where one embedded cluster lives and which binaries run it."""

    root: Path
    bindir: Path
    relocated: bool
    home: Path

    @property
    def passfile(self) -> Path:
        """The superuser's password, in libpq's passfile format (mode 0600, under ``home``)."""
        return self.home / "db.pgpass"

    @property
    def port_file(self) -> Path:
        """The cluster's port, chosen once (under ``home``)."""
        return self.home / "db.port"

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def run_dir(self) -> Path:
        """The directory of the server's unix socket."""
        return self.root / "run"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "postgres.log"


@dataclass(frozen=True)
class ClusterStatus:
    """What ``wuye db status`` reports."""

    root: Path
    relocated: bool
    running: bool
    port: int | None
    pid: int | None


def find_bindir() -> Path:
    """The newest PostgreSQL server bin directory on this machine, or a clear error."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    raise ConfigError(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {_INSTALL_HINT}")


def check_postgis(bindir: Path) -> None:
    """Raise a one-line error when the PostGIS extension is not installed for ``bindir``."""
    version = bindir.parent.name
    places = [
        Path(f"/usr/share/postgresql/{version}/extension"),
        bindir.parent / "share" / "extension",
        bindir.parent / "share" / "postgresql" / "extension",
    ]
    if not any((p / "postgis.control").exists() for p in places):
        raise ConfigError(f"PostGIS is not installed for PostgreSQL {version}: {_INSTALL_HINT}")


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(cmd: list[str]) -> list[str]:
    """Prefix ``cmd`` so that it runs as ``postgres`` when we are root."""
    if not _is_root():
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(c) for c in cmd)]


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def _server_user_can_reach(path: Path) -> bool:
    """True when the server's OS user can traverse to and write into ``path``."""
    if not _is_root():
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError as e:
        raise ConfigError("running as root needs a 'postgres' OS user for the database server: " + _INSTALL_HINT) from e
    probe = path / ".wuye-probe"
    probe.mkdir(parents=True, exist_ok=True)
    shutil.chown(probe, "postgres")
    result = subprocess.run(_as_server_user(["test", "-w", str(probe)]), capture_output=True, check=False)
    probe.rmdir()
    return result.returncode == 0


def locate(home: Path, bindir: Path | None = None) -> Cluster:
    """Decide where the cluster for state directory ``home`` lives (see module doc)."""
    bindir = bindir or find_bindir()
    home = home.resolve()
    preferred = home / "pg"
    socket_file = preferred / "run" / ".s.PGSQL.65535"
    home.mkdir(parents=True, exist_ok=True)
    if len(str(socket_file).encode()) <= SOCKET_PATH_LIMIT and _server_user_can_reach(home):
        return Cluster(root=preferred, bindir=bindir, relocated=False, home=home)
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return Cluster(root=Path(f"/var/tmp/wuye-{digest}"), bindir=bindir, relocated=True, home=home)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cluster: Cluster, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = _as_server_user([str(cluster.bindir / args[0]), *args[1:]])
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigError(f"{args[0]} failed: {detail[-1] if detail else result.returncode}")
    return result


def _prepare_dirs(cluster: Cluster) -> None:
    for d in (cluster.root, cluster.run_dir):
        d.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(d, "postgres", "postgres")
        # The socket's directory too: no other OS user may even reach the socket.
        d.chmod(0o700)


def password(cluster: Cluster) -> str:
    """The superuser's password, generated (and written 0600) on first use."""
    try:
        return cluster.passfile.read_text().strip().rsplit(":", 1)[1]
    except (FileNotFoundError, IndexError):
        pass
    secret = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe in a passfile and in a URL
    cluster.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(cluster.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"*:*:*:postgres:{secret}\n")
    cluster.passfile.chmod(0o600)  # also when it existed with other modes
    return secret


def port(cluster: Cluster) -> int:
    """The cluster's port: the recorded one, else the one it last ran on (a cluster of an older
    version, which chose one at every start), else a free one; recorded now."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(cluster.port_file.read_text().strip())
    last = _postmaster_pid(cluster)
    chosen = last[1] if last else _free_port()
    cluster.home.mkdir(parents=True, exist_ok=True)
    cluster.port_file.write_text(f"{chosen}\n")
    return chosen


_HBA = """# written by wuye: every connection needs the password (scram-sha-256)
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def _initdb(cluster: Cluster) -> None:
    _prepare_dirs(cluster)
    # initdb reads the password from a file the server's OS user can read: a copy inside
    # the cluster's own 0700 directory, removed as soon as initdb is done.
    pwfile = cluster.root / ".pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password(cluster) + "\n")
    if _is_root():
        shutil.chown(pwfile, "postgres", "postgres")
    try:
        _run(
            cluster,
            [
                "initdb",
                "-D",
                str(cluster.data),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    _write_hba(cluster)


def _write_hba(cluster: Cluster) -> None:
    # Overwrite in place: the file keeps its owner (postgres) and mode.
    with open(cluster.data / "pg_hba.conf", "w") as f:
        f.write(_HBA)


def _trusting(cluster: Cluster) -> bool:
    """True for a cluster made with ``initdb -A trust`` (by an older version) and not yet switched."""
    lines = (cluster.data / "pg_hba.conf").read_text().splitlines()
    return any(line.split()[-1] == "trust" for line in lines if line.strip() and not line.lstrip().startswith("#"))


def _switch_to_password(cluster: Cluster, at_port: int) -> None:
    """Give a trusting cluster's superuser the password of ``passfile``, then ask for it from now on."""
    secret = password(cluster)
    conninfo = make_conninfo(host=str(cluster.run_dir), port=at_port, user="postgres", dbname="postgres")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(secret)))
    _write_hba(cluster)
    _run(cluster, ["pg_ctl", "reload", "-D", str(cluster.data)])


def _postmaster_pid(cluster: Cluster) -> tuple[int, int] | None:
    """(pid, port) from ``postmaster.pid``, or None when there is none."""
    try:
        lines = (cluster.data / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def _listens_on_tcp(cluster: Cluster) -> bool:
    """Whether the running server listens on TCP (line 6 of ``postmaster.pid``: its first address)."""
    try:
        return bool((cluster.data / "postmaster.pid").read_text().splitlines()[5].strip())
    except (OSError, IndexError):
        return False


def status(cluster: Cluster) -> ClusterStatus:
    """Whether the cluster runs, and on which port."""
    running = False
    if (cluster.data / "PG_VERSION").exists():
        running = _run(cluster, ["pg_ctl", "status", "-D", str(cluster.data)], check=False).returncode == 0
    pid_port = _postmaster_pid(cluster) if running else None
    return ClusterStatus(
        root=cluster.root,
        relocated=cluster.relocated,
        running=running,
        port=pid_port[1] if pid_port else None,
        pid=pid_port[0] if pid_port else None,
    )


def start(cluster: Cluster, *, fast: bool = False, tcp: bool = False) -> ClusterStatus:
    """Start the cluster (initdb first if needed); idempotent; recovers a stale pid file.

    It listens on its unix socket only, and also on loopback TCP with ``tcp`` (password
    asked on both). ``fast`` turns off fsync: for throwaway test clusters only.
    """
    check_postgis(cluster.bindir)
    if not (cluster.data / "PG_VERSION").exists():
        _initdb(cluster)
    current = status(cluster)
    if current.running and tcp and not _listens_on_tcp(cluster):
        stop(cluster)  # asked for TCP (a benchmark's tipg): restart with it; clients reconnect
        current = status(cluster)
    if current.running:
        if _trusting(cluster):
            _switch_to_password(cluster, current.port or port(cluster))
        return current
    # pg_ctl says it is not running: a leftover postmaster.pid is stale
    # (a crash or a reboot); postgres would refuse to start while it names a live pid.
    with contextlib.suppress(FileNotFoundError):
        (cluster.data / "postmaster.pid").unlink()
    _prepare_dirs(cluster)
    at_port = port(cluster)
    options = [
        f"-p {at_port}",
        "-c listen_addresses=127.0.0.1" if tcp else "-c listen_addresses=''",  # '' = the socket only
        f"-k {cluster.run_dir}",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
        "-c max_wal_size=2GB",
    ]
    if fast:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    _run(
        cluster,
        ["pg_ctl", "start", "-w", "-t", "60", "-D", str(cluster.data), "-l", str(cluster.log), "-o", " ".join(options)],
    )
    if _trusting(cluster):
        _switch_to_password(cluster, at_port)
    return status(cluster)


def clients(cluster: Cluster) -> list[str]:
    """Who else is connected to the running cluster: one ``application_name@database`` per connection."""
    with psycopg.connect(server_url(cluster, "postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(nullif(application_name, ''), 'client') || '@' || datname FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def stop(cluster: Cluster) -> bool:
    """Stop the cluster if it runs; True when it was running."""
    if not status(cluster).running:
        return False
    _run(cluster, ["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(cluster.data)])
    return True


def server_url(cluster: Cluster, dbname: str, *, tcp: bool = False) -> str:
    """A libpq URL for a database of the embedded cluster: its socket (or loopback TCP with
    ``tcp``), its port, and ``passfile`` naming the password file, not the password itself."""
    where = "127.0.0.1" if tcp else quote(str(cluster.run_dir), safe="")
    return (
        f"postgresql://postgres@/{dbname}?host={where}&port={port(cluster)}"
        f"&passfile={quote(str(cluster.passfile), safe='/')}&application_name=wuye"
    )


def url_with_password(cluster: Cluster, dbname: str) -> str:
    """A loopback TCP URL carrying the password, for clients that read no passfile (tipg's asyncpg)."""
    return f"postgresql://postgres:{password(cluster)}@127.0.0.1:{port(cluster)}/{dbname}"


def ensure_database(cluster: Cluster, dbname: str) -> str:
    """Create ``dbname`` in the running cluster when missing; return its URL."""
    with psycopg.connect(server_url(cluster, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return server_url(cluster, dbname)


def drop_database(cluster: Cluster, dbname: str) -> None:
    """Drop ``dbname`` (closing its connections) from the running cluster."""
    with psycopg.connect(server_url(cluster, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
