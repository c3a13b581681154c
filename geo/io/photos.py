"""Photos (of cases; remediation tasks use :func:`checked` and :func:`new_path` too): type checked
by content (not by name), size-limited, stored under the state directory with server-chosen names
(no path from the client ever reaches the disk)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg

from geo.access.scope import Principal
from geo.errors import InvalidInput, NotFound, PayloadTooLarge

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
    raise InvalidInput("the photo must be a JPEG, PNG or WebP image", field="photo")


def checked(data: bytes, max_bytes: int) -> tuple[str, str]:
    """(content type, suffix) of an upload within ``max_bytes`` (413 above), not empty, an image by content."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the photo is {len(data)} bytes, over the limit of {max_bytes} (WUYE_MAX_PHOTO_BYTES)", field="photo"
        )
    if not data:
        raise InvalidInput("the photo is empty", field="photo")
    return sniff(data)


def new_path(root: Path, *folders: str, suffix: str) -> Path:
    """A fresh server-chosen file name under ``root/photos/<folders>`` (the folder is created)."""
    folder = root.joinpath("photos", *folders)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (secrets.token_hex(12) + suffix)


def store(
    conn: psycopg.Connection, principal: Principal, *, case_id: int, data: bytes, kind: str, root: Path, max_bytes: int
) -> dict[str, Any]:
    """Check and save one photo of a case; the row and the file are written together."""
    if kind not in KINDS:
        raise InvalidInput(f"kind '{kind}' must be one of {', '.join(KINDS)}", field="kind")
    content_type, suffix = checked(data, max_bytes)
    path = new_path(root, str(case_id), suffix=suffix)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO case_photos (case_id, kind, path, content_type, bytes, actor) VALUES (%s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            [case_id, kind, str(path.relative_to(root)), content_type, len(data), principal.actor],
        ).fetchone()
        assert row is not None
        path.write_bytes(data)
    return {"id": int(row[0]), "kind": kind, "content_type": content_type, "bytes": len(data)}


def photo_file(conn: psycopg.Connection, *, case_id: int, photo_id: int, root: Path) -> tuple[Path, str]:
    """The stored file and content type of one photo of a case."""
    row = conn.execute(
        "SELECT path, content_type FROM case_photos WHERE id = %s AND case_id = %s", [photo_id, case_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"photo {photo_id} does not exist", field="photo_id")
    return root / row[0], str(row[1])


def photo_list(conn: psycopg.Connection, case_id: int) -> list[dict[str, Any]]:
    """Photos of a case, oldest first."""
    rows = conn.execute(
        "SELECT id, kind, content_type, bytes, actor, created_at FROM case_photos WHERE case_id = %s ORDER BY id",
        [case_id],
    ).fetchall()
    return [
        {"id": r[0], "kind": r[1], "content_type": r[2], "bytes": r[3], "actor": r[4], "created_at": r[5].isoformat()}
        for r in rows
    ]
