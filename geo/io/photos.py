"""Photos (of cases; remediation tasks use :func:`checked`, :func:`new_path` and :func:`saved` too):
type checked by content (not by name), size-limited, stored under the state directory with
server-chosen names (no path from the client ever reaches the disk).

A photo's file is on disk before its row commits: written to a temporary name, fsync'ed, renamed
into place and its directory fsync'ed (:func:`write_durable`), then the row is inserted; when the
transaction fails the file is removed again (:func:`saved`). A process killed between the two
leaves a file without a row, never a row without a file; :func:`audit` finds both kinds (``wuye
check``) and :func:`repair` removes them (``wuye check --repair``).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.access.scope import Principal
from geo.cases import workflow
from geo.errors import InvalidInput, NotFound, PayloadTooLarge
from geo.steps import Statement, Steps

# Recognised by their first bytes: what a phone camera or a scanner produces.
SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"WEBP", 8, "image/webp", ".webp"),
)
KINDS = ("report", "handled", "before", "after")


def sniff(data: bytes) -> tuple[str, str]:
    """(content type, suffix) of an image, or InvalidInput for anything else."""
    for magic, offset, content_type, suffix in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (offset == 0 or data[:4] == b"RIFF"):
            return content_type, suffix
    raise InvalidInput(
        "the photo must be a JPEG, PNG or WebP image", field="photo", reason_zh="照片须为 JPEG、PNG 或 WebP 图片"
    )


def checked(data: bytes, max_bytes: int) -> tuple[str, str]:
    """(content type, suffix) of an upload within ``max_bytes`` (413 above), not empty, an image by content."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the photo is {len(data)} bytes, over the limit of {max_bytes} (WUYE_MAX_PHOTO_BYTES)",
            field="photo",
            reason_zh=f"照片超过 {max_bytes} 字节的上限",
        )
    if not data:
        raise InvalidInput("the photo is empty", field="photo", reason_zh="照片是空文件")
    return sniff(data)


PHOTO_TABLES = ("case_photos", "remediation_photos", "publicity_photos")
TEMP_SUFFIX = ".part"


def new_path(root: Path, *folders: str, suffix: str) -> Path:
    """A fresh server-chosen file name under ``root/photos/<folders>`` (the folder is created, and
    each new directory's parent fsync'ed so that the entry survives a power cut)."""
    folder = root.joinpath("photos", *folders)
    if not folder.is_dir():
        created = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        for made in created:
            fsync_dir(made.parent)
    return folder / (secrets.token_hex(12) + suffix)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that after a crash the file is either whole or absent: a
    temporary file beside it, fsync'ed, renamed into place, the directory fsync'ed."""
    temp = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


@contextmanager
def saved(path: Path, data: bytes) -> Iterator[None]:
    """Write the file durably, then run the block that records it (a transaction): when the block
    fails, the file is removed, so a rolled-back row leaves no file behind."""
    write_durable(path, data)
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def existing(root: Path, relative: str, photo_id: int) -> Path:
    """The file of a photo row, or 404 naming the photo when the file is gone (a restore without
    the photos, a disk cleaned by hand): never a 500."""
    path = root / relative
    if not path.is_file():
        raise NotFound(
            f"photo {photo_id}'s file is missing from the photo store (`wuye check` lists such rows)",
            field="photo_id",
            reason_zh=f"照片 {photo_id} 的文件已丢失",
        )
    return path


def store(
    conn: psycopg.Connection, principal: Principal, *, case_id: int, data: bytes, kind: str, root: Path, max_bytes: int
) -> dict[str, Any]:
    """Check and save one photo of a case; the row and the file are written together."""
    if kind not in KINDS:
        raise InvalidInput(f"kind '{kind}' must be one of {', '.join(KINDS)}", field="kind")
    content_type, suffix = checked(data, max_bytes)
    path = new_path(root, str(case_id), suffix=suffix)
    with saved(path, data), conn.transaction():
        row = conn.execute(
            "INSERT INTO case_photos (case_id, kind, path, content_type, bytes, actor) VALUES (%s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            [case_id, kind, str(path.relative_to(root)), content_type, len(data), principal.actor],
        ).fetchone()
        assert row is not None
    return {"id": int(row[0]), "kind": kind, "content_type": content_type, "bytes": len(data)}


def photo_file(conn: psycopg.Connection, *, case_id: int, photo_id: int, root: Path) -> tuple[Path, str]:
    """The stored file and content type of one photo of a case."""
    row = conn.execute(
        "SELECT path, content_type FROM case_photos WHERE id = %s AND case_id = %s", [photo_id, case_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"photo {photo_id} does not exist", field="photo_id")
    return existing(root, row[0], photo_id), str(row[1])


PHOTO_COLUMNS = "p.id, p.kind, p.content_type, p.bytes, p.actor, p.created_at"  # as photo_row reads them


def photo_row(r: tuple[Any, ...]) -> dict[str, Any]:
    """A photo's listing from a row of :data:`PHOTO_COLUMNS`."""
    return {
        "id": r[0],
        "kind": r[1],
        "content_type": r[2],
        "bytes": r[3],
        "actor": r[4],
        "created_at": r[5].isoformat(),
    }


def case_photos(principal: Principal, code: str, *, district_code: str) -> Steps[list[dict[str, Any]]]:
    """The photos of a case the caller may see (the rule of geo.cases.workflow.case_for_photos),
    oldest first, in one statement; 404 "not in your area" otherwise."""
    condition, values = workflow.full_view(principal)
    stmt = sql.SQL(
        "SELECT c.id, {photo} FROM cases c LEFT JOIN case_photos p ON p.case_id = c.id "
        "WHERE c.code = %(code)s AND c.district_code = %(district)s AND {vis} ORDER BY p.id"
    ).format(photo=sql.SQL(PHOTO_COLUMNS), vis=condition)
    rows = yield Statement(stmt, {**values, "code": code, "district": district_code})
    if not rows:
        raise workflow.not_in_your_area(code)
    return [photo_row(r[1:]) for r in rows if r[1] is not None]


def photo_list(conn: psycopg.Connection, case_id: int) -> list[dict[str, Any]]:
    """Photos of a case, oldest first."""
    stmt = sql.SQL("SELECT {} FROM case_photos p WHERE p.case_id = %s ORDER BY p.id").format(sql.SQL(PHOTO_COLUMNS))
    rows = conn.execute(stmt, [case_id]).fetchall()
    return [photo_row(r) for r in rows]


@dataclass
class PhotoAudit:
    """What :func:`audit` found: rows whose file is missing, files no row names (old enough to be
    orphans), and files too recent to judge (an upload may be committing right now)."""

    missing: list[tuple[str, int, str]] = field(default_factory=list)  # (table, id, path)
    orphans: list[Path] = field(default_factory=list)
    recent: list[Path] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """How many rows and files are out of step."""
        return len(self.missing) + len(self.orphans)


def _rows(conn: psycopg.Connection) -> list[tuple[str, int, str]]:
    rows = conn.execute(
        "SELECT 'case_photos', id, path FROM case_photos UNION ALL "
        "SELECT 'remediation_photos', id, path FROM remediation_photos UNION ALL "
        "SELECT 'publicity_photos', id, path FROM publicity_photos ORDER BY 1, 2"
    ).fetchall()
    return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


def stored_files(root: Path) -> list[Path]:
    """Every file under ``root/photos`` (temporary ones too), sorted."""
    folder = root / "photos"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def audit(conn: psycopg.Connection, root: Path, *, min_age_s: float = 60.0) -> PhotoAudit:
    """Compare the photo rows with the files under ``root/photos``. A file without a row younger
    than ``min_age_s`` is only listed as recent: its upload may still be about to commit."""
    found = PhotoAudit()
    rows = _rows(conn)
    named = {path for _, _, path in rows}
    found.missing = [r for r in rows if not (root / r[2]).is_file()]
    horizon = time.time() - min_age_s
    for path in stored_files(root):
        if str(path.relative_to(root)) in named:
            continue
        (found.orphans if path.stat().st_mtime <= horizon else found.recent).append(path)
    return found


def repair(conn: psycopg.Connection, found: PhotoAudit) -> None:
    """Delete the rows whose file is missing (one transaction) and the orphan files."""
    with conn.transaction():
        for table in PHOTO_TABLES:
            ids = [i for t, i, _ in found.missing if t == table]
            if ids:
                conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(sql.Identifier(table)), [ids])
    for path in found.orphans:
        path.unlink(missing_ok=True)
