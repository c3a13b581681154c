"""The demo district: synthetic boundaries from ``data/boundaries/`` and generated facilities.

Everything goes through the same import path as user files (validation,
COPY, one batch record per layer).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from geo.demo.facilities import generate_facilities
from geo.demo.kinds import LAYERS as KIND_LAYERS
from geo.demo.kinds import generate_kinds
from geo.errors import InvalidInput
from geo.io.importer import ImportResult, frame_data, import_data, import_file
from geo.spatial.crs import METRIC_SRID
from geo.workcal import calendar, today
from layers.catalogue import Catalogue

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "boundaries"
# layer -> file in data/boundaries/, in load order (parents first)
BOUNDARY_FILES = {
    "districts": "district.geojson",
    "subdistricts": "subdistricts.geojson",
    "communities": "communities.geojson",
    "zones": "zones.geojson",
    "contract_sections": "contract_sections.geojson",
}
FACILITY_LAYERS = ("street_lights", "septic_tanks", "litter_bins", "green_plots", *KIND_LAYERS)
DEFAULT_SEED = 2023
DEMO_YEAR = 2023  # the programme year of a demo zone that names none


@dataclass
class DemoResult:
    """Per-layer import results of a demo load."""

    units: int
    layers: dict[str, ImportResult]
    patrols: tuple[int, int] = (0, 0)  # checkpoints and scans added (load_patrols)


def load_units(conn: psycopg.Connection, path: Path, *, district_code: str) -> int:
    """Insert or update the responsible units listed in a CSV (code,name,kind,contact_person,phone,duty:
    the duty as the plan's responsibility table states it)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [i + 2 for i, r in enumerate(rows) if not r.get("code") or not r.get("name")]
    if missing:
        raise InvalidInput(f"{path.name}: rows {missing} lack code or name", field="units")
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO units (code, district_code, name, kind, contact_person, phone, duty) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
            "kind = EXCLUDED.kind, contact_person = EXCLUDED.contact_person, phone = EXCLUDED.phone, "
            "duty = EXCLUDED.duty, updated_at = now()",
            [
                (
                    r["code"],
                    district_code,
                    r["name"],
                    r["kind"],
                    r.get("contact_person") or None,
                    r.get("phone") or None,
                    r.get("duty") or None,
                )
                for r in rows
            ],
        )
    return len(rows)


# The demo's publicity (先宣传后实施), per zone in its programme year as the plan has it: the sub-district
# posts notices in early March, the district holds the coordination meeting in early March and the
# deployment meeting in late March, and the May study visit. (kind, month, day, organiser: a unit code
# or None for the zone's sub-district office, attendance.)
DEMO_PUBLICITY = (
    ("notice", 3, 1, None, None),
    ("coordination_meeting", 3, 8, "bureau-cgj", 40),
    ("deployment_meeting", 3, 25, "bureau-cgj", 60),
    ("residents_meeting", 3, 28, None, 80),
    ("study_visit", 5, 9, "bureau-cgj", 25),
)


def load_publicity(conn: psycopg.Connection, *, district_code: str, default_year: int = DEMO_YEAR) -> int:
    """The demo's publicity records for every zone that has none (set-based; the place is a point on
    the zone). Returns the number added."""
    kinds, months, days, units, attendance = (list(c) for c in zip(*DEMO_PUBLICITY, strict=True))
    with conn.transaction():
        rows = conn.execute(
            "INSERT INTO publicity_records (district_code, zone_code, kind, held_on, place, unit_code, attendance, "
            " note, recorded_by) "
            "SELECT z.district_code, z.code, p.kind, make_date(coalesce(z.programme_year, %(year)s), p.month, p.day), "
            " ST_PointOnSurface(z.geom), coalesce(p.unit, 'office-' || z.subdistrict_code), p.attendance, "
            " '演示数据 demo', 'demo' "
            "FROM zones z CROSS JOIN unnest(%(kinds)s::text[], %(months)s::int[], %(days)s::int[], "
            " %(units)s::text[], %(attendance)s::int[]) AS p(kind, month, day, unit, attendance) "
            "WHERE z.district_code = %(district)s AND NOT EXISTS (SELECT 1 FROM publicity_records r "
            " WHERE r.district_code = z.district_code AND r.zone_code = z.code) "
            "ORDER BY z.code, 4 RETURNING id",
            {
                "year": default_year,
                "kinds": kinds,
                "months": months,
                "days": days,
                "units": units,
                "attendance": attendance,
                "district": district_code,
            },
        ).fetchall()
    return len(rows)


DEMO_CHECKPOINTS = 8  # a zone's patrol checkpoints, spaced along the inside of its edge
DEMO_ROUND_HOURS = (8, 14, 21)  # three rounds a day, each scanning the checkpoints in turn
DEMO_PATROL_DAYS = 14  # the two weeks before today, so that this and last week's maps show rounds
# One zone the demo's guards neglect (its last three checkpoints never scanned): its coverage is
# below WUYE_MIN_PATROL_COVERAGE, so the map and the acceptance figures show a flagged zone.
DEMO_NEGLECTED_ZONE = "huangnitang"


def load_patrols(
    conn: psycopg.Connection, *, district_code: str, until: date | None = None, days: int = DEMO_PATROL_DAYS
) -> tuple[int, int]:
    """The demo's security patrols (issue 18): checkpoints for every zone that has none, and rounds
    on the ``days`` days before ``until`` (default: today, Asia/Shanghai) for those zones — every
    checkpoint scanned in turn, three minutes apart, bar a scattered one in nine and the neglected
    zone's last three. Set-based and idempotent. Returns (checkpoints, scans) added."""
    end = until or today()
    tz = calendar().zone.key
    with conn.transaction():
        points = conn.execute(
            "INSERT INTO patrol_points (code, district_code, name, zone_code, installed_on, geom) "
            "SELECT 'PP-' || z.code || '-' || lpad(k::text, 2, '0'), z.district_code, "
            " z.name || ' ' || k || '号巡更点', z.code, make_date(coalesce(z.programme_year, %(year)s), 6, 1), "
            " ST_Transform(ST_LineInterpolatePoint(ST_ExteriorRing(e.ring), (k - 0.5) / %(n)s), 4490) "
            "FROM zones z CROSS JOIN LATERAL (SELECT d.geom AS ring FROM ST_Dump(ST_Buffer(ST_Transform(z.geom, "
            " %(metric)s), -12)) d ORDER BY ST_Area(d.geom) DESC LIMIT 1) e CROSS JOIN generate_series(1, %(n)s) k "
            "WHERE z.district_code = %(district)s AND NOT EXISTS (SELECT 1 FROM patrol_points p "
            " WHERE p.district_code = z.district_code AND p.zone_code = z.code) "
            "ORDER BY 1 RETURNING zone_code",
            {"year": DEMO_YEAR, "n": DEMO_CHECKPOINTS, "metric": METRIC_SRID, "district": district_code},
        ).fetchall()
        zones = sorted({r[0] for r in points})
        scans = conn.execute(
            "WITH r AS (INSERT INTO patrol_rounds (district_code, zone_code, patroller, started_at, ended_at, "
            " source, actor) "
            " SELECT %(district)s, z, '演示保安' || (1 + (h %% 2)), "
            "  (d + make_interval(hours => h)) AT TIME ZONE %(tz)s, "
            "  (d + make_interval(hours => h, mins => 45)) AT TIME ZONE %(tz)s, 'import', 'demo' "
            " FROM unnest(%(zones)s::text[]) z, generate_series(%(end)s::date - %(days)s, %(end)s::date - 1, "
            "  interval '1 day') d, unnest(%(hours)s::int[]) h RETURNING id, zone_code, started_at) "
            "INSERT INTO patrol_scans (round_id, district_code, zone_code, point_code, scanned_at) "
            "SELECT r.id, %(district)s, r.zone_code, p.code, "
            " r.started_at + make_interval(mins => (3 * row_number() OVER (PARTITION BY r.id ORDER BY p.code))::int) "
            "FROM r JOIN patrol_points p ON p.district_code = %(district)s AND p.zone_code = r.zone_code "
            "WHERE abs(hashtext(p.code || r.started_at::text)) %% 9 <> 0 "
            " AND NOT (r.zone_code = %(neglected)s AND right(p.code, 2)::int > %(n)s - 3)",
            {
                "district": district_code,
                "tz": tz,
                "zones": zones,
                "end": end,
                "days": days,
                "hours": list(DEMO_ROUND_HOURS),
                "neglected": DEMO_NEGLECTED_ZONE,
                "n": DEMO_CHECKPOINTS,
            },
        )
    return len(points), scans.rowcount


def _zones_frame(conn: psycopg.Connection, district_code: str) -> gpd.GeoDataFrame:
    rows = conn.execute(
        "SELECT code, ST_AsBinary(geom) FROM zones WHERE district_code = %s ORDER BY code",
        [district_code],
    ).fetchall()
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[1]) for r in rows]),
        crs="EPSG:4490",
    )


def is_loaded(conn: psycopg.Connection, district_code: str) -> bool:
    """True when the district already has zones."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM zones WHERE district_code = %s)", [district_code]).fetchone()
    return bool(row and row[0])


def load_facilities(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    *,
    district_code: str,
    seed: int = DEFAULT_SEED,
    scale: int = 1,
    progress: bool = False,
    on_layer: Callable[[str], None] | None = None,
) -> dict[str, ImportResult]:
    """Generate the facility layers from the loaded zones and import them (replacing)."""
    zones = _zones_frame(conn, district_code)
    if zones.empty:
        raise InvalidInput("no zones are loaded: load the boundaries first", field="zones")
    generated = generate_facilities(zones, seed=seed, scale=scale)
    results = {}
    for name in FACILITY_LAYERS:
        if name not in generated:  # the other kinds (geo.demo.kinds) once the first four are in
            generated = generate_kinds(zones, seed=seed, scale=scale)
        frame = generated.pop(name)  # let each frame go once imported: 1M points is memory
        if on_layer:
            on_layer(name)
        attrs = pd.DataFrame(frame.drop(columns="geometry"))
        data = frame_data(attrs, np.asarray(frame.geometry.values, dtype=object), srid=int(frame.crs.to_epsg() or 4490))
        results[name] = import_data(
            conn,
            catalogue[name],
            data,
            source=f"demo:seed={seed},scale={scale}",
            district_code=district_code,
            mode="replace",
            actor="demo",
            progress=progress,
        )
        del frame, attrs, data
    return results


def load_demo(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    *,
    district_code: str,
    seed: int = DEFAULT_SEED,
    scale: int = 1,
    data_dir: Path = DATA_DIR,
    progress: bool = False,
    on_layer: Callable[[str], None] | None = None,
    patrols: bool = True,
) -> DemoResult:
    """Load units, the boundary layers, generated facilities, the zones' publicity and (with ``patrols``)
    the last two weeks' security patrols of the demo district."""
    units = load_units(conn, data_dir / "units.csv", district_code=district_code)
    results: dict[str, ImportResult] = {}
    for name, filename in BOUNDARY_FILES.items():
        if on_layer:
            on_layer(name)
        results[name] = import_file(
            conn,
            catalogue,
            data_dir / filename,
            layer=name,
            district_code=district_code,
            mode="upsert",
            actor="demo",
            progress=progress,
        )
    results |= load_facilities(
        conn, catalogue, district_code=district_code, seed=seed, scale=scale, progress=progress, on_layer=on_layer
    )
    load_publicity(conn, district_code=district_code)
    patrolled = load_patrols(conn, district_code=district_code) if patrols else (0, 0)
    return DemoResult(units=units, layers=results, patrols=patrolled)
