"""Issue 18: the facilities of the other service kinds (drains, manholes, roads, ditches, walls, sports
equipment, drying racks): their zone, inspections, case links, demo data, bad input and the maps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from psycopg import sql
from pyproj import Geod, Transformer
from shapely.geometry import LineString, mapping

from api.app import create_app
from geo.cases.categories import categories
from geo.demo.kinds import LAYERS, LINE_LAYERS, generate_kinds
from geo.errors import ImportRejected
from geo.io.importer import import_file
from geo.programme import inspections
from layers.catalogue import load_catalogue
from maps import styles
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.helpers import feature, write_geojson

ROOT = Path(__file__).resolve().parents[1]
GEOD = Geod(ellps="WGS84")
TO_M = Transformer.from_crs(4490, 4547, always_xy=True)
TO_DEG = Transformer.from_crs(4547, 4490, always_xy=True)


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _metric(geom: Any) -> Any:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1])))


def _degrees(geom: Any) -> Any:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_DEG.transform(xy[:, 0], xy[:, 1])))


def _zones(conn: psycopg.Connection) -> dict[str, Any]:
    rows = conn.execute("SELECT code, ST_AsBinary(geom) FROM zones WHERE district_code = %s", [DISTRICT]).fetchall()
    return {code: _metric(shapely.from_wkb(bytes(wkb))) for code, wkb in rows}


def _across(zones: dict[str, Any], major: str, minor: str, into_major: float, into_minor: float) -> LineString:
    """A line (EPSG:4490) across the edge two zones share: ``into_major`` metres into ``major`` and
    ``into_minor`` metres into ``minor``, at right angles to the edge at its middle."""
    a, b = zones[major], zones[minor]
    shared = shapely.intersection(shapely.boundary(a), shapely.buffer(b, 1.0))
    middle = shapely.line_interpolate_point(shapely.line_merge(shared), 0.5, normalized=True)
    ends = shapely.get_coordinates(shapely.line_merge(shared))
    along = ends[-1] - ends[0]
    normal = np.array([-along[1], along[0]]) / np.hypot(*along)
    m = np.array(middle.coords[0])
    if not a.contains(shapely.Point(m + normal * 5)):
        normal = -normal
    line = LineString([m + normal * into_major, m - normal * into_minor])
    return _degrees(line)


def _length_in(zones: dict[str, Any], line: LineString) -> dict[str, float]:
    metric = _metric(line)
    return {code: float(shapely.length(shapely.intersection(z, metric))) for code, z in zones.items()}


def _wall(code: str, line: LineString, **props: Any) -> dict[str, Any]:
    return feature(mapping(line), code=code, condition="normal", height_m=2.2, **props)


# ---------------------------------------------------------------- a line's one zone


def test_a_line_belongs_to_the_zone_holding_most_of_its_length_unless_a_planner_says(client, db_url):
    planner = auth_headers(db_url, "planner")
    with psycopg.connect(db_url) as conn:
        zones = _zones(conn)
    mostly_south = _across(zones, "yumin-south", "yumin-north", 40.0, 10.0)
    mostly_north = _across(zones, "yumin-north", "yumin-south", 35.0, 15.0)
    lengths = _length_in(zones, mostly_south)
    # hand check of the construction: 40 m in one zone, 10 m in the other, nothing elsewhere
    assert lengths["yumin-south"] == pytest.approx(40.0, abs=0.5)
    assert lengths["yumin-north"] == pytest.approx(10.0, abs=0.5)

    created = client.post("/collections/walls/items", json=_wall("W-1", mostly_south), headers=planner)
    assert created.status_code == 201, created.text
    assert client.get("/collections/walls/items/W-1").json()["properties"]["zone_code"] == "yumin-south"
    # a planner's override: the wall on the shared edge is the other zone's
    body = _wall("W-2", mostly_south, zone_code="yumin-north")
    assert client.post("/collections/walls/items", json=body, headers=planner).status_code == 201
    assert client.get("/collections/walls/items/W-2").json()["properties"]["zone_code"] == "yumin-north"
    # moving a computed line recomputes its zone; an overridden one keeps it
    for code in ("W-1", "W-2"):
        current = client.get(f"/collections/walls/items/{code}").json()
        moved = {**current, "geometry": mapping(mostly_north)}
        r = client.put(f"/collections/walls/items/{code}", json=moved, headers={**planner, "If-Match": '"1"'})
        assert r.status_code == 200, r.text
    assert client.get("/collections/walls/items/W-1").json()["properties"]["zone_code"] == "yumin-north"
    assert client.get("/collections/walls/items/W-2").json()["properties"]["zone_code"] == "yumin-north"
    # an unknown zone is refused, naming the field; nothing written
    bad = client.post("/collections/walls/items", json=_wall("W-3", mostly_south, zone_code="nowhere"), headers=planner)
    assert bad.status_code == 400 and "zone_code" in bad.text
    assert client.get("/collections/walls/items/W-3").status_code == 404


def test_an_imported_line_gets_its_zone_computed_and_counts_once_in_the_acceptance_figures(tmp_path, db_url):
    catalogue = load_catalogue()
    with psycopg.connect(db_url) as conn:
        zones = _zones(conn)
        line = _across(zones, "yanghaitang-west", "yanghaitang-east", 30.0, 12.0)
        path = write_geojson(
            tmp_path / "ditches.geojson",
            [feature(mapping(line), code="DT-T-1", condition="faulty", width_m=0.8)],
        )
        before = inspections.condition_counts(conn, district_code=DISTRICT)
        result = import_file(conn, catalogue, path, layer="ditches", district_code=DISTRICT, mode="append")
        assert result.inserted == 1
        row = conn.execute("SELECT zone_code FROM ditches WHERE code = 'DT-T-1'").fetchone()
        assert row == ("yanghaitang-west",)
        after = inspections.condition_counts(conn, district_code=DISTRICT)

    def faulty(counts: dict[str, Any], zone: str) -> int:
        return int(counts.get(zone, {}).get("ditches", {}).get("faulty", 0))

    # the ditch touches two zones but counts once, in its own zone
    assert faulty(after, "yanghaitang-west") == faulty(before, "yanghaitang-west") + 1
    assert faulty(after, "yanghaitang-east") == faulty(before, "yanghaitang-east")


# ---------------------------------------------------------------- inspections on lines


def test_an_inspection_sets_a_roads_condition_and_defect(client, db_url):
    with psycopg.connect(db_url) as conn:
        road = conn.execute(
            "SELECT code FROM roads WHERE zone_code = 'jinling' AND condition = 'normal' ORDER BY code LIMIT 1"
        ).fetchone()
        drain = conn.execute("SELECT code FROM drains WHERE zone_code = 'jinling' ORDER BY code LIMIT 1").fetchone()
    assert road is not None and drain is not None
    team = auth_headers(db_url, "property_team", zone_codes=("jinling",))
    url = f"/facilities/roads/{road[0]}/inspections"
    r = client.post(url, json={"inspected_on": "2024-05-02", "condition": "故障", "defect": "坑洼"}, headers=team)
    assert r.status_code == 201, r.text
    assert r.json()["defect"] == "potholes"
    item = client.get(f"/collections/roads/items/{road[0]}").json()["properties"]
    assert (item["condition"], item["defect"]) == ("faulty", "potholes")
    # repaired: the next inspection clears the defect
    r = client.post(url, json={"inspected_on": "2024-05-09", "condition": "normal"}, headers=team)
    assert r.status_code == 201, r.text
    item = client.get(f"/collections/roads/items/{road[0]}").json()["properties"]
    assert (item["condition"], item["defect"]) == ("normal", None)
    # a defect the layer does not know, or a defect on a layer without one: 400 naming the field
    wrong = client.post(url, json={"inspected_on": "2024-05-10", "condition": "faulty", "defect": "缺失"}, headers=team)
    assert wrong.status_code == 400 and wrong.json()["field"] == "defect"
    drain_url = f"/facilities/drains/{drain[0]}/inspections"
    none = client.post(
        drain_url, json={"inspected_on": "2024-05-10", "condition": "faulty", "defect": "坑洼"}, headers=team
    )
    assert none.status_code == 400 and none.json()["field"] == "defect"
    ok = client.post(drain_url, json={"inspected_on": "2024-05-10", "condition": "维修中"}, headers=team)
    assert ok.status_code == 201, ok.text
    assert client.get(f"/collections/drains/items/{drain[0]}").json()["properties"]["condition"] == "repairing"
    assert [i["defect"] for i in client.get(url, headers=team).json()["inspections"]] == [None, "potholes"]


def test_a_file_of_inspections_sets_manhole_defects_and_names_a_bad_row(tmp_path, conn):
    from geo.access.scope import Principal

    admin = Principal(username="tests", role="admin")
    codes = [r[0] for r in conn.execute("SELECT code FROM manholes ORDER BY code LIMIT 2")]
    good = tmp_path / "good.csv"
    good.write_text(
        "部件类型,部件编码,巡查日期,巡查人,状况,问题\n"
        f"manholes,{codes[0]},2024-05-01,张三,故障,缺失\n"
        f"manholes,{codes[1]},2024-05-01,张三,正常,\n",
        encoding="utf-8",
    )
    assert inspections.import_file(conn, admin, good, district_code=DISTRICT, actor="tests") == 2
    rows = conn.execute("SELECT code, condition, defect FROM manholes WHERE code = ANY(%s) ORDER BY code", [codes])
    assert rows.fetchall() == [(codes[0], "faulty", "cover_missing"), (codes[1], "normal", None)]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"facility_layer,facility_code,date,inspector,condition,defect\nmanholes,{codes[1]},2024-05-02,李四,故障,坑洼\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as err:
        inspections.import_file(conn, admin, bad, district_code=DISTRICT, actor="tests")
    assert {(p["row"], p["field"]) for p in err.value.details["problems"]} == {(1, "defect")}


# ---------------------------------------------------------------- cases link to lines


def test_a_blocked_drain_links_to_the_nearest_pipe_or_manhole_by_metres(client, db_url):
    assert categories()["drain_blocked"].facility_layers == ("drains", "manholes")
    with psycopg.connect(db_url) as conn:
        # a pipe's middle: the manholes sit at its ends, over 12 m away; the pipe itself is nearer
        row = conn.execute(
            "SELECT code, ST_AsBinary(geom) FROM drains WHERE ST_Length(ST_Transform(geom, 4547)) > 25 "
            "ORDER BY code LIMIT 1"
        ).fetchone()
        assert row is not None
        others = [
            _metric(shapely.from_wkb(bytes(r[0])))
            for r in conn.execute("SELECT ST_AsBinary(geom) FROM drains WHERE code <> %s", [row[0]])
        ]
    pipe = _metric(shapely.from_wkb(bytes(row[1])))
    middle = np.array(shapely.line_interpolate_point(pipe, 0.5, normalized=True).coords[0])
    xy = shapely.get_coordinates(pipe)
    along = (xy[-1] - xy[0]) / np.hypot(*(xy[-1] - xy[0]))
    normal = np.array([-along[1], along[0]])
    nearest_other = shapely.union_all(others)
    if nearest_other.distance(shapely.Point(middle + normal * 10.0)) < 15.0:
        normal = -normal  # the side away from the pipe across the road
    assert nearest_other.distance(shapely.Point(middle + normal * 10.0)) > 15.0

    lon, lat = TO_DEG.transform(*(middle + normal * 4.0))  # 4 m off the pipe, at right angles
    r = client.post("/cases", json={"category": "drain_blocked", "lon": lon, "lat": lat})
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert (props["facility_layer"], props["facility_code"]) == ("drains", row[0])
    assert props["facility_distance_m"] == pytest.approx(4.0, abs=0.05)

    # a manhole placed by hand 10 m off the pipe; a report 1 m from it (9 m from the pipe) links to it
    planner = auth_headers(db_url, "planner")
    hlon, hlat = TO_DEG.transform(*(middle + normal * 10.0))
    body = feature({"type": "Point", "coordinates": [hlon, hlat]}, code="MH-T-1", condition="normal")
    assert client.post("/collections/manholes/items", json=body, headers=planner).status_code == 201
    nlon, nlat = TO_DEG.transform(*(middle + normal * 9.0))
    props = client.post("/cases", json={"category": "下水不通", "lon": nlon, "lat": nlat}).json()["properties"]
    assert (props["facility_layer"], props["facility_code"]) == ("manholes", "MH-T-1")
    assert props["facility_distance_m"] == pytest.approx(1.0, abs=0.05)
    # a facility named by its code, in either layer, is linked whatever its distance
    named = client.post(
        "/cases", json={"category": "drain_blocked", "lon": nlon, "lat": nlat, "facility_code": row[0]}
    ).json()["properties"]
    assert (named["facility_layer"], named["facility_code"]) == ("drains", row[0])
    assert named["facility_distance_m"] == pytest.approx(9.0, abs=0.05)


def test_categories_name_layers_that_exist_and_list_them():
    shipped = load_catalogue()
    for cat in categories().values():
        assert all(shipped[name].facility for name in cat.facility_layers), cat.code
    assert categories()["road_uneven"].facility_layers == ("roads",)
    assert categories()["equipment_damaged"].facility_layers == ("sports_equipment",)
    assert categories()["rack_damaged"].facility_layers == ("drying_racks",)
    assert categories()["rack_damaged"].name == "晾衣架损坏"


# ---------------------------------------------------------------- bad input


def test_bad_lines_and_an_unknown_pipe_kind_are_refused_naming_row_and_field(tmp_path, db_url):
    catalogue = load_catalogue()
    with psycopg.connect(db_url) as conn:
        zones = _zones(conn)
        inside = _degrees(shapely.point_on_surface(zones["jinling"]))
        x, y = inside.x, inside.y
        d = 0.0003
        good = {"type": "LineString", "coordinates": [[x, y], [x + d, y]]}
        one_point = {"type": "LineString", "coordinates": [[x, y], [x, y]]}
        crossing = {"type": "LineString", "coordinates": [[x, y], [x + d, y + d], [x + d, y], [x, y + d]]}
        path = write_geojson(
            tmp_path / "drains.geojson",
            [
                feature(good, code="DR-T-1", condition="normal", pipe_kind="污水", diameter_mm=300),
                feature(one_point, code="DR-T-2", condition="normal", pipe_kind="storm"),
                feature(crossing, code="DR-T-3", condition="normal", pipe_kind="合流"),
                feature(good, code="DR-T-4", condition="normal", pipe_kind="暗沟"),
            ],
        )
        before = conn.execute("SELECT count(*) FROM drains").fetchone()
        with pytest.raises(ImportRejected) as err:
            import_file(conn, catalogue, path, layer="drains", district_code=DISTRICT, mode="append")
        problems = {(p["row"], p["field"]): p["reason"] for p in err.value.details["problems"]}
        assert set(problems) == {(2, "geometry"), (3, "geometry"), (4, "pipe_kind")}
        assert "two distinct points" in problems[(2, "geometry")]
        assert "crosses itself" in problems[(3, "geometry")]
        assert "'暗沟' is not an allowed value" in problems[(4, "pipe_kind")]
        assert conn.execute("SELECT count(*) FROM drains").fetchone() == before  # nothing half-written


def test_the_api_refuses_a_one_point_line_and_a_self_crossing_drain(client, db_url):
    planner = auth_headers(db_url, "planner")
    with psycopg.connect(db_url) as conn:
        inside = _degrees(shapely.point_on_surface(_zones(conn)["jinling"]))
    x, y, d = inside.x, inside.y, 0.0003
    for coordinates, reason in (
        ([[x, y]], "geometry"),
        ([[x, y], [x + d, y + d], [x + d, y], [x, y + d]], "crosses itself"),
    ):
        body = feature(
            {"type": "LineString", "coordinates": coordinates}, code="DR-X", condition="normal", pipe_kind="storm"
        )
        r = client.post("/collections/drains/items", json=body, headers=planner)
        assert r.status_code == 400, r.text
        assert r.json()["field"] in ("geometry", "properties") and reason in r.text
    body = feature(
        {"type": "LineString", "coordinates": [[x, y], [x + d, y]]}, code="DR-X", condition="normal", pipe_kind="雨污"
    )
    r = client.post("/collections/drains/items", json=body, headers=planner)
    assert r.status_code == 400 and "pipe_kind" in r.text
    assert client.get("/collections/drains/items/DR-X").status_code == 404


# ---------------------------------------------------------------- demo data


@pytest.fixture(scope="module")
def demo_zones() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(ROOT / "data" / "boundaries" / "zones.geojson")
    return gdf[["code", "geometry"]].set_crs(4490, allow_override=True)


def test_the_demo_kinds_follow_their_specs_lie_in_their_zone_and_scale_exactly(demo_zones):
    base = generate_kinds(demo_zones, seed=2023)
    again = generate_kinds(demo_zones, seed=2023)
    scaled = generate_kinds(demo_zones, seed=2023, scale=3)
    catalogue = load_catalogue()
    zones = {c: g for c, g in zip(demo_zones["code"], demo_zones.geometry, strict=True)}
    for name in LAYERS:
        frame = base[name]
        spec = catalogue[name]
        assert list(frame.columns) == ["code", *spec.attribute_names, "geometry"], name
        assert len(frame) > 0 and frame["code"].is_unique, name
        assert frame.equals(again[name]), name  # seeded: the same frames
        assert len(scaled[name]) == 3 * len(frame), name
        assert scaled[name].head(len(frame)).reset_index(drop=True).equals(frame), name
        assert set(frame.geom_type) == {spec.geometry}, name
        assert frame.is_valid.all() and (~frame.is_empty).all(), name
        zone_of = frame["code"].str.split("-", n=1).str[1].str.rsplit("-", n=1).str[0]
        inside = [zones[z].buffer(1e-6).covers(g) for z, g in zip(zone_of, frame.geometry, strict=True)]
        assert all(inside), name
        if name in LINE_LAYERS:
            assert frame.is_simple.all() and (frame["zone_code"] == zone_of).all(), name
        for attr in spec.attributes:
            if attr.values is not None:
                assert set(frame[attr.name].dropna()) <= set(attr.values), (name, attr.name)
    # plausible: pipes join at manholes, walls face no other zone, a ditch per zone
    ends = shapely.get_coordinates(shapely.boundary(np.asarray(base["drains"].geometry.values)))
    holes = shapely.get_coordinates(np.asarray(base["manholes"].geometry.values))
    metric_holes = np.column_stack(TO_M.transform(holes[:, 0], holes[:, 1]))
    metric_ends = np.column_stack(TO_M.transform(ends[:, 0], ends[:, 1]))
    gaps = np.min(np.hypot(*(metric_ends[:, None, :] - metric_holes[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert np.mean(gaps < 0.01) > 0.95
    assert base["ditches"]["zone_code"].nunique() == len(demo_zones)
    metric_zones = {c: _metric(g) for c, g in zones.items()}
    for code, wall in zip(base["walls"]["zone_code"], base["walls"].geometry, strict=True):
        others = [g for c, g in metric_zones.items() if c != code]
        assert min(_metric(wall).distance(o) for o in others) > 10.0, code


def test_the_demo_database_holds_the_kinds_with_their_zones(conn):
    for name in LAYERS:
        (n,) = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
        assert n > 0, name
    # the generator's zone is the one the database computes: each line lies in its zone
    (wrong,) = conn.execute(
        "SELECT count(*) FROM roads r WHERE r.zone_code IS DISTINCT FROM wuye_majority_zone(r.geom, r.district_code)"
    ).fetchone()
    assert wrong == 0


# ---------------------------------------------------------------- maps


def test_every_facility_kind_has_its_own_symbol():
    catalogue = load_catalogue()
    facilities = [catalogue[n] for n in catalogue if catalogue[n].facility]
    points = [styles.symbol_shape(s) for s in facilities if "Point" in s.geometry]
    assert len(points) == len(set(points)), points
    lines = [(styles.layer_style(s)["dashArray"], styles.layer_style(s)["weight"]) for s in facilities if s.is_linear]
    assert len(lines) == len(set(lines)) == 4, lines
    assert all(styles.symbol_shape(s) == "line" for s in facilities if s.is_linear)
