"""Acceptance reports: one PDF per zone, and the district summary as PDF and XLSX.

HTML from Jinja templates (``maps/templates``), PDF by WeasyPrint with the
Noto CJK font embedded (``<html lang="zh-CN">`` so Han text takes the
Simplified Chinese glyphs). Chromium's own ``page.pdf()`` would be no faster
here and draws the CJK text as Type 3 glyphs, without the font.

The map is the zone's map page of the maps issue (``/maps/zones/{code}``:
outline, sections, facilities by condition, open cases, with its legend,
scale bar, north arrow and date) as served by our app at ``base_url`` and
captured in headless Chromium (:mod:`maps.snapshot`). There is no fallback
map: without Chromium the report fails and says so.

Two paths: :func:`zone_pdf` (one zone: its own query set, one snapshot, one
render; the API) and :func:`write_all` (every zone: one query set for the
district, one browser page going from zone to zone in place, each map handed
to the renderer as soon as it is drawn).
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import psycopg
from markupsafe import Markup

from geo.programme import acceptance, inspections, rewards
from geo.programme.standards import STANDARDS, failing
from geo.settings import AcceptanceSettings
from geo.workcal import calendar
from layers.catalogue import load_catalogue, vocabulary

# The snapshot's size in CSS pixels: the aspect of the report's map box (180 × 105 mm, report.css),
# about 140 dpi on paper. JPEG, because WeasyPrint embeds JPEG bytes as they are (a PNG is decoded
# and compressed again: slower, and a larger file).
MAP_SIZE = (1000, 583)
MAP_QUALITY = 90
# Browser pages drawing zones at once in write_all. One: with each page moving to its next zone in place,
# two pages were no faster on two shared cores (18.1 vs 16.9 s, bench/report.py) and cost ~120 MiB more.
MAP_PAGES = 1
RENDER_WORKERS = 0  # write_all's PDF renders: 0 = one thread of this process, N = N forked processes


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("maps", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["failing"] = failing  # a criterion the verdict fails on (met = false and switched on)
    return env


@cache
def _css() -> Markup:
    source = _env().loader
    assert source is not None
    return Markup(source.get_source(_env(), "report.css")[0])  # our own file: not to be escaped


def _pct(value: float) -> str:
    permille = int(value * 1000)  # truncation: displays round down
    return f"{permille // 10}.{permille % 10}%"


# ---------------------------------------------------------------- HTML and PDF


def map_images(
    base_url: str,
    zone_codes: Sequence[str],
    on_image: Callable[[str, bytes], None],
    *,
    pages: int = MAP_PAGES,
    switch: bool = True,
    collect: bool = True,
) -> None:
    """Each zone's map page captured as JPEG (``on_image(code, jpeg)`` as each is drawn); with ``switch``
    a page moves on to its next zone in place instead of navigating (the same map, see
    :func:`maps.snapshot.render_zone_images`)."""
    from maps import snapshot

    snapshot.render_zone_images(
        base_url,
        zone_codes,
        on_image,
        width=MAP_SIZE[0],
        height=MAP_SIZE[1],
        image_type="jpeg",
        quality=MAP_QUALITY,
        pages=pages,
        switch=switch,
        collect=collect,
    )


def _image_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def zone_html(figures: dict[str, Any], map_jpeg: bytes, *, district_name: str) -> str:
    """The zone report as HTML, its map snapshot inline."""
    catalogue = load_catalogue()
    v = figures["verdict"]
    return (
        _env()
        .get_template("zone.html")
        .render(
            z=figures,
            css=_css(),
            map_uri=_image_uri(map_jpeg),
            district_name=district_name,
            report_date=_today_text(),
            verdict_class={"pass": "pass", "redo": "redo"}.get(v or "", "none"),
            # Labels of coded values, by key, from layers/vocabulary.toml.
            kinds=vocabulary("zone_kinds").zh,
            phases=vocabulary("phases").zh,
            items=vocabulary("remediation_items").zh,
            states=vocabulary("remediation_states").zh,
            conditions=list(vocabulary("conditions").zh.items()),
            case_states=vocabulary("case_states").zh,
            unit_kinds=vocabulary("unit_kinds").zh,
            facility_titles=[(n, catalogue[n].title_zh) for n in inspections.facility_layers(catalogue)],
            standard_titles={k: title for k, (title, _) in STANDARDS.items()},
            service_kinds=list(vocabulary("service_kinds").zh.items()),
            phase_statuses=vocabulary("phase_statuses").zh,
            publicity_kinds=list(vocabulary("publicity_kinds").zh.items()),
            pct=_pct,
        )
    )


def summary_html(
    rows: list[dict[str, Any]],
    *,
    district_name: str,
    rules: AcceptanceSettings,
    points: list[dict[str, Any]] | None = None,
) -> str:
    """The district summary as HTML."""
    counts = {
        "pass": sum(r["verdict"] == "pass" for r in rows),
        "redo": sum(r["verdict"] == "redo" for r in rows),
        "none": sum(r["verdict"] is None for r in rows),
    }
    return (
        _env()
        .get_template("summary.html")
        .render(
            rows=rows,
            css=_css(),
            district_name=district_name,
            report_date=_today_text(),
            rules=rules,
            counts=counts,
            pct=_pct,
            points=points or [],
            parts=list(rewards.PARTS.items()),
            reward_states=rewards.STATES,
        )
    )


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


def zone_pdf(
    conn: psycopg.Connection,
    zone_code: str,
    *,
    base_url: str,
    district_code: str,
    district_name: str,
    rules: AcceptanceSettings,
    fee_grace_months: int | None = None,
) -> bytes:
    """One zone's acceptance report: its own query set (an unknown zone fails here, before any browser
    work), its map page captured from ``base_url``, then one render."""
    figures = acceptance.zone_acceptance(
        conn, zone_code, district_code=district_code, rules=rules, fee_grace_months=fee_grace_months
    )
    return render_zone_pdf(figures, base_url=base_url, district_name=district_name)


def render_zone_pdf(figures: dict[str, Any], *, base_url: str, district_name: str) -> bytes:
    """A zone's report from figures already computed (an issued verdict's, say): its map page captured
    from ``base_url``, then one render."""
    code = figures["zone"]["code"]
    images: dict[str, bytes] = {}
    map_images(base_url, [code], images.__setitem__, pages=1)
    return render_pdf(zone_html(figures, images[code], district_name=district_name))


def _redo_text(plan: dict[str, Any] | None) -> str | None:
    """A zone's redo plan in one cell: done of total, overdue."""
    if not plan or not plan["total"]:
        return None
    return f"完成 {plan['done']}/{plan['total']}" + (f"，逾期 {plan['overdue']}" if plan["overdue"] else "")


def summary_xlsx(rows: list[dict[str, Any]], points: list[dict[str, Any]] | None = None) -> bytes:
    """The district summary as an Excel workbook (rates as exact fractions, displays rounded down)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "考核验收汇总"
    sheet.append(
        [
            "街道",
            "小区编码",
            "小区",
            "户数",
            "调查轮次",
            "答卷",
            "满意",
            "满意度",
            "满意度(显示)",
            "Wilson 下限",
            "Wilson 上限",
            "入户覆盖率",
            "整治任务",
            vocabulary("remediation_states")["verified"].zh,
            "事件",
            "超期未结",
            "超过宽限期",
            "结论",
            "未达标条件",
            "提示 warning",
            "轮次类型",  # new columns go last: readers of the sheet find the old ones where they were
            "签发",
            "验收经过",
            "补课整改",
            *(f"{title}" for title, _ in STANDARDS.values()),  # the plan's four standards: 符合 / 不符合 / 不考核
            "以奖代补(元)",
            "奖励状态",
        ]
    )
    for z in rows:
        s, wil = z["survey"], z["survey"]["wilson_95"] or [None, None]
        sheet.append(
            [
                z["zone"]["subdistrict"],
                z["zone"]["code"],
                z["zone"]["name"],
                z["zone"]["households"],
                s["round"],
                s["answers"],
                s["satisfied"],
                s["rate"],
                s["rate_display"],
                wil[0],
                wil[1],
                s["reached"],
                z["remediation"]["tasks"],
                z["remediation"]["verified"],
                z["cases"]["cases"],
                z["cases"]["overdue"],
                z["cases"]["overdue_beyond_grace"],
                z["verdict_zh"],
                "；".join(c["title_zh"] for c in z["criteria"] if failing(c)),
                "；".join(f"{w['zh']} ({w['en']})" for w in s["warnings"]) or None,
                s["round_kind_zh"],
                z["issue"].get("number") or z["issue"]["state_zh"],
                "；".join(
                    f"{h['issued_on']} {h.get('round_kind_zh') or ''} {h.get('verdict_zh') or ''}（{h['number']}）"
                    for h in z["verdict_history"]
                )
                or None,
                _redo_text(z.get("redo")),
                *(_standard_text(st) for st in z["standards"]),
                float(z["reward"]["amount"]),
                z["reward"]["state_zh"],
            ]
        )
    _points_sheet(book, points or [])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _points_sheet(book: Any, points: list[dict[str, Any]]) -> None:
    """A second sheet: each sub-district's performance points by year, part by part, and its rewards."""
    sheet = book.create_sheet("绩效考核")
    sheet.append(
        [
            "年度",
            "街道编码",
            "街道",
            *(f"{title}（分）" for title in rewards.PARTS.values()),
            "合计分值",
            *(f"奖励{label}(元)" for label in rewards.STATES.values()),
        ]
    )
    for year in points:
        for sub in year["subdistricts"]:
            by_part = {p["part"]: p["points"] for p in sub["parts"]}
            sheet.append(
                [
                    year["year"],
                    sub["subdistrict_code"],
                    sub["subdistrict"],
                    *(by_part.get(k) for k in rewards.PARTS),
                    sub["points"],
                    *(float(sub["reward"][k]) for k in rewards.STATES),
                ]
            )


def _standard_text(standard: dict[str, Any]) -> str:
    """符合 / 不符合 (naming the failed criteria) / 不考核 (switched off for the programme year)."""
    if not standard["enabled"]:
        return "不考核"
    return "符合" if standard["met"] else "不符合：" + "、".join(standard["failed"])


def _render_job(html: str) -> bytes:
    return render_pdf(html)


@contextmanager
def _renderers(workers: int) -> Iterator[Callable[[str], Future[bytes]]]:
    """``submit(html) -> Future[pdf]``: in one thread of this process (``workers`` 0) or in ``workers``
    forked processes. Either way the renders overlap the browser drawing the next maps."""
    if workers <= 0:
        with ThreadPoolExecutor(1, thread_name_prefix="wuye-pdf") as threads:
            yield lambda html: threads.submit(render_pdf, html)
        return
    # fork: the children need nothing but HTML strings; they never touch the parent's connections,
    # server or browser threads, and leave through os._exit. Python 3.11 forks every worker at the
    # first submit: made here, before write_all starts any snapshot.
    import weasyprint  # noqa: F401  imported once here, shared by the forked workers

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for _ in range(workers):
            pool.submit(_render_job, "")  # fork now, from this thread; each worker loads its fonts
        yield lambda html: pool.submit(_render_job, html)


def _render_all(
    rows: list[dict[str, Any]],
    *,
    base_url: str,
    district_name: str,
    summary: str | None,
    workers: int | None,
    pages: int,
    switch: bool,
    collect: bool,
) -> dict[str, bytes]:
    """``{code}.pdf`` of every zone of ``rows`` (and ``summary.pdf`` from its HTML): the maps drawn by one
    browser, each zone's PDF rendered as soon as its map is drawn (the summary first)."""
    by_code = {r["zone"]["code"]: r for r in rows}
    pdfs: dict[str, Future[bytes]] = {}
    jobs = len(rows) + (summary is not None)
    with _renderers(min(RENDER_WORKERS if workers is None else workers, jobs)) as submit:
        if summary is not None:
            pdfs["summary.pdf"] = submit(summary)

        def drawn(code: str, jpeg: bytes) -> None:
            pdfs[f"{code}.pdf"] = submit(zone_html(by_code[code], jpeg, district_name=district_name))

        if by_code:
            map_images(base_url, list(by_code), drawn, pages=pages, switch=switch, collect=collect)
        return {name: future.result() for name, future in pdfs.items()}


def render_zone_pdfs(
    rows: list[dict[str, Any]], *, base_url: str, district_name: str, workers: int | None = None
) -> dict[str, bytes]:
    """zone code → its report PDF, from figures already computed (the verdicts issued together): the
    one-browser path of :func:`write_all`, not a browser per zone."""
    pdfs = _render_all(
        rows,
        base_url=base_url,
        district_name=district_name,
        summary=None,
        workers=workers,
        pages=MAP_PAGES,
        switch=True,
        collect=True,
    )
    return {name.removesuffix(".pdf"): pdf for name, pdf in pdfs.items()}


def write_summary(
    rows: list[dict[str, Any]],
    out_dir: Path,
    *,
    district_name: str,
    rules: AcceptanceSettings,
    points: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """The district summary as ``summary.pdf`` and ``summary.xlsx`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf, xlsx = out_dir / "summary.pdf", out_dir / "summary.xlsx"
    pdf.write_bytes(render_pdf(summary_html(rows, district_name=district_name, rules=rules, points=points)))
    xlsx.write_bytes(summary_xlsx(rows, points))
    return [pdf, xlsx]


def write_all(
    conn: psycopg.Connection,
    out_dir: Path,
    *,
    base_url: str,
    district_code: str,
    district_name: str,
    rules: AcceptanceSettings,
    zone_codes: Sequence[str] | None = None,
    workers: int | None = None,
    pages: int = MAP_PAGES,
    switch: bool = True,
    collect: bool = True,
    fee_grace_months: int | None = None,
) -> list[Path]:
    """Every zone's PDF plus the summary PDF and XLSX into ``out_dir`` (or only ``zone_codes``' PDFs):
    one query set for the district; the maps drawn by one browser, ``pages`` at a time, from our app at
    ``base_url``; each zone's PDF rendered as soon as its map is drawn (the summary first), in a thread
    of this process or in ``workers`` forked processes.

    The default is the thread: on two cores Chromium drawing the maps keeps one core busy and the
    renders the other, so render processes were no faster and each cost ~165 MB more (bench/report.py)."""
    rows = acceptance.district_figures(
        conn, district_code=district_code, rules=rules, fee_grace_months=fee_grace_months
    )
    if zone_codes is not None:
        rows = [r for r in rows if r["zone"]["code"] in set(zone_codes)]
    summary = points = None
    if zone_codes is None:  # the district: the summary with each programme year's points
        points = rewards.points_of(conn, rows, district_code=district_code, rules=rules)
        summary = summary_html(rows, district_name=district_name, rules=rules, points=points)
    results = _render_all(
        rows,
        base_url=base_url,
        district_name=district_name,
        summary=summary,
        workers=workers,
        pages=pages,
        switch=switch,
        collect=collect,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in [f"{r['zone']['code']}.pdf" for r in rows] + (["summary.pdf"] if summary is not None else []):
        (out_dir / name).write_bytes(results[name])
        written.append(out_dir / name)
    if zone_codes is None:
        (out_dir / "summary.xlsx").write_bytes(summary_xlsx(rows, points))
        written.append(out_dir / "summary.xlsx")
    return written
