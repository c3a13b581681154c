"""Conversions between WGS84/CGCS2000 and the Chinese consumer-map datums GCJ-02 and BD-09.

Why this module exists
----------------------
Maps and phones sold in mainland China do not show true coordinates:

* **GCJ-02** ("Mars coordinates", 国测局坐标) is WGS84 pushed through a deliberately
  non-linear, non-invertible offset. AMap/Gaode, Tencent Maps and WeChat location use it.
  In Changsha the shift is about 650 m, so a point collected on a phone and stored
  as-is would land in the wrong courtyard.
* **BD-09** (百度坐标) is Baidu's own extra rotation/scaling applied on top of GCJ-02.

Neither is an EPSG CRS, so pyproj cannot convert them; this module implements the
publicly documented formulas with numpy. The GCJ-02 forward formula uses the Krasovsky
1940 ellipsoid and a polynomial-plus-sine series; its inverse has no closed form and is
solved here by fixed-point iteration to ~1e-10 degrees (sub-millimetre).

Storage is never shifted
------------------------
Storage is CGCS2000 (EPSG:4490). At map scale CGCS2000 and WGS84 differ by centimetres,
so both are treated as identical here. Everything stored is in true coordinates:
``to_storage`` is applied once, on the way in (a point picked on an AMap basemap,
a Baidu export, ...), and ``from_storage`` only on the way out for display on a
GCJ-02/BD-09 basemap. Shifted coordinates must never be written back.

Vectorisation
-------------
Every public function accepts Python floats or numpy arrays (any shape, broadcast
against each other). Floats in give floats out; anything else gives new float64 arrays.
NaN propagates as NaN without raising warnings.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Final, Protocol, cast, overload

import numpy as np
import numpy.typing as npt

from geo.errors import InvalidInput

__all__ = [
    "COORD_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_storage",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "to_storage",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

F64Array = npt.NDArray[np.float64]

# Krasovsky 1940 ellipsoid: the published GCJ-02 formula is defined on it, not on WGS84.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
# Baidu's constant: pi scaled by 3000/180, used as an angular frequency in BD-09.
_X_PI: Final = np.pi * 3000.0 / 180.0
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006

# The offset is applied only inside this rough box around mainland China; everywhere
# else GCJ-02 equals WGS84. It is the box every public implementation uses, so we keep
# it (and its coarseness: e.g. parts of Mongolia or Korea are "inside") for compatibility.
_LON_MIN: Final = 72.004
_LON_MAX: Final = 137.8347
_LAT_MIN: Final = 0.8293
_LAT_MAX: Final = 55.8271

# Inverse iteration: 1e-10 degrees is ~0.01 mm, far below anything a map can show;
# the forward offset varies so slowly (error shrinks ~200x per round) that 4 rounds
# normally suffice, and 20 is only a guard against points oscillating on the box edge.
_TOLERANCE_DEG: Final = 1e-10
_MAX_ITERATIONS: Final = 20

# Points per block for large arrays (see _blockwise): small enough for the temporaries
# to stay in cache, large enough that the per-block Python overhead is negligible.
_BLOCK: Final = 65536

COORD_SYSTEMS: Final = ("cgcs2000", "wgs84", "gcj02", "bd09")


class PairTransform(Protocol):
    """A (lon, lat) → (lon, lat) conversion: floats give floats, arrays give float64 arrays."""

    @overload
    def __call__(self, lon: float, lat: float) -> tuple[float, float]: ...

    @overload
    def __call__(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[F64Array, F64Array]: ...


_ArrayTransform = Callable[[F64Array, F64Array], tuple[F64Array, F64Array]]


def _is_scalar(value: object) -> bool:
    # A 0-d ndarray counts as an array ("arrays in → arrays out"); numpy scalars such as
    # np.float64 (which subclass float) count as scalars.
    return isinstance(value, int | float | np.generic)


def _blockwise(fn: _ArrayTransform, x: F64Array, y: F64Array) -> tuple[F64Array, F64Array]:
    """Apply the pointwise ``fn`` block by block, so its dozens of temporaries stay in cache.

    Whole-array evaluation of a million points allocates and faults in fresh 8 MB
    temporaries for every operation; blocks of 64k points measured ~1.4x faster.
    """
    flat_x, flat_y = x.ravel(), y.ravel()
    out_x = np.empty(flat_x.size, dtype=np.float64)
    out_y = np.empty(flat_y.size, dtype=np.float64)
    for start in range(0, flat_x.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        out_x[block], out_y[block] = fn(flat_x[block], flat_y[block])
    return out_x.reshape(x.shape), out_y.reshape(y.shape)


def _scalar_or_array(one: Callable[[float, float], tuple[float, float]]) -> Callable[[_ArrayTransform], PairTransform]:
    """Let ``fn`` (written for broadcast float64 arrays) also take and return plain floats; a
    finite point is computed by ``one``, the same formulas on floats (no numpy overhead)."""

    def decorate(fn: _ArrayTransform) -> PairTransform:
        @functools.wraps(fn)
        def wrapper(lon: Any, lat: Any) -> tuple[Any, Any]:
            scalar = _is_scalar(lon) and _is_scalar(lat)
            if scalar and math.isfinite(lon) and math.isfinite(lat):
                return one(float(lon), float(lat))
            x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
            # Computing in errstate: non-finite input (NaN, inf) must pass through as data,
            # not trip "invalid value" warnings that a strict test or service turns into errors.
            with np.errstate(invalid="ignore", over="ignore"):
                if x.size <= _BLOCK:
                    out_x, out_y = fn(x, y)
                else:
                    out_x, out_y = _blockwise(fn, x, y)
            if scalar:
                return float(out_x), float(out_y)
            # numpy arithmetic on 0-d arrays yields numpy scalars; callers passed an array, so
            # they get an array back.
            return np.asarray(out_x, dtype=np.float64), np.asarray(out_y, dtype=np.float64)

        return cast(PairTransform, wrapper)

    return decorate


def _in_china(lon: F64Array, lat: F64Array) -> npt.NDArray[np.bool_]:
    """True where the GCJ-02 offset applies (NaN compares False, so it is 'outside')."""
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def _gcj02_shift(lon: Any, lat: Any, xp: Any = np) -> tuple[Any, Any]:
    """GCJ-02 minus WGS84 at a WGS84 point, in degrees, ignoring the China box.

    This is the published formula: two polynomial-plus-sine series in 'metres-ish'
    units on offsets from (105E, 35N), scaled to degrees on the Krasovsky ellipsoid.
    Trigonometry dominates the cost for large arrays, so only 8 of the formula's 14
    sines/cosines are evaluated: the pair shared by both series once, three via the
    triple-angle identity and cos(lat) from sin(lat). The result agrees with the literal
    formula to ~1e-17 degrees, which the tests check against a scalar version.
    ``xp`` is numpy for arrays, or ``_MATH`` for one point in plain floats (a report at intake:
    numpy's per-call overhead on one-element arrays cost ~0.5 ms for a GCJ-02 inverse).
    """
    x = lon - 105.0
    y = lat - 35.0
    px = x * xp.pi
    py = y * xp.pi
    sin_2px = xp.sin(2.0 * px)
    sin_px_3 = xp.sin(px / 3.0)
    sin_py_3 = xp.sin(py / 3.0)
    # sin(3t) = 3 sin t − 4 sin³ t gives sin(6πx), sin(πx) and sin(πy) from the above.
    sin_6px = sin_2px * (3.0 - 4.0 * sin_2px * sin_2px)
    sin_px = sin_px_3 * (3.0 - 4.0 * sin_px_3 * sin_px_3)
    sin_py = sin_py_3 * (3.0 - 4.0 * sin_py_3 * sin_py_3)
    # The first sine pair and the square root are identical in both series.
    common = (20.0 * sin_6px + 20.0 * sin_2px) * 2.0 / 3.0
    sqrt_abs_x = xp.sqrt(xp.fabs(x))

    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * sin_py + 40.0 * sin_py_3) * 2.0 / 3.0
    dlat += (160.0 * xp.sin(py / 12.0) + 320.0 * xp.sin(py / 30.0)) * 2.0 / 3.0

    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * sin_px + 40.0 * sin_px_3) * 2.0 / 3.0
    dlon += (150.0 * xp.sin(px / 12.0) + 300.0 * xp.sin(px / 30.0)) * 2.0 / 3.0

    # Metres → degrees: meridian radius of curvature for latitude, parallel radius for
    # longitude. cos(lat) = sqrt(1 − sin² lat) exactly, as |lat| ≤ 90 inside the box.
    sin_lat = xp.sin(lat / 180.0 * xp.pi)
    magic = 1.0 - _EE * sin_lat * sin_lat
    sqrt_magic = xp.sqrt(magic)
    cos_lat = xp.sqrt(1.0 - sin_lat * sin_lat)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * xp.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * cos_lat * xp.pi)
    return dlon, dlat


def _wgs84_to_gcj02(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    dlon, dlat = _gcj02_shift(lon, lat)
    inside = _in_china(lon, lat)
    if inside.all():  # the usual case for our data: skip the two selects
        return lon + dlon, lat + dlat
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _gcj02_to_bd09(lon: Any, lat: Any, xp: Any = np) -> tuple[Any, Any]:
    # Baidu's published formula: perturb radius and angle in polar form, then translate.
    z = xp.sqrt(lon * lon + lat * lat) + 0.00002 * xp.sin(lat * _X_PI)
    theta = xp.arctan2(lat, lon) + 0.000003 * xp.cos(lon * _X_PI)
    return z * xp.cos(theta) + _BD_DLON, z * xp.sin(theta) + _BD_DLAT


def _bd09_start(lon: Any, lat: Any, xp: Any = np) -> tuple[Any, Any]:
    # The published closed-form inverse: the perturbation evaluated at the BD-09 point.
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = xp.sqrt(x * x + y * y) - 0.00002 * xp.sin(y * _X_PI)
    theta = xp.arctan2(y, x) - 0.000003 * xp.cos(x * _X_PI)
    return z * xp.cos(theta), z * xp.sin(theta)


def _invert(
    forward: _ArrayTransform,
    target_lon: F64Array,
    target_lat: F64Array,
    start_lon: F64Array,
    start_lat: F64Array,
) -> tuple[F64Array, F64Array]:
    """Solve forward(w) = target by the fixed-point iteration w ← w + (target − forward(w)).

    It converges because both offsets change by only a few thousandths of a degree per
    degree moved, so each round shrinks the error by a factor of a few hundred: from a
    naive start (metres off) about 4 rounds reach the 1e-10 degree tolerance. A point leaves the
    working set once its error is below tolerance (after taking that last correction),
    so late rounds, where typically half the points or fewer remain, cost less.
    """
    shape = target_lon.shape
    t_lon, t_lat = target_lon.ravel(), target_lat.ravel()
    w_lon, w_lat = start_lon.ravel().copy(), start_lat.ravel().copy()
    active: npt.NDArray[np.intp] | None = None  # None: every point, without gathering
    for _ in range(_MAX_ITERATIONS):
        if active is None:
            f_lon, f_lat = forward(w_lon, w_lat)
            err_lon, err_lat = t_lon - f_lon, t_lat - f_lat
            w_lon += err_lon
            w_lat += err_lat
            # NaN errors compare False, so NaN points drop out instead of holding the loop.
            active = np.flatnonzero((np.abs(err_lon) >= _TOLERANCE_DEG) | (np.abs(err_lat) >= _TOLERANCE_DEG))
        else:
            f_lon, f_lat = forward(w_lon[active], w_lat[active])
            err_lon, err_lat = t_lon[active] - f_lon, t_lat[active] - f_lat
            w_lon[active] += err_lon
            w_lat[active] += err_lat
            active = active[(np.abs(err_lon) >= _TOLERANCE_DEG) | (np.abs(err_lat) >= _TOLERANCE_DEG)]
        if active.size == 0:
            break
    # inf − inf gives NaN inside the iteration; non-finite input is returned as given.
    finite = np.isfinite(t_lon) & np.isfinite(t_lat)
    w_lon = np.where(finite, w_lon, t_lon)
    w_lat = np.where(finite, w_lat, t_lat)
    return w_lon.reshape(shape), w_lat.reshape(shape)


# ----------------------------------------------------------------------------- one point
# The same formulas on plain floats (xp=_MATH), and the same fixed-point iteration.
_MATH: Final = SimpleNamespace(
    sin=math.sin, cos=math.cos, sqrt=math.sqrt, fabs=math.fabs, arctan2=math.atan2, pi=math.pi
)
_PointTransform = Callable[[float, float], tuple[float, float]]


def _wgs84_to_gcj02_1(lon: float, lat: float) -> tuple[float, float]:
    if not (_LON_MIN <= lon <= _LON_MAX and _LAT_MIN <= lat <= _LAT_MAX):
        return lon, lat
    dlon, dlat = _gcj02_shift(lon, lat, _MATH)
    return lon + dlon, lat + dlat


def _gcj02_to_bd09_1(lon: float, lat: float) -> tuple[float, float]:
    return cast(tuple[float, float], _gcj02_to_bd09(lon, lat, _MATH))


def _invert_1(forward: _PointTransform, t_lon: float, t_lat: float, w_lon: float, w_lat: float) -> tuple[float, float]:
    """``_invert`` for one point."""
    for _ in range(_MAX_ITERATIONS):
        f_lon, f_lat = forward(w_lon, w_lat)
        err_lon, err_lat = t_lon - f_lon, t_lat - f_lat
        w_lon += err_lon
        w_lat += err_lat
        if abs(err_lon) < _TOLERANCE_DEG and abs(err_lat) < _TOLERANCE_DEG:
            break
    return w_lon, w_lat


def _gcj02_to_wgs84_1(lon: float, lat: float) -> tuple[float, float]:
    f_lon, f_lat = _wgs84_to_gcj02_1(lon, lat)
    return _invert_1(_wgs84_to_gcj02_1, lon, lat, lon - (f_lon - lon), lat - (f_lat - lat))


def _bd09_to_gcj02_1(lon: float, lat: float) -> tuple[float, float]:
    return _invert_1(_gcj02_to_bd09_1, lon, lat, *_bd09_start(lon, lat, _MATH))


@_scalar_or_array(_wgs84_to_gcj02_1)
def wgs84_to_gcj02(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """WGS84 (= CGCS2000 here) → GCJ-02. Points outside the China box are returned unchanged."""
    return _wgs84_to_gcj02(lon, lat)


@_scalar_or_array(_gcj02_to_wgs84_1)
def gcj02_to_wgs84(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """GCJ-02 → WGS84 (= CGCS2000), accurate to ~1e-10 degrees.

    Starts from the naive inverse g − (f(g) − g), which is already within a few metres,
    then refines by fixed-point iteration. Points outside the China box come back
    unchanged (the forward map is the identity there, so the iteration stays put).
    """
    f_lon, f_lat = _wgs84_to_gcj02(lon, lat)
    return _invert(_wgs84_to_gcj02, lon, lat, lon - (f_lon - lon), lat - (f_lat - lat))


@_scalar_or_array(_gcj02_to_bd09_1)
def gcj02_to_bd09(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """GCJ-02 → BD-09.

    Like the published formula, this applies everywhere (no China box): BD-09 is a pure
    function of GCJ-02.
    """
    return _gcj02_to_bd09(lon, lat)


@_scalar_or_array(_bd09_to_gcj02_1)
def bd09_to_gcj02(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """BD-09 → GCJ-02, accurate to ~1e-10 degrees.

    The published closed-form inverse evaluates the perturbation at the BD-09 point
    instead of the GCJ-02 one and so is off by up to ~0.1 m; it is used as the start of
    the same fixed-point iteration as GCJ-02 → WGS84.
    """
    return _invert(_gcj02_to_bd09, lon, lat, *_bd09_start(lon, lat))


@_scalar_or_array(lambda lon, lat: _gcj02_to_bd09_1(*_wgs84_to_gcj02_1(lon, lat)))
def wgs84_to_bd09(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """WGS84 (= CGCS2000) → BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


@_scalar_or_array(lambda lon, lat: _gcj02_to_wgs84_1(*_bd09_to_gcj02_1(lon, lat)))
def bd09_to_wgs84(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    """BD-09 → WGS84 (= CGCS2000), through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _identity(lon: F64Array, lat: F64Array) -> tuple[F64Array, F64Array]:
    # Copies, so a caller never gets its own input array back aliased as "the result".
    return lon.copy(), lat.copy()


_unchanged = _scalar_or_array(lambda lon, lat: (lon, lat))(_identity)

# coord_sys → (into storage, out of storage)
_DISPATCH: Final[dict[str, tuple[PairTransform, PairTransform]]] = {
    "cgcs2000": (_unchanged, _unchanged),
    "wgs84": (_unchanged, _unchanged),
    "gcj02": (gcj02_to_wgs84, wgs84_to_gcj02),
    "bd09": (bd09_to_wgs84, wgs84_to_bd09),
}


def _transforms(coord_sys: object) -> tuple[PairTransform, PairTransform]:
    # Forgiving about case and spaces ("GCJ02 "), strict about the name itself.
    key = coord_sys.strip().lower() if isinstance(coord_sys, str) else None
    if key not in _DISPATCH:
        allowed = ", ".join(COORD_SYSTEMS)
        raise InvalidInput(f"coord_sys '{coord_sys}' is not supported (use one of: {allowed})", field="coord_sys")
    return _DISPATCH[key]


@overload
def to_storage(lon: float, lat: float, coord_sys: str) -> tuple[float, float]: ...


@overload
def to_storage(lon: npt.ArrayLike, lat: npt.ArrayLike, coord_sys: str) -> tuple[F64Array, F64Array]: ...


def to_storage(lon: Any, lat: Any, coord_sys: str) -> tuple[Any, Any]:
    """Coordinates given in ``coord_sys`` → storage coordinates (CGCS2000 ≈ WGS84).

    ``coord_sys`` is one of "cgcs2000", "wgs84" (returned unchanged), "gcj02" or "bd09";
    anything else raises ``InvalidInput`` with ``field="coord_sys"``.
    """
    into, _ = _transforms(coord_sys)
    return into(lon, lat)


@overload
def from_storage(lon: float, lat: float, coord_sys: str) -> tuple[float, float]: ...


@overload
def from_storage(lon: npt.ArrayLike, lat: npt.ArrayLike, coord_sys: str) -> tuple[F64Array, F64Array]: ...


def from_storage(lon: Any, lat: Any, coord_sys: str) -> tuple[Any, Any]:
    """Storage coordinates → ``coord_sys``, e.g. "gcj02" to draw stored data on an AMap basemap.

    Display only: the result must never be written back to storage.
    """
    _, out_of = _transforms(coord_sys)
    return out_of(lon, lat)
