"""Acceptance reports: the PDF's text (pdftotext) names the zone, the rate and the verdict; its first
page (pdftoppm) is not blank; the CJK font is embedded; the CLI writes every zone plus the summary."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image, ImageStat

from api.app import create_app
from api.cli import main
from geo import report
from tests.conftest import auth_headers, settings_for
from tests.test_acceptance import all_verified, answers

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                reason="poppler-utils (pdftotext, pdftoppm) are installed by `make`")


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout


def first_page(pdf: bytes, tmp_path: Path) -> Image.Image:
    path = tmp_path / "p.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   check=True)
    return Image.open(next(tmp_path.glob("page*.png"))).convert("L")


def fonts(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "f.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout


def test_zone_pdf_text_names_zone_rate_and_verdict_and_page_is_not_blank(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        all_verified(conn, "jinling")
        answers(conn, "jinling", 2124, 2500)
        conn.commit()
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    with TestClient(create_app(settings_for(db_url))) as client:
        response = client.get("/zones/jinling/acceptance.pdf", headers=staff)
        assert client.get("/zones/no-such/acceptance.pdf", headers=staff).status_code == 404
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    assert "金岭农民安置小区" in text
    assert "84.9%" in text and "85.0%" not in text  # rounded down
    assert "补课" in text and "满意度不低于 85%" in text
    # 2,500 answers in a zone of 1,321 households: the share is printed as it is, with the warning
    assert "189.2%" in text and "答卷户数超过登记户数" in text
    assert "签字" in text and "整治任务" in text and "设施状况" in text
    page = first_page(pdf, tmp_path)
    stats = ImageStat.Stat(page)
    assert stats.stddev[0] > 10  # ink on the page
    dark = sum(page.histogram()[:128])
    assert dark > 0.005 * page.width * page.height
    listing = fonts(pdf, tmp_path)
    assert "Noto-Sans-CJK-SC" in listing
    for line in listing.splitlines()[2:]:
        assert line.split()[-5] == "yes", line  # every font embedded


def test_zone_without_answers_says_no_verdict_in_the_pdf(conn, tmp_path):
    pdf = report.zone_pdf(conn, "lichen", district_code="430104", district_name="岳麓区",
                          rules=report.AcceptanceSettings())
    text = pdf_text(pdf, tmp_path)
    assert "丽臣小区" in text and "无调查答卷，不作结论" in text and "不作验收结论" in text


def test_map_svg_is_drawn_from_the_zone_layers(conn):
    svgs = report.map_svgs(conn, ["jinling", "lichen"])
    assert set(svgs) == {"jinling", "lichen"}
    svg = svgs["jinling"]
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('stroke-linecap="round"') >= 4 and svg.count("h0") > 100  # facilities as dots
    assert 'stroke="#d94801"' in svg  # the zone outline
    assert "米" in svg and "北" in svg  # scale bar and north arrow


def test_cli_writes_every_zone_summary_pdf_and_xlsx(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        all_verified(conn, "jinling")
        answers(conn, "jinling", 90, 100)
        conn.commit()
    out = tmp_path / "out"
    assert main(["report", "acceptance", "--all", "--out", str(out), "--workers", "2"],
                settings=settings_for(db_url)) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 12 and "summary.pdf" in names and "summary.xlsx" in names and "jinling.pdf" in names
    summary = pdf_text((out / "summary.pdf").read_bytes(), tmp_path)
    assert "金岭农民安置小区" in summary and "通过" in summary and "通过 1 个" in summary
    sheet = load_workbook(BytesIO((out / "summary.xlsx").read_bytes())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 11
    jinling = next(r for r in rows if r[1] == "jinling")
    assert jinling[5:9] == (100, 90, 0.9, "90.0%") and jinling[17] == "通过"
    one = tmp_path / "one"
    assert main(["report", "acceptance", "--zone", "lichen", "--out", str(one)], settings=settings_for(db_url)) == 0
    assert [p.name for p in one.iterdir()] == ["lichen.pdf"]
    assert main(["report", "acceptance", "--zone", "nowhere", "--out", str(one)], settings=settings_for(db_url)) == 1
