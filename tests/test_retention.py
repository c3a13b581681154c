"""The basics of 等保 2.0 (issue 13 point 9): idle sessions end, the audit trail is append-only and kept
at least its retention period, and reporters' names and phones are erased after a case is closed, by
the background job, with an audit row."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from api.app import create_app
from geo.access import users
from geo.cases.jobs import Escalator
from geo.cases.retention import purge_audit
from tests.conftest import DISTRICT, settings_for


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _token(db_url: str, username: str, role: str = "planner") -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        user = users.create_user(
            conn, username=username, password="secret-pass", role=role, district_code=DISTRICT, actor="t"
        )
        token, _ = users.issue_token(conn, user, ttl=timedelta(hours=8))
    return token


def test_a_session_ends_after_the_idle_minutes_but_not_while_in_use(client, db_url):
    idle, busy = _token(db_url, "idle-one"), _token(db_url, "busy-one")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE auth_tokens SET last_used_at = now() - interval '31 minutes'")
        conn.execute(
            "UPDATE auth_tokens SET last_used_at = now() - interval '29 minutes' WHERE user_id = "
            "(SELECT id FROM users WHERE username = 'busy-one')"
        )
    gone = client.get("/auth/me", headers={"Authorization": f"Bearer {idle}"})
    assert gone.status_code == 401 and "30 minutes without use" in gone.json()["reason"]
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {busy}"}).status_code == 200
    with psycopg.connect(db_url) as conn:  # the use was recorded: the busy session starts its 30 minutes again
        fresh = conn.execute(
            "SELECT t.last_used_at > now() - interval '1 minute' FROM auth_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE u.username = 'busy-one'"
        ).fetchone()
    assert fresh == (True,)


def test_idle_minutes_come_from_the_settings(db_url):
    settings = settings_for(db_url)
    settings.auth.idle_minutes = 5
    token = _token(db_url, "short-idle")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE auth_tokens SET last_used_at = now() - interval '6 minutes'")
    with TestClient(create_app(settings)) as client:
        response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "5 minutes" in response.json()["reason"]


def test_the_audit_log_is_append_only_even_for_the_superuser(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (district_code, actor, action, table_name) VALUES (%s, 'x', 'test', 'users')",
            [DISTRICT],
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'someone-else'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="at least 180 days"):
            conn.execute("DELETE FROM audit_log")
        assert conn.execute("SELECT count(*) FROM audit_log WHERE actor = 'x'").fetchone() == (1,)


def test_the_audit_trail_is_purged_only_past_its_retention(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        for age in (10, 200, 400):
            conn.execute(
                "INSERT INTO audit_log (district_code, at, actor, action, table_name) "
                "VALUES (%s, now() - make_interval(days => %s), 'aged', 'test', 'users')",
                [DISTRICT, age],
            )
        assert purge_audit(conn, district_code=DISTRICT, days=30) == 2  # the floor is 180 days, not 30
        assert purge_audit(conn, district_code=DISTRICT, days=365) == 0
        kept = conn.execute("SELECT count(*) FROM audit_log WHERE actor = 'aged'").fetchone()
        purged = conn.execute("SELECT details->>'deleted' FROM audit_log WHERE action = 'audit.purge'").fetchall()
    assert kept == (1,) and purged == [("2",)]


def test_the_background_job_erases_reporters_after_the_retention_with_an_audit_row(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = 'lichen') q"
        ).fetchone()
    body = {
        "category": "garbage_pile",
        "lon": lon,
        "lat": lat,
        "reporter_name": "赵六",
        "reporter_phone": "13700001234",
    }
    old, recent, still_open = (client.post("/cases", json=body).json()["id"] for _ in range(3))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE cases SET state = 'closed', closed_at = now() - make_interval(days => d.n) "
            "FROM (VALUES (%s, 400), (%s, 30)) AS d(code, n) WHERE cases.code = d.code",
            [old, recent],
        )
    with ConnectionPool(db_url, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        job = Escalator(pool, district_code=DISTRICT, grace=timedelta(hours=24), interval=0, pii_days=365)
        assert job.retain() == (1, 0)
        assert job.retain() == (0, 0)  # once
    with psycopg.connect(db_url) as conn:
        rows = dict(
            (r[0], r[1:])
            for r in conn.execute(
                "SELECT code, reporter_name, reporter_phone, pii_erased_at IS NOT NULL FROM cases WHERE code = ANY(%s)",
                [[old, recent, still_open]],
            )
        )
        audit = conn.execute(
            "SELECT actor, details->'cases' FROM audit_log WHERE action = 'case.erase_reporter'"
        ).fetchall()
    assert rows[old] == (None, None, True)
    assert rows[recent] == ("赵六", "13700001234", False) and rows[still_open] == ("赵六", "13700001234", False)
    assert audit == [("system", [old])]


def test_fifty_concurrent_requests_of_one_idle_aged_session_all_pass(db_url):
    """Every request of a session due for its once-a-minute touch tries it; they must not queue on the
    token's row (they would hold the pool's connections: 503)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import serving

    token = _token(db_url, "crowd-one")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE auth_tokens SET last_used_at = now() - interval '5 minutes'")
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}
    with serving(env) as url, ThreadPoolExecutor(50) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    httpx.get(f"{url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code
                ),
                range(50),
            )
        )
    assert statuses == [200] * 50
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT last_used_at > now() - interval '1 minute' FROM auth_tokens").fetchone() == (True,)
