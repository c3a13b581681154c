"""GCJ-02 / BD-09 conversions in ``geo.coords``: pure numpy, no database.

The vectorised module is checked against a plain scalar re-implementation of the
published formulas written below with ``math`` only, against one widely quoted
published pair, and by round trips measured in metres on the WGS84 ellipsoid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pyproj import Geod

from geo.errors import InvalidInput
from geo.spatial.coords import (
    COORD_SYSTEMS,
    PairTransform,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_storage,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_storage,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")
CHANGSHA = (112.95, 28.20)
PARIS = (2.35, 48.85)

# ---------------------------------------------------------------------------
# Scalar reference, written straight from the published formula (one point at a time).
# ---------------------------------------------------------------------------
REF_A = 6378245.0
REF_EE = 0.00669342162296594323
REF_X_PI = math.pi * 3000.0 / 180.0


def ref_out_of_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def ref_transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def ref_transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def ref_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if ref_out_of_china(lon, lat):
        return lon, lat
    dlat = ref_transform_lat(lon - 105.0, lat - 35.0)
    dlon = ref_transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - REF_EE * math.sin(radlat) * math.sin(radlat)
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((REF_A * (1 - REF_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (REF_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def ref_gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * REF_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * REF_X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def ref_bd09_to_gcj02_closed_form(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * REF_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * REF_X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def ref_gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """One point at a time: naive inverse, then w <- w + (g - f(w))."""
    f_lon, f_lat = ref_wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = lon - (f_lon - lon), lat - (f_lat - lat)
    for _ in range(20):
        f_lon, f_lat = ref_wgs84_to_gcj02(w_lon, w_lat)
        d_lon, d_lat = lon - f_lon, lat - f_lat
        w_lon, w_lat = w_lon + d_lon, w_lat + d_lat
        if max(abs(d_lon), abs(d_lat)) < 1e-10:
            break
    return w_lon, w_lat


def metres(lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike) -> Any:
    """Geodesic distance in metres on the WGS84 ellipsoid (float for floats, array for arrays)."""
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def district_grid() -> tuple[np.ndarray, np.ndarray]:
    """100 x 100 points over 112.85-113.05 E, 28.10-28.30 N (the district and its margin)."""
    return np.meshgrid(np.linspace(112.85, 113.05, 100), np.linspace(28.10, 28.30, 100))


# Spread over China, so that every sine term of the series takes varied values.
SAMPLE_POINTS = [
    CHANGSHA,
    (112.9388, 28.2282),  # Changsha, Yuelu
    (116.397428, 39.90923),  # Beijing
    (121.4737, 31.2304),  # Shanghai
    (87.6168, 43.8256),  # Urumqi
    (126.5350, 45.8038),  # Harbin
    (109.5120, 18.2528),  # Sanya
    (91.1409, 29.6456),  # Lhasa
]


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("lon", "lat"), SAMPLE_POINTS)
def test_wgs84_to_gcj02_matches_scalar_reference(lon: float, lat: float) -> None:
    assert wgs84_to_gcj02(lon, lat) == pytest.approx(ref_wgs84_to_gcj02(lon, lat), abs=1e-11)


def test_vectorised_forward_matches_scalar_reference_for_array() -> None:
    lons = np.array([p[0] for p in SAMPLE_POINTS])
    lats = np.array([p[1] for p in SAMPLE_POINTS])
    out_lon, out_lat = wgs84_to_gcj02(lons, lats)
    expected = np.array([ref_wgs84_to_gcj02(lo, la) for lo, la in SAMPLE_POINTS])
    np.testing.assert_allclose(out_lon, expected[:, 0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(out_lat, expected[:, 1], rtol=0, atol=1e-11)


@pytest.mark.parametrize(("lon", "lat"), SAMPLE_POINTS)
def test_gcj02_to_wgs84_matches_scalar_reference(lon: float, lat: float) -> None:
    assert gcj02_to_wgs84(lon, lat) == pytest.approx(ref_gcj02_to_wgs84(lon, lat), abs=1e-9)


@pytest.mark.parametrize(("lon", "lat"), SAMPLE_POINTS)
def test_gcj02_to_bd09_matches_scalar_reference(lon: float, lat: float) -> None:
    assert gcj02_to_bd09(lon, lat) == pytest.approx(ref_gcj02_to_bd09(lon, lat), abs=1e-11)


@pytest.mark.parametrize(("lon", "lat"), SAMPLE_POINTS)
def test_bd09_to_gcj02_refines_the_closed_form(lon: float, lat: float) -> None:
    bd = ref_gcj02_to_bd09(lon, lat)
    closed = ref_bd09_to_gcj02_closed_form(*bd)
    refined = bd09_to_gcj02(*bd)
    # Same answer as the published closed form to within its own ~0.1 m error ...
    assert metres(*refined, *closed) < 0.5
    # ... but actually inverting the forward formula, which the closed form does not quite.
    assert metres(*refined, lon, lat) < 1e-3


def test_published_tiananmen_pair() -> None:
    # The commonly quoted pair; our scalar reference gives (116.4036716, 39.9106335).
    assert ref_wgs84_to_gcj02(116.397428, 39.90923) == pytest.approx((116.403671, 39.910630), abs=1e-5)
    assert wgs84_to_gcj02(116.397428, 39.90923) == pytest.approx((116.403671, 39.910630), abs=1e-5)
    assert gcj02_to_wgs84(116.403671, 39.910630) == pytest.approx((116.397428, 39.90923), abs=1e-5)


def test_offset_in_the_district_is_600_to_700_m() -> None:
    gcj = wgs84_to_gcj02(*CHANGSHA)
    assert 600 < metres(*CHANGSHA, *gcj) < 700
    lon, lat = district_grid()
    shift = metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert shift.min() > 600
    assert shift.max() < 700


def test_bd09_is_a_further_shift_from_gcj02() -> None:
    gcj = wgs84_to_gcj02(*CHANGSHA)
    bd = gcj02_to_bd09(*gcj)
    assert wgs84_to_bd09(*CHANGSHA) == pytest.approx(bd, abs=1e-12)
    assert 100 < metres(*gcj, *bd) < 1500


# ---------------------------------------------------------------------------
# Round trips over the district: contract is < 0.5 m; we achieve well under 1 cm.
# ---------------------------------------------------------------------------
ROUND_TRIPS = [
    pytest.param(wgs84_to_gcj02, gcj02_to_wgs84, id="wgs84->gcj02->wgs84"),
    pytest.param(gcj02_to_wgs84, wgs84_to_gcj02, id="gcj02->wgs84->gcj02"),
    pytest.param(gcj02_to_bd09, bd09_to_gcj02, id="gcj02->bd09->gcj02"),
    pytest.param(bd09_to_gcj02, gcj02_to_bd09, id="bd09->gcj02->bd09"),
    pytest.param(wgs84_to_bd09, bd09_to_wgs84, id="wgs84->bd09->wgs84"),
    pytest.param(bd09_to_wgs84, wgs84_to_bd09, id="bd09->wgs84->bd09"),
]


@pytest.mark.parametrize(("there", "back"), ROUND_TRIPS)
def test_round_trip_over_district_grid(there: PairTransform, back: PairTransform) -> None:
    lon, lat = district_grid()
    back_lon, back_lat = back(*there(lon, lat))
    error = metres(lon, lat, back_lon, back_lat)
    assert error.max() < 0.5
    assert error.max() < 0.01


def test_inverse_really_inverts_the_scalar_forward() -> None:
    lon, lat = district_grid()
    w_lon, w_lat = gcj02_to_wgs84(lon, lat)
    again = np.array([ref_wgs84_to_gcj02(a, b) for a, b in zip(w_lon.ravel(), w_lat.ravel(), strict=True)])
    assert metres(lon.ravel(), lat.ravel(), again[:, 0], again[:, 1]).max() < 0.01


# ---------------------------------------------------------------------------
# Outside China
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_outside_china_unchanged(fn: PairTransform) -> None:
    assert fn(*PARIS) == PARIS
    lon, lat = fn(np.array([PARIS[0], CHANGSHA[0]]), np.array([PARIS[1], CHANGSHA[1]]))
    assert (lon[0], lat[0]) == PARIS
    assert (lon[1], lat[1]) != CHANGSHA


def test_outside_china_unchanged_through_the_dispatcher() -> None:
    assert to_storage(*PARIS, "gcj02") == PARIS
    assert from_storage(*PARIS, "gcj02") == PARIS


# ---------------------------------------------------------------------------
# Types, shapes, NaN
# ---------------------------------------------------------------------------
ALL_FUNCTIONS = [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84]


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_scalar_in_float_out(fn: PairTransform) -> None:
    for args in (CHANGSHA, (113, 28), (np.float64(112.95), np.float64(28.2))):
        lon, lat = fn(*args)
        assert type(lon) is float
        assert type(lat) is float


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 3, 5)])
def test_array_shape_preserved(fn: PairTransform, shape: tuple[int, ...]) -> None:
    lon = np.full(shape, CHANGSHA[0])
    lat = np.full(shape, CHANGSHA[1])
    out_lon, out_lat = fn(lon, lat)
    for out in (out_lon, out_lat):
        assert isinstance(out, np.ndarray)
        assert out.shape == shape
        assert out.dtype == np.float64
    if lon.size:
        assert out_lon.ravel()[0] == fn(*CHANGSHA)[0]


@pytest.mark.parametrize("fn", [gcj02_to_wgs84, bd09_to_wgs84])
def test_large_arrays_give_the_same_answer_as_small_ones(fn: PairTransform) -> None:
    # Big inputs are processed in blocks; 300 x 301 points is more than one block and
    # not a multiple of it, and a NaN sits in the middle.
    lon, lat = np.meshgrid(np.linspace(112.85, 113.05, 301), np.linspace(28.10, 28.30, 300))
    lon[150, 150] = math.nan
    whole_lon, whole_lat = fn(lon, lat)
    assert whole_lon.shape == lat.shape
    for row in (0, 150, 299):
        row_lon, row_lat = fn(lon[row], lat[row])
        np.testing.assert_array_equal(whole_lon[row], row_lon)
        np.testing.assert_array_equal(whole_lat[row], row_lat)
    # Broadcasting a scalar against a big array goes through the same path.
    bcast_lon, _ = fn(112.95, lat)
    np.testing.assert_array_equal(bcast_lon[:, 0], fn(np.full(300, 112.95), lat[:, 0])[0])


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_one_point_in_floats_agrees_with_the_array_path(fn: PairTransform) -> None:
    # A single point (a report at intake) is computed with math on floats, not numpy; both
    # paths run the same formulas and must agree to 1e-12 degrees (~0.1 micrometre).
    lon, lat = district_grid()
    out_lon, out_lat = fn(lon.ravel(), lat.ravel())
    for i in range(0, lon.size, max(1, lon.size // 50)):
        one = fn(float(lon.ravel()[i]), float(lat.ravel()[i]))
        assert abs(one[0] - out_lon[i]) < 1e-12 and abs(one[1] - out_lat[i]) < 1e-12


def test_arrays_broadcast_and_integer_arrays_become_float64() -> None:
    lon, lat = wgs84_to_gcj02(np.array([112, 113, 114]), 28)
    assert lon.shape == lat.shape == (3,)
    assert lon.dtype == np.float64
    assert lon[1] == wgs84_to_gcj02(113.0, 28.0)[0]
    lon2, _ = wgs84_to_gcj02([112.95, 112.96], [28.2, 28.2])  # lists count as arrays
    assert isinstance(lon2, np.ndarray)


def test_input_not_mutated_and_output_not_aliased() -> None:
    lon, lat = district_grid()
    lon_before, lat_before = lon.copy(), lat.copy()
    for coord_sys in COORD_SYSTEMS:
        out_lon, out_lat = to_storage(lon, lat, coord_sys)
        assert not np.shares_memory(out_lon, lon)
        assert not np.shares_memory(out_lat, lat)
        from_storage(lon, lat, coord_sys)
    np.testing.assert_array_equal(lon, lon_before)
    np.testing.assert_array_equal(lat, lat_before)


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_nan_in_nan_out_without_warnings(fn: PairTransform) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lon, lat = fn(math.nan, math.nan)
        assert math.isnan(lon) and math.isnan(lat)
        lon_a, lat_a = fn(np.array([math.nan, CHANGSHA[0], math.inf]), np.array([math.nan, CHANGSHA[1], 30.0]))
    assert np.isnan(lon_a[0]) and np.isnan(lat_a[0])
    # A NaN (or inf) neighbour does not disturb the other points.
    alone = fn(np.array([CHANGSHA[0]]), np.array([CHANGSHA[1]]))
    assert (lon_a[1], lat_a[1]) == (alone[0][0], alone[1][0])
    # inf is not a coordinate: it must not come back as a plausible finite one.
    assert not np.isfinite(lon_a[2])


# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------
def test_to_storage_dispatch() -> None:
    assert to_storage(*CHANGSHA, "cgcs2000") == CHANGSHA
    assert to_storage(*CHANGSHA, "wgs84") == CHANGSHA
    assert to_storage(*CHANGSHA, "gcj02") == gcj02_to_wgs84(*CHANGSHA)
    assert to_storage(*CHANGSHA, "bd09") == bd09_to_wgs84(*CHANGSHA)
    assert to_storage(*CHANGSHA, " GCJ02 ") == gcj02_to_wgs84(*CHANGSHA)
    lon, _ = to_storage(np.array([CHANGSHA[0]]), np.array([CHANGSHA[1]]), "wgs84")
    assert isinstance(lon, np.ndarray) and lon.dtype == np.float64


@pytest.mark.parametrize("coord_sys", COORD_SYSTEMS)
def test_from_storage_inverts_to_storage(coord_sys: str) -> None:
    lon, lat = district_grid()
    back = to_storage(*from_storage(lon, lat, coord_sys), coord_sys)
    assert metres(lon, lat, *back).max() < 0.01


def test_from_storage_gives_gcj02_for_an_amap_basemap() -> None:
    assert from_storage(*CHANGSHA, "gcj02") == wgs84_to_gcj02(*CHANGSHA)
    assert from_storage(*CHANGSHA, "bd09") == wgs84_to_bd09(*CHANGSHA)


@pytest.mark.parametrize("coord_sys", ["", "gcj-02", "EPSG:4490", "mars", None, 4490])
@pytest.mark.parametrize("fn", [to_storage, from_storage])
def test_invalid_coord_sys(fn: Callable[..., object], coord_sys: object) -> None:
    with pytest.raises(InvalidInput) as info:
        fn(*CHANGSHA, coord_sys)
    assert info.value.field == "coord_sys"
    for allowed in COORD_SYSTEMS:
        assert allowed in info.value.message
