"""The case desk's counts per state are kept between views (geo/cases/counts.py) and follow every write
to ``cases``: through the API, and straight on the table from another connection (the CLI's imports, a
desktop client), by the ``case_changes`` sequence of migration 0019. Real PostGIS, real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo import kept
from geo.access import users
from tests.conftest import DISTRICT, settings_for

PASSWORD = "desk-counts-pass"


@pytest.fixture
def desk(db_url: str) -> Iterator[tuple[httpx.Client, str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(
            conn,
            username="counts-staff",
            password=PASSWORD,
            role="subdistrict_staff",
            district_code=DISTRICT,
            actor="tests",
            subdistrict_code="xihu",
        )
    kept.forget()
    with local_server(create_app(settings_for(db_url))) as base, httpx.Client(base_url=base, timeout=60) as http:
        for category in ("garbage_pile", "garbage_pile", "road_uneven"):  # three reports in 西湖
            _report(base, db_url, category)
        assert http.post("/login", data={"username": "counts-staff", "password": PASSWORD}).status_code == 303
        yield http, db_url


def _point_in_scope(url: str, subdistrict: str = "xihu") -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones "
            "WHERE subdistrict_code = %s ORDER BY code LIMIT 1) q",
            [subdistrict],
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _report(base: str, url: str, category: str, subdistrict: str = "xihu") -> None:
    lon, lat = _point_in_scope(url, subdistrict)
    r = httpx.post(f"{base}/cases", json={"category": category, "lon": lon, "lat": lat}, timeout=60)
    assert r.status_code == 201, r.text


def _shown(http: httpx.Client) -> dict[str, int]:
    """The counts per state the desk shows, and its total."""
    page = http.get("/workbench/cases")
    assert page.status_code == 200
    shown = {k: int(v) for k, v in re.findall(r'data-state="([a-z_]+)"[^>]*>[^<]*<b>(\d+)</b>', page.text)}
    shown["total"] = int(re.search(r'id="total">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    return shown


def _portal_new(http: httpx.Client) -> int:
    """The portal's count of new cases (the same counts, kept as the desk's)."""
    page = http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    return int(re.search(r'id="n-new">(\d+)<', page.text).group(1))  # type: ignore[union-attr]


def _open_case_in_scope(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT c.code FROM cases c JOIN zones z ON z.code = c.zone_code "
            "WHERE z.subdistrict_code = 'xihu' AND c.state = 'reported' ORDER BY c.id LIMIT 1"
        ).fetchone()
    assert row, "the demo has a reported case in 西湖"
    return str(row[0])


def test_a_write_straight_on_the_table_shows_on_the_next_view(desk):
    http, url = desk
    before = _shown(http)
    assert before.get("reported", 0) >= 1, before
    code = _open_case_in_scope(url)
    with psycopg.connect(url, autocommit=True) as conn:  # not through the API: as an import or QGIS would
        conn.execute("UPDATE cases SET state = 'registered' WHERE code = %s", [code])
    after = _shown(http)
    assert after.get("reported", 0) == before["reported"] - 1
    assert after.get("registered", 0) == before.get("registered", 0) + 1
    assert after["total"] == before["total"]
    # and a new report through the API
    _report(str(http.base_url).rstrip("/"), url, "garbage_pile")
    assert _shown(http)["total"] == after["total"] + 1


def test_the_counts_are_kept_between_views_and_never_older_than_their_age(desk, monkeypatch):
    http, url = desk
    before, portal_before = _shown(http), _portal_new(http)
    assert portal_before == before["reported"]
    code = _open_case_in_scope(url)
    with psycopg.connect(url, autocommit=True) as conn:
        # a write the sequence does not see (its trigger switched off): the kept counts stay as they were…
        conn.execute("ALTER TABLE cases DISABLE TRIGGER cases_changed")
        try:
            conn.execute("UPDATE cases SET state = 'registered' WHERE code = %s", [code])
        finally:
            conn.execute("ALTER TABLE cases ENABLE TRIGGER cases_changed")
    assert _shown(http) == before
    assert _portal_new(http) == portal_before
    # …until they are older than MAX_AGE_S
    monkeypatch.setattr(kept, "MAX_AGE_S", 0.0)
    after = _shown(http)
    assert _portal_new(http) == portal_before - 1
    assert after.get("reported", 0) == before["reported"] - 1
    assert after.get("registered", 0) == before.get("registered", 0) + 1


def test_each_scope_and_filter_has_its_own_counts(desk, db_url):
    http, url = desk
    whole = _shown(http)
    page = http.get("/workbench/cases", params={"category": "garbage_pile"})
    total = int(re.search(r'id="total">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    with psycopg.connect(url) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM cases c WHERE c.category = 'garbage_pile' AND (c.subdistrict_code = 'xihu' "
            "OR c.zone_code IN (SELECT code FROM zones WHERE subdistrict_code = 'xihu'))"
        ).fetchone()[0]  # type: ignore[index]
    assert total == expected and total < whole["total"]
    with psycopg.connect(url) as conn:
        elsewhere = conn.execute(
            "SELECT subdistrict_code FROM zones WHERE subdistrict_code <> 'xihu' LIMIT 1"
        ).fetchone()
    _report(str(http.base_url).rstrip("/"), url, "garbage_pile", subdistrict=elsewhere[0])  # type: ignore[index]
    assert _shown(http) == whole  # not in 西湖: the staff's counts are unchanged
    with psycopg.connect(url, autocommit=True) as conn:
        users.create_user(
            conn,
            username="counts-admin",
            password=PASSWORD,
            role="admin",
            district_code=DISTRICT,
            actor="tests",
        )
    with httpx.Client(base_url=http.base_url, timeout=60) as other:
        assert other.post("/login", data={"username": "counts-admin", "password": PASSWORD}).status_code == 303
        with psycopg.connect(url) as conn:
            everything = conn.execute("SELECT count(*) FROM cases").fetchone()[0]  # type: ignore[index]
        assert _shown(other)["total"] == everything > whole["total"]
