"""Verdicts issued (签发) and frozen (issue 15): an administrator issues a zone's verdict for a round as a
numbered document (pattern a setting) with its SHA-256; it is served byte for byte as issued, whatever
happens to the answers afterwards; a corrected one is a new version naming the one it replaces;
unissued figures say 「未签发」; bad input names the field and writes nothing."""

from __future__ import annotations

import hashlib

import httpx
import psycopg

from api.app import create_app
from api.maps import local_server
from geo.settings import AcceptanceSettings
from tests.conftest import auth_headers, settings_for
from tests.test_acceptance import all_verified, answers
from tests.test_rounds import _pdf_text


def _documents(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM acceptance_documents").fetchone()
    assert row is not None
    return int(row[0])


def test_issue_freeze_serve_and_reissue_a_zone_verdict(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        all_verified(conn, "lichen")
        answers(conn, "lichen", 80, 100)  # 首次验收: 80%, 补课
        conn.commit()
    settings = settings_for(db_url)
    settings.acceptance = AcceptanceSettings(document_number_pattern="岳麓城管验〔{year}〕{seq}号")
    admin = auth_headers(db_url, "admin")
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="guanshaling")
    with local_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=180) as http:
        draft = http.get("/zones/lichen/acceptance", headers=admin).json()
        assert draft["issue"] == {"state": "unissued", "state_zh": "未签发"}
        assert "未签发" in _pdf_text(http.get("/zones/lichen/acceptance.pdf", headers=admin).content, tmp_path, "d.pdf")

        # refused, nothing written: not an admin; a round without answers for the zone; new_version of nothing
        assert http.post("/zones/lichen/verdicts", json={}, headers=staff).status_code == 403
        empty = http.post("/zones/jinling/verdicts", json={}, headers=admin)
        assert empty.status_code == 400 and empty.json()["field"] == "round" and empty.json()["reason_zh"]
        nothing = http.post("/zones/lichen/verdicts", json={"new_version": True, "reason": "x"}, headers=admin)
        assert nothing.status_code == 400 and nothing.json()["field"] == "new_version"
        assert _documents(db_url) == 0

        issued = http.post("/zones/lichen/verdicts", json={}, headers=admin)
        assert issued.status_code == 201, issued.text
        doc = issued.json()
        assert doc["number"].startswith("岳麓城管验〔") and doc["number"].endswith("〕1号")
        assert (doc["version"], doc["replaces"], doc["verdict"], doc["round"]) == (1, None, "redo", "2023")
        first_pdf = http.get(f"/verdicts/{doc['id']}.pdf", headers=staff)
        assert first_pdf.status_code == 200 and first_pdf.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(first_pdf.content).hexdigest() == doc["sha256"] == first_pdf.headers["x-content-sha256"]
        text = _pdf_text(first_pdf.content, tmp_path, "i.pdf")
        assert doc["number"] in text and "80.0%" in text and "补课" in text and "未签发" not in text
        assert "验收经过" in text and "首次验收" in text  # its own line of the verdict history
        live = http.get("/zones/lichen/acceptance", headers=admin).json()
        assert live["issue"]["number"] == doc["number"] and live["issue"]["state_zh"] == "已签发"

        again = http.post("/zones/lichen/verdicts", json={}, headers=admin)
        assert again.status_code == 409 and again.json()["field"] == "new_version"
        no_reason = http.post("/zones/lichen/verdicts", json={"new_version": True}, headers=admin)
        assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
        assert _documents(db_url) == 1

        # a correction of the answers changes the live figures, never the issued document
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE survey_answers SET satisfied = true WHERE zone_code = 'lichen' AND household < 'h3'")
        assert http.get(f"/verdicts/{doc['id']}.pdf", headers=staff).content == first_pdf.content
        frozen = http.get(f"/verdicts/{doc['id']}", headers=staff).json()
        assert frozen["figures"]["survey"]["satisfied"] == 80 and frozen["sha256"] == doc["sha256"]

        reissued = http.post(
            "/zones/lichen/verdicts", json={"new_version": True, "reason": "答卷更正后重新签发"}, headers=admin
        )
        assert reissued.status_code == 201, reissued.text
        second = reissued.json()
        assert (second["version"], second["replaces"]) == (2, doc["number"])
        assert second["number"].endswith("〕2号") and second["sha256"] != doc["sha256"]
        text2 = _pdf_text(http.get(f"/verdicts/{second['id']}.pdf", headers=staff).content, tmp_path, "r.pdf")
        assert second["number"] in text2 and f"替代 {doc['number']}" in text2 and "答卷更正后重新签发" in text2
        assert text2.count("首次验收") >= 2  # both versions in the history
        assert http.get(f"/verdicts/{doc['id']}.pdf", headers=staff).content == first_pdf.content
        history = http.get("/zones/lichen/verdicts", headers=staff).json()
        assert [(h["number"], h["version"]) for h in history["items"]] == [(doc["number"], 1), (second["number"], 2)]
        assert history["issue"]["number"] == second["number"]
        assert http.get("/verdicts/999999.pdf", headers=staff).status_code == 404
