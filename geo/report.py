"""Acceptance reports: one PDF per zone, and the district summary as PDF and XLSX.

HTML from Jinja templates (``geo/templates``), PDF by WeasyPrint with the
Noto CJK font embedded (``<html lang="zh-CN">`` so Han text takes the
Simplified Chinese glyphs). The map is a static SVG drawn here from the
zone's layers in EPSG:4547 (metres, so the scale bar is true); it stays the
default until the map snapshot renderer of the maps issue is wired in.

Two paths: :func:`zone_pdf` (one zone: its own query set and render, used by
the API) and :func:`write_all` (every zone: one query set for the district,
one font configuration per worker, zones rendered in parallel processes).
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import jinja2
import psycopg
from markupsafe import Markup

from geo import acceptance, inspections, remediation
from geo.crs import METRIC_SRID
from geo.settings import AcceptanceSettings
from geo.workcal import calendar
from layers.catalogue import load_catalogue

MAP_W, MAP_H = 1000, 620  # SVG user units of the map frame (aspect of the report's map box)
POINT_CELLS = 120  # facilities are drawn snapped to a grid this many cells wide: bounded work per map
KINDS = {"resettlement": "农民安置小区", "enterprise_dormitory": "破产企业宿舍区", "other": "其他开放式小区"}


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("geo", "templates"),
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@cache
def _css() -> Markup:
    source = _env().loader
    assert source is not None
    return Markup(source.get_source(_env(), "report.css")[0])  # our own file: not to be escaped


def _pct(value: float) -> str:
    permille = int(value * 1000)  # truncation: displays round down
    return f"{permille // 10}.{permille % 10}%"


# ---------------------------------------------------------------- static map (SVG)

_BOX_SQL = (
    "SELECT z.code, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b), ST_AsSVG(ST_Transform(z.geom, %(m)s), 0, 1) "
    "FROM zones z, LATERAL (SELECT ST_Expand(ST_Envelope(ST_Transform(z.geom, %(m)s)), "
    " greatest(ST_XMax(e) - ST_XMin(e), ST_YMax(e) - ST_YMin(e)) * 0.12) AS b "
    " FROM (SELECT ST_Envelope(ST_Transform(z.geom, %(m)s)) AS e) e) x "
    "WHERE z.code = ANY(%(zones)s)"
)


def _frame(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Widen the box to the map frame's aspect: (x, y_top, width, height) in metres."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w / h < MAP_W / MAP_H:
        grow = h * MAP_W / MAP_H - w
        x0, w = x0 - grow / 2, w + grow
    else:
        grow = w * MAP_H / MAP_W - h
        y0, h = y0 - grow / 2, h + grow
    return x0, y0 + h, w, h


def _layer_paths(conn: psycopg.Connection, frames: dict[str, tuple[float, float, float, float]],
                 table: str, where: str = "") -> dict[str, list[str]]:
    """SVG path data of a polygon layer's features clipped to each zone's frame."""
    from psycopg import sql

    stmt = sql.SQL(
        "SELECT f.zone, ST_AsSVG(ST_Intersection(ST_Transform(t.geom, %(m)s), f.box), 0, 1) "
        "FROM unnest(%(zones)s::text[], %(x)s::float8[], %(y)s::float8[], %(w)s::float8[], %(h)s::float8[]) "
        " AS b(zone, x, y, w, h), "
        "LATERAL (SELECT b.zone, ST_MakeEnvelope(b.x, b.y - b.h, b.x + b.w, b.y, %(m)s) AS box) f "
        "JOIN {t} t ON t.geom && ST_Transform(f.box, 4490) " + where
    ).format(t=sql.Identifier(table))
    out: dict[str, list[str]] = {}
    for zone, path in conn.execute(stmt, _frame_params(frames)):
        if path:
            out.setdefault(zone, []).append(path)
    return out


def _frame_params(frames: dict[str, tuple[float, float, float, float]]) -> dict[str, Any]:
    codes = list(frames)
    return {"m": METRIC_SRID, "zones": codes, "x": [frames[c][0] for c in codes], "y": [frames[c][1] for c in codes],
            "w": [frames[c][2] for c in codes], "h": [frames[c][3] for c in codes]}


def _points(conn: psycopg.Connection, frames: dict[str, tuple[float, float, float, float]],
            table: str) -> dict[str, list[tuple[float, float, bool]]]:
    """A point layer's facilities in each frame, snapped to a grid (x, y, any faulty in the cell)."""
    from psycopg import sql

    stmt = sql.SQL(
        "SELECT f.zone, ST_X(c), ST_Y(c), bool_or(t.condition <> 'normal') FROM "
        "unnest(%(zones)s::text[], %(x)s::float8[], %(y)s::float8[], %(w)s::float8[], %(h)s::float8[]) "
        " AS b(zone, x, y, w, h), "
        "LATERAL (SELECT b.zone, b.w / %(cells)s AS cell, ST_MakeEnvelope(b.x, b.y - b.h, b.x + b.w, b.y, %(m)s) "
        " AS box) f "
        "JOIN {t} t ON t.geom && ST_Transform(f.box, 4490), "
        "LATERAL (SELECT ST_SnapToGrid(ST_Transform(t.geom, %(m)s), f.cell) AS c) s "
        "GROUP BY f.zone, c"
    ).format(t=sql.Identifier(table))
    out: dict[str, list[tuple[float, float, bool]]] = {}
    for zone, x, y, faulty in conn.execute(stmt, {**_frame_params(frames), "cells": POINT_CELLS}):
        out.setdefault(zone, []).append((x, y, bool(faulty)))
    return out


def map_svgs(conn: psycopg.Connection, zone_codes: Sequence[str]) -> dict[str, str]:
    """A static SVG map per zone: the zone, contract sections, green plots, point facilities (faulty
    ones red), remediation task geometries, a scale bar and a north arrow. Metres (EPSG:4547)."""
    rows = conn.execute(_BOX_SQL, {"m": METRIC_SRID, "zones": list(zone_codes)}).fetchall()
    frames = {r[0]: _frame((r[1], r[2], r[3], r[4])) for r in rows}
    outlines = {r[0]: r[5] for r in rows}
    if not frames:
        return {}
    catalogue = load_catalogue()
    greens = _layer_paths(conn, frames, "green_plots")
    sections = _layer_paths(conn, frames, "contract_sections")
    others = _layer_paths(conn, frames, "zones", "WHERE t.code <> f.zone")
    tasks = _layer_paths(conn, frames, "remediation_tasks", "WHERE t.zone_code = f.zone AND t.geom IS NOT NULL")
    point_layers = [n for n in inspections.facility_layers(catalogue) if catalogue[n].geometry == "Point"]
    points = {layer: _points(conn, frames, layer) for layer in point_layers}
    colors = {layer: str(catalogue[layer].style.get("color", "#555")) for layer in point_layers}
    return {code: _svg(frames[code], outlines[code], greens.get(code, []), sections.get(code, []),
                       others.get(code, []), tasks.get(code, []),
                       {layer: points[layer].get(code, []) for layer in point_layers}, colors)
            for code in frames}


def _svg(frame: tuple[float, float, float, float], outline: str, greens: list[str], sections: list[str],
         others: list[str], tasks: list[str], points: dict[str, list[tuple[float, float, bool]]],
         colors: dict[str, str]) -> str:
    x, y_top, w, h = frame
    unit = w / MAP_W  # metres per SVG unit of the frame
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x:.1f} {-y_top:.1f} {w:.1f} {h:.1f}" '
             f'width="100%" height="100%" preserveAspectRatio="xMidYMid meet" '
             f'font-family="Noto Sans CJK SC, sans-serif">',
             f'<rect x="{x:.1f}" y="{-y_top:.1f}" width="{w:.1f}" height="{h:.1f}" fill="#f7f7f2"/>']
    parts += [f'<path d="{p}" fill="#eeeeee" stroke="#999" stroke-width="{unit:.2f}"/>' for p in others]
    parts += [f'<path d="{p}" fill="#a1d99b" stroke="#41ab5d" stroke-width="{unit * 0.6:.2f}"/>' for p in greens]
    parts.append(f'<path d="{outline}" fill="#fdae6b" fill-opacity="0.25" stroke="#d94801" '
                 f'stroke-width="{unit * 3:.2f}"/>')
    parts += [f'<path d="{p}" fill="none" stroke="#3182bd" stroke-width="{unit * 1.5:.2f}" '
              f'stroke-dasharray="{unit * 8:.1f} {unit * 5:.1f}"/>' for p in sections]
    parts += [f'<path d="{p}" fill="#fd8d3c" fill-opacity="0.5" stroke="#e6550d" '
              f'stroke-width="{unit * 2:.2f}"/>' for p in tasks]
    # One path per layer and colour, a zero-length round-capped segment per point: the same dots as
    # thousands of <circle> elements at a fraction of the parsing and drawing cost.
    for layer, pts in points.items():
        for faulty, fill in ((False, colors[layer]), (True, "#d62728")):
            dots = "".join(f"M{px:.1f} {-py:.1f}h0" for px, py, bad in pts if bad == faulty)
            if dots:
                parts.append(f'<path d="{dots}" stroke="{fill}" stroke-width="{unit * 7:.1f}" '
                             f'stroke-linecap="round" fill="none"/>')
    parts.append(_scale_bar(x, y_top, w, h, unit))
    parts.append("</svg>")
    return "".join(parts)


def _scale_bar(x: float, y_top: float, w: float, h: float, unit: float) -> str:
    target = w / 5
    length = next(v for v in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 1e9) if v >= target * 0.6)
    bx, by = x + w * 0.04, -(y_top - h) - h * 0.05
    font = unit * 18
    label = f"{int(length)} 米" if length < 1000 else f"{length / 1000:g} 千米"
    north_x, north_y = x + w * 0.95, -y_top + h * 0.06
    return (f'<rect x="{bx:.1f}" y="{by - unit * 6:.1f}" width="{length:.1f}" height="{unit * 6:.1f}" fill="#333"/>'
            f'<text x="{bx:.1f}" y="{by - unit * 10:.1f}" font-size="{font:.1f}" fill="#333">{escape(label)}</text>'
            f'<path d="M {north_x:.1f} {north_y:.1f} l {-unit * 10:.1f} {unit * 30:.1f} l {unit * 20:.1f} 0 Z" '
            f'fill="#333"/><text x="{north_x - unit * 6:.1f}" y="{north_y + unit * 50:.1f}" '
            f'font-size="{font:.1f}" fill="#333">北</text>')


# ---------------------------------------------------------------- HTML and PDF

def _legend() -> list[tuple[str, str]]:
    catalogue = load_catalogue()
    items = [("小区范围", "#d94801"), ("维护作业标段", "#3182bd"), ("绿地", "#41ab5d"), ("整治范围", "#e6550d")]
    items += [(catalogue[n].title_zh, str(catalogue[n].style.get("color", "#555")))
              for n in inspections.facility_layers(catalogue) if catalogue[n].geometry == "Point"]
    return [*items, ("故障/维修/拆除设施", "#d62728")]


def _data_uri(svg: str) -> str:
    """The map as an image URI: WeasyPrint parses it with its SVG reader, much faster than the same
    elements inline in the HTML tree (no HTML parsing or CSS cascade per circle)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def zone_html(figures: dict[str, Any], map_svg: str, *, district_name: str) -> str:
    """The zone report as HTML (map SVG inline)."""
    catalogue = load_catalogue()
    v = figures["verdict"]
    return _env().get_template("zone.html").render(
        z=figures, css=_css(), map_uri=_data_uri(map_svg), district_name=district_name,
        report_date=_today_text(), verdict_class={"pass": "pass", "redo": "redo"}.get(v or "", "none"),
        kinds=KINDS, phases={k: n for k, (n, _) in remediation.PHASES.items()}, items=remediation.ITEMS,
        states=remediation.STATES, conditions=list(inspections.CONDITIONS.items()),
        facility_titles=[(n, catalogue[n].title_zh) for n in inspections.facility_layers(catalogue)],
        legend=_legend(), pct=_pct)


def summary_html(rows: list[dict[str, Any]], *, district_name: str, rules: AcceptanceSettings) -> str:
    """The district summary as HTML."""
    counts = {"pass": sum(r["verdict"] == "pass" for r in rows), "redo": sum(r["verdict"] == "redo" for r in rows),
              "none": sum(r["verdict"] is None for r in rows)}
    return _env().get_template("summary.html").render(rows=rows, css=_css(), district_name=district_name,
                                                      report_date=_today_text(), rules=rules, counts=counts, pct=_pct)


def _today_text() -> str:
    today = datetime.now(calendar().zone).date()
    return f"{today.year}年{today.month}月{today.day}日"


_KEPT = threading.local()  # one font configuration per thread (API worker threads, render processes)


def render_pdf(html: str, *, fresh: bool = False) -> bytes:
    """HTML → PDF bytes. The font configuration is kept per thread unless ``fresh``."""
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    if fresh:
        return bytes(HTML(string=html).write_pdf(font_config=FontConfiguration()))
    fonts = getattr(_KEPT, "fonts", None)
    if fonts is None:
        fonts = _KEPT.fonts = FontConfiguration()
    return bytes(HTML(string=html).write_pdf(font_config=fonts))


def zone_pdf(conn: psycopg.Connection, zone_code: str, *, district_code: str, district_name: str,
             rules: AcceptanceSettings, fresh: bool = False) -> bytes:
    """One zone's acceptance report: its own query set, then one render."""
    figures = acceptance.zone_acceptance(conn, zone_code, district_code=district_code, rules=rules)
    svg = map_svgs(conn, [zone_code]).get(zone_code, "")
    return render_pdf(zone_html(figures, svg, district_name=district_name), fresh=fresh)


def summary_xlsx(rows: list[dict[str, Any]]) -> bytes:
    """The district summary as an Excel workbook (rates as exact fractions, displays rounded down)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "考核验收汇总"
    sheet.append(["街道", "小区编码", "小区", "户数", "调查轮次", "答卷", "满意", "满意度", "满意度(显示)",
                  "Wilson 下限", "Wilson 上限", "入户覆盖率", "整治任务", "已验收", "事件", "超期未结",
                  "超过宽限期", "结论", "未达标条件", "提示 warning"])
    for z in rows:
        s, wil = z["survey"], z["survey"]["wilson_95"] or [None, None]
        sheet.append([z["zone"]["subdistrict"], z["zone"]["code"], z["zone"]["name"], z["zone"]["households"],
                      s["round"], s["answers"], s["satisfied"], s["rate"], s["rate_display"], wil[0], wil[1],
                      s["reached"], z["remediation"]["tasks"], z["remediation"]["verified"], z["cases"]["cases"],
                      z["cases"]["overdue"], z["cases"]["overdue_beyond_grace"], z["verdict_zh"],
                      "；".join(c["title_zh"] for c in z["criteria"] if not c["met"]),
                      "；".join(f"{w['zh']} ({w['en']})" for w in s["warnings"]) or None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _render_job(job: tuple[str, str]) -> tuple[str, bytes]:
    name, html = job
    return name, render_pdf(html)


def write_all(conn: psycopg.Connection, out_dir: Path, *, district_code: str, district_name: str,
              rules: AcceptanceSettings, zone_codes: Sequence[str] | None = None,
              workers: int | None = None) -> list[Path]:
    """Every zone's PDF plus the summary PDF and XLSX into ``out_dir``: one query set for the
    district, then the renders in ``workers`` processes (default: the CPU count)."""
    rows = acceptance.district_figures(conn, district_code=district_code, rules=rules)
    if zone_codes is not None:
        rows = [r for r in rows if r["zone"]["code"] in set(zone_codes)]
    svgs = map_svgs(conn, [r["zone"]["code"] for r in rows])
    jobs = [(f"{r['zone']['code']}.pdf", zone_html(r, svgs.get(r["zone"]["code"], ""), district_name=district_name))
            for r in rows]
    if zone_codes is None:
        jobs.append(("summary.pdf", summary_html(rows, district_name=district_name, rules=rules)))
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        results = [_render_job(j) for j in jobs]
    else:
        # fork: the children need nothing but the HTML strings; the parent's connection is not used there
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_render_job, sorted(jobs, key=lambda j: -len(j[1]))))
    written = []
    for name, pdf in results:
        (out_dir / name).write_bytes(pdf)
        written.append(out_dir / name)
    if zone_codes is None:
        (out_dir / "summary.xlsx").write_bytes(summary_xlsx(rows))
        written.append(out_dir / "summary.xlsx")
    return written
