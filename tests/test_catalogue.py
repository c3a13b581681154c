"""The layer catalogue: specs load, bad specs fail clearly, a new layer works from its spec alone."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from geo.errors import ImportRejected
from geo.io.importer import import_file
from geo.store.migrate import migrate, table_differences
from layers.catalogue import SpecError, load_spec, spec_from_dict, vocabulary
from tests.conftest import DISTRICT
from tests.helpers import count, feature, write_geojson

EXPECTED = [
    "districts",
    "subdistricts",
    "communities",
    "zones",
    "buildings",
    "contract_sections",
    "street_lights",
    "septic_tanks",
    "litter_bins",
    "green_plots",
    "drains",
    "manholes",
    "roads",
    "ditches",
    "walls",
    "sports_equipment",
    "drying_racks",
    "patrol_points",
]

# A layer this deployment does not ship (the shipped drains are a LineString layer of their own).
CULVERTS = """
name = "culverts"
title_zh = "涵洞"
title_en = "Culverts"
geometry = "MultiLineString"
change = "editable"
order = 90
facility = true

[[attributes]]
name = "condition"
type = "text"
required = true
vocabulary = "conditions"
title_zh = "状况"

[[attributes]]
name = "diameter_mm"
type = "integer"
minimum = 50
maximum = 2000
title_zh = "管径(mm)"
"""


def test_catalogue_lists_every_layer_in_migration_order(catalogue):
    assert list(catalogue) == EXPECTED
    assert catalogue["zones"].parent is not None and catalogue["zones"].parent.layer == "subdistricts"
    assert catalogue["contract_sections"].attribute("service_kinds").values == vocabulary("service_kinds").zh
    assert catalogue["districts"].change == "read-only"


def test_service_kinds_are_the_plans_six():
    assert list(vocabulary("service_kinds").zh.values()) == [
        "公共秩序",
        "公共环境卫生",
        "公共安全防范",
        "公用设施",
        "公共绿化",
        "其他协调事项",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"title_zh": "x", "geometry": "Point"}, "missing key 'name'"),
        ({"name": "Bad-Name", "title_zh": "x", "geometry": "Point"}, "lower-case ASCII"),
        ({"name": "a", "title_zh": "x", "geometry": "Polygon"}, "geometry 'Polygon' is not one of"),
        ({"name": "a", "title_zh": "x", "geometry": "Point", "change": "sometimes"}, "change 'sometimes'"),
        (
            {"name": "a", "title_zh": "x", "geometry": "Point", "attributes": [{"name": "n", "type": "float"}]},
            "type 'float'",
        ),
        (
            {"name": "a", "title_zh": "x", "geometry": "Point", "attributes": [{"name": "code", "type": "text"}]},
            "reserved",
        ),
        (
            {
                "name": "a",
                "title_zh": "x",
                "geometry": "Point",
                "attributes": [{"name": "n", "type": "integer", "values": {"a": "b"}}],
            },
            "allowed values",
        ),
        (
            {
                "name": "a",
                "title_zh": "x",
                "geometry": "Point",
                "attributes": [{"name": "n", "type": "text", "vocabulary": "nope"}],
            },
            "unknown vocabulary",
        ),
    ],
)
def test_bad_specs_name_the_problem(raw, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict(raw)


def test_a_new_layer_from_its_spec_alone_migrates_imports_and_validates(tmp_path: Path, catalogue, db_url: str):
    spec_file = tmp_path / "culverts.toml"
    spec_file.write_text(CULVERTS, encoding="utf-8")
    culverts = load_spec(spec_file)
    extended = catalogue.with_layer(culverts)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert migrate(conn, extended) == ["layer:culverts"]
        assert table_differences(conn, culverts) == []
    line = {"type": "LineString", "coordinates": [[112.9520, 28.2320], [112.9530, 28.2325]]}
    good = write_geojson(
        tmp_path / "culverts.geojson",
        [
            feature(line, code="D-1", condition="正常", diameter_mm=300),
            feature({"type": "MultiLineString", "coordinates": [line["coordinates"]]}, code="D-2", condition="faulty"),
        ],
    )
    with psycopg.connect(db_url) as conn:
        result = import_file(conn, extended, good, layer="culverts", district_code=DISTRICT)
        assert result.inserted == 2
        assert count(conn, "culverts") == 2
        rows = conn.execute("SELECT code, condition, GeometryType(geom) FROM culverts ORDER BY code").fetchall()
        assert rows == [("D-1", "normal", "MULTILINESTRING"), ("D-2", "faulty", "MULTILINESTRING")]
        bad = write_geojson(
            tmp_path / "bad.geojson",
            [
                feature({"type": "Point", "coordinates": [112.952, 28.232]}, code="D-3", condition="normal"),
                feature(line, code="D-4", condition="normal", diameter_mm=10),
            ],
        )
        with pytest.raises(ImportRejected) as err:
            import_file(conn, extended, bad, layer="culverts", district_code=DISTRICT)
        fields = {(p["row"], p["field"]) for p in err.value.details["problems"]}
        assert fields == {(1, "geometry"), (2, "diameter_mm")}
        assert count(conn, "culverts") == 2
        # added to a database that already keeps layer figures (migration 0013): its count is kept
        # too, so its first items request knows the total
        kept = conn.execute(
            "SELECT features FROM layer_stats WHERE layer_table = 'culverts' AND district_code = %s", [DISTRICT]
        ).fetchone()
        assert kept == (2,)
