"""Bulk import of layer files into PostGIS: read, reproject, validate, COPY in one transaction.

Every feature is validated against the layer spec before anything is
written; an invalid row rejects the whole file unless ``skip_invalid``.
Rows travel to PostGIS through ``COPY … FROM STDIN (FORMAT csv)`` in chunks
(hex EWKB geometry), which is what makes a million points take seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from tqdm import tqdm

from geo.cases.workflow import ROUTING_LAYERS, assign, reroute_events
from geo.errors import Conflict, ImportRejected, InvalidInput, UnknownLayer
from geo.io.fileio import FileData, read_layer_file
from geo.spatial import crs as crsmod
from geo.spatial.reference import district_boundary, reproject, unit_codes
from geo.spatial.validate import Problem, Validated, validate_frame
from layers.catalogue import Catalogue, LayerSpec

Mode = Literal["append", "upsert", "replace"]
MODES: tuple[str, ...] = ("append", "upsert", "replace")
CHUNK_ROWS = 50_000
# From this many rows on, indexes are dropped before COPY and rebuilt after:
# a sorted GiST build is several times cheaper than a million index inserts.
BULK_ROWS = 100_000
MAX_PROBLEMS_IN_MESSAGE = 20


@dataclass
class ImportResult:
    """What an import did."""

    layer: str
    batch_id: int | None
    rows_read: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def write_report(problems: list[Problem], path: Path) -> None:
    """Write the problems as a UTF-8 CSV (row, field, reason) that opens in Excel."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "field", "reason"])
        writer.writerows([p.row, p.field, p.reason] for p in problems)


def _rejection(layer: str, problems: list[Problem], rows: int) -> ImportRejected:
    bad_rows = len({p.row for p in problems})
    shown = "; ".join(f"row {p.row} {p.field}: {p.reason}" for p in problems[:MAX_PROBLEMS_IN_MESSAGE])
    more = len(problems) - MAX_PROBLEMS_IN_MESSAGE
    tail = f"; … and {more} more" if more > 0 else ""
    return ImportRejected(
        f"{bad_rows} of {rows} rows of layer '{layer}' are invalid, nothing was imported: {shown}{tail}",
        problems=[p.__dict__ for p in problems],
    )


def _pg_array(items: list[str] | None) -> str | None:
    if not items:
        return None
    quoted = ('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return "{" + ",".join(quoted) + "}"


def _copy_frame(
    spec: LayerSpec, valid: Validated, keep: np.ndarray, district_code: str, batch_id: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns in COPY order (code, district_code, batch_id, attributes) and the geometries, kept rows."""
    out = valid.values.loc[keep].copy()
    for attr in spec.attributes:
        if attr.type == "text_list":
            out[attr.name] = out[attr.name].map(_pg_array)
    out.insert(1, "district_code", district_code)
    out.insert(2, "batch_id", batch_id)
    return out, valid.geometry[keep]


_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _csv_chunks(frame: pd.DataFrame, geoms: np.ndarray) -> Iterator[tuple[int, bytes]]:
    """COPY-ready CSV chunks. Arrow's C++ writer is several times faster than pandas' to_csv, and
    writes nulls as empty unquoted fields, which is what COPY's CSV format reads as NULL."""
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS].copy()
        part["geom"] = shapely.to_wkb(geoms[start : start + CHUNK_ROWS], hex=True, include_srid=True)
        buf = io.BytesIO()
        pacsv.write_csv(pa.Table.from_pandas(part, preserve_index=False), buf, _CSV_OPTIONS)
        yield len(part), buf.getvalue()


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: list[str],
    frame: pd.DataFrame,
    geoms: np.ndarray,
    progress: bool,
    label: str,
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, [*columns, "geom"]))
    )
    # The queued writer sends from a thread, so the next chunk is formatted
    # here while the server parses the last one (two cores, both busy).
    with (
        tqdm(total=len(frame), desc=label, unit="行", disable=not progress, leave=False) as bar,
        conn.cursor() as cur,
        cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy,
    ):
        for n, text in _csv_chunks(frame, geoms):
            copy.write(text)
            bar.update(n)


def _upsert(
    conn: psycopg.Connection,
    spec: LayerSpec,
    columns: list[str],
    frame: pd.DataFrame,
    geoms: np.ndarray,
    progress: bool,
) -> tuple[int, int]:
    columns = [*columns, "geom"]
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE _wuye_stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            cols, sql.Identifier(spec.table)
        )
    )
    _copy(conn, "_wuye_stage", columns[:-1], frame, geoms, progress, f"暂存 {spec.title_zh}")
    changing = [c for c in columns if c not in ("code", "district_code", "batch_id")]
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in [*changing, "batch_id"]
    )
    old = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in changing)
    new = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in changing)
    # Rows whose values did not change keep their version: only real changes count.
    stmt = sql.SQL(
        "WITH up AS (INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM _wuye_stage "
        "ON CONFLICT (code) DO UPDATE SET {assign}, version = t.version + 1, updated_at = now() "
        "WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
    ).format(table=sql.Identifier(spec.table), cols=cols, assign=assignments, old=old, new=new)
    row = conn.execute(stmt).fetchone()
    assert row is not None
    # ON COMMIT DROP is not enough when we run inside a caller's longer transaction.
    conn.execute("DROP TABLE _wuye_stage")
    return int(row[0]), int(row[1])


def _start_batch(
    conn: psycopg.Connection,
    spec: LayerSpec,
    *,
    district_code: str,
    source: str,
    fmt: str,
    mode: str,
    srid: int,
    actor: str,
    rows: int,
) -> int:
    row = conn.execute(
        "INSERT INTO import_batches (district_code, layer, source, format, mode, source_crs, actor,"
        " rows_read) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [district_code, spec.name, source, fmt, mode, f"EPSG:{srid}", actor, rows],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _sole_owner(conn: psycopg.Connection, spec: LayerSpec, district_code: str) -> bool:
    """True when TRUNCATE may replace DELETE: only this district's rows, no table references ours."""
    row = conn.execute(
        sql.SQL(
            "SELECT NOT EXISTS (SELECT 1 FROM {} WHERE district_code <> %s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = %s::regclass)"
        ).format(sql.Identifier(spec.table)),
        [district_code, spec.table],
    ).fetchone()
    return bool(row and row[0])


def _clear(conn: psycopg.Connection, spec: LayerSpec, district_code: str) -> int:
    table = sql.Identifier(spec.table)
    if _sole_owner(conn, spec, district_code):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        conn.execute(sql.SQL("TRUNCATE {}").format(table))  # no dead tuples left behind
        return int(row[0]) if row else 0
    return conn.execute(sql.SQL("DELETE FROM {} WHERE district_code = %s").format(table), [district_code]).rowcount


@contextmanager
def _indexes_rebuilt(conn: psycopg.Connection, spec: LayerSpec, rows: int) -> Iterator[None]:
    """For bulk loads, drop the GiST index and the code constraint, and build them again after."""
    if rows < BULK_ROWS:
        yield
        return
    table = sql.Identifier(spec.table)
    gist, key = sql.Identifier(f"{spec.table}_geom_gist"), sql.Identifier(f"{spec.table}_code_key")
    batch = sql.Identifier(f"{spec.table}_batch_idx")
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}, {}").format(gist, batch))
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(table, key))
    yield
    conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE (code)").format(table, key))
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(gist, table))
    conn.execute(sql.SQL("CREATE INDEX {} ON {} (batch_id)").format(batch, table))


def _write(
    conn: psycopg.Connection,
    spec: LayerSpec,
    valid: Validated,
    keep: np.ndarray,
    *,
    mode: Mode,
    result: ImportResult,
    batch_id: int,
    district_code: str,
    progress: bool,
) -> None:
    frame, geoms = _copy_frame(spec, valid, keep, district_code, batch_id)
    columns = list(frame.columns)
    if mode == "replace":
        result.deleted = _clear(conn, spec, district_code)
    if mode == "upsert":
        result.inserted, result.updated = _upsert(conn, spec, columns, frame, geoms, progress)
        result.unchanged = len(frame) - result.inserted - result.updated
        return
    try:
        with _indexes_rebuilt(conn, spec, len(frame)):
            _copy(conn, spec.table, columns, frame, geoms, progress, f"导入 {spec.title_zh}")
    except psycopg.errors.UniqueViolation as e:
        detail = e.diag.message_detail or str(e)
        raise Conflict(
            f"layer '{spec.name}': {detail} — use --mode upsert to update existing features "
            "or --mode replace to load the file instead of what is there",
            field="code",
        ) from e
    result.inserted = len(frame)


def import_data(
    conn: psycopg.Connection,
    spec: LayerSpec,
    data: FileData,
    *,
    source: str,
    district_code: str,
    mode: Mode = "append",
    actor: str = "cli",
    skip_invalid: bool = False,
    progress: bool = False,
) -> ImportResult:
    """Validate ``data`` against ``spec`` and load it in one transaction.

    Raises :class:`ImportRejected` (nothing written) when a row is invalid and
    ``skip_invalid`` is false; otherwise invalid rows are left out and listed.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode '{mode}' is not one of {', '.join(MODES)}", field="mode")
    if spec.change == "workflow":
        raise InvalidInput(f"layer '{spec.name}' changes only through its workflow", field="layer")
    # One transaction for the reads that validate and the writes: a savepoint
    # when the caller already has one open.
    with conn.transaction():
        result = _validate_and_write(
            conn,
            spec,
            data,
            source=source,
            district_code=district_code,
            mode=mode,
            actor=actor,
            skip_invalid=skip_invalid,
            progress=progress,
        )
    return result


def _validate_and_write(
    conn: psycopg.Connection,
    spec: LayerSpec,
    data: FileData,
    *,
    source: str,
    district_code: str,
    mode: Mode,
    actor: str,
    skip_invalid: bool,
    progress: bool,
) -> ImportResult:
    geoms = reproject(data.geometry, data.srid)
    district = None if spec.name == "districts" else district_boundary(conn, district_code)
    if district is None and spec.name != "districts":
        raise InvalidInput(
            f"no outline of district {district_code} is loaded, so positions cannot be checked: "
            "import the districts layer first (`wuye demo` loads the demo district)",
            field="layer",
        )
    valid = validate_frame(
        spec,
        data.frame,
        geoms,
        district=district,
        district_label=f"district {district_code}",
        unit_codes=unit_codes(conn, district_code),
    )
    # The reader's reason (an unreadable ring, a non-numeric lon) beats "geometry missing".
    seen = {(p.row, p.field) for p in data.problems}
    problems = sorted(data.problems + [p for p in valid.problems if (p.row, p.field) not in seen])
    bad = valid.bad.copy()
    bad[[p.row - 1 for p in data.problems]] = True
    result = ImportResult(
        layer=spec.name,
        batch_id=None,
        rows_read=len(data.frame),
        rejected=int(bad.sum()),
        problems=problems,
        ignored_columns=data.ignored_columns,
    )
    if problems and not skip_invalid:
        raise _rejection(spec.name, problems, len(data.frame))
    result.batch_id = _start_batch(
        conn,
        spec,
        district_code=district_code,
        source=source,
        fmt=data.format,
        mode=mode,
        srid=data.srid,
        actor=actor,
        rows=len(data.frame),
    )
    _write(
        conn,
        spec,
        valid,
        ~bad,
        mode=mode,
        result=result,
        batch_id=result.batch_id,
        district_code=district_code,
        progress=progress,
    )
    if spec.name in ROUTING_LAYERS:
        # the boundaries changed wholesale: re-route every open case, with an event for each that moves
        changes = assign(conn, district_code=district_code, ids=None)
        reroute_events(
            conn,
            changes,
            district_code=district_code,
            actor=actor,
            reason=f"{spec.title_zh} 导入 (import batch {result.batch_id})",
        )
    conn.execute(
        "UPDATE import_batches SET rows_inserted = %s, rows_updated = %s, rows_deleted = %s,"
        " rows_rejected = %s, finished_at = clock_timestamp() WHERE id = %s",
        [result.inserted, result.updated, result.deleted, result.rejected, result.batch_id],
    )
    return result


def import_file(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    path: Path,
    *,
    layer: str,
    district_code: str,
    crs: str | None = None,
    mode: Mode = "append",
    actor: str = "cli",
    skip_invalid: bool = False,
    progress: bool = False,
) -> ImportResult:
    """Read ``path`` (GeoJSON, GeoPackage, Shapefile, zipped Shapefile, CSV) and import it."""
    if layer not in catalogue:
        raise UnknownLayer(f"layer '{layer}' is not in the catalogue ({', '.join(catalogue)})", field="layer")
    spec = catalogue[layer]
    data = read_layer_file(path, spec, crs=crs)
    return import_data(
        conn,
        spec,
        data,
        source=str(path),
        district_code=district_code,
        mode=mode,
        actor=actor,
        skip_invalid=skip_invalid,
        progress=progress,
    )


def frame_data(
    frame: pd.DataFrame, geometry: np.ndarray, *, srid: int = crsmod.STORAGE_SRID, fmt: str = "generated"
) -> FileData:
    """Wrap in-memory columns and geometries (the demo generator's) as importable data."""
    return FileData(
        frame=frame.reset_index(drop=True), geometry=np.asarray(geometry, dtype=object), srid=srid, format=fmt
    )
