"""`wuye check`: the demo passes; constructed violations are reported with ids and areas."""

from __future__ import annotations

import pytest

from geo.spatial.integrity import check_all
from tests.conftest import DISTRICT


def test_demo_district_passes(conn, catalogue):
    assert check_all(conn, catalogue, district_code=DISTRICT) == []


def _shift_zone(conn, code: str, dx: float, dy: float) -> None:
    conn.execute("UPDATE zones SET geom = ST_Translate(geom, %s, %s) WHERE code = %s", [dx, dy, code])


def test_zone_moved_onto_its_neighbour_overlaps_and_leaves_its_subdistrict(conn, catalogue):
    # yumin-north sits on yumin-south's northern edge; pushing it south overlaps it.
    _shift_zone(conn, "yumin-north", 0.0, -0.0005)
    found = check_all(conn, catalogue, district_code=DISTRICT)
    overlap = [v for v in found if v.kind == "overlap" and v.layer == "zones"]
    assert [(v.code, v.other_code) for v in overlap] == [("yumin-north", "yumin-south")]
    # 0.0005 degrees of latitude is about 55 m; the overlap is that strip across the shared edge.
    assert overlap[0].area_m2 is not None and overlap[0].area_m2 > 1000
    outside_sections = {v.code for v in found if v.kind == "outside_parent" and v.layer == "contract_sections"}
    # its sections stayed where they were, so the northern strip of them is now outside it
    assert outside_sections and all(code.startswith("yumin-north") for code in outside_sections)


def test_zone_outside_its_subdistrict_is_reported_with_area(conn, catalogue):
    _shift_zone(conn, "daopo", 0.2, 0.0)
    found = [
        v
        for v in check_all(conn, catalogue, district_code=DISTRICT)
        if v.kind == "outside_parent" and v.layer == "zones"
    ]
    assert [(v.code, v.other_code) for v in found] == [("daopo", "wangyue")]
    area = conn.execute("SELECT ST_Area(ST_Transform(geom, 4547)) FROM zones WHERE code = 'daopo'").fetchone()
    assert area is not None
    assert found[0].area_m2 == pytest.approx(area[0], rel=1e-6)  # wholly outside


def test_section_naming_a_missing_zone(conn, catalogue):
    conn.execute(
        "UPDATE contract_sections SET zone_code = 'atlantis' WHERE code = (SELECT min(code) FROM contract_sections)"
    )
    found = [v for v in check_all(conn, catalogue, district_code=DISTRICT) if v.kind == "missing_parent"]
    assert len(found) == 1 and found[0].other_code == "atlantis"
    assert "不存在" in found[0].describe()
