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

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Jsonb
from tqdm import tqdm

from geo.cases.workflow import ROUTING_LAYERS, assign, reroute_events
from geo.errors import Conflict, ImportRejected, InvalidInput, UnknownLayer
from geo.features.edits import properties_json
from geo.io import MODES, Mode
from geo.io.fileio import FileData, read_layer_file
from geo.spatial import crs as crsmod
from geo.spatial.reference import district_boundary, reproject, unit_codes, zone_codes
from geo.spatial.validate import Problem, Validated, validate_frame
from layers.catalogue import Catalogue, LayerSpec

CHUNK_ROWS = 50_000
# Geometries equal on this grid (degrees, about 1 cm) are the same: GeoJSON exports keep 7 decimals.
SAME_GRID_DEGREES = 1e-7
# Two points of one layer closer than this (m, in EPSG:4547) are listed as probable duplicates.
NEAR_DUPLICATE_M = 0.5
# A box prefilter in degrees (storage CRS) that holds 0.5 m at any latitude below 60°.
_NEAR_DEGREES = 1.2e-5
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
    warnings: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def write_report(problems: list[Problem], path: Path, warnings: list[Problem] | None = None) -> None:
    """Write the problems, then the warnings (``警告 warning: …``), as a UTF-8 CSV (row, field,
    reason) that opens in Excel."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "field", "reason"])
        writer.writerows([p.row, p.field, p.reason] for p in problems)
        writer.writerows([w.row, w.field, w.reason] for w in warnings or [])


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
        tqdm(total=len(frame), desc=label, unit="行", disable=not progress, leave=True) as bar,
        conn.cursor() as cur,
        cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy,
    ):
        for n, text in _csv_chunks(frame, geoms):
            copy.write(text)
            bar.update(n)


def _stage(
    conn: psycopg.Connection,
    spec: LayerSpec,
    columns: list[str],
    frame: pd.DataFrame,
    geoms: np.ndarray,
    progress: bool,
) -> None:
    """The file's valid rows in a temporary table shaped like the layer's (no indexes)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, [*columns, "geom"]))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE _wuye_stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            cols, sql.Identifier(spec.table)
        )
    )
    _copy(conn, "_wuye_stage", columns, frame, geoms, progress, f"暂存 {spec.title_zh}")
    # no ANALYZE: a never-analysed table is estimated from its size, which is enough for hash joins


def _history_insert() -> sql.Composable:
    return sql.SQL(
        "INSERT INTO feature_history (district_code, layer, feature_id, feature_code, version, operation,"
        " old_geom, new_geom, old_properties, new_properties, actor, batch_id) "
    )


def _foreign_codes(conn: psycopg.Connection, spec: LayerSpec, district_code: str) -> None:
    """Codes are unique across districts: a file naming another district's feature is a conflict."""
    rows = conn.execute(
        sql.SQL(
            "SELECT t.code, t.district_code FROM _wuye_stage s JOIN {} t ON t.code = s.code "
            "WHERE t.district_code <> %s ORDER BY t.code LIMIT 5"
        ).format(sql.Identifier(spec.table)),
        [district_code],
    ).fetchall()
    if rows:
        named = ", ".join(f"'{code}' (district {d})" for code, d in rows)
        raise Conflict(f"layer '{spec.name}': codes of another district's features: {named}", field="code")


def _update_changed(conn: psycopg.Connection, spec: LayerSpec, columns: list[str], params: dict[str, object]) -> int:
    """Rows whose values differ get them, a new version and a history row (old and new state);
    rows that did not change are not touched. A geometry is unchanged when equal on the grid of
    SAME_GRID_DEGREES: what a GeoJSON export keeps (7 decimals), so an exported and re-imported
    layer is all unchanged."""
    changing = [c for c in [*columns, "geom"] if c not in ("code", "district_code", "batch_id")]
    attrs = [c for c in changing if c != "geom"]
    ident = sql.Identifier
    # The changed rows are found by one join of the file with the layer (their old state kept in
    # ``c``), then updated by id: few rows, through the primary key.
    stmt = sql.SQL(
        "WITH c AS MATERIALIZED (SELECT t.id, {picked}, s.batch_id, t.geom AS old_geom, {old_props} AS old_p "
        "FROM {table} AS t JOIN _wuye_stage s ON s.code = t.code WHERE t.district_code = %(district)s "
        "AND (({old}) IS DISTINCT FROM ({new}) OR NOT (t.geom = s.geom OR "
        "ST_OrderingEquals(ST_SnapToGrid(t.geom, %(grid)s), ST_SnapToGrid(s.geom, %(grid)s))))), "
        "up AS (UPDATE {table} AS t SET {assign}, batch_id = c.batch_id, version = t.version + 1, "
        "updated_at = now() FROM c WHERE t.id = c.id "
        "RETURNING t.id, t.code, t.version, c.old_geom, t.geom AS new_geom, c.old_p, {new_props} AS new_p) "
        "{history} SELECT %(district)s, %(layer)s, id, code, version, 'update', old_geom, new_geom, old_p, new_p, "
        "%(actor)s, %(batch)s FROM up"
    ).format(
        table=ident(spec.table),
        picked=sql.SQL(", ").join(sql.SQL("s.{}").format(ident(c)) for c in changing),
        assign=sql.SQL(", ").join(sql.SQL("{} = c.{}").format(ident(c), ident(c)) for c in changing),
        old=sql.SQL(", ").join([sql.SQL("t.{}").format(ident(c)) for c in attrs] + [sql.SQL("NULL")]),
        new=sql.SQL(", ").join([sql.SQL("s.{}").format(ident(c)) for c in attrs] + [sql.SQL("NULL")]),
        old_props=properties_json(spec, "t"),
        new_props=properties_json(spec, "t"),
        history=_history_insert(),
    )
    return conn.execute(stmt, params).rowcount


def _many_new(conn: psycopg.Connection, spec: LayerSpec, rows: int) -> bool:
    """Whether the file may add BULK_ROWS or more (the planner's row estimate of the layer is the
    bound: a file barely larger than the layer cannot), before counting them exactly."""
    row = conn.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", [spec.table]).fetchone()
    return rows - (float(row[0]) if row else 0.0) >= BULK_ROWS


def _new_codes(conn: psycopg.Connection, spec: LayerSpec) -> int:
    """How many staged codes the layer does not have yet (a bulk insert rebuilds the indexes)."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM _wuye_stage s WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE t.code = s.code)"
        ).format(sql.Identifier(spec.table))
    ).fetchone()
    return int(row[0]) if row else 0


def _insert_new(conn: psycopg.Connection, spec: LayerSpec, columns: list[str]) -> int:
    cols = sql.SQL(", ").join(map(sql.Identifier, [*columns, "geom"]))
    return conn.execute(
        sql.SQL(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM _wuye_stage s "
            "WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.code = s.code)"
        ).format(table=sql.Identifier(spec.table), cols=cols)
    ).rowcount


def _delete_missing(conn: psycopg.Connection, spec: LayerSpec, params: dict[str, object]) -> int:
    """The district's features whose code is not in the file (nor in a rejected row of it) are
    deleted, each with a history row naming the import batch that removed it."""
    stmt = sql.SQL(
        "WITH gone AS (DELETE FROM {table} AS t WHERE t.district_code = %(district)s "
        "AND NOT EXISTS (SELECT 1 FROM _wuye_stage s WHERE s.code = t.code) AND t.code <> ALL(%(keep)s) "
        "RETURNING t.id, t.code, t.version, t.geom, {props} AS p) "
        "{history} SELECT %(district)s, %(layer)s, id, code, version + 1, 'delete', geom, NULL, p, NULL, "
        "%(actor)s, %(batch)s FROM gone"
    ).format(table=sql.Identifier(spec.table), props=properties_json(spec, "t"), history=_history_insert())
    return conn.execute(stmt, params).rowcount


def _merge(
    conn: psycopg.Connection,
    spec: LayerSpec,
    columns: list[str],
    frame: pd.DataFrame,
    geoms: np.ndarray,
    *,
    result: ImportResult,
    remove_missing: bool,
    keep_codes: list[str],
    actor: str,
    district_code: str,
    progress: bool,
) -> None:
    """Upsert and replace, matched by ``code``: changed rows updated (new version + history),
    unchanged rows left alone, new codes inserted; with ``remove_missing`` the codes not in the
    file deleted (history row each). Never delete-all-and-reinsert: identity and history stay."""
    _stage(conn, spec, columns, frame, geoms, progress)
    _foreign_codes(conn, spec, district_code)
    params: dict[str, object] = {
        "district": district_code,
        "layer": spec.name,
        "actor": actor,
        "batch": result.batch_id,
        "keep": keep_codes,
        "grid": SAME_GRID_DEGREES,
    }
    result.updated = _update_changed(conn, spec, columns, params)
    with _indexes_rebuilt(conn, spec, _new_codes(conn, spec) if _many_new(conn, spec, len(frame)) else 0):
        result.inserted = _insert_new(conn, spec, columns)
    result.unchanged = len(frame) - result.inserted - result.updated
    if remove_missing:
        result.deleted = _delete_missing(conn, spec, params)
    # ON COMMIT DROP is not enough when we run inside a caller's longer transaction.
    conn.execute("DROP TABLE _wuye_stage")


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
    district_code: str,
    actor: str,
    progress: bool,
) -> None:
    assert result.batch_id is not None
    frame, geoms = _copy_frame(spec, valid, keep, district_code, result.batch_id)
    columns = list(frame.columns)
    if mode in ("upsert", "replace"):
        rejected = valid.values.loc[~keep, "code"] if "code" in valid.values else pd.Series([], dtype=object)
        _merge(
            conn,
            spec,
            columns,
            frame,
            geoms,
            result=result,
            remove_missing=mode == "replace",
            keep_codes=[str(c) for c in rejected.dropna()],
            actor=actor,
            district_code=district_code,
            progress=progress,
        )
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


def _rows_by_code(valid: Validated) -> dict[str, int]:
    codes = valid.values["code"] if "code" in valid.values else pd.Series([], dtype=object)
    return {str(c): pos + 1 for pos, c in enumerate(codes) if isinstance(c, str)}


def _outside_zones(conn: psycopg.Connection, spec: LayerSpec, result: ImportResult, district_code: str) -> list[str]:
    """Codes of the facilities this import wrote (inserted or changed) that lie in no zone."""
    if not spec.facility:
        return []
    rows = conn.execute(
        sql.SQL(
            "WITH z AS MATERIALIZED (SELECT ST_Union(geom) AS geom FROM zones WHERE district_code = %(d)s) "
            "SELECT f.code FROM {} f, z WHERE f.batch_id = %(b)s AND f.district_code = %(d)s "
            "AND (z.geom IS NULL OR NOT ST_Intersects(z.geom, f.geom)) ORDER BY f.code"
        ).format(sql.Identifier(spec.table)),
        {"d": district_code, "b": result.batch_id},
    ).fetchall()
    return [str(r[0]) for r in rows]


def _near_duplicates(
    conn: psycopg.Connection, spec: LayerSpec, result: ImportResult, district_code: str
) -> list[tuple[str, str, float]]:
    """Pairs (a point this import wrote, another point of the layer) closer than NEAR_DUPLICATE_M
    (a pair of two written points once): a box prefilter on the GiST index, then metres."""
    if spec.geometry not in ("Point", "MultiPoint"):
        return []
    rows = conn.execute(
        sql.SQL(
            "SELECT code_a, code_b, d FROM (SELECT a.code AS code_a, b.code AS code_b, "
            "ST_Distance(ST_Transform(a.geom, %(srid)s), ST_Transform(b.geom, %(srid)s)) AS d "
            "FROM {t} a JOIN {t} b ON ST_DWithin(a.geom, b.geom, %(deg)s) AND a.id <> b.id "
            "WHERE a.batch_id = %(b)s AND a.district_code = %(d)s AND b.district_code = %(d)s "
            "AND (b.batch_id IS DISTINCT FROM %(b)s OR a.id < b.id)) q "
            "WHERE d <= %(m)s ORDER BY code_a, code_b"
        ).format(t=sql.Identifier(spec.table)),
        {
            "deg": _NEAR_DEGREES,
            "srid": crsmod.METRIC_SRID,
            "b": result.batch_id,
            "d": district_code,
            "m": NEAR_DUPLICATE_M,
        },
    ).fetchall()
    return [(str(a), str(b), float(d)) for a, b, d in rows]


def _warnings(
    conn: psycopg.Connection, spec: LayerSpec, valid: Validated, result: ImportResult, district_code: str
) -> dict[str, int]:
    """What is legal but suspicious among the rows this import wrote (inserted or changed: rows
    left unchanged were checked when they were written), as report rows; counts per kind."""
    row_of = _rows_by_code(valid)
    outside = _outside_zones(conn, spec, result, district_code)
    near = _near_duplicates(conn, spec, result, district_code)
    result.warnings = sorted(
        [Problem(row_of.get(c, 0), "geom", f"警告 warning: {spec.name} '{c}' lies outside every zone") for c in outside]
        + [
            Problem(
                row_of.get(a, 0),
                "geom",
                f"警告 warning: {spec.name} '{a}' is {d:.2f} m from '{b}' (within {NEAR_DUPLICATE_M} m: a duplicate?)",
            )
            for a, b, d in near
        ]
    )
    return {"outside_zones": len(outside), "near_duplicates": len(near)}


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
    strict: bool = False,
    progress: bool = False,
) -> ImportResult:
    """Validate ``data`` against ``spec`` and load it in one transaction.

    Raises :class:`ImportRejected` (nothing written) when a row is invalid and
    ``skip_invalid`` is false; otherwise invalid rows are left out and listed.
    Warnings (facilities outside every zone, points within 0.5 m of another) are
    listed in the result; with ``strict`` they reject the file too.
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
            strict=strict,
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
    strict: bool,
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
        zone_codes=zone_codes(conn, district_code) if spec.zone_attribute else None,
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
        conn, spec, valid, ~bad, mode=mode, result=result, district_code=district_code, actor=actor, progress=progress
    )
    warned = _warnings(conn, spec, valid, result, district_code)
    if strict and result.warnings:
        raise ImportRejected(
            f"--strict: {len(result.warnings)} warning(s) in layer '{spec.name}', nothing was imported: "
            + "; ".join(f"row {w.row}: {w.reason}" for w in result.warnings[:MAX_PROBLEMS_IN_MESSAGE]),
            problems=[w.__dict__ for w in result.warnings],
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
        "UPDATE import_batches SET rows_inserted = %s, rows_updated = %s, rows_deleted = %s, rows_rejected = %s,"
        " rows_unchanged = %s, warnings = %s, finished_at = clock_timestamp() WHERE id = %s",
        [
            result.inserted,
            result.updated,
            result.deleted,
            result.rejected,
            result.unchanged,
            Jsonb(warned),
            result.batch_id,
        ],
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
    strict: bool = False,
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
        strict=strict,
        progress=progress,
    )


def frame_data(
    frame: pd.DataFrame, geometry: np.ndarray, *, srid: int = crsmod.STORAGE_SRID, fmt: str = "generated"
) -> FileData:
    """Wrap in-memory columns and geometries (the demo generator's) as importable data."""
    return FileData(
        frame=frame.reset_index(drop=True), geometry=np.asarray(geometry, dtype=object), srid=srid, format=fmt
    )
