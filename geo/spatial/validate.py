"""Vectorised validation of features against a layer spec.

Used by file import (thousands to millions of rows) and, one feature at a
time, by the API's edits, so it works on whole columns (numpy, shapely 2)
and only touches Python objects for the rows that fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.inputs import bad_character
from geo.workcal import today
from layers.catalogue import Attribute, LayerSpec

# The earliest date a layer attribute may hold (an old enterprise dormitory's septic tank may be
# from the 1950s; anything earlier is a typing error).
EARLIEST_DATE = date(1950, 1, 1)
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,79}$")
_LIST_SPLIT = re.compile(r"\s*[;,；，、|]\s*")
_TRUE = {"true", "t", "yes", "y", "1", "是"}
_FALSE = {"false", "f", "no", "n", "0", "否"}
# A district this size is small; 1e-6 degrees (~0.1 m) absorbs coordinate
# rounding on shared outer edges (sub-districts cut from the district outline).
DISTRICT_TOLERANCE_DEG = 1e-6


@dataclass(frozen=True, order=True)
class Problem:
    """One reason a row was refused: 1-based row number, field and reason."""

    row: int
    field: str
    reason: str


@dataclass
class Validated:
    """Columns ready to write (typed), promoted geometries, and the problems found."""

    values: pd.DataFrame  # code + attributes, normalised
    geometry: np.ndarray  # shapely geometries in the layer's type, SRID set
    problems: list[Problem]
    bad: np.ndarray  # bool mask of rows with any problem


def _blank(series: pd.Series) -> np.ndarray:
    as_text = series.astype("string").str.strip()
    return np.asarray(series.isna() | (as_text == "").fillna(True), dtype=bool)


def _report(problems: list[Problem], mask: np.ndarray, field: str, reason: Any) -> None:
    """Append a problem per row in ``mask``; ``reason`` is a string or a row -> str callable."""
    for i in np.flatnonzero(mask):
        problems.append(Problem(int(i) + 1, field, reason(i) if callable(reason) else reason))


def _text(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    out = raw.astype("string").str.strip().where(~blank, None).astype(object)
    chars = out.map(lambda v: bad_character(v) if isinstance(v, str) else None)
    refused = np.asarray(chars.notna(), dtype=bool)
    _report(problems, refused, attr.name, lambda i: f"control character {chars.iloc[i]} is not allowed in text")
    too_long = np.asarray(out.map(lambda v: isinstance(v, str) and len(v) > attr.max_length), dtype=bool)
    _report(problems, too_long & ~refused, attr.name, f"longer than {attr.max_length} characters")
    out = out.where(~(refused | too_long), None)
    if attr.values is not None:
        lookup = {k: k for k in attr.values} | {v: k for k, v in attr.values.items()}
        mapped = out.map(lookup)
        bad = ~blank & np.asarray(mapped.isna(), dtype=bool)
        allowed = ", ".join(f"{k} ({v})" for k, v in attr.values.items())
        _report(problems, bad, attr.name, lambda i: f"'{out.iloc[i]}' is not an allowed value; allowed: {allowed}")
        out = mapped.where(~bad, None)
    return out


def _integer(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    num = pd.to_numeric(raw.where(~blank, None), errors="coerce")
    bad = ~blank & np.asarray(num.isna() | (num.fillna(0) % 1 != 0), dtype=bool)
    _report(problems, bad, attr.name, lambda i: f"'{raw.iloc[i]}' is not a whole number")
    return num.where(~bad).round().astype("Int64")


def _real(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    num = pd.to_numeric(raw.where(~blank, None), errors="coerce").astype(float)
    bad = ~blank & np.asarray(num.isna() | ~np.isfinite(num.fillna(0)), dtype=bool)
    _report(problems, bad, attr.name, lambda i: f"'{raw.iloc[i]}' is not a number")
    return num.where(~bad)


def _boolean(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    text = raw.astype("string").str.strip().str.lower()
    mapped = text.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
    bad = ~blank & np.asarray(mapped.isna(), dtype=bool)
    _report(problems, bad, attr.name, lambda i: f"'{raw.iloc[i]}' is not true/false (是/否)")
    return mapped.astype(object)


def _date(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    parsed = pd.to_datetime(raw.where(~blank, None).astype(object), errors="coerce", format="mixed")
    bad = ~blank & np.asarray(parsed.isna(), dtype=bool)
    _report(problems, bad, attr.name, lambda i: f"'{raw.iloc[i]}' is not a date (YYYY-MM-DD)")
    # a sane range: nothing the district looks after predates EARLIEST_DATE, and what has happened
    # (installed, maintained) has not happened after today (a contract's end may: ``future``)
    early = ~bad & ~blank & np.asarray(parsed < pd.Timestamp(EARLIEST_DATE), dtype=bool)
    _report(problems, early, attr.name, lambda i: f"'{raw.iloc[i]}' is before {EARLIEST_DATE.isoformat()}")
    bad = bad | early
    if not attr.future:
        now = pd.Timestamp(today())
        late = ~bad & ~blank & np.asarray(parsed.dt.normalize() > now, dtype=bool)
        _report(problems, late, attr.name, lambda i: f"'{raw.iloc[i]}' is in the future (after {now.date()})")
        bad = bad | late
    return parsed.dt.strftime("%Y-%m-%d").where(~bad & ~blank, None).astype(object)


def _as_list(value: Any) -> list[str] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return [str(v).strip() for v in loaded if str(v).strip()]
    if text.startswith("{") and text.endswith("}"):  # a PostgreSQL array literal
        text = text[1:-1].replace('"', "")
    return [p for p in _LIST_SPLIT.split(text) if p]


def _text_list(attr: Attribute, raw: pd.Series, blank: np.ndarray, problems: list[Problem]) -> pd.Series:
    lists = [_as_list(v) if not b else None for v, b in zip(raw, blank, strict=True)]
    lookup = {k: k for k in attr.values or {}} | {v: k for k, v in (attr.values or {}).items()}
    out: list[list[str] | None] = []
    for i, items in enumerate(lists):
        if attr.values is not None and items:
            unknown = [v for v in items if v not in lookup]
            if unknown:
                allowed = ", ".join(f"{k} ({v})" for k, v in attr.values.items())
                problems.append(Problem(i + 1, attr.name, f"{unknown} not allowed; allowed: {allowed}"))
                out.append(None)
                continue
            items = list(dict.fromkeys(lookup[v] for v in items))
        out.append(items or None)
    return pd.Series(out, index=raw.index, dtype=object)


_CONVERTERS = {
    "text": _text,
    "integer": _integer,
    "real": _real,
    "boolean": _boolean,
    "date": _date,
    "text_list": _text_list,
}


def _check_range(attr: Attribute, values: pd.Series, problems: list[Problem]) -> None:
    if attr.minimum is None and attr.maximum is None:
        return
    num = pd.to_numeric(values, errors="coerce").astype(float)  # NaN compares False
    low = np.asarray(num < attr.minimum, dtype=bool) if attr.minimum is not None else False
    high = np.asarray(num > attr.maximum, dtype=bool) if attr.maximum is not None else False
    _report(
        problems,
        np.asarray(low | high, dtype=bool),
        attr.name,
        lambda i: f"{num.iloc[i]} is outside {attr.minimum}..{attr.maximum}",
    )


def validate_attributes(
    spec: LayerSpec, frame: pd.DataFrame, *, unit_codes: set[str] | None, zone_codes: set[str] | None = None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check and normalise ``code`` and every spec attribute of ``frame``."""
    problems: list[Problem] = []
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    raw_code = frame["code"] if "code" in frame else pd.Series([None] * n, index=frame.index)
    blank = _blank(raw_code)
    codes = raw_code.astype("string").str.strip()
    _report(problems, blank, "code", "required: every feature needs a stable ASCII code")
    well_formed = np.asarray(codes.fillna("").str.match(CODE_PATTERN.pattern), dtype=bool)
    _report(
        problems,
        ~blank & ~well_formed,
        "code",
        lambda i: f"'{codes.iloc[i]}' must be 1-80 ASCII letters, digits, '.', '_' or '-'",
    )
    dup = np.asarray(codes.duplicated(keep="first"), dtype=bool) & ~blank
    _report(problems, dup, "code", lambda i: f"'{codes.iloc[i]}' appears more than once in the file")
    out["code"] = codes.astype(object).where(~blank, None)
    for attr in spec.attributes:
        raw = frame[attr.name] if attr.name in frame else pd.Series([None] * n, index=frame.index)
        missing = (
            _blank(raw)
            if attr.type != "text_list"
            else np.asarray([_as_list(v) in (None, []) for v in raw], dtype=bool)
        )
        if attr.default is not None:
            raw = raw.astype(object).where(~missing, attr.default)
            missing = np.zeros(n, dtype=bool)
        if attr.required:
            _report(problems, missing, attr.name, "required attribute is missing")
        values = _CONVERTERS[attr.type](attr, raw, missing, problems)
        _check_range(attr, values, problems)
        if attr.references == "units" and unit_codes is not None:
            unknown = np.asarray(values.notna() & ~values.isin(unit_codes), dtype=bool)
            _report(problems, unknown, attr.name, lambda i, v=values: f"unit '{v.iloc[i]}' is not in the units table")
        if attr.references == "zones" and zone_codes is not None:
            unknown = np.asarray(values.notna() & ~values.isin(zone_codes), dtype=bool)
            _report(problems, unknown, attr.name, lambda i, v=values: f"zone '{v.iloc[i]}' is not in the zones layer")
        out[attr.name] = values
    return out, problems


def _promote(spec: LayerSpec, geoms: np.ndarray) -> np.ndarray:
    """Single geometries to the layer's multi type (Polygon → MultiPolygon)."""
    if not spec.geometry.startswith("Multi"):
        return geoms
    single = spec.geometry[len("Multi") :]
    idx = np.flatnonzero(shapely.get_type_id(geoms) == _TYPE_IDS[single])
    if len(idx):
        geoms = geoms.copy()
        factory = {
            "Point": shapely.multipoints,
            "LineString": shapely.multilinestrings,
            "Polygon": shapely.multipolygons,
        }[single]
        geoms[idx] = factory(geoms[idx], indices=np.arange(len(idx)))
    return geoms


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}
_TYPE_NAMES = {v: k for k, v in _TYPE_IDS.items()} | {2: "LinearRing", 7: "GeometryCollection"}


def _first_xy(geom: BaseGeometry) -> tuple[float, float]:
    coords = shapely.get_coordinates(geom)
    return (float(coords[0, 0]), float(coords[0, 1])) if len(coords) else (float("nan"),) * 2


def _swap_xy(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda c: c[:, ::-1])


def _inside(district: BaseGeometry, geoms: np.ndarray, points: bool) -> np.ndarray:
    if points:
        coords = shapely.get_coordinates(geoms)
        return np.asarray(shapely.contains_xy(district, coords[:, 0], coords[:, 1]), dtype=bool)
    return np.asarray(shapely.covers(district, geoms), dtype=bool)


def validate_geometry(
    spec: LayerSpec, geoms: np.ndarray, *, district: BaseGeometry | None, district_label: str = "the district"
) -> tuple[np.ndarray, list[Problem]]:
    """Check type, emptiness, validity and position; return promoted geometries with SRID set."""
    problems: list[Problem] = []
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    _report(problems, missing, "geometry", "geometry is missing or empty")
    type_ids = shapely.get_type_id(geoms)
    accepted = [_TYPE_IDS[t] for t in spec.accepted_geometries]
    wrong = ~missing & ~np.isin(type_ids, accepted)
    _report(
        problems,
        wrong,
        "geometry",
        lambda i: (
            f"{_TYPE_NAMES.get(int(type_ids[i]), '?')} is not accepted by layer "
            f"'{spec.name}' ({' or '.join(spec.accepted_geometries)})"
        ),
    )
    ok = ~missing & ~wrong
    nonfinite = np.zeros(len(geoms), dtype=bool)
    if ok.any():
        coords = shapely.get_coordinates(geoms[ok])
        if not np.isfinite(coords).all():
            nonfinite[np.flatnonzero(ok)] = [not np.isfinite(shapely.get_coordinates(g)).all() for g in geoms[ok]]
    _report(problems, nonfinite, "geometry", "coordinates must be finite numbers")
    ok &= ~nonfinite
    if spec.is_linear and ok.any():
        short = np.zeros(len(geoms), dtype=bool)
        short[ok] = shapely.length(geoms[ok]) == 0
        _report(problems, short, "geometry", "a line needs at least two distinct points")
        ok &= ~short
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[ok] = ~shapely.is_valid(geoms[ok])
    _report(problems, invalid, "geometry", lambda i: f"invalid geometry: {shapely.is_valid_reason(geoms[i])}")
    ok &= ~invalid
    if spec.is_linear and ok.any():
        _check_crossing(geoms, ok, problems)
    if district is not None and ok.any():
        _check_position(spec, geoms, ok, district, district_label, problems)
    promoted = _promote(spec, geoms)
    if spec.is_polygonal and ok.any():
        # One ring orientation whatever the source (Shapefile rings run clockwise):
        # exterior counter-clockwise, as RFC 7946 asks of GeoJSON output.
        promoted = promoted.copy()
        promoted[ok] = shapely.orient_polygons(promoted[ok], exterior_cw=False)
    shapely.set_srid(promoted[~missing], spec.srid)
    return shapely.set_srid(promoted, spec.srid), problems


def _check_crossing(geoms: np.ndarray, ok: np.ndarray, problems: list[Problem]) -> None:
    """A line feature (a pipe, a road, a wall) must not cross itself; ``ok`` loses the rows refused."""
    idx = np.flatnonzero(ok)
    crossing = idx[~shapely.is_simple(geoms[idx])]
    for i in crossing:
        x, y = _first_xy(_self_crossing(geoms[i]))
        problems.append(Problem(int(i) + 1, "geometry", f"the line crosses itself near ({x:.6f}, {y:.6f})"))
    ok[crossing] = False


def _self_crossing(line: BaseGeometry) -> BaseGeometry:
    """A point where a non-simple line meets itself: a vertex of its noded form shared by more than
    two of its pieces, or (a closed loop touching itself) its first point."""
    pieces = shapely.get_parts(shapely.line_merge(shapely.node(line)))
    ends = shapely.get_coordinates(shapely.boundary(pieces))
    if len(ends):
        values, counts = np.unique(ends, axis=0, return_counts=True)
        if (counts > 2).any() or (counts == 2).any():
            pick = values[np.argmax(counts)]
            return shapely.Point(pick)
    return shapely.Point(shapely.get_coordinates(line)[0])


def _check_position(
    spec: LayerSpec, geoms: np.ndarray, ok: np.ndarray, district: BaseGeometry, label: str, problems: list[Problem]
) -> None:
    area = shapely.buffer(district, DISTRICT_TOLERANCE_DEG)
    shapely.prepare(area)
    idx = np.flatnonzero(ok)
    points = spec.geometry == "Point"
    outside = idx[~_inside(area, geoms[idx], points)]
    if not len(outside):
        return
    swapped_inside = _inside(area, _swap_xy(geoms[outside]), points)
    for i, swapped in zip(outside, swapped_inside, strict=True):
        x, y = _first_xy(geoms[i])
        if swapped:
            reason = f"coordinates look swapped (lat, lon): got ({x:.6f}, {y:.6f}); put longitude first"
        else:
            reason = f"outside {label}: first point ({x:.6f}, {y:.6f})"
        problems.append(Problem(int(i) + 1, "geometry", reason))


def validate_frame(
    spec: LayerSpec,
    frame: pd.DataFrame,
    geoms: np.ndarray,
    *,
    district: BaseGeometry | None,
    district_label: str = "the district",
    unit_codes: set[str] | None = None,
    zone_codes: set[str] | None = None,
) -> Validated:
    """Validate attributes and geometries of every row; problems sorted by row."""
    values, problems = validate_attributes(spec, frame, unit_codes=unit_codes, zone_codes=zone_codes)
    promoted, geom_problems = validate_geometry(spec, geoms, district=district, district_label=district_label)
    problems = sorted(problems + geom_problems)
    bad = np.zeros(len(frame), dtype=bool)
    if problems:
        bad[[p.row - 1 for p in problems]] = True
    return Validated(values=values, geometry=promoted, problems=problems, bad=bad)
