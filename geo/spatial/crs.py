"""CRS names, parsing and cached transformers.

Storage is EPSG:4490 (CGCS2000); metric work uses EPSG:4547 (CGCS2000 /
3-degree Gauss-Krüger CM 114E, which covers 112.5–115.5 E, the whole
district). GeoJSON is CRS84 by definition (RFC 7946).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
_CRS84 = {
    "crs84",
    "ogc:crs84",
    "urn:ogc:def:crs:ogc:1.3:crs84",
    CRS84_URI.lower(),
    CRS84_URI.lower().replace("http:", "https:"),
}


def parse_srid(text: str, *, field: str = "crs") -> int:
    """EPSG code from 'EPSG:4490', '4490', an OGC URI, or 'CRS84' (→ 4326, lon/lat order)."""
    value = text.strip()
    if value.lower() in _CRS84:
        return WGS84_SRID
    match = _EPSG.match(value)
    if not match:
        raise InvalidInput(f"{field} '{text}' is not a CRS this service knows (use EPSG:n or CRS84)", field=field)
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


# -- CRS as requests name them (OGC API Features Part 2) --------------------------------------------
CRS84 = CRS84_URI
SUPPORTED_SRIDS: tuple[int, ...] = (WGS84_SRID, STORAGE_SRID, METRIC_SRID, WEB_MERCATOR_SRID)
# EPSG:4326 and EPSG:4490 are latitude-first by their EPSG definition; CRS84 is lon/lat.
_LAT_FIRST = {WGS84_SRID, STORAGE_SRID}


def crs_uri(srid: int) -> str:
    """The OGC URI of an EPSG code."""
    return f"http://www.opengis.net/def/crs/EPSG/0/{srid}"


def supported_crs() -> list[str]:
    """Every CRS the API can answer in, as OGC URIs (CRS84 first, the default)."""
    return [CRS84, *(crs_uri(s) for s in SUPPORTED_SRIDS)]


@dataclass(frozen=True)
class Crs:
    """A CRS as a request names it: EPSG code, whether axes come lat first, its URI."""

    srid: int
    lat_first: bool
    uri: str

    @property
    def digits(self) -> int:
        """Decimal places that keep about a centimetre in this CRS's units."""
        return 7 if self.srid != METRIC_SRID and self.srid != WEB_MERCATOR_SRID else 3


DEFAULT_CRS = Crs(WGS84_SRID, False, CRS84)


def parse_crs(text: str | None, *, field: str = "crs") -> Crs:
    """CRS84 (default, lon/lat) or one of the EPSG codes the API supports (EPSG axis order)."""
    if text is None or not text.strip():
        return DEFAULT_CRS
    value = text.strip().strip("[]")  # OGC "safe CURIE" form [EPSG:4326]
    srid = parse_srid(value, field=field)
    is_crs84 = srid == WGS84_SRID and "crs84" in value.lower()
    if srid not in SUPPORTED_SRIDS:
        raise InvalidInput(f"{field} '{text}' is not offered; use one of: {', '.join(supported_crs())}", field=field)
    if is_crs84:
        return DEFAULT_CRS
    return Crs(srid, srid in _LAT_FIRST, crs_uri(srid))
