"""Write the synthetic demo boundary files of 岳麓区 (district 430104).

SYNTHETIC DEMO DATA, NOT SURVEYED: the shapes only resemble the programme's
layout (ten zones in five sub-districts, see /work/shared/mission/README.md)
so that maps, imports and tests have something plausible to work with. Names
and codes are the real ones of the 2023 plan; every geometry, household count,
person and phone number is made up.

Run from the repository root:

    .venv/bin/python data/boundaries/generate.py

Everything is constructed in EPSG:4547 (CGCS2000 / 3-degree Gauss-Krüger
CM 114E, metres) so that sizes and margins mean something, then written as
RFC 7946 GeoJSON (lon/lat, CGCS2000 taken as WGS84, 7 decimals ≈ 1 cm). The
output is deterministic: no randomness is used. After writing, the files are
read back and checked (containment with margins, no overlaps, split parts
sharing an edge, unit references), so what is checked is what was written.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.polygon import orient

OUT = Path(__file__).resolve().parent
STORAGE_CRS = "EPSG:4490"
METRIC_CRS = "EPSG:4547"
TO_METRIC = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True)
TO_LONLAT = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True)

DISTRICT_CODE = "430104"
DISTRICT_NAME = "岳麓区"
PROGRAMME_YEAR = 2023
CONTRACT_START = "2023-05-01"
CONTRACT_END = "2024-04-30"

ZONE_MARGIN_M = 50.0  # zones keep this far inside their sub-district
SECTION_INSET_M = 5.0  # contract sections are carved from the zone shrunk by this
MAX_OVERLAP_M2 = 0.01  # "no overlap" tolerance after rounding to 7 decimals

# An irregular 12-gon around the sub-district centres (lon, lat), roughly
# 112.88–112.99 E, 28.13–28.27 N. Not the real district outline.
DISTRICT_OUTLINE = [
    (112.884, 28.150), (112.897, 28.132), (112.925, 28.129), (112.958, 28.136),
    (112.982, 28.152), (112.990, 28.190), (112.986, 28.228), (112.975, 28.262),
    (112.945, 28.271), (112.910, 28.266), (112.887, 28.245), (112.880, 28.200),
]  # fmt: skip


@dataclass(frozen=True)
class Subdistrict:
    code: str
    name: str
    centre: tuple[float, float]  # lon, lat: the Voronoi seed of its cell


SUBDISTRICTS = [
    Subdistrict("guanshaling", "观沙岭街道", (112.952, 28.232)),
    Subdistrict("xianjiahu", "咸嘉湖街道", (112.944, 28.222)),
    Subdistrict("xihu", "西湖街道", (112.939, 28.198)),
    Subdistrict("wangyue", "望岳街道", (112.916, 28.230)),
    Subdistrict("yuelu", "岳麓街道", (112.935, 28.165)),
]


@dataclass(frozen=True)
class Community:
    code: str
    name: str
    subdistrict: str
    offset: tuple[float, float]  # metres east/north of the sub-district centre
    outline: Sequence[tuple[float, float]]  # local vertices, metres


COMMUNITIES = [
    Community("baihezui", "白鹤嘴社区", "xianjiahu", (-330.0, -380.0),
              [(-340, -300), (300, -330), (360, 80), (220, 330), (-290, 300), (-360, 40)]),
    Community("heyetang", "荷叶塘社区", "xianjiahu", (720.0, -760.0),
              [(-300, -260), (330, -300), (310, 260), (-60, 330), (-320, 200)]),
]  # fmt: skip


@dataclass(frozen=True)
class Zone:
    """One programme zone, or a zone that is split into two parts (片)."""

    base_code: str  # team code and split parent: "yumin" for yumin-south/-north
    short_name: str  # "金岭小区", used for section and team names
    full_name: str  # "金岭农民安置小区" (without 片)
    kind: str
    subdistrict: str
    offset: tuple[float, float]  # metres east/north of the sub-district centre
    outline: Sequence[tuple[float, float]]  # local vertices, metres, before rotation
    rotation_deg: float
    density: float  # households per hectare, so households follow area
    # For split zones: the cutting line in local coordinates (before rotation)
    # and the two parts as (code suffix, 片 name, phase, sections); the first part
    # is the one on the left of the line direction.
    cut: tuple[tuple[float, float], tuple[float, float]] | None = None
    parts: Sequence[tuple[str, str, str, int]] = ()
    phase: str = "survey"
    sections: int = 1
    community: str | None = None


def chamfered_rect(w: float, h: float, cuts: Sequence[float]) -> list[tuple[float, float]]:
    """A w×h rectangle centred on 0 with its corners (SW, SE, NE, NW) cut by `cuts` metres."""
    x, y = w / 2, h / 2
    corners = [(-x, -y, 1, 1), (x, -y, -1, 1), (x, y, -1, -1), (-x, y, 1, -1)]
    out: list[tuple[float, float]] = []
    for (cx, cy, sx, sy), c in zip(corners, cuts, strict=True):
        if c <= 0:
            out.append((cx, cy))
            continue
        # Walk counter-clockwise: the vertex entered from the previous side comes first.
        first, second = ((cx, cy + sy * c), (cx + sx * c, cy))
        if (sx, sy) in ((-1, 1), (1, -1)):  # SE and NW corners: entered along the x side
            first, second = (cx + sx * c, cy), (cx, cy + sy * c)
        out.extend([first, second])
    return out


ZONES = [
    Zone("jinling", "金岭小区", "金岭农民安置小区", "resettlement", "guanshaling", (450, 950),
         chamfered_rect(430, 320, (60, 0, 45, 0)), 12.0, 98.0,
         phase="service", sections=3),
    Zone("huangnitang", "黄泥塘小区", "黄泥塘农民安置小区", "resettlement", "guanshaling",
         (1650, -150),
         [(-190, -120), (60, -150), (185, -40), (170, 115), (-40, 150), (-180, 70)], -18.0, 104.0,
         phase="rollout", sections=2),
    Zone("ansu", "安塑小区", "安塑小区", "enterprise_dormitory", "xianjiahu", (-350, -400),
         chamfered_rect(230, 170, (0, 30, 0, 25)), 6.0, 118.0,
         phase="remediation", community="baihezui"),
    Zone("lichen", "丽臣小区", "丽臣小区", "enterprise_dormitory", "xianjiahu", (700, -740),
         [(-135, -95), (120, -110), (140, 100), (-125, 95)], -9.0, 112.0,
         phase="acceptance", community="heyetang"),
    Zone("yumin", "裕民小区", "裕民农民安置小区", "resettlement", "xihu", (300, -300),
         [(-270, -215), (150, -225), (285, -60), (270, 200), (-120, 220), (-285, 90)], 7.0, 95.0,
         cut=((400, -20), (-400, 10)),
         parts=(("south", "南片", "rollout", 2), ("north", "北片", "service", 2))),
    Zone("daopo", "道坡小区", "道坡农民安置小区", "resettlement", "wangyue", (-250, 700),
         [(-180, -150), (200, -135), (175, 160), (-195, 140)], 23.0, 101.0,
         phase="remediation", sections=2),
    Zone("shangduifang", "上堆坊小区", "上堆坊农民安置小区", "resettlement", "wangyue", (-1000, -950),
         [(-150, -80), (-40, -130), (140, -95), (155, 70), (30, 125), (-140, 95)], -32.0, 92.0,
         phase="survey"),
    Zone("yanghaitang", "洋海塘小区", "洋海塘农民安置小区", "resettlement", "yuelu", (200, -250),
         chamfered_rect(620, 380, (70, 40, 0, 55)), -6.0, 97.0,
         cut=((-15, 300), (25, -300)),
         parts=(("east", "东片", "service", 2), ("west", "西片", "acceptance", 3))),
]  # fmt: skip

# Which professional units work sections, and on what, in turn. District
# companies do their trade; contractors take mixed sections.
SECTION_WORK = [
    ("company-sanitation", ["sanitation"]),
    ("contractor-lushan", ["sanitation", "greening"]),
    ("company-parks", ["greening"]),
    ("contractor-meixi", ["public_facilities", "sanitation"]),
    ("company-municipal", ["public_facilities"]),
    ("contractor-xiangjiang", ["greening", "public_facilities"]),
    ("contractor-juzhou", ["sanitation", "greening", "public_facilities"]),
]

BUREAUS = [
    ("bureau-cgj", "区城管局", "赵科长"),
    ("bureau-fgj", "区发改局", "钱科长"),
    ("bureau-czj", "区财政局", "孙科长"),
    ("bureau-mzj", "区民政局", "李科长"),
    ("bureau-zjj", "区住建局", "周科长"),
]
COMPANIES = [
    ("company-municipal", "区市政公司", "吴经理"),
    ("company-parks", "区园林公司", "郑经理"),
    ("company-sanitation", "区环卫公司", "王经理"),
]
# Deliberately fictitious names: "示例" (example) marks them as demo data.
CONTRACTORS = [
    ("contractor-lushan", "长沙麓山示例保洁服务有限公司", "冯经理"),
    ("contractor-meixi", "湖南梅溪示例市政养护有限公司", "陈经理"),
    ("contractor-xiangjiang", "湘江示例园林绿化工程有限公司", "褚经理"),
    ("contractor-juzhou", "橘洲示例综合养护有限公司", "卫经理"),
]


# ---------------------------------------------------------------- geometry


def to_metric(geom: shapely.Geometry) -> shapely.Geometry:
    """Lon/lat (EPSG:4490) → EPSG:4547 metres."""
    return shapely.transform(geom, lambda x, y: TO_METRIC.transform(x, y), interleaved=False)


def to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """EPSG:4547 metres → lon/lat (EPSG:4490)."""
    return shapely.transform(geom, lambda x, y: TO_LONLAT.transform(x, y), interleaved=False)


def local_frame(
    origin: Point, offset: tuple[float, float], rotation_deg: float = 0.0
) -> Callable[[np.ndarray], np.ndarray]:
    """Map local (metres around 0) coordinates: rotate counter-clockwise, move to origin+offset."""
    a = math.radians(rotation_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # row vectors
    shift = np.array([origin.x + offset[0], origin.y + offset[1]])
    return lambda xy: xy @ rot + shift


def place(
    origin: Point, outline: Sequence[tuple[float, float]], offset: tuple[float, float], rotation_deg: float = 0.0
) -> Polygon:
    """A local outline placed in the world (EPSG:4547) by local_frame."""
    poly = shapely.transform(Polygon(outline), local_frame(origin, offset, rotation_deg))
    assert poly.is_valid, f"outline is not a simple polygon: {outline}"
    return poly


def split_polygon(poly: Polygon, line: LineString) -> list[Polygon]:
    """Cut poly by a line; both parts keep the identical new vertices (an exact shared edge)."""
    parts = shapely.get_parts(shapely.ops.split(poly, line))
    assert len(parts) == 2, f"cut gave {len(parts)} parts"
    return [Polygon(p) for p in parts]


def split_evenly(poly: Polygon, n: int) -> list[Polygon]:
    """n strips of roughly equal width across the long axis of poly, ordered along it."""
    if n == 1:
        return [poly]
    rect = poly.minimum_rotated_rectangle
    (x0, y0), (x1, y1), (x2, y2) = list(rect.exterior.coords)[:3]
    # Long axis direction of the bounding rectangle; cuts are perpendicular to it.
    if math.dist((x0, y0), (x1, y1)) >= math.dist((x1, y1), (x2, y2)):
        ax, ay, bx, by = x1 - x0, y1 - y0, x2 - x1, y2 - y1
    else:
        ax, ay, bx, by = x2 - x1, y2 - y1, x1 - x0, y1 - y0
    c = rect.centroid
    pieces = [poly]
    for k in range(1, n):
        t = k / n - 0.5
        px, py = c.x + ax * t, c.y + ay * t
        cut = LineString([(px - bx, py - by), (px + bx, py + by)])
        pieces = [q for p in pieces for q in (split_polygon(p, cut) if p.intersects(cut) else [p])]
    assert len(pieces) == n
    return sorted(pieces, key=lambda p: p.centroid.x * ax + p.centroid.y * ay)


def rounded_coords(geom: Polygon) -> list[list[list[float]]]:
    """RFC 7946 polygon coordinates: exterior counter-clockwise, 7 decimals."""
    poly = orient(geom, 1.0)
    rings = [poly.exterior, *poly.interiors]
    return [[[round(x, 7), round(y, 7)] for x, y in ring.coords] for ring in rings]


def write_geojson(path: Path, features: list[tuple[dict[str, Any], Polygon]]) -> None:
    """A FeatureCollection in lon/lat with one feature per line (small diffs)."""
    lines = []
    for props, geom_m in features:
        feature = {
            "type": "Feature",
            "properties": props,
            "geometry": {"type": "Polygon", "coordinates": rounded_coords(to_lonlat(geom_m))},
        }
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    body = ",\n".join(lines)
    path.write_text('{"type":"FeatureCollection","features":[\n' + body + "\n]}\n", encoding="utf-8")


# ---------------------------------------------------------------- building


def build() -> dict[str, list[tuple[dict[str, Any], Polygon]]]:
    """All boundary features, in EPSG:4547 metres, keyed by output file stem."""
    district_lonlat = Polygon(DISTRICT_OUTLINE)
    district = to_metric(district_lonlat)
    centres = {s.code: to_metric(Point(s.centre)) for s in SUBDISTRICTS}

    # Voronoi cells of the centres (in metres, so the bisectors are true
    # equidistance lines) tile the district without gaps or overlaps.
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(list(centres.values())), extend_to=district))
    sub_geoms: dict[str, Polygon] = {}
    for s in SUBDISTRICTS:
        (cell,) = [c for c in cells if c.contains(centres[s.code])]
        # Clip in lon/lat: the district's edges are straight in lon/lat, not in
        # metres (off by up to ~1 m over its km-long edges), and importers check
        # that sub-districts lie inside the district as written.
        sub_geoms[s.code] = to_metric(to_lonlat(cell).intersection(district_lonlat))

    communities = [
        (
            {"code": c.code, "name": c.name, "subdistrict_code": c.subdistrict},
            place(centres[c.subdistrict], c.outline, c.offset),
        )
        for c in COMMUNITIES
    ]

    zones: list[tuple[dict[str, Any], Polygon]] = []
    sections: list[tuple[dict[str, Any], Polygon]] = []
    work = itertools.cycle(SECTION_WORK)
    for z in ZONES:
        whole = place(centres[z.subdistrict], z.outline, z.offset, z.rotation_deg)
        if z.cut is None:
            pieces = [(z.base_code, z.full_name, z.short_name, z.phase, z.sections, whole)]
        else:
            frame = local_frame(centres[z.subdistrict], z.offset, z.rotation_deg)
            cut = shapely.transform(LineString(z.cut), frame)
            left, right = split_polygon(whole, cut)
            # Name parts by where they are, not by GEOS's output order.
            if _side(cut, right.centroid) > 0:
                left, right = right, left
            pieces = [
                (f"{z.base_code}-{suffix}", f"{z.full_name}{pian}", f"{z.short_name}{pian}", phase, n, geom)
                for (suffix, pian, phase, n), geom in zip(z.parts, (left, right), strict=True)
            ]
        for code, name, short, phase, n_sections, geom in pieces:
            area_ha = geom.area / 1e4
            zones.append(
                (
                    {
                        "code": code,
                        "name": name,
                        "kind": z.kind,
                        "subdistrict_code": z.subdistrict,
                        "households": round(area_ha * z.density),
                        "programme_year": PROGRAMME_YEAR,
                        "phase": phase,
                        "property_unit": f"team-{z.base_code}",
                    },
                    geom,
                )
            )
            inner = geom.buffer(-SECTION_INSET_M, join_style="mitre")
            for i, part in enumerate(split_evenly(inner, n_sections), start=1):
                unit, kinds = next(work)
                sections.append(
                    (
                        {
                            "code": f"{code}-s{i}",
                            "name": f"{short}第{i}标段",
                            "zone_code": code,
                            "contractor_unit": unit,
                            "service_kinds": kinds,
                            "contract_start": CONTRACT_START,
                            "contract_end": CONTRACT_END,
                        },
                        part,
                    )
                )

    subdistricts = [
        ({"code": s.code, "name": s.name, "office_unit": f"office-{s.code}"}, sub_geoms[s.code]) for s in SUBDISTRICTS
    ]
    return {
        "district": [({"code": DISTRICT_CODE, "name": DISTRICT_NAME}, district)],
        "subdistricts": subdistricts,
        "communities": communities,
        "zones": zones,
        "contract_sections": sections,
    }


def _side(line: LineString, p: Point) -> float:
    """> 0 when p lies left of the line's direction."""
    (x0, y0), (x1, y1) = line.coords[0], line.coords[-1]
    return (x1 - x0) * (p.y - y0) - (y1 - y0) * (p.x - x0)


def units() -> list[dict[str, str]]:
    """Every responsible unit the boundary files refer to, with fictitious contacts."""
    rows: list[tuple[str, str, str, str]] = []
    rows += [(code, name, "bureau", person) for code, name, person in BUREAUS]
    # Contacts are a surname and a title only: no real person is named.
    surnames = iter("蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜")
    rows += [
        (f"office-{s.code}", f"{s.name}办事处", "subdistrict_office", f"{next(surnames)}主任") for s in SUBDISTRICTS
    ]
    rows += [
        (f"team-{z.base_code}", f"{z.short_name}物业服务队", "property_team",
         f"{next(surnames)}队长")
        for z in ZONES
    ]  # fmt: skip
    rows += [(code, name, "district_company", person) for code, name, person in COMPANIES]
    rows += [(code, name, "contractor", person) for code, name, person in CONTRACTORS]
    # 0731 is Changsha's area code; 8888xxxx numbers are placeholders, not real lines.
    return [
        {"code": code, "name": name, "kind": kind, "contact_person": person,
         "phone": f"0731-8888{i:04d}"}
        for i, (code, name, kind, person) in enumerate(rows, start=1)
    ]  # fmt: skip


def write_units(path: Path, rows: list[dict[str, str]]) -> None:
    """units.csv, UTF-8 without BOM, LF line ends."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["code", "name", "kind", "contact_person", "phone"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------- checks


def _read(stem: str) -> gpd.GeoDataFrame:
    return gpd.read_file(OUT / f"{stem}.geojson").to_crs(METRIC_CRS)


def _assert_no_overlap(gdf: gpd.GeoDataFrame, what: str) -> None:
    for (i, a), (j, b) in itertools.combinations(zip(gdf["code"], gdf.geometry, strict=True), 2):
        area = a.intersection(b).area
        assert area < MAX_OVERLAP_M2, f"{what} {i} and {j} overlap by {area:.3f} m²"


def check(vocabulary_path: Path) -> gpd.GeoDataFrame:
    """Read the written files back and assert the layout rules; returns zones (metres)."""
    import tomllib

    vocab = tomllib.loads(vocabulary_path.read_text(encoding="utf-8"))
    district = _read("district")
    subs = _read("subdistricts").set_index("code", drop=False)
    comms = _read("communities").set_index("code", drop=False)
    zones = _read("zones").set_index("code", drop=False)
    sections = _read("contract_sections")
    unit_rows = list(csv.DictReader((OUT / "units.csv").open(encoding="utf-8")))
    unit_codes = {r["code"] for r in unit_rows}

    assert len(unit_codes) == len(unit_rows), "duplicate unit codes"
    assert {r["kind"] for r in unit_rows} <= set(vocab["unit_kinds"])
    for gdf in (district, subs, comms, zones, sections):
        assert gdf.geometry.is_valid.all() and (gdf.geom_type == "Polygon").all()
        assert gdf["code"].is_unique

    # Checked in lon/lat, where the district's edges are straight (see build()):
    # sub-districts tile the district up to the 7-decimal rounding, and lie
    # inside it within that rounding (importers allow 1e-6° ≈ 0.1 m).
    d_ll = district.to_crs(STORAGE_CRS).geometry.iloc[0]
    subs_ll = subs.to_crs(STORAGE_CRS).geometry
    # Rounding moves vertices by ≤ 5e-8°: the gaps and overlaps it leaves are a
    # strip of about that width along the outline, at most.
    assert subs_ll.union_all().symmetric_difference(d_ll).area < 1e-7 * d_ll.length
    assert subs_ll.within(d_ll.buffer(1e-7)).all(), "a sub-district is outside the district"
    _assert_no_overlap(subs, "sub-districts")
    assert set(subs["office_unit"]) <= unit_codes

    _assert_no_overlap(comms, "communities")
    for c in comms.itertuples():
        assert c.geometry.within(subs.geometry[c.subdistrict_code]), c.code
        assert 30 <= c.geometry.area / 1e4 <= 80, (c.code, c.geometry.area / 1e4)

    assert len(zones) == 10
    _assert_no_overlap(zones, "zones")
    for z in zones.itertuples():
        inner = subs.geometry[z.subdistrict_code].buffer(-ZONE_MARGIN_M)
        assert z.geometry.within(inner), f"{z.code} not {ZONE_MARGIN_M} m inside its sub-district"
        assert 3 <= z.geometry.area / 1e4 <= 25, (z.code, z.geometry.area / 1e4)
        assert 300 <= z.households <= 2500, (z.code, z.households)
        assert z.property_unit in unit_codes
    for z in ZONES:
        if z.community is not None:
            assert zones.geometry[z.base_code].within(comms.geometry[z.community]), z.base_code
    for a, b in (("yumin-south", "yumin-north"), ("yanghaitang-east", "yanghaitang-west")):
        ga, gb = zones.geometry[a], zones.geometry[b]
        assert ga.touches(gb), f"{a} and {b} do not touch"
        shared = ga.boundary.intersection(gb.boundary).length
        assert shared > 100, f"{a} and {b} share only {shared:.1f} m of edge"

    _assert_no_overlap(sections, "contract sections")
    for s in sections.itertuples():
        assert s.geometry.within(zones.geometry[s.zone_code]), s.code
        assert s.contractor_unit in unit_codes
        assert set(s.service_kinds) <= set(vocab["service_kinds"]), s.code
    per_zone = sections.groupby("zone_code").size()
    assert per_zone.between(1, 3).all() and set(per_zone.index) == set(zones.index)
    return zones


def main() -> None:
    """Build, write, read back and check the demo boundaries; print the zone table."""
    layers = build()
    for stem, features in layers.items():
        write_geojson(OUT / f"{stem}.geojson", features)
    write_units(OUT / "units.csv", units())

    zones = check(OUT.parents[1] / "layers" / "vocabulary.toml")
    print(f"{'code':<18} {'name':<14} {'sub-district':<12} {'ha':>6} {'households':>10}")
    for z in zones.itertuples():
        print(f"{z.code:<18} {z.name:<14} {z.subdistrict_code:<12} "
              f"{z.geometry.area / 1e4:>6.2f} {z.households:>10}")  # fmt: skip
    total = np.sum(zones.geometry.area) / 1e4
    print(f"{len(zones)} zones, {total:.1f} ha; all checks passed")


if __name__ == "__main__":
    main()
