"""The demo district: synthetic boundaries from ``data/boundaries/`` and generated facilities.

Everything goes through the same import path as user files (validation,
COPY, one batch record per layer).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from geo.demo.facilities import generate_facilities
from geo.errors import InvalidInput
from geo.io.importer import ImportResult, frame_data, import_data, import_file
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
FACILITY_LAYERS = ("street_lights", "septic_tanks", "litter_bins", "green_plots")
DEFAULT_SEED = 2023


@dataclass
class DemoResult:
    """Per-layer import results of a demo load."""

    units: int
    layers: dict[str, ImportResult]


def load_units(conn: psycopg.Connection, path: Path, *, district_code: str) -> int:
    """Insert or update the responsible units listed in a CSV (code,name,kind,contact_person,phone)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [i + 2 for i, r in enumerate(rows) if not r.get("code") or not r.get("name")]
    if missing:
        raise InvalidInput(f"{path.name}: rows {missing} lack code or name", field="units")
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO units (code, district_code, name, kind, contact_person, phone) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
            "kind = EXCLUDED.kind, contact_person = EXCLUDED.contact_person, phone = EXCLUDED.phone, "
            "updated_at = now()",
            [
                (
                    r["code"],
                    district_code,
                    r["name"],
                    r["kind"],
                    r.get("contact_person") or None,
                    r.get("phone") or None,
                )
                for r in rows
            ],
        )
    return len(rows)


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
) -> DemoResult:
    """Load units, the boundary layers and generated facilities of the demo district."""
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
    return DemoResult(units=units, layers=results)
