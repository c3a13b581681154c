"""geo.demo.facilities: deterministic, inside the zones, scaling exactly, spec-conformant.

No database: zones come from data/boundaries/zones.geojson.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from geo.demo.facilities import LAYERS, generate_facilities
from layers.catalogue import vocabularies

ROOT = Path(__file__).resolve().parents[1]
SCALE = 3
POINT_LAYERS = ("street_lights", "septic_tanks", "litter_bins")
PREFIX = {"street_lights": "SL", "septic_tanks": "ST", "litter_bins": "LB", "green_plots": "GP"}
CODE = re.compile(r"^(SL|ST|LB|GP)-([a-z]+(?:-[a-z]+)*)-(\d{6,})$")


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vocabulary() -> dict[str, Any]:
    return {e: list(v) for e, v in vocabularies().items()}


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    return {name: _toml(ROOT / "layers" / "specs" / f"{name}.toml") for name in LAYERS}


@pytest.fixture(scope="module")
def zones() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(ROOT / "data" / "boundaries" / "zones.geojson")
    return gdf[["code", "geometry"]].set_crs(4490, allow_override=True)


@pytest.fixture(scope="module")
def base(zones: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    return generate_facilities(zones, seed=2023)


@pytest.fixture(scope="module")
def scaled(zones: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    return generate_facilities(zones, seed=2023, scale=SCALE)


def _zone_of(codes: pd.Series) -> pd.Series:
    return codes.str.extract(CODE)[1]


def test_layers_columns_and_crs(base: dict[str, gpd.GeoDataFrame], specs: dict[str, dict[str, Any]]) -> None:
    assert set(base) == set(LAYERS)
    for name, gdf in base.items():
        attributes = [a["name"] for a in specs[name]["attributes"]]
        assert list(gdf.columns) == ["code", *attributes, "geometry"], name
        assert gdf.crs.to_epsg() == 4490
        expected = "Point" if name in POINT_LAYERS else "Polygon"
        assert set(gdf.geom_type) == {expected}, name


def test_scale_one_is_a_realistic_few_thousand(base: dict[str, gpd.GeoDataFrame]) -> None:
    counts = {name: len(gdf) for name, gdf in base.items()}
    assert all(n > 0 for n in counts.values()), counts
    assert 1_000 <= sum(counts.values()) <= 10_000, counts
    # Lights along every road outnumber bins at crossings; one tank per building.
    assert counts["street_lights"] > counts["litter_bins"]


def test_every_zone_has_every_layer(base: dict[str, gpd.GeoDataFrame], zones: gpd.GeoDataFrame) -> None:
    for name, gdf in base.items():
        assert set(_zone_of(gdf["code"])) == set(zones["code"]), name


@pytest.mark.parametrize("which", ["base", "scaled"])
def test_features_strictly_inside_their_zone(
    which: str, request: pytest.FixtureRequest, zones: gpd.GeoDataFrame
) -> None:
    layers: dict[str, gpd.GeoDataFrame] = request.getfixturevalue(which)
    by_code = zones.set_index("code").geometry
    for name, gdf in layers.items():
        zone_geoms = by_code.loc[_zone_of(gdf["code"])].to_numpy()
        inside = shapely.contains_properly(zone_geoms, gdf.geometry.to_numpy())
        assert inside.all(), f"{name}: {int((~inside).sum())} features not inside their zone"
        # ...and inside no other zone (zones don't overlap, so this checks the code too).
        hits = gpd.sjoin(gdf[["geometry"]], zones, predicate="intersects")
        assert hits.index.is_unique, name


def test_counts_scale_exactly_per_zone(base: dict[str, gpd.GeoDataFrame], scaled: dict[str, gpd.GeoDataFrame]) -> None:
    for name in LAYERS:
        assert len(scaled[name]) == SCALE * len(base[name]), name
        per_zone_1 = _zone_of(base[name]["code"]).value_counts().sort_index()
        per_zone_n = _zone_of(scaled[name]["code"]).value_counts().sort_index()
        pd.testing.assert_series_equal(per_zone_n, SCALE * per_zone_1)


def test_scaling_keeps_the_scale_one_layout(
    base: dict[str, gpd.GeoDataFrame], scaled: dict[str, gpd.GeoDataFrame]
) -> None:
    for name in LAYERS:
        head = scaled[name].iloc[: len(base[name])]
        assert_geodataframe_equal(head, base[name], check_less_precise=False)


def test_codes_unique_ascii_and_prefixed(scaled: dict[str, gpd.GeoDataFrame]) -> None:
    for name, gdf in scaled.items():
        codes = gdf["code"]
        assert codes.is_unique, name
        assert codes.map(str.isascii).all()
        parsed = codes.str.extract(CODE)
        assert parsed.notna().all().all(), name
        assert (parsed[0] == PREFIX[name]).all()


def test_same_seed_same_output(zones: gpd.GeoDataFrame, scaled: dict[str, gpd.GeoDataFrame]) -> None:
    again = generate_facilities(zones, seed=2023, scale=SCALE)
    for name in LAYERS:
        assert_geodataframe_equal(again[name], scaled[name])


def test_other_seed_other_extras(
    zones: gpd.GeoDataFrame,
    base: dict[str, gpd.GeoDataFrame],
    scaled: dict[str, gpd.GeoDataFrame],
) -> None:
    other = generate_facilities(zones, seed=7, scale=SCALE)
    for name in LAYERS:
        n = len(base[name])
        assert len(other[name]) == len(scaled[name])
        # The scale=1 positions are the zones' layout, whatever the seed...
        mine, theirs = scaled[name].geometry.to_numpy(), other[name].geometry.to_numpy()
        assert shapely.equals(mine[:n], theirs[:n]).all(), name
        # ...the extras are not.
        assert not shapely.equals(mine[n:], theirs[n:]).any(), name
        # Attributes are drawn from the seed too.
        assert not scaled[name]["condition"].equals(other[name]["condition"]), name


def test_values_within_vocabulary_and_specs(
    scaled: dict[str, gpd.GeoDataFrame],
    vocabulary: dict[str, Any],
    specs: dict[str, dict[str, Any]],
) -> None:
    for name, gdf in scaled.items():
        for attr in specs[name]["attributes"]:
            values = gdf[attr["name"]]
            if attr.get("required"):
                assert values.notna().all(), (name, attr["name"])
            present = values.dropna()
            if "vocabulary" in attr:
                assert set(present) <= set(vocabulary[attr["vocabulary"]]), (name, attr["name"])
            if "values" in attr:
                assert set(present) <= set(attr["values"]), (name, attr["name"])
            if attr["type"] == "integer":
                assert all(isinstance(v, int | np.integer) for v in present)
            if attr["type"] == "real":
                assert all(isinstance(v, float | np.floating) for v in present)
            if "minimum" in attr:
                assert (present >= attr["minimum"]).all(), (name, attr["name"])
            if attr["type"] == "date":
                assert all(type(v) is dt.date for v in present), (name, attr["name"])
        conditions = gdf["condition"].value_counts(normalize=True)
        assert conditions["normal"] > 0.7
        assert set(conditions.index) >= {"normal", "faulty", "repairing"}
    assert set(scaled["street_lights"]["power_w"]) <= {30, 60, 100}
    assert set(scaled["litter_bins"]["capacity_l"]) <= {60, 120, 240}


def test_maintenance_not_before_installation(scaled: dict[str, gpd.GeoDataFrame]) -> None:
    for name in POINT_LAYERS:
        both = scaled[name][["installed_on", "last_maintained"]].dropna()
        assert len(both) > 0
        assert (both["last_maintained"] >= both["installed_on"]).all(), name
        assert (both["installed_on"] <= dt.date(2023, 6, 30)).all()


def test_green_plots_sized_and_separate(base: dict[str, gpd.GeoDataFrame]) -> None:
    plots = base["green_plots"].to_crs(4547)
    area = plots.area
    assert area.between(200, 1500).all(), area.describe()
    # No two scale=1 plots overlap: the union loses no area.
    assert plots.geometry.union_all().area == pytest.approx(area.sum(), rel=1e-9)


def test_scale_must_be_positive(zones: gpd.GeoDataFrame) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_facilities(zones, scale=0)


def test_multipolygon_zones_as_stored_give_the_same_result(
    zones: gpd.GeoDataFrame, scaled: dict[str, gpd.GeoDataFrame]
) -> None:
    # The database stores zones as MultiPolygon (layers/specs/zones.toml).
    multi = zones.assign(geometry=shapely.multipolygons(zones.geometry.to_numpy()[:, None]))
    from_multi = generate_facilities(multi, seed=2023, scale=SCALE)
    for name in LAYERS:
        assert_geodataframe_equal(from_multi[name], scaled[name])


def test_small_odd_and_reprojected_zones(zones: gpd.GeoDataFrame) -> None:
    centre = zones.to_crs(4547).geometry.iloc[0].centroid
    tiny = shapely.box(centre.x + 2_000, centre.y, centre.x + 2_030, centre.y + 25)
    two_parts = shapely.MultiPolygon([
        shapely.box(centre.x + 3_000, centre.y, centre.x + 3_200, centre.y + 150),
        shapely.box(centre.x + 3_300, centre.y, centre.x + 3_380, centre.y + 90),
    ])  # fmt: skip
    odd = gpd.GeoDataFrame({"code": ["tiny", "two-parts"]}, geometry=[tiny, two_parts], crs=4547)
    one, three = generate_facilities(odd), generate_facilities(odd, scale=3)
    by_code = odd.to_crs(4490).set_index("code").geometry
    for name in LAYERS:
        assert three[name].crs.to_epsg() == 4490
        assert len(three[name]) == 3 * len(one[name])
        zone_geoms = by_code.loc[_zone_of(three[name]["code"])].to_numpy()
        assert shapely.contains_properly(zone_geoms, three[name].geometry.to_numpy()).all()
    assert len(one["street_lights"]) > 0
