"""Deterministic synthetic facilities of the other service kinds inside the demo zones.

SYNTHETIC DEMO DATA: drains (下水管网) and their manholes (检查井), roads between
the buildings (栋间道路), a ditch (沟渠), walls (围墙), sports equipment (文体器材)
and drying racks (晾衣架), laid out from the same zone frame and road grid as
:mod:`geo.demo.facilities` (whose features and codes this module leaves alone):

- roads: the internal grid roads, one feature per stretch between two crossings
  (or the ring road), 4–7 m wide;
- drains: one pipe along each block's south and north building rows, 2 m in front of
  the building line, with a manhole at each end and about every 30 m (the pipe is
  split at its manholes: each piece is a feature, so pipes join at manholes);
- a ditch along the zone's longest edge, 3 m inside it;
- walls: the zone's edges that face no other zone (within 15 m), 0.5 m inside;
- a few fitness points in the courtyards and drying racks beside the buildings.

These positions depend on the zones only, not on the seed. ``scale=N`` keeps
them and adds N−1 times as many features per zone and layer at random places
(lines: 20–60 m stretches along the grid), as the other generator does.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from geo.demo.facilities import (
    _BUILT_DAYS,
    _BUILT_FROM,
    _CONDITION_P,
    _CONDITIONS,
    _LAYOUT_SEED,
    _P_NEVER_MAINTAINED,
    _P_NO_INSTALL_DATE,
    _RING_M,
    _ROAD_SPACING_M,
    _SETBACK_M,
    _apply,
    _as_dates,
    _cuts,
    _dates,
    _frame,
    _keep,
    _random_points,
)
from geo.spatial.crs import METRIC_SRID, STORAGE_SRID, transformer

LAYERS = ("drains", "manholes", "roads", "ditches", "walls", "sports_equipment", "drying_racks")
LINE_LAYERS = ("drains", "roads", "ditches", "walls")
PREFIX = {
    "drains": "DR",
    "manholes": "MH",
    "roads": "RD",
    "ditches": "DT",
    "walls": "WL",
    "sports_equipment": "SE",
    "drying_racks": "RK",
}
_STREAM = {name: 10 + i for i, name in enumerate(LAYERS)}  # rng streams apart from geo.demo.facilities'

_INSET_M = 1.0
_DRAIN_OFFSET_M = 2.0  # in front of the building line, inside the setback
_MANHOLE_STEP_M = 30.0
_DITCH_INSET_M = 3.0
_WALL_INSET_M = 0.5
_NEIGHBOUR_M = 15.0  # an edge within this of another zone faces that zone, not a street
_MIN_LINE_M = 5.0
_EXTRA_LINE_M = (20.0, 60.0)

_PIPE_KINDS = np.array(["storm", "sewage", "combined"], dtype=object)
_PIPE_P = (0.45, 0.4, 0.15)
_PIPE_MM = np.array([200, 300, 400, 500, 600])
_MATERIALS = np.array(["concrete", "pvc", "hdpe", "cast_iron", "brick"], dtype=object)
_MATERIAL_P = (0.45, 0.2, 0.2, 0.05, 0.1)
_SURFACES = np.array(["asphalt", "concrete", "paving", "gravel"], dtype=object)
_SURFACE_P = (0.35, 0.45, 0.15, 0.05)
_ROAD_DEFECTS = np.array(["broken", "potholes", "ponding"], dtype=object)
_COVER_DEFECTS = np.array(["cover_missing", "cover_broken"], dtype=object)
_EQUIPMENT = np.array(["fitness", "table_tennis", "basketball", "playground", "chess_table"], dtype=object)
_EQUIPMENT_P = (0.5, 0.15, 0.1, 0.15, 0.1)


def generate_kinds(zones: gpd.GeoDataFrame, *, seed: int = 2023, scale: int = 1) -> dict[str, gpd.GeoDataFrame]:
    """Synthetic facilities of :data:`LAYERS` for each zone, keyed by layer name (EPSG:4490), with the
    attribute columns of the layer specs and codes such as ``DR-jinling-000012``. Same zones, seed and
    scale: identical frames; ``scale=N``: exactly N times the scale=1 count per layer and zone, the
    scale=1 rows first and unchanged."""
    if scale < 1:
        raise ValueError(f"scale must be ≥ 1, got {scale}")
    if zones.crs is not None and zones.crs.to_epsg() != STORAGE_SRID:
        zones = zones.to_crs(STORAGE_SRID)
    to_metric = transformer(STORAGE_SRID, METRIC_SRID)
    metric = [None if g is None or g.is_empty else shapely.transform(g, _apply(to_metric)) for g in zones.geometry]
    # every zone's scale=1 rows first, then the extras (as geo.demo.facilities orders them)
    rows: dict[str, list[list[dict[str, Any]]]] = {name: [[], []] for name in LAYERS}
    geoms: dict[str, list[list[Any]]] = {name: [[], []] for name in LAYERS}
    for index, (code, zone) in enumerate(zip(zones["code"], metric, strict=True)):
        if zone is None:
            continue
        others = [g for j, g in enumerate(metric) if j != index and g is not None]
        zone_key = zlib.crc32(str(code).encode())
        inside = shapely.buffer(zone, -_INSET_M)
        shapely.prepare(inside)
        frame = _frame(zone)
        layout = _layout(zone, inside, others, zone_key)
        built = _BUILT_FROM + np.timedelta64(int(np.random.default_rng([seed, zone_key]).integers(_BUILT_DAYS)), "D")
        for name in LAYERS:
            parts = [list(layout[name])]
            rng = np.random.default_rng([seed, zone_key, _STREAM[name], 0])
            attrs = [_attributes(name, len(parts[0]), rng, built)]
            n_extra = (scale - 1) * len(parts[0])
            if n_extra:
                extra_rng = np.random.default_rng([seed, zone_key, _STREAM[name], 1])
                if name in LINE_LAYERS:
                    parts.append(_random_lines(inside, n_extra, frame, extra_rng))
                else:
                    parts.append(list(shapely.points(_random_points(inside, frame, n_extra, extra_rng))))
                attrs.append(_attributes(name, n_extra, extra_rng, built))
            number = 0  # codes numbered within the zone: the extras continue the scale=1 numbers
            for which, (part, columns) in enumerate(zip(parts, attrs, strict=True)):
                for i, geom in enumerate(part):
                    row = {"code": f"{PREFIX[name]}-{code}-{number:06d}", **{k: v[i] for k, v in columns.items()}}
                    if name in LINE_LAYERS:
                        row["zone_code"] = str(code)
                    rows[name][which].append(row)
                    geoms[name][which].append(geom)
                    number += 1
    return {name: _frame_of(name, rows[name][0] + rows[name][1], geoms[name][0] + geoms[name][1]) for name in LAYERS}


# ---------------------------------------------------------------- layout


def _segments(uv: NDArray[np.float64], frame: Any) -> NDArray[np.object_]:
    """Lines from rows of (u0, v0, u1, v1) in the zone frame, in world metres."""
    if not len(uv):
        return np.empty(0, dtype=object)
    a = frame.to_world(uv[:, :2])
    b = frame.to_world(uv[:, 2:])
    return shapely.linestrings(np.stack([a, b], axis=1))


def _clip(lines: NDArray[np.object_], region: shapely.Geometry) -> list[shapely.Geometry]:
    """The pieces of ``lines`` inside ``region``, each a LineString of at least 5 m."""
    if not len(lines):
        return []
    parts = shapely.get_parts(shapely.intersection(lines, region))
    parts = parts[shapely.get_type_id(parts) == 1]
    return list(parts[shapely.length(parts) >= _MIN_LINE_M])


def _layout(
    zone: shapely.Geometry, inside: shapely.Geometry, others: list[shapely.Geometry], zone_key: int
) -> dict[str, list[shapely.Geometry]]:
    frame = _frame(zone)
    u0, v0, u1, v1 = shapely.bounds(shapely.transform(zone, frame.to_local))
    # the same grid as geo.demo.facilities (the first draw of its layout stream is the spacing);
    # this module's own choices come from a stream of its own
    su, sv = np.random.default_rng([_LAYOUT_SEED, zone_key]).uniform(*_ROAD_SPACING_M, size=2)
    rng = np.random.default_rng([_LAYOUT_SEED, zone_key, 1])
    ucuts = _cuts(u0 + _RING_M, u1 - _RING_M, su)
    vcuts = _cuts(v0 + _RING_M, v1 - _RING_M, sv)
    within_ring = shapely.buffer(zone, -(_RING_M - 1.0))

    # Roads: each grid road between two crossings (u roads run along v and the other way).
    u_roads, v_roads = ucuts[1:-1], vcuts[1:-1]
    stretches = [[u, a, u, b] for u in u_roads for a, b in itertools.pairwise(vcuts)] + [
        [a, v, b, v] for v in v_roads for a, b in itertools.pairwise(ucuts)
    ]
    roads = _clip(_segments(np.array(stretches, dtype=float).reshape(-1, 4), frame), within_ring)

    # Drains: along each block's building lines, split at manholes every ~30 m.
    blocks_u = list(zip(ucuts[:-1] + _SETBACK_M, ucuts[1:] - _SETBACK_M, strict=True))
    lines_v = [v + _SETBACK_M - _DRAIN_OFFSET_M for v in vcuts[:-1]] + [
        v - _SETBACK_M + _DRAIN_OFFSET_M for v in vcuts[1:]
    ]
    pipes = []
    for a, b in blocks_u:
        if b - a < 2 * _MIN_LINE_M:
            continue
        n = max(1, round((b - a) / _MANHOLE_STEP_M))
        knots = np.linspace(a, b, n + 1)
        pipes += [[k0, v, k1, v] for v in lines_v for k0, k1 in itertools.pairwise(knots)]
    drains = _clip(_segments(np.array(pipes, dtype=float).reshape(-1, 4), frame), within_ring)
    ends = (
        np.vstack([shapely.get_coordinates(shapely.boundary(np.array(drains, dtype=object)))])
        if drains
        else np.empty((0, 2))
    )
    manholes = np.unique(np.round(ends, 3), axis=0) if len(ends) else ends
    manholes = _keep(inside, manholes)

    # A ditch along the longest edge of the zone, 3 m inside.
    ring = shapely.get_exterior_ring(shapely.get_parts(shapely.buffer(zone, -_DITCH_INSET_M, join_style="mitre")))
    edges = []
    for r in ring:
        xy = shapely.get_coordinates(r)
        edges += [shapely.LineString(xy[i : i + 2]) for i in range(len(xy) - 1)]
    ditches = [max(edges, key=lambda e: e.length)] if edges else []
    ditches = _clip(np.array(ditches, dtype=object), inside) if ditches else []

    # Walls: the zone's edges facing no other zone (a street), 0.5 m inside.
    near = shapely.union_all([shapely.buffer(o, _NEIGHBOUR_M) for o in others]) if others else None
    wall_ring = shapely.boundary(shapely.buffer(zone, -_WALL_INSET_M, join_style="mitre"))
    facing = shapely.difference(wall_ring, near) if near is not None else wall_ring
    walls = _clip(np.array([shapely.line_merge(facing)], dtype=object), zone)
    walls = [w for w in walls if w.is_simple]

    # Sports equipment in some courtyards (block centres), drying racks beside building rows.
    centres = frame.to_world(
        np.array(
            [[(a + b) / 2, (c + d) / 2] for a, b in itertools.pairwise(ucuts) for c, d in itertools.pairwise(vcuts)]
        )
    ).reshape(-1, 2)
    centres = _keep(within_ring, centres)
    sports = centres[rng.random(len(centres)) < 0.35]
    racks_uv = np.array(
        [[(a + b) / 2 + 6.0, v + 1.0] for a, b in blocks_u for v in lines_v[: len(vcuts) - 1]], dtype=float
    ).reshape(-1, 2)
    racks = _keep(within_ring, frame.to_world(racks_uv)) if len(racks_uv) else np.empty((0, 2))
    racks = racks[rng.random(len(racks)) < 0.5]
    return {
        "drains": drains,
        "manholes": list(shapely.points(manholes)) if len(manholes) else [],
        "roads": roads,
        "ditches": ditches,
        "walls": walls,
        "sports_equipment": list(shapely.points(sports)) if len(sports) else [],
        "drying_racks": list(shapely.points(racks)) if len(racks) else [],
    }


def _random_lines(inside: shapely.Geometry, n: int, frame: Any, rng: np.random.Generator) -> list[shapely.Geometry]:
    """n straight stretches of 20–60 m along the grid directions, inside the zone."""
    out: list[shapely.Geometry] = []
    region = shapely.buffer(inside, -_EXTRA_LINE_M[1])
    if shapely.is_empty(region):
        region = inside
    while len(out) < n:
        need = n - len(out)
        starts = _random_points(region, frame, need, rng)
        length = rng.uniform(*_EXTRA_LINE_M, size=need)
        direction = frame.axes[rng.integers(0, 2, size=need)]
        lines = shapely.linestrings(np.stack([starts, starts + direction * length[:, None]], axis=1))
        ok = shapely.within(lines, inside)
        out += list(lines[ok])
    return out[:n]


# ---------------------------------------------------------------- attributes


def _attributes(name: str, n: int, rng: np.random.Generator, built: np.datetime64) -> dict[str, NDArray[Any]]:
    """The spec's attribute columns (zone_code apart) for n features, in spec order."""
    condition = _CONDITIONS[rng.choice(len(_CONDITIONS), size=n, p=_CONDITION_P)]
    cols: dict[str, NDArray[Any]] = {"condition": condition}
    faulty = condition == "faulty"
    if name == "drains":
        cols["pipe_kind"] = _PIPE_KINDS[rng.choice(3, size=n, p=_PIPE_P)]
        cols["diameter_mm"] = _PIPE_MM[rng.integers(0, len(_PIPE_MM), n)]
        cols["material"] = _MATERIALS[rng.choice(len(_MATERIALS), size=n, p=_MATERIAL_P)]
    elif name == "manholes":
        defect = _COVER_DEFECTS[rng.integers(0, 2, n)]
        cols["defect"] = np.where(faulty, defect, np.array(None, dtype=object)).astype(object)
        cols["depth_m"] = np.round(rng.uniform(0.8, 3.5, n), 1)
    elif name == "roads":
        defect = _ROAD_DEFECTS[rng.integers(0, 3, n)]
        cols["defect"] = np.where(faulty, defect, np.array(None, dtype=object)).astype(object)
        cols["width_m"] = np.round(rng.uniform(4.0, 7.0, n), 1)
        cols["surface"] = _SURFACES[rng.choice(len(_SURFACES), size=n, p=_SURFACE_P)]
    elif name == "ditches":
        cols["width_m"] = np.round(rng.uniform(0.4, 1.5, n), 1)
    elif name == "walls":
        cols["height_m"] = np.round(rng.uniform(1.8, 2.5, n), 1)
    elif name == "sports_equipment":
        cols["kind"] = _EQUIPMENT[rng.choice(len(_EQUIPMENT), size=n, p=_EQUIPMENT_P)]
    installed, maintained = _dates(n, rng, built)
    installed[rng.random(n) < _P_NO_INSTALL_DATE] = np.datetime64("NaT")
    maintained[rng.random(n) < _P_NEVER_MAINTAINED] = np.datetime64("NaT")
    if name != "ditches":  # the ditches spec has no installed_on
        cols["installed_on"] = _as_dates(installed)
    cols["last_maintained"] = _as_dates(maintained)
    return cols


_COLUMNS = {
    "drains": ["condition", "pipe_kind", "diameter_mm", "material", "zone_code", "installed_on", "last_maintained"],
    "manholes": ["condition", "defect", "depth_m", "installed_on", "last_maintained"],
    "roads": ["condition", "defect", "width_m", "surface", "zone_code", "installed_on", "last_maintained"],
    "ditches": ["condition", "width_m", "zone_code", "last_maintained"],
    "walls": ["condition", "height_m", "zone_code", "installed_on", "last_maintained"],
    "sports_equipment": ["condition", "kind", "installed_on", "last_maintained"],
    "drying_racks": ["condition", "installed_on", "last_maintained"],
}


def _frame_of(name: str, rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    """One layer's GeoDataFrame in EPSG:4490 (columns in spec order) from rows and metric geometries."""
    to_lonlat = transformer(METRIC_SRID, STORAGE_SRID)
    geometry = shapely.transform(np.array(geoms, dtype=object), _apply(to_lonlat)) if geoms else []
    frame = gpd.GeoDataFrame(rows, columns=["code", *_COLUMNS[name]], geometry=geometry, crs=STORAGE_SRID)
    for col in frame.columns:
        if col != "geometry" and frame[col].dtype == object:
            frame[col] = frame[col].where(frame[col].notna(), None)
    return frame
