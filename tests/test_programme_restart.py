"""The programme's routes (phase table, publicity, units, fees) with the database stopped and started under a
running ``wuye serve``: while it is down each answers 503 with Retry-After and the one error body, a
write writes nothing; after the start they serve again."""

from __future__ import annotations

import time

import httpx
import psycopg

from geo.store import embedded
from tests.conftest import auth_headers
from tests.live import serving
from tests.test_db_restart import Target, own_home, target  # noqa: F401  the fixtures of the pattern

READS = [
    "/phases",
    "/zones/jinling/phases",
    "/publicity",
    "/zones/jinling/publicity",
    "/units",
    "/fee-standards",
    "/fees/collection?start=2023-01&end=2023-12",
    "/fees/arrears",
    "/fees/income?start=2023-01&end=2023-12",
    "/acceptance/points?year=2023",
]


def _records(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM publicity_records").fetchone()
    assert row is not None
    return int(row[0])


def test_programme_routes_answer_503_while_the_database_is_down_and_serve_after(target: Target):  # noqa: F811
    url = target.url()
    admin = auth_headers(url, "admin")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones "
                           "WHERE code = 'jinling') q").fetchone()  # fmt: skip
    assert row is not None
    record = {
        "kind": "notice",
        "held_on": "2023-03-03",
        "place": {"type": "Point", "coordinates": [row[0], row[1]]},
        "unit_code": "office-guanshaling",
    }
    env = {**target.env, "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}
    with serving(env) as base, httpx.Client(base_url=base, headers=admin, timeout=180) as http:
        before = {p: http.get(p) for p in READS}
        assert {p: r.status_code for p, r in before.items()} == dict.fromkeys(READS, 200)
        count = _records(url)

        embedded.stop(target.cluster)
        try:
            for path in READS:
                r = http.get(path)
                assert r.status_code == 503, (path, r.status_code, r.text[:200])
                assert int(r.headers["Retry-After"]) > 0 and r.json()["status"] == 503 and r.json()["reason_zh"]
            down = http.post("/zones/jinling/publicity", json=record)
            assert down.status_code == 503 and down.headers["Retry-After"]
            deadline = http.put("/zones/jinling/phases/survey", json={"due_on": "2030-01-01", "reason": "停库"})
            assert deadline.status_code == 503
            bills = http.post("/bills/generate", json={"period": "2023-08"})
            assert bills.status_code == 503 and bills.headers["Retry-After"]
        finally:
            target.start()

        limit = time.monotonic() + 60
        pending = list(READS)
        while pending:
            pending = [p for p in pending if http.get(p).status_code != 200]
            assert time.monotonic() < limit, f"not serving again after the start: {pending}"
            if pending:
                time.sleep(0.5)
        assert http.get("/phases").json() == before["/phases"].json()
        assert _records(url) == count  # the write refused while down left nothing
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM zone_phase_deadlines").fetchone() == (0,)
        assert http.post("/zones/jinling/publicity", json=record).status_code == 201
        assert _records(url) == count + 1
