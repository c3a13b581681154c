"""The planner page (/maps/plan) in a real headless Chromium, driven as a person drives it: the mouse
presses, moves and releases on the map (page.mouse), clicks the Leaflet-Geoman tools and the panel's
buttons, types in the form. Every save is checked in the database (geometry, version, history)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from api.app import create_app
from api.maps import local_server
from maps import snapshot
from tests.conftest import auth_headers, settings_for
from tests.test_maps import Watched

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"


@pytest.fixture(scope="module")
def plan_db(server: Any, template_db: str) -> Iterator[str]:
    """A copy of the demo database for this module."""
    with server.copy("plan", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(plan_db: str) -> Iterator[str]:
    with local_server(create_app(settings_for(plan_db))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=snapshot.CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def planner(browser: Any, base_url: str, plan_db: str) -> Iterator[Watched]:
    token = auth_headers(plan_db, "planner")["Authorization"].split(" ", 1)[1]
    w = Watched(browser, 1280, 900, token=token)
    w.open(base_url + "/maps/plan")
    yield w
    w.close()


def _one(url: str, query: str | sql.Composed, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0] if len(row) == 1 else row


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"plan-{name}.png"))


def _lonlat(url: str, x: float, y: float) -> tuple[float, float]:
    """EPSG:4547 metres to CGCS2000 degrees."""
    row = _one(url, "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4547), 4490) p", (x, y))
    return float(row[0]), float(row[1])


def _free_spot(url: str) -> tuple[str, float, float]:
    """A sub-district and a point in it (EPSG:4547) 400 m from every zone: room for new zones."""
    row = _one(
        url,
        "WITH z AS (SELECT ST_Transform(ST_Union(geom), 4547) AS g FROM zones), "
        "s AS (SELECT code, ST_Transform(geom, 4547) AS g FROM subdistricts ORDER BY code), "
        "free AS (SELECT s.code, ST_Difference(ST_Buffer(s.g, -400), ST_Buffer(z.g, 400)) AS g FROM s, z) "
        "SELECT code, ST_X(p), ST_Y(p) FROM free, LATERAL ST_PointOnSurface(free.g) AS p "
        "WHERE NOT ST_IsEmpty(free.g) ORDER BY ST_Area(free.g) DESC LIMIT 1",
    )
    return str(row[0]), float(row[1]), float(row[2])


def _view(page: Any, lons: list[float], lats: list[float], padding: int = 200) -> None:
    """Frame the map on a bounding box (what a person does by zooming; not input to the page)."""
    page.evaluate(
        "(b) => wuye.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false, padding: [b[4], b[4]]})",
        [min(lons), min(lats), max(lons), max(lats), padding],
    )


def _px(page: Any, lon: float, lat: float) -> tuple[float, float]:
    """The page pixel of a coordinate."""
    box = page.locator(".folium-map").bounding_box()
    c = page.evaluate(
        "(p) => { const c = wuye.map.latLngToContainerPoint(wuye.toDisplay(p[0], p[1])); return [c.x, c.y]; }",
        [lon, lat],
    )
    return box["x"] + c[0], box["y"] + c[1]


def _tool(page: Any, name: str) -> None:
    """Click a Leaflet-Geoman toolbar button (polygon, rectangle, edit, drag, cut, delete)."""
    page.locator(f".leaflet-pm-icon-{name}").click()


def _draw(page: Any, points: list[tuple[float, float]]) -> None:
    """Draw a polygon by clicking each corner (page pixels), then the first corner again."""
    _tool(page, "polygon")
    for x, y in [*points, points[0]]:
        page.mouse.click(x, y)
        page.wait_for_timeout(50)


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=4)
    page.mouse.move(*end, steps=4)
    page.mouse.up()


def _save(page: Any) -> str:
    page.locator("#p-save").click()
    page.wait_for_selector("#p-msg.wuye-ok, #p-msg.wuye-error")
    return str(page.inner_text("#p-msg"))


def test_plan_page_has_the_geoman_tools_and_every_zone_and_section(planner, plan_db):
    page = planner.page
    for tool in ("polygon", "rectangle", "edit", "drag", "cut", "delete"):
        assert page.locator(f".leaflet-pm-icon-{tool}").is_visible(), tool
    assert planner.drawn("drawn") == _one(
        plan_db, "SELECT (SELECT count(*) FROM zones) + (SELECT count(*) FROM contract_sections)"
    )
    assert page.evaluate("wuye.state.errors") == [] and planner.errors == []
    _shot(page, "loaded")


def _fill_zone_form(page: Any, code: str, name: str, subdistrict: str) -> None:
    """The attribute form of a new zone: code and name typed, the rest chosen from lists by name."""
    page.locator("#p-attr-code").fill(code)
    page.locator("#p-attr-name").fill(name)
    page.locator("#p-attr-kind").select_option(index=1)
    sub_name = _one(page.plan_db, "SELECT name FROM subdistricts WHERE code = %s", (subdistrict,))
    page.locator("#p-attr-subdistrict_code").select_option(label=sub_name)


def test_new_zones_snap_to_their_neighbour_and_save_with_post(planner, plan_db, base_url):
    """Two zones drawn side by side: the second one's corners, dropped 4 px off the first one's, land
    exactly on them, so the two share an edge with no gap and no overlap."""
    page = planner.page
    page.plan_db = plan_db
    subdistrict, x, y = _free_spot(plan_db)
    a = [_lonlat(plan_db, x + dx, y + dy) for dx, dy in ((-120, -60), (0, -60), (0, 60), (-120, 60))]
    far = [_lonlat(plan_db, x + dx, y + dy) for dx, dy in ((120, -60), (120, 60))]
    _view(page, [p[0] for p in a + far], [p[1] for p in a + far])
    _draw(page, [_px(page, *p) for p in a])
    _fill_zone_form(page, "snap-west", "吸附西", subdistrict)
    # the second zone: its two west corners 4 px off the first zone's east corners
    se, ne = _px(page, *a[1]), _px(page, *a[2])
    _draw(page, [(se[0] + 3, se[1] + 2.5), _px(page, *far[0]), _px(page, *far[1]), (ne[0] + 2.5, ne[1] - 3)])
    _fill_zone_form(page, "snap-east", "吸附东", subdistrict)
    _shot(page, "snap-drawn")
    message = _save(page)
    _shot(page, "snap-saved")
    assert "已保存" in message and "未保存" not in message, message
    for code in ("snap-west", "snap-east"):
        assert (
            httpx.get(f"{base_url}/collections/zones/items/{code}").json()["properties"]["subdistrict_code"]
            == subdistrict
        )
        assert (
            _one(plan_db, "SELECT count(*) FROM feature_history WHERE layer = 'zones' AND feature_code = %s", (code,))
            == 1
        )
    shared = _one(
        plan_db,
        "SELECT (SELECT count(*) FROM ST_DumpPoints(w.geom) p, ST_DumpPoints(e.geom) q"
        " WHERE ST_Equals(p.geom, q.geom)), ST_Area(ST_Intersection(w.geom, e.geom)),"
        " ST_Length(ST_Transform(ST_CollectionExtract(ST_Intersection(w.geom, e.geom), 2), 4547))"
        " FROM zones w, zones e WHERE w.code = 'snap-west' AND e.code = 'snap-east'",
    )
    # the first zone's east corners are exactly the second's west corners: they touch along the
    # whole 120 m edge, with no overlap
    assert shared[0] >= 2 and shared[1] == 0, shared
    assert abs(shared[2] - 120) < 0.5, shared
    assert planner.errors == []


def _section_vertex(url: str, rank: int = 0) -> tuple[str, float, float, float, float, int]:
    """A section (a MultiPolygon; ``rank`` 0 the largest, then by area), its first outer vertex
    (shared with its neighbours, as every vertex of the demo sections is), the point 40 % of the way
    from it to the section's centre (degrees), and the section's version."""
    row = _one(
        url,
        "SELECT code, ST_X(p), ST_Y(p), ST_X(c), ST_Y(c), version FROM contract_sections,"
        " LATERAL ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1) p, LATERAL ST_PointOnSurface(geom) c"
        " ORDER BY ST_Area(geom) DESC, code LIMIT 1 OFFSET %s",
        (rank,),
    )
    code, vx, vy, cx, cy, version = row
    return str(code), float(vx), float(vy), vx + 0.4 * (cx - vx), vy + 0.4 * (cy - vy), int(version)


def _frame(page: Any, url: str, layer: str, code: str) -> list[float]:
    """Frame the map on one shape; its bounds (degrees)."""
    b = _one(
        url,
        sql.SQL(
            "SELECT ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] FROM {} WHERE code = %s"
        ).format(sql.Identifier(layer)),
        (code,),
    )
    _view(page, [b[0], b[2]], [b[1], b[3]])
    return [float(v) for v in b]


def _select(page: Any, url: str, layer: str, code: str) -> None:
    """Click inside a shape to select it."""
    query = sql.SQL("SELECT ST_X(p), ST_Y(p) FROM {}, LATERAL ST_PointOnSurface(geom) p WHERE code = %s")
    row = _one(url, query.format(sql.Identifier(layer)), (code,))
    page.mouse.click(*_px(page, float(row[0]), float(row[1])))
    assert code in page.inner_text("#p-selected")


def test_dragging_a_vertex_of_an_existing_multipolygon_saves_it_with_patch(planner, plan_db, base_url):
    page = planner.page
    code, vx, vy, tx, ty, version = _section_vertex(plan_db)
    assert _one(plan_db, "SELECT GeometryType(geom) FROM contract_sections WHERE code = %s", (code,)) == "MULTIPOLYGON"
    _frame(page, plan_db, "contract_sections", code)
    _select(page, plan_db, "contract_sections", code)
    _tool(page, "edit")
    _drag(page, _px(page, vx, vy), _px(page, tx, ty))
    assert "1 处修改未保存" in page.inner_text("#p-pending")
    _shot(page, "vertex-moved")
    message = _save(page)
    assert "已保存" in message and code in message, message
    feature = httpx.get(f"{base_url}/collections/contract_sections/items/{code}").json()
    assert feature["properties"]["version"] == version + 1
    assert feature["geometry"]["type"] == "MultiPolygon"
    # the vertex now lies where the mouse let go (within a pixel), and the history has the old shape
    metres_per_px = 156543.03 * 0.89 / 2 ** page.evaluate("wuye.map.getZoom()")  # web mercator m/px × cos(28.2°)
    moved = _one(
        plan_db,
        "SELECT min(ST_Distance(ST_Transform((d).geom, 4547),"
        " ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 4547)))"
        " FROM (SELECT ST_DumpPoints(geom) AS d FROM contract_sections WHERE code = %s) q",
        (tx, ty, code),
    )
    assert moved < 1.5 * metres_per_px, (moved, metres_per_px)
    assert (
        _one(
            plan_db,
            "SELECT count(*) FROM feature_history WHERE layer = 'contract_sections' AND feature_code = %s",
            (code,),
        )
        >= 1
    )
    assert planner.errors == []


def _section_version(url: str, code: str) -> int:
    return int(_one(url, "SELECT version FROM contract_sections WHERE code = %s", (code,)))


def test_someone_elses_save_meanwhile_is_a_412_shown_beside_the_shape_with_both_drawings(planner, plan_db, base_url):
    page = planner.page
    code, vx, vy, tx, ty, version = _section_vertex(plan_db, rank=1)
    _frame(page, plan_db, "contract_sections", code)
    _select(page, plan_db, "contract_sections", code)
    _tool(page, "edit")
    _drag(page, _px(page, vx, vy), _px(page, tx, ty))
    # another planner renames the section meanwhile
    other = httpx.patch(
        f"{base_url}/collections/contract_sections/items/{code}",
        json={"properties": {"name": "别人改的名字"}},
        headers={
            **auth_headers(plan_db, "planner"),
            "If-Match": f'"{version}"',
            "Content-Type": "application/merge-patch+json",
        },
    )
    assert other.status_code == 200, other.text
    message = _save(page)
    _shot(page, "conflict-412")
    assert "412" in message and "他人已修改" in message, message
    # the only console line is Chromium's own log of the refused request
    assert all("412 (Precondition Failed)" in e for e in planner.errors), planner.errors
    planner.errors.clear()
    note = page.locator(".wuye-shape-note").inner_text()
    assert "412" in note and f"第 {version + 1} 版" in note
    assert page.evaluate("wuye.state.layers.theirs.getLayers().length") == 1  # the saved shape, dashed, beside ours
    assert _section_version(plan_db, code) == version + 1  # nothing of ours written
    assert planner.drawn("drawn") == _one(
        plan_db, "SELECT (SELECT count(*) FROM zones) + (SELECT count(*) FROM contract_sections)"
    )
    # the planner looked at both and saves again: now with the new version, their name kept
    message = _save(page)
    assert "已保存" in message and "未保存" not in message, message
    feature = httpx.get(f"{base_url}/collections/contract_sections/items/{code}").json()
    assert feature["properties"]["version"] == version + 2 and feature["properties"]["name"] == "别人改的名字"
    assert page.evaluate("wuye.state.layers.theirs.getLayers().length") == 0
    assert planner.errors == []


def test_a_refused_shape_shows_its_409_beside_it_and_does_not_block_the_others(planner, plan_db, base_url):
    page = planner.page
    page.plan_db = plan_db
    box = _frame(page, plan_db, "zones", "jinling")
    cx, cy, dx, dy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 5, (box[3] - box[1]) / 5
    subdistrict_of_jinling = _one(plan_db, "SELECT subdistrict_code FROM zones WHERE code = 'jinling'")
    _draw(page, [_px(page, cx + sx * dx, cy + sy * dy) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    _fill_zone_form(page, "overlapping-zone", "重叠小区", subdistrict_of_jinling)
    subdistrict, x, y = _free_spot(plan_db)
    square = [_lonlat(plan_db, x + ddx, y + ddy) for ddx, ddy in ((-50, -50), (50, -50), (50, 50), (-50, 50))]
    _view(page, [p[0] for p in square], [p[1] for p in square])
    _draw(page, [_px(page, *p) for p in square])
    _fill_zone_form(page, "fine-zone", "没问题的小区", subdistrict)
    message = _save(page)
    assert "1 个形状未保存（共 2 个）" in message, message
    assert httpx.get(f"{base_url}/collections/zones/items/fine-zone").status_code == 200
    assert httpx.get(f"{base_url}/collections/zones/items/overlapping-zone").status_code == 404
    _frame(page, plan_db, "zones", "jinling")
    _shot(page, "conflict-409")
    note = page.locator(".wuye-shape-note.wuye-error").inner_text()
    assert "409" in note and "与已有形状重叠" in note and "jinling" in note and "m²" in note, note
    assert "overlap" not in note and "zones" not in note  # in Chinese, layers by their names
    # the refused drawing is still there (and still unsaved) to be fixed
    assert "1 处修改未保存" in page.inner_text("#p-pending")
    assert all("409 (Conflict)" in e for e in planner.errors), planner.errors


def test_delete_asks_first_and_undo_brings_a_shape_back(planner, plan_db, base_url):
    page = planner.page
    code = _section_vertex(plan_db, rank=5)[0]
    _frame(page, plan_db, "contract_sections", code)
    row = _one(
        plan_db,
        "SELECT ST_X(p), ST_Y(p) FROM contract_sections, LATERAL ST_PointOnSurface(geom) p WHERE code = %s",
        (code,),
    )
    inside = _px(page, float(row[0]), float(row[1]))
    before = planner.drawn("drawn")
    _tool(page, "delete")
    questions: list[str] = []
    page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
    page.mouse.click(*inside)
    assert questions and "确定删除" in questions[0]
    assert planner.drawn("drawn") == before  # "no": the shape stays
    page.once("dialog", lambda d: d.accept())
    page.mouse.click(*inside)
    assert planner.drawn("drawn") == before - 1
    _tool(page, "delete")  # leave the removal mode
    page.locator("#p-undo").click()
    assert planner.drawn("drawn") == before
    assert page.inner_text("#p-pending") == ""
    _tool(page, "delete")
    page.once("dialog", lambda d: d.accept())
    page.mouse.click(*inside)
    _tool(page, "delete")
    message = _save(page)
    assert "已删除" in message and code in message, message
    assert httpx.get(f"{base_url}/collections/contract_sections/items/{code}").status_code == 404
    assert _one(plan_db, "SELECT count(*) FROM contract_sections WHERE code = %s", (code,)) == 0
    assert planner.errors == []


def test_undo_puts_a_moved_vertex_back(planner, plan_db):
    page = planner.page
    code, vx, vy, tx, ty, version = _section_vertex(plan_db, rank=2)
    _frame(page, plan_db, "contract_sections", code)
    _select(page, plan_db, "contract_sections", code)
    shape = "() => JSON.stringify(wuye.state.layers.drawn.getLayers().filter(l => l.wuye.code === %r)[0].getLatLngs())"
    original = page.evaluate(shape % code)
    _tool(page, "edit")
    _drag(page, _px(page, vx, vy), _px(page, tx, ty))
    assert page.evaluate(shape % code) != original
    _tool(page, "edit")
    page.locator("#p-undo").click()
    assert page.evaluate(shape % code) == original
    assert _save(page) == "没有需要保存的修改"
    assert _section_version(plan_db, code) == version
    assert planner.errors == []


def test_drag_a_zone_then_cut_a_hole_in_it(planner, plan_db, base_url):
    page = planner.page
    page.plan_db = plan_db
    subdistrict, x, y = _free_spot(plan_db)
    square = [_lonlat(plan_db, x + dx, y + dy) for dx, dy in ((-60, -60), (60, -60), (60, 60), (-60, 60))]
    _view(page, [p[0] for p in square], [p[1] for p in square], padding=250)
    _draw(page, [_px(page, *p) for p in square])
    _fill_zone_form(page, "dragged", "拖动小区", subdistrict)
    assert "已保存" in _save(page)
    # drag it 40 px east
    _tool(page, "drag")
    centre = _px(page, *_lonlat(plan_db, x, y))
    _drag(page, centre, (centre[0] + 40, centre[1]))
    _tool(page, "drag")
    assert "已保存" in _save(page)
    moved = _one(
        plan_db, "SELECT ST_X(ST_Transform(ST_Centroid(geom), 4547)), version FROM zones WHERE code = 'dragged'"
    )
    metres_per_px = 156543.03 * 0.89 / 2 ** page.evaluate("wuye.map.getZoom()")
    assert abs(moved[0] - x - 40 * metres_per_px) < 2 * metres_per_px and moved[1] == 2
    # a hole in the middle
    _select(page, plan_db, "zones", "dragged")
    _tool(page, "cut")
    c = (centre[0] + 40, centre[1])
    for px, py in [
        (c[0] - 15, c[1] - 15),
        (c[0] + 15, c[1] - 15),
        (c[0] + 15, c[1] + 15),
        (c[0] - 15, c[1] + 15),
        (c[0] - 15, c[1] - 15),
    ]:
        page.mouse.click(px, py)
        page.wait_for_timeout(50)
    _shot(page, "cut-hole")
    assert "已保存" in _save(page)
    holes = _one(
        plan_db,
        "SELECT ST_NumInteriorRings(ST_GeometryN(geom, 1)), GeometryType(geom), version"
        " FROM zones WHERE code = 'dragged'",
    )
    assert holes[0] == 1 and holes[1] == "MULTIPOLYGON" and holes[2] == 3, holes
    assert planner.errors == []


def test_split_a_section_in_two(planner, plan_db, base_url):
    page = planner.page
    code = _section_vertex(plan_db, rank=3)[0]
    area, props = _one(
        plan_db,
        "SELECT ST_Area(ST_Transform(geom, 4547)), service_kinds FROM contract_sections WHERE code = %s",
        (code,),
    )
    b = _frame(page, plan_db, "contract_sections", code)
    _select(page, plan_db, "contract_sections", code)
    page.locator("#p-split").click()
    # the knife: the western half of the section's box, and a little beyond
    mid = (b[0] + b[2]) / 2
    knife = [(b[0] - 0.001, b[1] - 0.001), (mid, b[1] - 0.001), (mid, b[3] + 0.001), (b[0] - 0.001, b[3] + 0.001)]
    for x, y in [*[_px(page, *p) for p in knife], _px(page, *knife[0])]:
        page.mouse.click(x, y)
        page.wait_for_timeout(50)
    assert page.locator("#p-attr-code").input_value() == f"{code}-2"
    _shot(page, "split")
    message = _save(page)
    assert "未保存" not in message, message
    rows = _one(
        plan_db,
        "SELECT array_agg(code ORDER BY code), sum(ST_Area(ST_Transform(geom, 4547))),"
        " ST_Area(ST_Intersection(min(geom::text)::geometry, max(geom::text)::geometry)), bool_and(service_kinds = %s)"
        " FROM contract_sections WHERE code IN (%s, %s)",
        (props, code, f"{code}-2"),
    )
    assert rows[0] == [code, f"{code}-2"] and abs(rows[1] - area) < area * 1e-6 and rows[2] < 1e-12 and rows[3], rows
    assert planner.errors == []


def test_attributes_are_chosen_from_lists_by_name_with_several_service_kinds(planner, plan_db, base_url):
    page = planner.page
    code = _section_vertex(plan_db, rank=4)[0]
    version, kinds, unit = _one(
        plan_db, "SELECT version, service_kinds, contractor_unit FROM contract_sections WHERE code = %s", (code,)
    )
    _frame(page, plan_db, "contract_sections", code)
    _select(page, plan_db, "contract_sections", code)
    # required fields are marked; the parent zone and the contractor are lists of names
    labels = page.locator("#p-fields").inner_text()
    assert "名称 *" in labels and "所属小区 *" in labels and "作业单位 *" in labels and "服务内容 *" in labels
    zone_name, zones = _one(
        plan_db,
        "SELECT z.name, (SELECT count(*) FROM zones) FROM contract_sections s JOIN zones z ON z.code = s.zone_code"
        " WHERE s.code = %s",
        (code,),
    )
    zone_select = page.locator("#p-attr-zone_code")
    assert zone_select.locator("option").count() == zones + 1  # every zone, and "—"
    assert zone_select.locator("option:checked").inner_text() == zone_name  # the name shown, the code sent
    other_unit, other_name = _one(
        plan_db, "SELECT code, name FROM units WHERE code <> %s AND kind = 'contractor' ORDER BY code LIMIT 1", (unit,)
    )
    page.locator("#p-attr-contractor_unit").select_option(
        label=next(
            t for t in page.locator("#p-attr-contractor_unit option").all_inner_texts() if t.startswith(other_name)
        )
    )
    wanted = set(kinds)
    unchecked = [b for b in page.locator("#p-attr-service_kinds input[type=checkbox]").all() if not b.is_checked()]
    for box in unchecked[:2]:  # two more kinds, ticked as a person ticks them
        box.check()
        wanted.add(box.get_attribute("value"))
    message = _save(page)
    assert "已保存" in message and "未保存" not in message, message
    feature = httpx.get(f"{base_url}/collections/contract_sections/items/{code}").json()["properties"]
    assert feature["contractor_unit"] == other_unit and set(feature["service_kinds"]) == wanted
    assert len(wanted) == len(kinds) + 2 and feature["version"] == version + 1
    assert planner.errors == []


def test_english_page(browser, base_url, plan_db):
    w = Watched(browser, 1280, 900)
    try:
        w.open(base_url + "/maps/plan?lang=en")
        text = w.page.locator(".wuye-plan").inner_text()
        assert "Layer of new shapes" in text and "Undo" in text and "Save" in text
        assert w.page.evaluate("document.documentElement.lang") == "en"
        # not signed in: saving asks for it, in the page's language
        w.page.locator("#p-save").click()
        assert "Please sign in first" in w.page.inner_text("#p-msg")
    finally:
        w.close()


def test_fifty_clients_at_once_on_the_unit_list(base_url, plan_db):
    from concurrent.futures import ThreadPoolExecutor

    expected = _one(plan_db, "SELECT count(*) FROM units")

    def client(_: int) -> list[int]:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            return [
                len(r.json()) if r.status_code == 200 else -r.status_code for r in (c.get("/units") for _ in range(5))
            ]

    with ThreadPoolExecutor(50) as pool:
        answers = [n for got in pool.map(client, range(50)) for n in got]
    assert answers == [expected] * 250
