"""Deterministic synthetic facilities (部件) inside the demo zones.

SYNTHETIC DEMO DATA: street lights, septic tanks, litter bins and green plots
laid out the way an open residential zone (开放式小区) usually is, so that the
maps, imports, case dispatch and benchmarks have a realistic load. Nothing here
is surveyed.

Layout at ``scale=1`` (per zone, in EPSG:4547 metres, the grid parallel to
the zone's longest east-west edge): a ring road 8 m inside the boundary and a
grid of internal roads every 60–90 m; street lights every 30 m along all
roads and one courtyard lamp per building; south-facing slab buildings (not
output) in one or two rows per block, one septic tank at the end of each;
litter bins at crossings and every 80 m along the ring; a green plot
(200–1500 m²) in the courtyard between the two rows of a block. These
positions depend on the zones only, not on the seed.

``scale=N`` keeps that layout exactly (the scale=1 frame is the head of the
scale=N frame) and adds N−1 times as many features per zone and layer at
random positions, so load tests can grow the data set without changing what
the map shows at low zoom. Everything is vectorised (numpy, shapely 2,
one pyproj transformer per direction): a million street lights take seconds.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from geo.spatial.crs import METRIC_SRID, STORAGE_SRID, transformer

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LAYERS = ("street_lights", "septic_tanks", "litter_bins", "green_plots")
_PREFIX = {"street_lights": "SL", "septic_tanks": "ST", "litter_bins": "LB", "green_plots": "GP"}
_LAYER_STREAM = {name: i for i, name in enumerate(LAYERS)}  # rng stream id per layer

# Attribute value keys, as in layers/vocabulary.toml [conditions] and the specs.
# Most facilities work; "removed" is rare (records kept after demolition).
# Text values are object arrays: pandas takes those ~10× faster than numpy "U".
_CONDITIONS = np.array(["normal", "faulty", "repairing", "removed"], dtype=object)
_CONDITION_P = (0.86, 0.07, 0.05, 0.02)
_POWER_W = np.array([30, 60, 100])
_CAPACITY_L = np.array([60, 120, 240])
_CAPACITY_P = (0.2, 0.5, 0.3)
_VEGETATION = np.array(["lawn", "shrubs", "trees", "mixed"], dtype=object)
_VEGETATION_P = (0.3, 0.25, 0.15, 0.3)
# Common standard septic tank sizes (national standard drawings), m³.
_TANK_M3 = np.array([9.0, 12.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0])

# Dates: zones were built 2004–2014; remediation in 2023 replaced some
# facilities; maintenance records run to mid-2023 (the plan's acceptance).
_BUILT_FROM = np.datetime64("2004-01-01", "D")
_BUILT_DAYS = 3650
_LAST_INSTALL = np.datetime64("2023-04-30", "D")
_MAINT_FROM = np.datetime64("2022-06-01", "D")
_MAINT_TO = np.datetime64("2023-06-30", "D")
_P_REPLACED = 0.2  # installed later than the zone (replacement)
_P_NO_INSTALL_DATE = 0.05  # old records without a date
_P_NEVER_MAINTAINED = 0.1

# Layout, metres.
_LAYOUT_SEED = 20230401  # fixed: the scale=1 geometry does not depend on `seed`
_INSET_M = 1.0  # every feature keeps this far inside: reprojection cannot push it out
_RING_M = 8.0  # ring road centreline inside the zone boundary
_ROAD_SPACING_M = (60.0, 90.0)
_LIGHT_STEP_M = 30.0
_LIGHT_OFFSET_M = 3.0  # lights stand beside the carriageway, not on it
_BIN_STEP_M = 80.0
_BIN_OFFSET_M = 4.0
_SETBACK_M = 8.0  # building face from road centreline
_BUILDING_DEPTH_M = (11.0, 14.0)
_BUILDING_LEN_M = 30.0  # typical 6-storey slab of two or three stairwells
_BUILDING_GAP_M = 10.0
_MIN_BUILDING_LEN_M = 18.0  # blocks too narrow for this get no buildings
_COURTYARD_M = 14.0  # minimum gap between the two rows of a block
_TANK_OFFSET_M = 2.5
_PATH_OFFSET_M = 3.0  # footpath along a building's north face (short of the plots' 4 m)
_PLOT_MARGIN_M = 4.0
_PLOT_AREA_M2 = (200.0, 1500.0)
_EXTRA_PLOT_SIDE_M = (15.0, 38.0)  # extras are squares of 225–1444 m²


@dataclass(frozen=True)
class _Frame:
    """A zone's local frame: u along the road grid, v across it, origin at the centroid."""

    origin: FloatArray  # (2,)
    axes: FloatArray  # rows: unit vectors of u and v in world coordinates

    def to_world(self, uv: FloatArray) -> FloatArray:
        return uv @ self.axes + self.origin

    def to_local(self, xy: FloatArray) -> FloatArray:
        return (xy - self.origin) @ self.axes.T


@dataclass
class _Part:
    """Features of one layer in one zone, metres, before attributes are final."""

    zone_code: str
    first_number: int  # numbering of codes within the zone continues across parts
    geoms: NDArray[Any]  # points: (n, 2) coordinates; green plots: shapely polygons
    columns: dict[str, NDArray[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.geoms)


@dataclass
class _Layout:
    """The scale=1 facilities of one zone."""

    lights: FloatArray
    light_power: IntArray
    tanks: FloatArray
    tank_volume: FloatArray
    bins: FloatArray
    plots: NDArray[np.object_]


def generate_facilities(zones: gpd.GeoDataFrame, *, seed: int = 2023, scale: int = 1) -> dict[str, gpd.GeoDataFrame]:
    """Synthetic facilities for each zone, keyed by layer name.

    ``zones`` needs columns ``code`` (ASCII) and ``geometry`` (Polygon or
    MultiPolygon, EPSG:4490; other CRSs are reprojected). Returns GeoDataFrames
    in EPSG:4490 for ``street_lights``, ``septic_tanks``, ``litter_bins``
    (points) and ``green_plots`` (polygons), with the attribute columns of the
    layer specs plus a unique ``code`` such as ``SL-jinling-000123``.

    The same zones, seed and scale give identical frames. The scale=1
    positions depend on the zones only; ``seed`` drives the attributes and the
    extras. ``scale=N`` returns exactly N times the scale=1 count per layer and
    zone: the scale=1 rows first, unchanged, then the random extras.
    """
    if scale < 1:
        raise ValueError(f"scale must be ≥ 1, got {scale}")
    if zones.crs is not None and zones.crs.to_epsg() != STORAGE_SRID:
        zones = zones.to_crs(STORAGE_SRID)
    to_metric = transformer(STORAGE_SRID, METRIC_SRID)

    base: dict[str, list[_Part]] = {name: [] for name in LAYERS}
    extra: dict[str, list[_Part]] = {name: [] for name in LAYERS}
    for code, geom in zip(zones["code"], zones.geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        zone = shapely.transform(geom, _apply(to_metric))
        # Each zone has its own random streams (keyed by its code, not its row),
        # so one zone's facilities don't change when another zone is edited.
        zone_key = zlib.crc32(str(code).encode())
        frame = _frame(zone)
        inside = shapely.buffer(zone, -_INSET_M)
        shapely.prepare(inside)
        # The scale=1 layout ignores `seed`: the demo map and the scale=1 counts
        # are a function of the zones alone, so a benchmark can pick `scale`
        # for a target size before choosing seeds. The seed drives attributes
        # and the extras.
        layout = _layout(zone, inside, frame, np.random.default_rng([_LAYOUT_SEED, zone_key]))
        built_days = np.random.default_rng([seed, zone_key]).integers(_BUILT_DAYS)
        built = _BUILT_FROM + np.timedelta64(int(built_days), "D")

        parts = {
            "street_lights": _Part(code, 0, layout.lights, {"power_w": layout.light_power}),
            "septic_tanks": _Part(code, 0, layout.tanks, {"volume_m3": layout.tank_volume}),
            "litter_bins": _Part(code, 0, layout.bins),
            "green_plots": _Part(code, 0, layout.plots),
        }
        for name, part in parts.items():
            layer_rng = np.random.default_rng([seed, zone_key, _LAYER_STREAM[name], 0])
            _add_attributes(name, part, layer_rng, built, extra=False)
            base[name].append(part)
            n_extra = (scale - 1) * len(part)
            if n_extra == 0:
                continue
            extra_rng = np.random.default_rng([seed, zone_key, _LAYER_STREAM[name], 1])
            sample = _random_plots if name == "green_plots" else _random_points
            more = _Part(code, len(part), sample(inside, frame, n_extra, extra_rng))
            _add_attributes(name, more, extra_rng, built, extra=True)
            extra[name].append(more)

    return {name: _frame_of(name, base[name] + extra[name]) for name in LAYERS}


# ---------------------------------------------------------------- layout


def _frame(zone: shapely.Geometry) -> _Frame:
    """Local frame with u along the longest east-west-ish boundary edge of the zone.

    Estates are usually laid out parallel to a frontage road, and a grid
    parallel to a long edge loses the fewest buildings at the boundary. Slab
    buildings run along u, and in Changsha they face south: so the edge is
    chosen among those within 45° of east-west (any edge if there are none).
    """
    parts = shapely.get_parts(zone)
    ring = shapely.get_coordinates(shapely.get_exterior_ring(parts[np.argmax(shapely.area(parts))]))
    sides = np.diff(ring, axis=0)
    lengths = np.hypot(sides[:, 0], sides[:, 1])
    east_west = np.abs(sides[:, 0]) >= np.abs(sides[:, 1])
    score = np.where(east_west, lengths, 0.0) if east_west.any() else lengths
    best = int(np.argmax(score))
    u = sides[best] / lengths[best] if lengths.size and lengths[best] > 0 else np.array([1.0, 0.0])
    if u[0] < 0 or (u[0] == 0 and u[1] < 0):  # same frame whichever way the ring runs
        u = -u
    v = np.array([-u[1], u[0]])
    origin = np.array(shapely.get_coordinates(shapely.centroid(zone))[0])
    return _Frame(origin=origin, axes=np.vstack([u, v]))


def _cuts(lo: float, hi: float, spacing: float) -> FloatArray:
    """Block edges from lo to hi at about `spacing` (inner ones are the roads)."""
    n = max(1, round((hi - lo) / spacing))
    return np.linspace(lo, hi, n + 1)


def _sample_lines(lines: NDArray[np.object_], step: float) -> FloatArray:
    """Points every `step` metres along each line, starting half a step in."""
    lengths = shapely.length(lines)
    counts = np.maximum(0, np.floor((lengths - step / 2) / step).astype(np.int64) + 1)
    idx = np.repeat(np.arange(len(lines)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    points = shapely.line_interpolate_point(lines[idx], step / 2 + step * within)
    return shapely.get_coordinates(points)


def _rings(zone: shapely.Geometry, inset: float) -> NDArray[np.object_]:
    """The boundary lines of the zone shrunk by `inset`."""
    return shapely.get_parts(shapely.boundary(shapely.buffer(zone, -inset)))


def _keep(region: shapely.Geometry, xy: FloatArray) -> FloatArray:
    return xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]


def _layout(zone: shapely.Geometry, inside: shapely.Geometry, frame: _Frame, rng: np.random.Generator) -> _Layout:
    """Roads, buildings and the facilities placed along and between them."""
    u0, v0, u1, v1 = shapely.bounds(shapely.transform(zone, frame.to_local))
    su, sv = rng.uniform(*_ROAD_SPACING_M, size=2)
    # The outermost cuts stand for the ring road (as far as the bounding box
    # knows it), so edge blocks are set back from the ring like inner ones.
    ucuts = _cuts(u0 + _RING_M, u1 - _RING_M, su)
    vcuts = _cuts(v0 + _RING_M, v1 - _RING_M, sv)
    u_roads, v_roads = ucuts[1:-1], vcuts[1:-1]
    # Grid roads end at the ring road; their lights and bins stop short of it.
    within_ring = shapely.buffer(zone, -(_RING_M + 2.0))
    shapely.prepare(within_ring)

    # Street lights: ring road (brighter) and both directions of the grid.
    ring_lights = _keep(inside, _sample_lines(_rings(zone, _RING_M), _LIGHT_STEP_M))
    us = np.arange(u0 + _LIGHT_STEP_M / 2, u1, _LIGHT_STEP_M)
    vs = np.arange(v0 + _LIGHT_STEP_M / 2, v1, _LIGHT_STEP_M)
    grid_uv = np.vstack([
        np.column_stack([np.repeat(u_roads + _LIGHT_OFFSET_M, len(vs)), np.tile(vs, len(u_roads))]),
        np.column_stack([np.tile(us, len(v_roads)), np.repeat(v_roads - _LIGHT_OFFSET_M, len(us))]),
    ])  # fmt: skip
    grid_lights = _keep(within_ring, frame.to_world(grid_uv))
    lights = np.vstack([ring_lights, grid_lights])
    power = np.concatenate([
        np.where(rng.random(len(ring_lights)) < 0.7, 100, 60),
        np.where(rng.random(len(grid_lights)) < 0.7, 60, 30),
    ]).astype(np.int64)  # fmt: skip

    # Litter bins: at grid crossings and every 80 m along the ring's inner kerb.
    cross_u, cross_v = np.meshgrid(u_roads + _BIN_OFFSET_M, v_roads + _BIN_OFFSET_M)
    crossings = frame.to_world(np.column_stack([cross_u.ravel(), cross_v.ravel()]))
    bins = np.vstack([
        _keep(inside, _sample_lines(_rings(zone, _RING_M + _BIN_OFFSET_M), _BIN_STEP_M)),
        _keep(within_ring, crossings),
    ])  # fmt: skip

    # Blocks between roads, shrunk by the setback; buildings in one or two rows.
    bu0, bv0 = (a.ravel() for a in np.meshgrid(ucuts[:-1] + _SETBACK_M, vcuts[:-1] + _SETBACK_M))
    bu1, bv1 = (a.ravel() for a in np.meshgrid(ucuts[1:] - _SETBACK_M, vcuts[1:] - _SETBACK_M))
    depth = rng.uniform(*_BUILDING_DEPTH_M, size=len(bu0))
    two_rows = bv1 - bv0 >= 2 * depth + _COURTYARD_M
    mid = (bv0 + bv1) / 2
    row_block = np.concatenate([np.arange(len(bu0)), np.flatnonzero(two_rows)])
    row_v0 = np.concatenate([np.where(two_rows, bv0, mid - depth / 2), bv1[two_rows] - depth[two_rows]])
    row_v1 = row_v0 + depth[row_block]
    width = bu1[row_block] - bu0[row_block]
    per_row = np.maximum(1, np.round((width + _BUILDING_GAP_M) / (_BUILDING_LEN_M + _BUILDING_GAP_M)))
    length = (width - (per_row - 1) * _BUILDING_GAP_M) / per_row
    per_row = np.where(length >= _MIN_BUILDING_LEN_M, per_row, 0).astype(np.int64)
    row = np.repeat(np.arange(len(row_block)), per_row)
    nth = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    b_u0 = bu0[row_block][row] + nth * (length[row] + _BUILDING_GAP_M)
    b_len, b_v0, b_v1 = length[row], row_v0[row], row_v1[row]
    # Buildings stay clear of the ring road: inside the zone less ring and setback
    # (less a little, so that a building face lying on that line is not lost to
    # rounding when the zone side is parallel to the grid).
    buildable = shapely.buffer(zone, -(_RING_M + _SETBACK_M - 0.5))
    shapely.prepare(buildable)
    # Where a whole building would cross that line (zone edges oblique to the
    # grid), a shorter one at either end or in the middle may still fit: try
    # the variants in this order, keep the first that fits.
    lo, hi = np.array([0.0, 0.0, 0.4, 0.2]), np.array([1.0, 0.6, 1.0, 0.8])
    c_u0 = b_u0[:, None] + lo * b_len[:, None]
    c_u1 = b_u0[:, None] + hi * b_len[:, None]
    boxes = shapely.box(c_u0, b_v0[:, None], c_u1, b_v1[:, None]).ravel()
    fits = shapely.within(shapely.transform(boxes, frame.to_world), buildable).reshape(c_u0.shape)
    ok = fits.any(axis=1)
    pick = np.argmax(fits, axis=1)[ok]
    end_u = c_u1[ok, pick]
    footprint = (c_u1 - c_u0)[ok, pick] * depth[row_block][row][ok]

    # A 30 W courtyard lamp (庭院灯) on the path along the north face of each building.
    yard = frame.to_world(np.column_stack([
        (c_u0 + c_u1)[ok, pick] / 2, b_v1[ok] + _PATH_OFFSET_M,
    ]))  # fmt: skip
    yard = _keep(inside, yard)
    lights = np.vstack([lights, yard])
    power = np.concatenate([power, np.full(len(yard), 30, dtype=np.int64)])

    # One septic tank at the end of each building; size from its households
    # (6 storeys, ~90 m² a flat, ~0.4 m³ a household), rounded up to a standard size.
    tanks = frame.to_world(np.column_stack([end_u + _TANK_OFFSET_M, (b_v0 + b_v1)[ok] / 2]))
    households = footprint * 6 / 90
    volume = _TANK_M3[np.minimum(np.searchsorted(_TANK_M3, households * 0.4), len(_TANK_M3) - 1)]
    in_zone = shapely.contains_xy(inside, tanks[:, 0], tanks[:, 1])

    # Green plots: in the courtyard between two rows, a strip of random size
    # and position (centred across the courtyard, at most 12–24 m deep).
    g_v0 = bv0 + depth + _PLOT_MARGIN_M
    g_v1 = bv1 - depth - _PLOT_MARGIN_M
    g_h = np.where(two_rows, np.minimum(g_v1 - g_v0, rng.uniform(12.0, 24.0, len(bu0))), 0.0)
    g_mid = (g_v0 + g_v1) / 2
    room = bu1 - bu0 - 2 * _PLOT_MARGIN_M
    target = rng.uniform(400.0, _PLOT_AREA_M2[1], size=len(bu0))
    g_len = np.minimum(room, target / np.maximum(g_h, 1e-9))
    g_u0 = bu0 + _PLOT_MARGIN_M + rng.random(len(bu0)) * (room - g_len)
    candidates = two_rows & (g_h > 0) & (g_len > 0)
    strips = shapely.box(g_u0, g_mid - g_h / 2, g_u0 + g_len, g_mid + g_h / 2)[candidates]
    plots = shapely.intersection(shapely.transform(strips, frame.to_world), buildable)
    area = shapely.area(plots)
    good = (shapely.get_type_id(plots) == 3) & (area >= _PLOT_AREA_M2[0]) & (area <= _PLOT_AREA_M2[1])

    return _Layout(
        lights=lights,
        light_power=power,
        tanks=tanks[in_zone],
        tank_volume=volume[in_zone],
        bins=bins,
        plots=plots[good],
    )


# ---------------------------------------------------------------- extras


def _random_points(region: shapely.Geometry, frame: _Frame, n: int, rng: np.random.Generator) -> FloatArray:
    """n uniform points in region: vectorised rejection sampling in the local bounding box."""
    u0, v0, u1, v1 = shapely.bounds(shapely.transform(region, frame.to_local))
    # Expected acceptance rate, so that one batch usually suffices.
    accept = max(shapely.area(region) / max((u1 - u0) * (v1 - v0), 1e-9), 0.05)
    chunks: list[FloatArray] = []
    need = n
    while need > 0:
        m = int(need / accept * 1.1) + 64
        xy = frame.to_world(rng.uniform((u0, v0), (u1, v1), size=(m, 2)))
        got = _keep(region, xy)[:need]
        chunks.append(got)
        need -= len(got)
    return np.vstack(chunks)


def _random_plots(inside: shapely.Geometry, frame: _Frame, n: int, rng: np.random.Generator) -> NDArray[np.object_]:
    """n squares (aligned with the zone) of random size at random places in the zone."""
    sides = rng.uniform(*_EXTRA_PLOT_SIDE_M, size=n)
    # Centres far enough in that the largest square fits whole; tiny zones fall
    # back to clipping the squares to the zone.
    region = shapely.buffer(inside, -_EXTRA_PLOT_SIDE_M[1] / 2 * np.sqrt(2))
    clip = bool(shapely.is_empty(region))
    if clip:
        region = inside
    shapely.prepare(region)
    centres = frame.to_local(_random_points(region, frame, n, rng))
    half = sides / 2
    squares = shapely.box(centres[:, 0] - half, centres[:, 1] - half, centres[:, 0] + half, centres[:, 1] + half)
    squares = shapely.transform(squares, frame.to_world)
    return shapely.intersection(squares, inside) if clip else squares


# ---------------------------------------------------------------- attributes


def _dates(
    n: int, rng: np.random.Generator, built: np.datetime64
) -> tuple[NDArray[np.datetime64], NDArray[np.datetime64]]:
    """installed_on (with the zone, or a later replacement) and last_maintained after it."""
    replaced = rng.random(n) < _P_REPLACED
    # Differences of datetime64[D] are timedelta64[D]: their integers are days.
    span = max(int((_LAST_INSTALL - built).astype(np.int64)), 1)
    days = np.where(replaced, rng.integers(0, span, n), rng.integers(0, 400, n))
    installed = np.minimum(built + days.astype("timedelta64[D]"), _LAST_INSTALL)
    lo = np.maximum(installed, _MAINT_FROM)
    window = (_MAINT_TO - lo).astype(np.int64) + 1
    maintained = lo + (rng.random(n) * window).astype("timedelta64[D]")
    return installed, maintained


def _add_attributes(name: str, part: _Part, rng: np.random.Generator, built: np.datetime64, *, extra: bool) -> None:
    """Fill part.columns in spec order; dates stay datetime64 with NaT for None."""
    n = len(part)
    cols: dict[str, NDArray[Any]] = {"condition": _CONDITIONS[rng.choice(len(_CONDITIONS), size=n, p=_CONDITION_P)]}
    if name == "street_lights":
        cols["power_w"] = part.columns["power_w"] if not extra else _POWER_W[rng.integers(0, 3, n)]
    elif name == "septic_tanks":
        cols["volume_m3"] = part.columns["volume_m3"] if not extra else rng.choice(_TANK_M3[:6], size=n)
    elif name == "litter_bins":
        cols["capacity_l"] = _CAPACITY_L[rng.choice(3, size=n, p=_CAPACITY_P)]
    else:
        cols["vegetation"] = _VEGETATION[rng.choice(4, size=n, p=_VEGETATION_P)]
    installed, maintained = _dates(n, rng, built)
    installed[rng.random(n) < _P_NO_INSTALL_DATE] = np.datetime64("NaT")
    maintained[rng.random(n) < _P_NEVER_MAINTAINED] = np.datetime64("NaT")
    if name != "green_plots":  # the green_plots spec has no installed_on
        cols["installed_on"] = installed
    cols["last_maintained"] = maintained
    part.columns = cols


def _codes(prefix: str, part: _Part) -> NDArray[np.object_]:
    """PREFIX-zone-000123: numbered within the zone, so extras continue the base numbers."""
    if len(part) == 0:  # np.strings.zfill rejects empty arrays
        return np.empty(0, dtype=object)
    numbers = np.arange(part.first_number, part.first_number + len(part)).astype(np.str_)
    codes = np.strings.add(f"{prefix}-{part.zone_code}-", np.strings.zfill(numbers, 6))
    return codes.astype(object)


def _as_dates(values: NDArray[np.datetime64]) -> NDArray[np.object_]:
    """datetime64[D] → datetime.date objects, NaT → None (what the importers expect)."""
    out = values.astype("datetime64[D]").astype(object)
    out[np.isnat(values)] = None
    return out


def _frame_of(name: str, parts: list[_Part]) -> gpd.GeoDataFrame:
    """One layer's GeoDataFrame in EPSG:4490 from its parts (metres)."""
    if not parts:  # no zones: one empty part still gives the typed columns
        empty = np.empty(0, dtype=object) if name == "green_plots" else np.empty((0, 2))
        parts = [_Part("", 0, empty)]
        _add_attributes(name, parts[0], np.random.default_rng(0), _BUILT_FROM, extra=True)
    data: dict[str, NDArray[Any]] = {"code": np.concatenate([_codes(_PREFIX[name], p) for p in parts])}
    for col in parts[0].columns:  # _add_attributes made them in spec order
        values = np.concatenate([p.columns[col] for p in parts])
        data[col] = _as_dates(values) if values.dtype.kind == "M" else values
    to_lonlat = transformer(METRIC_SRID, STORAGE_SRID)
    if name == "green_plots":
        geometry = shapely.transform(np.concatenate([p.geoms for p in parts]), _apply(to_lonlat))
    else:
        xy = np.vstack([p.geoms for p in parts])
        geometry = shapely.points(*to_lonlat.transform(xy[:, 0], xy[:, 1]))
    return gpd.GeoDataFrame(data, geometry=geometry, crs=STORAGE_SRID)


def _apply(tr: Transformer) -> Callable[[FloatArray], FloatArray]:
    """A shapely.transform function (N×2 coordinates) from a pyproj transformer."""

    def apply(xy: FloatArray) -> FloatArray:
        return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

    return apply
