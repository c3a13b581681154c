"""Backups: one archive with a consistent database dump, every photo and a manifest; a restore
that verifies the result against the manifest; a check of an archive without restoring it.

The archive is an uncompressed tar (the dump is compressed by ``pg_dump -Fc``, photos are
JPEG/PNG/WebP already) holding, in this order:

- ``manifest.json``: when, the versions (wuye, PostgreSQL, PostGIS, pg_dump), the row count of
  every table, and the size and sha256 of the dump and of every photo;
- ``database.dump``: ``pg_dump --format=custom`` taken in the snapshot the counts were read in
  (``pg_export_snapshot``), so the counts, the photo list and the dump agree;
- ``photos/…``: the file of every photo row of that snapshot, under its stored path.

``pg_dump``/``pg_restore`` are the OS's PostgreSQL client tools of the server's major version
(``/usr/lib/postgresql/<major>/bin``); an older client cannot dump a newer server.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from tqdm import tqdm

from geo.errors import ConfigError, Conflict, InvalidInput
from geo.io import photos

FORMAT = "wuye-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
_BLOCK = 1 << 20

# Every table of the database that is ours: not the catalogs, not an extension's own tables
# (spatial_ref_sys belongs to PostGIS, which creates it on restore).
_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2
"""


@dataclass
class Manifest:
    """What an archive holds (``manifest.json``)."""

    created_at: str
    versions: dict[str, str]
    tables: dict[str, int]
    dump: dict[str, Any]
    photos: list[dict[str, Any]] = field(default_factory=list)
    missing_photos: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON, with the format's name and version."""
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__}
        return json.dumps(body, ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Read a manifest, refusing anything that is not one of ours."""
        try:
            body = json.loads(data)
        except ValueError as e:
            raise InvalidInput(f"{MANIFEST} is not JSON: {e}", field="archive") from e
        if body.get("format") != FORMAT or body.get("format_version") != FORMAT_VERSION:
            raise InvalidInput(
                f"not a {FORMAT} archive of version {FORMAT_VERSION} "
                f"(format {body.get('format')!r}, version {body.get('format_version')!r})",
                field="archive",
            )
        keys = ("created_at", "versions", "tables", "dump", "photos", "missing_photos")
        return cls(**{k: body[k] for k in keys})


@dataclass
class Outcome:
    """What a backup, check or restore did (for the command line to print)."""

    manifest: Manifest
    archive_bytes: int = 0
    problems: list[str] = field(default_factory=list)


# -- client tools -------------------------------------------------------------------------------
def _major(version_num: int) -> int:
    return version_num // 10000


def client_bindir(server_major: int | None = None) -> Path:
    """The PostgreSQL client tools for a server of ``server_major`` (the newest when None)."""
    found = sorted(
        (int(Path(p).parent.parent.name), Path(p).parent)
        for p in glob.glob("/usr/lib/postgresql/*/bin/pg_dump")
        if Path(p).parent.parent.name.isdigit()
    )
    for major, bindir in found:
        if major == server_major:
            return bindir
    if server_major is None and found:
        return found[-1][1]
    on_path = shutil.which("pg_dump")
    if on_path:
        out = subprocess.run([on_path, "--version"], capture_output=True, text=True, check=False).stdout
        digits = out.split()[-1].split(".")[0] if out.split() else ""
        if server_major is None or (digits.isdigit() and int(digits) == server_major):
            return Path(on_path).parent
    raise ConfigError(
        f"pg_dump/pg_restore of PostgreSQL {server_major or ''} not found: "
        f"apt-get install -y postgresql-client-{server_major or 15}".replace("  ", " ")
    )


def _tool(bindir: Path, name: str, args: list[str]) -> None:
    result = subprocess.run([str(bindir / name), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigError(f"{name} failed: {' | '.join(lines[-3:]) if lines else result.returncode}")


# -- reading the database -----------------------------------------------------------------------
def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row counts of every table of ours, ``schema.table`` → rows."""
    counts = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def _photo_paths(conn: psycopg.Connection) -> list[str]:
    has = conn.execute("SELECT to_regclass('case_photos') IS NOT NULL").fetchone()
    if not has or not has[0]:
        return []
    parts = [
        sql.SQL("SELECT path FROM {}").format(sql.Identifier(t))
        for t in photos.PHOTO_TABLES
        if conn.execute("SELECT to_regclass(%s)", [t]).fetchone() != (None,)
    ]
    rows = conn.execute(sql.SQL(" UNION ALL ").join(parts) + sql.SQL(" ORDER BY 1")).fetchall()
    return [str(r[0]) for r in rows]


def _versions(conn: psycopg.Connection, bindir: Path) -> dict[str, str]:
    row = conn.execute(
        "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'postgis'),"
        " current_database()"
    ).fetchone()
    assert row is not None
    dump = subprocess.run([str(bindir / "pg_dump"), "--version"], capture_output=True, text=True, check=False)
    return {
        "wuye": metadata.version("wuye-gis"),
        "postgresql": str(row[0]),
        "postgis": str(row[1] or ""),
        "pg_dump": dump.stdout.strip(),
        "database": str(row[2]),
    }


def _server_major(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return _major(int(row[0]))


# -- hashing and writing files ------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _bar(total: int, label: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, disable=not progress, leave=True)


def _sync_filesystem(path: Path) -> None:
    """Flush every file written under ``path`` to disk: ``syncfs`` of its file system (one call
    instead of an fsync per file), ``sync`` where libc has no syncfs."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- backup -------------------------------------------------------------------------------------
def backup(url: str, root: Path, out: Path, *, progress: bool = False) -> Outcome:
    """Write the archive ``out``: the dump, the photos and the manifest (see the module doc)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".wuye-backup-") as work:
        dump_path = Path(work) / DUMP
        manifest, named = _dump_in_snapshot(url, dump_path)
        manifest.photos, manifest.missing_photos = _hashed_photos(root, named)
        partial = out.with_name(out.name + ".part")
        _write_archive(partial, manifest, dump_path, root, progress)
        _fsync_file(partial)
        os.replace(partial, out)
        photos.fsync_dir(out.parent)
    return Outcome(manifest=manifest, archive_bytes=out.stat().st_size)


def _dump_in_snapshot(url: str, dump_path: Path) -> tuple[Manifest, list[str]]:
    """Counts and photo rows read in one snapshot, and ``pg_dump`` taken in that same snapshot."""
    with psycopg.connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        bindir = client_bindir(_server_major(conn))
        tables = table_counts(conn)
        named = _photo_paths(conn)
        versions = _versions(conn, bindir)
        # The snapshot lives while this transaction is open: pg_dump runs meanwhile.
        _tool(
            bindir,
            "pg_dump",
            ["--format=custom", f"--snapshot={snapshot[0]}", f"--file={dump_path}", f"--dbname={url}"],
        )
        conn.rollback()
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions,
        tables=tables,
        dump={"name": DUMP, "bytes": dump_path.stat().st_size, "sha256": _sha256_file(dump_path)},
    )
    return manifest, named


def _hashed_photos(root: Path, named: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    found, missing = [], []
    for relative in named:
        path = root / relative
        if path.is_file():
            found.append({"path": relative, "bytes": path.stat().st_size, "sha256": _sha256_file(path)})
        else:
            missing.append(relative)
    return found, missing


def _write_archive(target: Path, manifest: Manifest, dump_path: Path, root: Path, progress: bool) -> None:
    total = manifest.dump["bytes"] + sum(p["bytes"] for p in manifest.photos)
    # 1 MiB copy buffers: tarfile's default of 16 KiB makes writing photos CPU-bound.
    with (
        tarfile.TarFile(target, "w", format=tarfile.PAX_FORMAT, copybufsize=_BLOCK) as tar,
        _bar(total, "备份 backup", progress) as bar,
    ):
        body = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), int(datetime.now(UTC).timestamp()), 0o600
        tar.addfile(info, io.BytesIO(body))
        for name, path, size in [(DUMP, dump_path, manifest.dump["bytes"])] + [
            (p["path"], root / p["path"], p["bytes"]) for p in manifest.photos
        ]:
            info = tarfile.TarInfo(name)  # no owner names: a restore's files belong to whoever restores
            info.size, info.mtime, info.mode = size, int(path.stat().st_mtime), 0o640
            with path.open("rb") as f:
                tar.addfile(info, f)
            bar.update(size)


# -- reading an archive -------------------------------------------------------------------------
@contextmanager
def _members(archive: Path) -> Iterator[tuple[Manifest, Iterator[tuple[tarfile.TarInfo, IO[bytes]]]]]:
    """The manifest (the first member) and an iterator over the other members, read in one pass."""
    if not archive.is_file():
        raise InvalidInput(f"archive {archive} does not exist", field="archive")
    try:
        tar = tarfile.open(archive, "r:")  # noqa: SIM115 (closed by the with block below)
    except tarfile.TarError as e:
        raise InvalidInput(f"{archive} is not a wuye backup archive (tar): {e}", field="archive") from e
    with tar:
        first = tar.next()
        if first is None or first.name != MANIFEST:
            raise InvalidInput(f"{archive} does not start with {MANIFEST}: not a wuye backup", field="archive")
        reader = tar.extractfile(first)
        assert reader is not None
        manifest = Manifest.from_json(reader.read())

        def rest() -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
            try:
                while (member := tar.next()) is not None:  # on from the manifest, one pass
                    data = tar.extractfile(member)
                    if data is not None:
                        yield member, data
            except (tarfile.TarError, EOFError, OSError) as e:
                raise InvalidInput(f"{archive} is damaged: {e}", field="archive") from e

        yield manifest, rest()


def _copy_hashed(source: IO[bytes], target: IO[bytes], bar: tqdm) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: source.read(_BLOCK), b""):
        digest.update(block)
        target.write(block)
        bar.update(len(block))
    return digest.hexdigest()


def _safe_photo_path(root: Path, name: str) -> Path:
    """Where a photo member goes: only under ``root/photos``, never elsewhere (no ``..``)."""
    target = (root / name).resolve()
    if not name.startswith("photos/") or root.resolve() / "photos" not in target.parents:
        raise InvalidInput(f"archive member {name!r} is not a photo path", field="archive")
    return target


def _unpack(
    archive: Path,
    work: Path,
    *,
    photo_root: Path | None,
    progress: bool,
    label: str,
    on_dump: Callable[[Path], None] | None = None,
) -> tuple[Manifest, list[str]]:
    """Read the archive once: the dump to ``work/database.dump`` and each photo under
    ``photo_root`` (or nowhere, for a check), every checksum compared with the manifest.
    ``on_dump`` is called with the dump as soon as it is unpacked and its checksum matched (the
    restore starts loading it while the photos are still being read)."""
    problems: list[str] = []
    with _members(archive) as (manifest, members):
        expected = {p["path"]: p for p in manifest.photos}
        seen: set[str] = set()
        total = manifest.dump["bytes"] + sum(p["bytes"] for p in manifest.photos)
        with _bar(total, label, progress) as bar:
            for member, data in members:
                if member.name == DUMP:
                    with (work / DUMP).open("wb") as f:
                        got = _copy_hashed(data, f, bar)
                    if got != manifest.dump["sha256"]:
                        problems.append(f"{DUMP}: sha256 {got} differs from the manifest's {manifest.dump['sha256']}")
                    elif on_dump is not None:
                        on_dump(work / DUMP)
                    seen.add(DUMP)
                    continue
                if member.name not in expected:
                    problems.append(f"{member.name}: in the archive but not in the manifest")
                    continue
                seen.add(member.name)
                problems += _unpack_photo(member.name, data, expected[member.name], photo_root, bar)
    problems += [f"{name}: in the manifest but not in the archive" for name in [DUMP, *expected] if name not in seen]
    return manifest, problems


def _unpack_photo(
    name: str, data: IO[bytes], expected: dict[str, Any], photo_root: Path | None, bar: tqdm
) -> list[str]:
    if photo_root is None:
        got = _copy_hashed(data, io.BytesIO(), bar)  # a check reads and hashes only
    else:
        # Written plainly here; restore() makes the whole staging directory durable with one
        # syncfs before moving it into place (a thousand single fsyncs cost seconds).
        target = _safe_photo_path(photo_root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            got = _copy_hashed(data, f, bar)
    return (
        [] if got == expected["sha256"] else [f"{name}: sha256 {got} differs from the manifest's {expected['sha256']}"]
    )


def check(archive: Path, *, progress: bool = False) -> Outcome:
    """Verify an archive without restoring it: manifest, every checksum, and the dump's table of
    contents read by ``pg_restore --list``."""
    with tempfile.TemporaryDirectory(dir=archive.resolve().parent, prefix=".wuye-check-") as work:
        manifest, problems = _unpack(archive, Path(work), photo_root=None, progress=progress, label="校验 check")
        dump = Path(work) / DUMP
        if dump.exists():
            bindir = client_bindir(_manifest_major(manifest))
            listed = subprocess.run(
                [str(bindir / "pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=False
            )
            if listed.returncode != 0:
                problems.append(f"{DUMP}: pg_restore cannot read it: {listed.stderr.strip()}")
            else:
                problems += _tables_in_dump(listed.stdout, manifest)
    return Outcome(manifest=manifest, archive_bytes=archive.stat().st_size, problems=problems)


def _manifest_major(manifest: Manifest) -> int | None:
    head = manifest.versions.get("postgresql", "").split(".")[0]
    return int(head) if head.isdigit() else None


def _tables_in_dump(listing: str, manifest: Manifest) -> list[str]:
    """Every table of the manifest has its data in the dump's table of contents."""
    data = set()
    for line in listing.splitlines():
        parts = line.split()
        # "1234; 0 16390 TABLE DATA public cases postgres"
        if len(parts) >= 6 and parts[3:5] == ["TABLE", "DATA"]:
            data.add(f"{parts[5]}.{parts[6]}")
    return [f"table {t}: no data in the dump" for t, n in manifest.tables.items() if n and t not in data]


# -- restore ------------------------------------------------------------------------------------
def is_empty(conn: psycopg.Connection, root: Path) -> list[str]:
    """What makes a restore target non-empty: tables of ours in the database, photo files."""
    found = []
    tables = conn.execute(_TABLES).fetchall()
    if tables:
        found.append(f"the database has {len(tables)} table(s) ({', '.join(f'{s}.{t}' for s, t in tables[:5])} …)")
    files = photos.stored_files(root)
    if files:
        found.append(f"{root / 'photos'} holds {len(files)} file(s)")
    return found


def restore(
    url: str,
    root: Path,
    archive: Path,
    *,
    force: bool = False,
    recreate: Callable[[], str] | None = None,
    progress: bool = False,
) -> Outcome:
    """Restore ``archive`` into the database at ``url`` and the photo store under ``root``, then
    verify both against the manifest. A non-empty target is refused unless ``force``: then the
    database is made anew by ``recreate`` (the embedded cluster drops and creates it) or cleaned
    by ``pg_restore --clean``, and the photo store emptied."""
    with psycopg.connect(url, autocommit=True) as conn:
        occupied = is_empty(conn, root)
        major = _server_major(conn)
    if occupied and not force:
        raise Conflict(
            "the restore target is not empty: " + "; ".join(occupied) + " — restore into an empty WUYE_HOME or "
            "database, or pass --force to replace what is there",
            field="target",
        )
    clean = False
    if occupied:
        if recreate is not None:
            url = recreate()
        else:
            clean = True
        shutil.rmtree(root / "photos", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    # Photos are unpacked into a staging directory beside the store and moved into place only
    # after pg_restore (one transaction) succeeded: a bad archive or a failed restore writes nothing.
    with tempfile.TemporaryDirectory(dir=root, prefix=".wuye-restore-") as work:
        staging = Path(work)
        with _Loading(client_bindir(major), url, clean=clean) as loading:
            manifest, problems = _unpack(
                archive, staging, photo_root=staging, progress=progress, label="恢复 restore", on_dump=loading.start
            )
            if problems:
                raise InvalidInput(
                    "the archive does not match its manifest: " + "; ".join(problems[:10]), field="archive"
                )
            loading.commit()
        if (staging / "photos").is_dir():
            _sync_filesystem(staging)
            shutil.rmtree(root / "photos", ignore_errors=True)
            os.replace(staging / "photos", root / "photos")
            photos.fsync_dir(root)
    problems = verify(url, root, manifest, rehash=False)
    return Outcome(manifest=manifest, problems=problems, archive_bytes=archive.stat().st_size)


class _Loading:
    """The dump loaded into the target while the photos are still being unpacked, in one
    transaction that commits only when :meth:`commit` is called (every checksum matched): pg_restore
    writes the SQL script, psql runs it after a BEGIN and ends it with COMMIT, or with ROLLBACK when
    the block fails. The two cores both work, and a bad archive still restores nothing."""

    def __init__(self, bindir: Path, url: str, *, clean: bool) -> None:
        self.bindir, self.url, self.clean = bindir, url, clean
        self.restore: subprocess.Popen[bytes] | None = None
        self.psql: subprocess.Popen[bytes] | None = None
        self.feeder: threading.Thread | None = None

    def start(self, dump: Path) -> None:
        """Begin loading ``dump`` (called by the unpacking as soon as its checksum matched)."""
        args = ["--no-owner", "--file=-", str(dump)]
        self.restore = subprocess.Popen(
            [str(self.bindir / "pg_restore"), *(["--clean", "--if-exists"] if self.clean else []), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.psql = subprocess.Popen(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={self.url}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # only warnings and errors on stderr: --clean's NOTICEs would fill the pipe nobody reads yet
            env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"},
        )
        assert self.psql.stdin is not None and self.restore.stdout is not None
        self.psql.stdin.write(b"BEGIN;\n")
        self.feeder = threading.Thread(target=self._feed, daemon=True)
        self.feeder.start()

    def _feed(self) -> None:
        assert self.psql is not None and self.psql.stdin is not None
        assert self.restore is not None and self.restore.stdout is not None
        try:
            shutil.copyfileobj(self.restore.stdout, self.psql.stdin, _BLOCK)
        except BrokenPipeError:  # psql stopped at an error (its stderr says which): stop pg_restore too
            self.restore.kill()

    def commit(self) -> None:
        """Wait for the script, then COMMIT; raise with the tools' own words when either failed."""
        if self.restore is None or self.psql is None or self.feeder is None:
            raise InvalidInput(f"the archive holds no {DUMP}", field="archive")
        self.feeder.join()
        restore_err = self.restore.communicate()[1].decode(errors="replace").strip()
        failed = self.restore.returncode != 0
        with contextlib.suppress(BrokenPipeError, ValueError):
            assert self.psql.stdin is not None
            self.psql.stdin.write(b"ROLLBACK;\n" if failed else b"COMMIT;\n")
        psql_err = self.psql.communicate()[1].decode(errors="replace").strip()
        if failed or self.psql.returncode != 0:
            said = " | ".join(line for line in (restore_err + "\n" + psql_err).splitlines()[-4:] if line)
            raise ConfigError(f"pg_restore/psql failed, nothing was restored: {said}")

    def __enter__(self) -> _Loading:
        return self

    def __exit__(self, *exc: object) -> None:
        # Left without commit (a bad photo, an error): psql's transaction is rolled back.
        for proc in (self.restore, self.psql):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def verify(url: str, root: Path, manifest: Manifest, *, rehash: bool = True) -> list[str]:
    """Compare a restored database's row counts and the photo files with the manifest: each file
    present with its size, and with ``rehash`` read again and its sha256 compared (a restore hashes
    the very bytes it writes while unpacking, so it checks presence and size after the move)."""
    with psycopg.connect(url) as conn:
        counts = table_counts(conn)
    problems = [
        f"table {t}: {counts.get(t)} rows, the manifest says {n}"
        for t, n in manifest.tables.items()
        if counts.get(t) != n
    ]
    problems += [f"table {t}: not in the manifest" for t in counts if t not in manifest.tables]
    for p in manifest.photos:
        path = root / p["path"]
        if not path.is_file() or path.stat().st_size != p["bytes"]:
            problems.append(f"{p['path']}: missing or not {p['bytes']} bytes after the restore")
        elif rehash and (got := _sha256_file(path)) != p["sha256"]:
            problems.append(f"{p['path']}: {got}, the manifest says {p['sha256']}")
    return problems
