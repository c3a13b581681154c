"""CRS names, parsing and cached transformers.

Storage is EPSG:4490 (CGCS2000); metric work uses EPSG:4547 (CGCS2000 /
3-degree Gauss-Krüger CM 114E, which covers 112.5–115.5 E, the whole
district). GeoJSON is CRS84 by definition (RFC 7946).
"""

from __future__ import annotations

import re
from functools import cache

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geo.errors import InvalidInput

STORAGE_SRID = 4490
METRIC_SRID = 4547
WGS84_SRID = 4326
WEB_MERCATOR_SRID = 3857
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

_EPSG = re.compile(
    r"^(?:EPSG:{1,2}|urn:ogc:def:crs:EPSG::|https?://www\.opengis\.net/def/crs/EPSG/0/)?(\d{4,6})$",
    re.IGNORECASE,
)
_CRS84 = {"crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84", CRS84_URI.lower(),
          CRS84_URI.lower().replace("http:", "https:")}


def parse_srid(text: str, *, field: str = "crs") -> int:
    """EPSG code from 'EPSG:4490', '4490', an OGC URI, or 'CRS84' (→ 4326, lon/lat order)."""
    value = text.strip()
    if value.lower() in _CRS84:
        return WGS84_SRID
    match = _EPSG.match(value)
    if not match:
        raise InvalidInput(f"{field} '{text}' is not a CRS this service knows (use EPSG:n or CRS84)",
                           field=field)
    srid = int(match.group(1))
    crs_of(srid, field=field)  # raises for unknown codes
    return srid


@cache
def _crs(srid: int) -> CRS:
    return CRS.from_epsg(srid)


def crs_of(srid: int, *, field: str = "crs") -> CRS:
    """The pyproj CRS of an EPSG code, with a clear error for unknown codes."""
    try:
        return _crs(srid)
    except CRSError as e:
        raise InvalidInput(f"{field} EPSG:{srid} is not a known CRS", field=field) from e


@cache
def transformer(src: int, dst: int) -> Transformer:
    """A cached lon/lat-ordered (always_xy) transformer between two EPSG codes."""
    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


def is_geographic(srid: int) -> bool:
    """True for lon/lat CRSs (degrees)."""
    return bool(crs_of(srid).is_geographic)
