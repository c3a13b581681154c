"""The acceptance review's routes (rounds, figures, issued verdicts and their PDFs, redo plans) with the
database stopped and started under a running ``wuye serve``: while it is down each answers 503 with
Retry-After and the one error body, a write writes nothing; after the start they serve again."""

from __future__ import annotations

import time

import httpx
import psycopg

from geo.store import embedded
from tests.conftest import auth_headers
from tests.live import serving
from tests.test_db_restart import Target, own_home, target  # noqa: F401  the fixtures of the pattern
from tests.test_redo import _lichen_fails_twice


def _reads(doc_id: int) -> list[str]:
    return [
        "/survey-rounds",
        "/acceptance",
        "/zones/lichen/acceptance",
        "/zones/lichen/survey",
        "/zones/lichen/verdicts",
        f"/verdicts/{doc_id}",
        f"/verdicts/{doc_id}.pdf",
        "/redo-items",
        "/zones/lichen/redo-plan",
    ]


def _evidence(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM redo_evidence").fetchone()
    assert row is not None
    return int(row[0])


def test_acceptance_routes_answer_503_while_the_database_is_down_and_serve_after(target: Target):  # noqa: F811
    url = target.url()
    _lichen_fails_twice(url)
    admin = auth_headers(url, "admin")
    env = {**target.env, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}
    with serving(env) as base, httpx.Client(base_url=base, headers=admin, timeout=180) as http:
        issued = http.post("/zones/lichen/verdicts", json={})
        assert issued.status_code == 201, issued.text
        doc = issued.json()
        items = http.get("/redo-items").json()["items"]
        assert len(items) == 2
        pdf = http.get(f"/verdicts/{doc['id']}.pdf").content
        for path in _reads(doc["id"]):
            assert http.get(path).status_code == 200, path
        evidence = _evidence(url)

        embedded.stop(target.cluster)
        try:
            for path in _reads(doc["id"]):
                r = http.get(path)
                assert r.status_code == 503, (path, r.status_code, r.text[:200])
                assert int(r.headers["Retry-After"]) > 0 and r.json()["status"] == 503 and r.json()["reason_zh"]
            note = http.patch(f"/redo-items/{items[0]['id']}", json={"note": "停库期间的说明"})
            assert note.status_code == 503 and note.headers["Retry-After"]
            again = http.post("/zones/lichen/verdicts", json={"new_version": True, "reason": "停库期间"})
            assert again.status_code == 503
        finally:
            target.start()

        deadline = time.monotonic() + 60
        pending = _reads(doc["id"])
        while pending:
            pending = [p for p in pending if http.get(p).status_code != 200]
            assert time.monotonic() < deadline, f"not serving again after the start: {pending}"
            if pending:
                time.sleep(0.5)
        assert http.get(f"/verdicts/{doc['id']}.pdf").content == pdf  # as issued, byte for byte
        assert _evidence(url) == evidence  # the write refused while down left nothing
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM acceptance_documents").fetchone() == (1,)
        done = http.patch(f"/redo-items/{items[0]['id']}", json={"note": "恢复后补充说明"})
        assert done.status_code == 200 and _evidence(url) == evidence + 1
