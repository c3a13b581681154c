"""QGIS, the planners' desktop, as a real client (issue 17 point 1): Debian's PyQGIS, headless,
against the server on a real port, in one subprocess run (tests/pyqgis_session.py).

Every collection opens with the right count shown before download and reads completely (Chinese
attributes, dates, positions), a filtered layer, the vector tiles drawn by QGIS's renderer, the
password grant at /auth/token, and a feature edited and sent back as QGIS holds it: a new
version and a history row. ``make test`` installs python3-qgis and qgis-providers (Makefile
sysdeps-qgis); their absence fails here, it is not skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.access import users
from layers.catalogue import Catalogue
from maps.styles import CONDITION_COLOURS
from tests.conftest import DISTRICT
from tests.live import ROOT, serving, uvicorn_app, wuye

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = ROOT / "tests" / "pyqgis_session.py"


def _qgis_present() -> None:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, timeout=120, check=False
    )
    assert probe.returncode == 0, (
        "PyQGIS is missing: `make test` installs python3-qgis and qgis-providers (as root), "
        f"or install them yourself: {probe.stderr[-300:]}"
    )


def _db(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, list(args)).fetchall()


def _count(url: str, table: str, where: str = "true") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE district_code = %s AND {}").format(
                sql.Identifier(table),
                sql.SQL(where),
            ),
            [DISTRICT],
        ).fetchone()
    assert row is not None
    return int(row[0])


def _run_session(tmp_path: Path, plan: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / "plan.json").write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # QGIS keeps its settings and auth database under the home
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), str(tmp_path / "plan.json")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    (ROOT / "var" / "qgis-session.json").write_text(lines[-1], encoding="utf-8")  # to read after a failure
    return dict(json.loads(lines[-1]))


def test_qgis_reads_filters_draws_signs_in_and_edits(tmp_path: Path, db_url: str, catalogue: Catalogue) -> None:
    _qgis_present()
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(
            conn,
            username="qgis-planner",
            password="qgis-secret-pass",
            role="planner",
            district_code=DISTRICT,
            actor="tests",
        )
    lights = _db(
        db_url,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e "
        "FROM street_lights WHERE district_code = %s) s",
        DISTRICT,
    )[0]
    cx, cy = _db(
        db_url,
        "SELECT ST_X(geom), ST_Y(geom) FROM street_lights WHERE district_code = %s ORDER BY code LIMIT 1",
        DISTRICT,
    )[0]
    window = [cx - 0.003, cy - 0.003, cx + 0.003, cy + 0.003]
    code, power = _db(
        db_url, "SELECT code, power_w FROM street_lights WHERE district_code = %s ORDER BY code LIMIT 1", DISTRICT
    )[0]
    new_power = (power or 0) + 15
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}
    kit = tmp_path / "kit" / "wuye.qgz"
    with serving(env, *uvicorn_app()) as base:
        made = wuye(env, "qgis-project", "--out", str(kit), "--url", base)  # the planners' kit, opened below
        assert made.returncode == 0, made.stderr
        seen = _run_session(
            tmp_path,
            {
                "base": base,
                "username": "qgis-planner",
                "password": "qgis-secret-pass",
                "collections": list(catalogue),
                "filtered": {"layer": "street_lights", "subset": "\"condition\" = 'faulty'", "bbox": window},
                "tiles": {"layer": "street_lights", "zoom": 16, "bbox": list(lights), "pixels": 512},
                "styles": {"layers": ["street_lights", "zones", "roads"]},
                "edit": {"layer": "street_lights", "code": code, "attribute": "power_w", "value": new_power},
                "png": str(ROOT / "var" / "screenshots" / "qgis-street-lights-tiles.png"),
                "project": {"path": str(kit)},
            },
        )
    assert seen["qgis"].startswith("3.")

    # every collection: the count QGIS shows on opening (numberMatched of its first request) is the
    # layer's, and reading it gets every feature
    for spec in catalogue.values():
        layer = seen["layers"][spec.name]
        total = _count(db_url, spec.table)
        assert layer["valid"], spec.name
        assert layer["count_shown"] == total, (spec.name, layer["count_shown"], total)
        assert layer["count_read"] == total, (spec.name, layer["count_read"], total)
        assert layer["requests_to_open"] <= 5, (spec.name, layer["requests_to_open"])
        codes = [r[0] for r in _db(db_url, f"SELECT code FROM {spec.table} WHERE district_code = %s", DISTRICT)]  # noqa: S608
        assert layer["codes"] == sorted(codes), spec.name
    # paging: QGIS asks for the pages /api allows (components/parameters/limit), not 100
    street = seen["layers"]["street_lights"]
    assert "1000" in street["page_limits"] or str(10_000) in street["page_limits"], street["page_limits"]
    assert street["requests"] <= 2 + -(-_count(db_url, "street_lights") // 1000) + 3, street["requests"]
    # Chinese names, dates and positions as stored
    zones = seen["layers"]["zones"]["sample"]
    for zcode, got in zones.items():
        (name,) = _db(db_url, "SELECT name FROM zones WHERE code = %s", zcode)[0]
        assert got["attributes"]["name"] == name and any("\u4e00" <= ch <= "\u9fff" for ch in name)
    for lcode, got in street["sample"].items():
        x, y, installed = _db(
            db_url, "SELECT ST_X(geom), ST_Y(geom), installed_on FROM street_lights WHERE code = %s", lcode
        )[0]
        assert abs(got["centroid"][0] - x) < 1e-7 and abs(got["centroid"][1] - y) < 1e-7, (lcode, got, x, y)
        shown = got["attributes"]["installed_on"]
        assert (shown or "")[:10] == (installed.isoformat() if installed else ""), (lcode, shown, installed)

    # a filtered layer: QGIS's subset string, and a map window (sent to the server as bbox)
    filtered = seen["filtered"]
    assert filtered["subset"] == _count(db_url, "street_lights", "condition = 'faulty'") > 0
    in_window = _count(
        db_url, "street_lights", "ST_Intersects(geom, ST_MakeEnvelope({}, {}, {}, {}, 4490))".format(*window)
    )
    assert filtered["rect"] == in_window > 0 and filtered["bbox_requests"] > 0

    # the vector tiles, drawn by QGIS's map renderer
    tiles = seen["tiles"]
    assert tiles["valid"] and tiles["errors"] == [] and tiles["tile_requests"] > 0
    assert tiles["drawn_pixels"] > 100, tiles

    # the styles served at /collections/{id}/styles, loaded by QGIS: condition colours with Chinese
    # labels for facilities (as the web maps), the spec's fill and CJK name labels for zones
    styles = seen["styles"]
    assert all(st["status"] == 200 and st["ok"] for st in styles.values()), styles
    lights = styles["street_lights.qml"]
    assert lights["renderer"] == "categorizedSymbol"
    assert lights["categories"]["faulty"] == ["故障", CONDITION_COLOURS["faulty"]]
    assert {k: v[1] for k, v in lights["categories"].items()} == CONDITION_COLOURS
    assert styles["street_lights.sld"]["renderer"] == "RuleRenderer"
    assert "故障" in styles["street_lights.sld"]["rules"]
    zones_qml = styles["zones.qml"]
    assert zones_qml["renderer"] == "singleSymbol" and zones_qml["colour"] == catalogue["zones"].style["fill_color"]
    assert zones_qml["label"] == ["name", "Noto Sans CJK SC", 10_000]
    assert styles["zones.sld"]["renderer"] == "singleSymbol"
    roads = styles["roads.qml"]  # a line facility: line symbols in the condition colours
    assert roads["renderer"] == "categorizedSymbol" and roads["symbol_types"] == [1], roads
    assert {k: v[1] for k, v in roads["categories"].items()} == CONDITION_COLOURS

    # the kit (`wuye qgis-project`): every catalogue layer through the OGC API provider, valid, styled
    # and grouped in Chinese; the dense point layers also as tiles for the zoomed-out view
    project = seen["project"]
    assert project["ok"] and project["crs"] == "EPSG:4490", project
    groups = dict((name, children) for name, children in project["groups"])
    assert list(groups) == ["公共设施", "设施概览（矢量瓦片）", "区划与边界"]
    oapif = {k.removeprefix("wuye_oapif_"): v for k, v in project["layers"].items() if k.startswith("wuye_oapif_")}
    assert set(oapif) == set(catalogue)
    for name, layer in oapif.items():
        spec = catalogue[name]
        assert layer["valid"] and layer["provider"] == "OAPIF" and layer["name"] == spec.title_zh, layer
        assert layer["scale"][0] == spec.facility  # facilities read feature by feature only close in
        assert layer["name"] in groups["公共设施" if spec.facility else "区划与边界"]
    assert oapif["zones"]["count"] == _count(db_url, "zones") and oapif["zones"]["labels"]
    assert oapif["street_lights"]["categories"]["faulty"] == "故障"
    assert oapif["drains"]["symbol_types"] == [1]
    tiles = {k: v for k, v in project["layers"].items() if k.startswith("wuye_tiles_")}
    assert tiles and all(t["valid"] and t["provider"] == "vectortile" for t in tiles.values()), tiles
    assert "wuye_tiles_street_lights" in tiles

    # sign in with the password grant, then a feature sent back as QGIS holds it (no If-Match: the
    # version property it read guards the write)
    edit = seen["edit"]
    assert (edit["token_status"], edit["token_type"]) == (200, "bearer")
    assert edit["put_status"] == 200, edit["put_answer"]
    assert edit["version_after"] == edit["version_before"] + 1
    assert edit["value_after"] == new_power
    assert edit["history_status"] == 200
    (version, actor, operation) = _db(
        db_url,
        "SELECT version, actor, operation FROM feature_history WHERE layer = 'street_lights' AND feature_code = %s "
        "ORDER BY id DESC LIMIT 1",
        code,
    )[0]
    assert (version, operation) == (edit["version_after"], "update") and "qgis-planner" in actor
    assert edit["stale_put_status"] == 412
