"""Security patrols by checkpoint (公共安全防范, 电子巡更).

A zone's checkpoints are the ``patrol_points`` layer. A patrol round (巡更) is
recorded by a property team — who, start, end and the checkpoints scanned with
their times — through the API or imported from a patrol system's CSV/XLSX
export, optionally with the phone's track (GPX, WGS84, or GCJ-02 when the
client says so, converted with :mod:`geo.spatial.coords`) kept for display.

Per zone and day or week: rounds, hours and **coverage**, the share of the
zone's checkpoint-days on which the checkpoint was scanned at least
``WUYE_PATROL_MIN_SCANS`` times (:func:`coverage`, one set-based statement).
A zone below ``WUYE_MIN_PATROL_COVERAGE`` percent is flagged in the acceptance
figures.

Bad input is refused whole, naming the field or row: a scan of a checkpoint of
another zone (or none), scan times outside the round or going backwards, a GPX
without times, a track outside the district. A track's implausible jumps
(faster than :data:`MAX_SPEED_MS`) are dropped with a warning naming the vertices.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio
import shapely
from psycopg import sql

from geo.access.scope import Principal, zone_scope
from geo.errors import InvalidInput
from geo.io.tabular import read_table, rejection
from geo.spatial.coords import to_storage
from geo.spatial.crs import METRIC_SRID, STORAGE_SRID, transformer
from geo.spatial.reference import district_boundary
from geo.spatial.validate import DISTRICT_TOLERANCE_DEG, Problem
from geo.workcal import calendar

MAX_SPEED_MS = 30.0  # a phone's track faster than this between two fixes is a bad fix, not a patrol
MAX_SCANS = 5000  # scans in one round
MAX_GPX_BYTES = 5_000_000
TRACK_SYSTEMS = ("wgs84", "gcj02")
RECORDERS = ("admin", "subdistrict_staff", "property_team")
READERS = ("admin", "planner", "subdistrict_staff", "property_team", "contractor")

# Column names of patrol systems' exports, mapped to ours (one row per scan).
COLUMNS: dict[str, tuple[str, ...]] = {
    "round": ("round", "round_id", "巡更编号", "巡逻编号", "任务编号"),
    "zone_code": ("zone_code", "zone", "小区", "小区编码"),
    "patroller": ("patroller", "巡更人", "巡逻人", "保安"),
    "started_at": ("started_at", "start", "开始时间"),
    "ended_at": ("ended_at", "end", "结束时间"),
    "point_code": ("point_code", "checkpoint", "巡更点", "点位编码", "巡更点编码"),
    "scanned_at": ("scanned_at", "scan_time", "打卡时间", "巡更时间"),
}


@dataclass(frozen=True)
class Scan:
    """One checkpoint scanned at a time."""

    point_code: str
    scanned_at: datetime


@dataclass
class Round:
    """One patrol round as given (validated by :func:`check`)."""

    zone_code: str
    patroller: str
    started_at: datetime
    ended_at: datetime
    scans: list[Scan]
    track_gpx: bytes | None = None
    track_coord_sys: str = "wgs84"


@dataclass
class Track:
    """A checked track: its WKB in storage coordinates and the vertices dropped (1-based, in the file)."""

    wkb: bytes
    dropped: list[int]
    warnings: list[str]


def _aware(value: datetime, what: str) -> datetime:
    """A time with its zone: a naive one is local time (the working calendar's zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=calendar().zone)
    return value


# ---------------------------------------------------------------- checks


def _zone_points(conn: psycopg.Connection, district_code: str, zones: Sequence[str]) -> dict[str, str]:
    """checkpoint code → its zone, of the checkpoints of ``zones`` and of every point named anywhere."""
    rows = conn.execute("SELECT code, zone_code FROM patrol_points WHERE district_code = %s", [district_code])
    return {code: zone for code, zone in rows}


def _visible_zones(conn: psycopg.Connection, principal: Principal, district_code: str) -> set[str]:
    predicate, params = zone_scope(principal, sql.SQL("z.code"))
    stmt = sql.SQL("SELECT z.code FROM zones z WHERE z.district_code = %(district)s AND {}").format(predicate)
    return {r[0] for r in conn.execute(stmt, {**params, "district": district_code})}


def _problems_of(
    rnd: Round, points: dict[str, str], zones: set[str], visible: set[str], row_of: Any, first_row: int
) -> list[Problem]:
    """Every problem of one round (its rows: ``row_of(i)`` for scan i, ``first_row`` for the round)."""
    problems: list[Problem] = []
    if rnd.zone_code not in zones:
        problems.append(Problem(first_row, "zone_code", f"zone '{rnd.zone_code}' does not exist"))
    elif rnd.zone_code not in visible:
        problems.append(Problem(first_row, "zone_code", f"zone '{rnd.zone_code}' is not one you act in"))
    if not rnd.patroller.strip():
        problems.append(Problem(first_row, "patroller", "missing"))
    if rnd.ended_at <= rnd.started_at:
        problems.append(
            Problem(first_row, "ended_at", f"the round ends ({rnd.ended_at}) before it starts ({rnd.started_at})")
        )
    if rnd.ended_at - rnd.started_at > timedelta(hours=24):
        problems.append(Problem(first_row, "ended_at", "a round lasts at most 24 hours"))
    if not rnd.scans:
        problems.append(Problem(first_row, "scans", "a round needs at least one scanned checkpoint"))
    if len(rnd.scans) > MAX_SCANS:
        problems.append(Problem(first_row, "scans", f"more than {MAX_SCANS} scans in one round"))
    previous: datetime | None = None
    for i, scan in enumerate(rnd.scans):
        row = row_of(i)
        zone = points.get(scan.point_code)
        if zone is None:
            problems.append(Problem(row, "point_code", f"checkpoint '{scan.point_code}' does not exist"))
        elif zone != rnd.zone_code:
            problems.append(
                Problem(
                    row, "point_code", f"checkpoint '{scan.point_code}' belongs to zone '{zone}', not '{rnd.zone_code}'"
                )
            )
        if not rnd.started_at <= scan.scanned_at <= rnd.ended_at:
            problems.append(
                Problem(
                    row, "scanned_at", f"{scan.scanned_at} is outside the round ({rnd.started_at} – {rnd.ended_at})"
                )
            )
        if previous is not None and scan.scanned_at < previous:
            problems.append(
                Problem(row, "scanned_at", f"{scan.scanned_at} is earlier than the scan before ({previous})")
            )
        previous = scan.scanned_at
    return problems


def check_track(gpx: bytes, coord_sys: str, district: shapely.Geometry | None) -> Track:
    """The GPX track's points in storage coordinates, with implausible jumps dropped (warning naming
    the vertices); InvalidInput (field ``track``) for a GPX without times, unreadable, or outside the
    district."""
    if coord_sys not in TRACK_SYSTEMS:
        raise InvalidInput(
            f"track_coord_sys '{coord_sys}' is not one of {', '.join(TRACK_SYSTEMS)}", field="track_coord_sys"
        )
    if len(gpx) > MAX_GPX_BYTES:
        raise InvalidInput(f"the GPX track is larger than {MAX_GPX_BYTES} bytes", field="track")
    try:
        frame = pyogrio.read_dataframe(io.BytesIO(gpx), layer="track_points")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as e:
        raise InvalidInput(f"the track is not a readable GPX file with a track: {e}", field="track") from None
    if len(frame) < 2:
        raise InvalidInput("the track needs at least two points (<trkpt>)", field="track")
    times = (
        pd.to_datetime(frame["time"], errors="coerce", utc=True)
        if "time" in frame
        else pd.Series([pd.NaT] * len(frame))
    )
    missing = np.flatnonzero(times.isna().to_numpy())
    if len(missing):
        shown = ", ".join(str(i + 1) for i in missing[:10])
        raise InvalidInput(
            f"a GPX track needs a <time> on every point: points {shown} have none",
            field="track",
            reason_zh="GPX 轨迹点缺少时间",
        )
    xy = shapely.get_coordinates(np.asarray(frame.geometry.values, dtype=object))
    lon, lat = to_storage(xy[:, 0], xy[:, 1], coord_sys)
    seconds = (times - times.iloc[0]).dt.total_seconds().to_numpy()
    if (np.diff(seconds) < 0).any():
        bad = int(np.flatnonzero(np.diff(seconds) < 0)[0]) + 2
        raise InvalidInput(f"the track's times go backwards at point {bad}", field="track")
    to_m = transformer(STORAGE_SRID, METRIC_SRID)
    mx, my = to_m.transform(lon, lat)
    keep = [0]
    dropped: list[int] = []
    for i in range(1, len(mx)):
        j = keep[-1]
        dt = max(seconds[i] - seconds[j], 0.0)
        dist = float(np.hypot(mx[i] - mx[j], my[i] - my[j]))
        if dist > MAX_SPEED_MS * max(dt, 1e-9) and dist > 0:
            dropped.append(i + 1)
        else:
            keep.append(i)
    if len(keep) < 2:
        raise InvalidInput("the track has fewer than two plausible points", field="track")
    line = shapely.LineString(np.column_stack([np.asarray(lon)[keep], np.asarray(lat)[keep]]))
    if district is not None and not shapely.covers(shapely.buffer(district, DISTRICT_TOLERANCE_DEG), line):
        x, y = line.coords[0]
        raise InvalidInput(f"the track leaves the district (first point {x:.6f}, {y:.6f})", field="track")
    warnings = []
    if dropped:
        shown = ", ".join(map(str, dropped[:20])) + (" …" if len(dropped) > 20 else "")
        warnings.append(
            f"警告 warning: dropped track points {shown}: faster than {MAX_SPEED_MS:g} m/s from the one before"
        )
    return Track(
        wkb=shapely.to_wkb(shapely.set_srid(line, STORAGE_SRID), include_srid=False), dropped=dropped, warnings=warnings
    )


# ---------------------------------------------------------------- writes


def _insert(
    conn: psycopg.Connection,
    rounds: list[tuple[Round, Track | None]],
    *,
    district_code: str,
    actor: str,
    source: str,
) -> list[int]:
    ids: list[int] = []
    with conn.cursor() as cur:
        for rnd, track in rounds:
            cur.execute(
                "INSERT INTO patrol_rounds (district_code, zone_code, patroller, started_at, ended_at, source, actor, "
                "track, track_coord_sys, track_dropped) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                "ST_SetSRID(ST_GeomFromWKB(%s), 4490), %s, %s) RETURNING id",
                [
                    district_code,
                    rnd.zone_code,
                    rnd.patroller.strip(),
                    rnd.started_at,
                    rnd.ended_at,
                    source,
                    actor,
                    track.wkb if track else None,
                    rnd.track_coord_sys if track else None,
                    track.dropped if track else None,
                ],
            )
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
        scans = [
            (round_id, district_code, rnd.zone_code, s.point_code, s.scanned_at)
            for round_id, (rnd, _) in zip(ids, rounds, strict=True)
            for s in rnd.scans
        ]
        with cur.copy(
            "COPY patrol_scans (round_id, district_code, zone_code, point_code, scanned_at) FROM STDIN"
        ) as copy:
            for item in scans:
                copy.write_row(item)
    return ids


def record(
    conn: psycopg.Connection, principal: Principal, rnd: Round, *, district_code: str, actor: str
) -> dict[str, Any]:
    """Record one round (its scans and track) in one transaction, or a 400 naming the field."""
    rnd.started_at, rnd.ended_at = _aware(rnd.started_at, "started_at"), _aware(rnd.ended_at, "ended_at")
    rnd.scans = [Scan(s.point_code.strip(), _aware(s.scanned_at, "scanned_at")) for s in rnd.scans]
    points = _zone_points(conn, district_code, [rnd.zone_code])
    zones = {r[0] for r in conn.execute("SELECT code FROM zones WHERE district_code = %s", [district_code])}
    visible = _visible_zones(conn, principal, district_code)
    problems = _problems_of(rnd, points, zones, visible, lambda i: i + 1, 0)
    if problems:
        p = problems[0]
        field_name = p.field if p.row == 0 else f"scans.{p.row - 1}.{p.field}"
        raise InvalidInput(
            "; ".join(f"{'' if q.row == 0 else f'scan {q.row} '}{q.field}: {q.reason}" for q in problems),
            field=field_name,
            problems=[q.__dict__ for q in problems],
        )
    track = None
    if rnd.track_gpx is not None:
        track = check_track(rnd.track_gpx, rnd.track_coord_sys, district_boundary(conn, district_code))
    with conn.transaction():
        (round_id,) = _insert(conn, [(rnd, track)], district_code=district_code, actor=actor, source="api")
    return {
        "id": round_id,
        "zone_code": rnd.zone_code,
        "patroller": rnd.patroller.strip(),
        "started_at": rnd.started_at.isoformat(),
        "ended_at": rnd.ended_at.isoformat(),
        "scans": len(rnd.scans),
        "checkpoints": len({s.point_code for s in rnd.scans}),
        "track_points": None if track is None else len(shapely.get_coordinates(shapely.from_wkb(track.wkb))),
        "track_dropped": [] if track is None else track.dropped,
        "warnings": [] if track is None else track.warnings,
    }


_OFFSET = r"(?:[+-]\d{2}:?\d{2}|Z)$"


def _times(raw: pd.Series, wanted: np.ndarray, name: str, problems: list[Problem]) -> pd.Series:
    """The time cells of the rows in ``wanted`` as UTC timestamps (NaT elsewhere and where bad: a
    problem names the row); without an offset a time is local (the working calendar's zone)."""
    text = raw.astype("string").str.strip().str.replace("/", "-", regex=False).str.replace("T", " ", regex=False)
    blank_cell = wanted & np.asarray(text.isna() | (text == ""), dtype=bool)
    for i in np.flatnonzero(blank_cell):
        problems.append(Problem(int(i) + 1, name, "missing"))
    todo = wanted & ~blank_cell
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    aware = todo & np.asarray(text.str.contains(_OFFSET, regex=True).fillna(False), dtype=bool)
    naive = todo & ~aware
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], errors="coerce", utc=True, format="mixed")
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        retry = parsed.isna()
        if retry.any():  # 2024-5-2 9:05 and other spellings people's spreadsheets keep
            parsed[retry] = pd.to_datetime(text[naive][retry], errors="coerce", format="mixed")
        local = parsed.dt.tz_localize(calendar().zone.key, ambiguous="NaT", nonexistent="NaT")
        out[naive] = local.dt.tz_convert("UTC")
    bad = todo & np.asarray(out.isna(), dtype=bool)
    for i in np.flatnonzero(bad):
        problems.append(Problem(int(i) + 1, name, f"'{raw.iloc[i]}' is not a time (YYYY-MM-DD HH:MM[:SS])"))
    return out


def import_file(
    conn: psycopg.Connection, principal: Principal, path: Path, *, district_code: str, actor: str
) -> dict[str, int]:
    """Import a patrol system's export (one row per scan; rows of one round share its round number,
    zone, patroller, start and end): every row checked first (column-wise: a month's million scans
    in seconds), one bad row refuses the file naming the rows and fields, then everything in one
    transaction (the scans by COPY). Returns the rounds and scans recorded."""
    frame = read_table(path, COLUMNS)
    n = len(frame)
    problems: list[Problem] = []

    def report(mask: Any, name: str, reason: Any) -> None:
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            problems.append(Problem(int(i) + 1, name, reason(int(i)) if callable(reason) else reason))

    cell = {c: frame[c].astype("string").str.strip().fillna("") for c in COLUMNS}
    key, point, zone, who = cell["round"], cell["point_code"], cell["zone_code"], cell["patroller"]
    report(key == "", "round", "missing")
    report(point == "", "point_code", "missing")
    first = np.asarray(~key.duplicated() & (key != ""), dtype=bool)
    scanned = _times(frame["scanned_at"], np.ones(n, dtype=bool), "scanned_at", problems)
    started = _times(frame["started_at"], first, "started_at", problems)
    ended = _times(frame["ended_at"], first, "ended_at", problems)
    heads = pd.DataFrame(
        {"zone": zone[first].to_numpy(), "who": who[first].to_numpy(), "start": started[first].to_numpy(),
         "end": ended[first].to_numpy(), "row": np.flatnonzero(first) + 1},
        index=key[first].to_numpy(),
    )  # fmt: skip
    r_zone, r_who = key.map(heads["zone"]), key.map(heads["who"])
    r_start, r_end = key.map(heads["start"]), key.map(heads["end"])
    later = ~first & np.asarray(key != "", dtype=bool)
    report(later & np.asarray((zone != r_zone) | (who != r_who), dtype=bool), "round",
           lambda i: f"round '{key.iloc[i]}' has another zone or patroller on an earlier row")  # fmt: skip

    # the rounds: zone known and the caller's, someone patrolled, a plausible span
    zones = {r[0] for r in conn.execute("SELECT code FROM zones WHERE district_code = %s", [district_code])}
    visible = _visible_zones(conn, principal, district_code)
    timed = first & np.asarray(started.notna() & ended.notna(), dtype=bool)
    report(
        first & ~np.asarray(zone.isin(zones), dtype=bool),
        "zone_code",
        lambda i: f"zone '{zone.iloc[i]}' does not exist",
    )
    report(first & np.asarray(zone.isin(zones) & ~zone.isin(visible), dtype=bool), "zone_code",
           lambda i: f"zone '{zone.iloc[i]}' is not one you act in")  # fmt: skip
    report(first & np.asarray(who == "", dtype=bool), "patroller", "missing")
    span = ended - started
    report(timed & np.asarray(span <= pd.Timedelta(0), dtype=bool), "ended_at",
           lambda i: f"the round ends ({ended.iloc[i]}) before it starts ({started.iloc[i]})")  # fmt: skip
    report(timed & np.asarray(span > pd.Timedelta(hours=24), dtype=bool), "ended_at", "a round lasts at most 24 hours")
    sizes = key.map(key.value_counts())
    report(first & np.asarray(sizes > MAX_SCANS, dtype=bool), "scans", f"more than {MAX_SCANS} scans in one round")

    # the scans: a checkpoint of the round's zone, within the round, in time order
    points = _zone_points(conn, district_code, [])
    p_zone = point.map(points)
    named = np.asarray(point != "", dtype=bool)
    report(named & np.asarray(p_zone.isna(), dtype=bool), "point_code",
           lambda i: f"checkpoint '{point.iloc[i]}' does not exist")  # fmt: skip
    report(named & np.asarray(p_zone.notna() & (p_zone != r_zone), dtype=bool), "point_code",
           lambda i: f"checkpoint '{point.iloc[i]}' belongs to zone '{p_zone.iloc[i]}', "
                     f"not '{r_zone.iloc[i]}'")  # fmt: skip
    known = np.asarray(scanned.notna() & r_start.notna() & r_end.notna(), dtype=bool)
    outside = known & np.asarray((scanned < r_start) | (scanned > r_end), dtype=bool)
    report(
        outside, "scanned_at", lambda i: f"{scanned.iloc[i]} is outside the round ({r_start.iloc[i]} – {r_end.iloc[i]})"
    )
    before = scanned.groupby(key).shift(1)
    back = np.asarray(scanned.notna() & before.notna() & (scanned < before), dtype=bool)
    report(back, "scanned_at", lambda i: f"{scanned.iloc[i]} is earlier than the scan before ({before.iloc[i]})")
    if problems:
        raise rejection(path.name, sorted(set(problems)), n)

    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO patrol_rounds (district_code, zone_code, patroller, started_at, ended_at, source, actor) "
            "VALUES (%s, %s, %s, %s, %s, 'import', %s) RETURNING id",
            [
                (district_code, z, w, a.to_pydatetime(), b.to_pydatetime(), actor)
                for z, w, a, b in zip(heads["zone"], heads["who"], heads["start"], heads["end"], strict=True)
            ],
            returning=True,
        )
        ids = []
        while True:
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                break
        # the scans as CSV by Arrow's writer (C++: a month's million scans in about a second, where
        # pandas' strftime and to_csv took four); times in UTC, written with their Z
        scans = pa.table(
            {
                "round_id": pa.array(key.map(dict(zip(heads.index, ids, strict=True))).to_numpy(dtype=np.int64)),
                "district_code": pa.array(np.full(n, district_code, dtype=object), pa.string()),
                "zone_code": pa.array(r_zone.to_numpy(dtype=object), pa.string()),
                "point_code": pa.array(point.to_numpy(dtype=object), pa.string()),
                "scanned_at": pa.array(scanned.dt.tz_convert("UTC")),
            }
        )
        text = io.BytesIO()
        pacsv.write_csv(scans, text, pacsv.WriteOptions(include_header=False))
        with cur.copy(
            "COPY patrol_scans (round_id, district_code, zone_code, point_code, scanned_at) FROM STDIN (FORMAT csv)"
        ) as copy:
            copy.write(text.getbuffer())
    return {"rounds": len(heads), "scans": n}


# ---------------------------------------------------------------- figures

# Per zone over [start, end) local days: checkpoints, checkpoint-days covered (scanned at least
# min_scans times that day), rounds, hours; coverage = covered / (checkpoints × days). One statement.
COVERAGE = """
WITH period AS (
    SELECT (%(start)s::date)::timestamp AT TIME ZONE %(tz)s AS t0,
           (%(end)s::date)::timestamp AT TIME ZONE %(tz)s AS t1,
           (%(end)s::date - %(start)s::date) AS days
),
points AS (
    SELECT zone_code, count(*) AS n FROM patrol_points WHERE district_code = %(district)s GROUP BY zone_code
),
daily AS (
    SELECT s.zone_code, s.point_code, (s.scanned_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS scans
    FROM patrol_scans s, period
    WHERE s.district_code = %(district)s AND s.scanned_at >= period.t0 AND s.scanned_at < period.t1
      AND (%(zone)s::text IS NULL OR s.zone_code = %(zone)s)
    GROUP BY 1, 2, 3
),
covered AS (
    SELECT d.zone_code, count(*) FILTER (WHERE d.scans >= %(min_scans)s) AS covered, sum(d.scans) AS scans
    FROM daily d JOIN patrol_points p ON p.district_code = %(district)s AND p.code = d.point_code
      AND p.zone_code = d.zone_code
    GROUP BY 1
),
rounds AS (
    SELECT r.zone_code, count(*) AS rounds, sum(extract(epoch FROM r.ended_at - r.started_at)) / 3600.0 AS hours
    FROM patrol_rounds r, period
    WHERE r.district_code = %(district)s AND r.started_at >= period.t0 AND r.started_at < period.t1
      AND (%(zone)s::text IS NULL OR r.zone_code = %(zone)s)
    GROUP BY 1
)
SELECT z.code, z.name, coalesce(p.n, 0), period.days, coalesce(c.covered, 0), coalesce(c.scans, 0),
       coalesce(r.rounds, 0), round(coalesce(r.hours, 0)::numeric, 2),
       CASE WHEN coalesce(p.n, 0) > 0 THEN 100.0 * coalesce(c.covered, 0) / (p.n * period.days) END
FROM zones z CROSS JOIN period
LEFT JOIN points p ON p.zone_code = z.code
LEFT JOIN covered c ON c.zone_code = z.code
LEFT JOIN rounds r ON r.zone_code = z.code
WHERE z.district_code = %(district)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s)
ORDER BY z.code
"""


def period_of(on: date, period: str) -> tuple[date, date]:
    """[start, end) of the day, or of the week (Monday to Sunday) holding ``on``."""
    if period == "day":
        return on, on + timedelta(days=1)
    if period == "week":
        start = on - timedelta(days=on.weekday())
        return start, start + timedelta(days=7)
    raise InvalidInput(f"period '{period}' is not day or week", field="period")


def coverage(
    conn: psycopg.Connection,
    *,
    district_code: str,
    start: date,
    end: date,
    min_scans: int,
    min_coverage: float,
    zone_code: str | None = None,
) -> list[dict[str, Any]]:
    """Per zone over the local days [start, end): rounds, hours, checkpoints and coverage (percent),
    flagged below ``min_coverage`` (or without checkpoints)."""
    rows = conn.execute(
        COVERAGE,
        {
            "start": start,
            "end": end,
            "tz": calendar().zone.key,
            "district": district_code,
            "zone": zone_code,
            "min_scans": min_scans,
        },
    ).fetchall()
    out = []
    for code, name, points, days, covered, scans, rounds, hours, pct in rows:
        value = None if pct is None else round(float(pct), 1)
        out.append(
            {
                "zone_code": code,
                "zone_name": name,
                "from": start.isoformat(),
                "until": (end - timedelta(days=1)).isoformat(),
                "days": int(days),
                "checkpoints": int(points),
                "checkpoint_days_covered": int(covered),
                "scans": int(scans),
                "rounds": int(rounds),
                "hours": float(hours),
                "coverage_pct": value,
                "min_scans": min_scans,
                "min_coverage_pct": min_coverage,
                "flagged": pct is None or float(pct) < min_coverage,
                "flag_zh": ("无巡更点" if pct is None else ("巡更覆盖率不足" if float(pct) < min_coverage else None)),
            }
        )
    return out


def missed(
    conn: psycopg.Connection, *, district_code: str, start: date, end: date, min_scans: int, zone_code: str | None
) -> list[dict[str, Any]]:
    """Every checkpoint with its scans over [start, end) and the days it was missed (fewer than
    ``min_scans`` scans), for the map of a week's scans."""
    rows = conn.execute(
        "WITH daily AS (SELECT s.point_code, (s.scanned_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n "
        " FROM patrol_scans s WHERE s.district_code = %(district)s "
        " AND s.scanned_at >= (%(start)s::date)::timestamp AT TIME ZONE %(tz)s "
        " AND s.scanned_at < (%(end)s::date)::timestamp AT TIME ZONE %(tz)s GROUP BY 1, 2) "
        "SELECT p.code, p.name, p.zone_code, ST_X(p.geom), ST_Y(p.geom), coalesce(sum(d.n), 0), "
        " count(d.day) FILTER (WHERE d.n >= %(min)s) "
        "FROM patrol_points p LEFT JOIN daily d ON d.point_code = p.code "
        "WHERE p.district_code = %(district)s AND (%(zone)s::text IS NULL OR p.zone_code = %(zone)s) "
        "GROUP BY p.code, p.name, p.zone_code, p.geom ORDER BY p.zone_code, p.code",
        {
            "tz": calendar().zone.key,
            "district": district_code,
            "start": start,
            "end": end,
            "min": min_scans,
            "zone": zone_code,
        },
    ).fetchall()
    days = (end - start).days
    return [
        {
            "type": "Feature",
            "id": code,
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {
                "code": code,
                "name": name,
                "zone_code": zone,
                "scans": int(scans),
                "days_covered": int(covered),
                "days_missed": days - int(covered),
                "missed": int(covered) < days,
            },
        }
        for code, name, zone, x, y, scans, covered in rows
    ]
