"""Display-only coordinate shift for a GCJ-02 basemap (AMap).

Stored data is CGCS2000 (≈ WGS84 at map scale) and stays so. On an AMap
basemap the page shifts every overlay into GCJ-02 and shifts clicks and
drawings back. The shift is computed here with our own ``geo.coords`` on a
grid over the district (0.01°, about 1 km); the page interpolates it
bilinearly, which stays within about 0.2 m of the exact formula because the
shift field varies over tens of kilometres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geo.spatial.coords import wgs84_to_gcj02

GRID_STEP_DEG = 0.01


def gcj02_grid(bounds: list[float], step: float = GRID_STEP_DEG) -> dict[str, Any]:
    """The GCJ-02 shift (dlon, dlat in degrees) at the nodes of a grid covering ``bounds``
    (minlon, minlat, maxlon, maxlat), rows south to north, for the page to interpolate."""
    minlon, minlat, maxlon, maxlat = bounds
    lon0 = math.floor(minlon / step) * step - step
    lat0 = math.floor(minlat / step) * step - step
    nx = math.ceil((maxlon - lon0) / step) + 2
    ny = math.ceil((maxlat - lat0) / step) + 2
    lons, lats = np.meshgrid(lon0 + step * np.arange(nx), lat0 + step * np.arange(ny))
    glon, glat = wgs84_to_gcj02(lons.ravel(), lats.ravel())
    return {
        "lon0": lon0,
        "lat0": lat0,
        "step": step,
        "nx": nx,
        "ny": ny,
        "dlon": np.round(glon - lons.ravel(), 9).tolist(),
        "dlat": np.round(glat - lats.ravel(), 9).tolist(),
    }
