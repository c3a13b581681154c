"""/collections/{id}/styles (issue 17 point 6): every layer's QML and SLD, well-formed XML built from
its spec; tests/test_qgis.py loads them into QGIS."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from layers.catalogue import Catalogue
from tests.conftest import settings_for


@pytest.fixture(scope="module")
def client(shared_db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(shared_db_url))) as c:
        yield c


def test_every_layer_has_qml_and_sld(client: TestClient, catalogue: Catalogue) -> None:
    for spec in catalogue.values():
        listing = client.get(f"/collections/{spec.name}/styles").json()
        assert listing["default"] == "default"
        types = {lk["type"] for lk in listing["styles"][0]["links"]}
        assert types == {"application/vnd.qgis.qml", "application/vnd.ogc.sld+xml;version=1.1"}
        qml = client.get(f"/collections/{spec.name}/styles/default")
        assert qml.status_code == 200 and qml.headers["content-type"].startswith("application/vnd.qgis.qml")
        root = ET.fromstring(qml.text.split("\n", 1)[1])
        assert root.tag == "qgis" and root.find("renderer-v2") is not None
        sld = client.get(f"/collections/{spec.name}/styles/default", params={"f": "sld"})
        assert ET.fromstring(sld.content).tag == "{http://www.opengis.net/sld}StyledLayerDescriptor"
    assert client.get("/collections/zones/styles/other").status_code == 404
    bad = client.get("/collections/zones/styles/default", params={"f": "mapbox"})
    assert bad.status_code == 400 and bad.json()["field"] == "f"
    assert client.get("/collections/nosuch/styles").status_code == 404
    assert any(
        lk["href"].endswith("/collections/zones/styles") for lk in client.get("/collections/zones").json()["links"]
    )


def test_cli_writes_every_style(tmp_path: Path, shared_db_url: str, catalogue: Catalogue) -> None:
    assert main(["styles", "--out", str(tmp_path)], settings=settings_for(shared_db_url)) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{name}.{ext}" for name in catalogue for ext in ("qml", "sld"))


def test_line_layers_are_drawn_as_lines_in_the_condition_colours_with_their_dashes(catalogue: Catalogue) -> None:
    """Drains, roads, ditches and walls: line symbols (not fills) with the web maps' dash per kind,
    one per condition; the QML says the layer holds lines; the SLD has line symbolizers."""
    from maps.qgis_styles import qml, sld
    from maps.styles import CONDITION_COLOURS, LINE_DASHES

    lines = [s for s in catalogue.values() if s.is_linear]
    assert {s.name for s in lines} >= {"drains", "roads", "ditches", "walls"}
    for spec in lines:
        root = ET.fromstring(qml(spec).split("\n", 1)[1])
        assert root.findtext("layerGeometryType") == "1", spec.name
        symbols = root.findall("renderer-v2/symbols/symbol")
        assert symbols and {s.get("type") for s in symbols} == {"line"}, spec.name
        colours = {p.get("v") for p in root.iter("prop") if p.get("k") == "line_color"}
        assert len(colours) == len(CONDITION_COLOURS), spec.name
        dashes = {p.get("v") for p in root.iter("prop") if p.get("k") == "customdash"}
        expected = LINE_DASHES.get(spec.name, "").replace(" ", ";")
        assert dashes == ({expected} if expected else set()), (spec.name, dashes)
        doc = ET.fromstring(sld(spec).encode())
        assert doc.findall(".//{http://www.opengis.net/se}LineSymbolizer"), spec.name
        assert not doc.findall(".//{http://www.opengis.net/se}PolygonSymbolizer"), spec.name


def test_cli_writes_the_qgis_project_and_refuses_an_address_that_is_not_http(
    tmp_path: Path, shared_db_url: str, catalogue: Catalogue, capsys: pytest.CaptureFixture[str]
) -> None:
    """`wuye qgis-project` (tests/test_qgis.py opens what it writes in QGIS itself)."""
    import zipfile

    kit = tmp_path / "kit.qgz"
    assert (
        main(
            ["qgis-project", "--out", str(kit), "--url", "http://gis.example:8000/"],
            settings=settings_for(shared_db_url),
        )
        == 0
    )
    with zipfile.ZipFile(kit) as qgz:
        assert qgz.namelist() == ["kit.qgs"]
        project = ET.fromstring(qgz.read("kit.qgs").decode("utf-8").split("\n", 1)[1])
    sources = [m.findtext("datasource") or "" for m in project.iter("maplayer")]
    assert sum("typename=" in s for s in sources) == len(catalogue)
    assert all("http://gis.example:8000" in s and "8000//" not in s for s in sources)
    assert (
        main(
            ["qgis-project", "--out", str(tmp_path / "x.qgz"), "--url", "ftp://gis"],
            settings=settings_for(shared_db_url),
        )
        != 0
    )
    assert "--url" in capsys.readouterr().err and not (tmp_path / "x.qgz").exists()
