"""Sign-in limits that hold without locking the bureau out (issue 13 point 5): failures counted in the
database per username and per address, a growing delay (429 + Retry-After) during which even the right
password is refused, X-Forwarded-For only from WUYE_TRUSTED_PROXIES, and an administrator's clear."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from api.app import create_app
from api.auth import client_address
from geo.access import signin, users
from tests.conftest import DISTRICT, Server, auth_headers, settings_for
from tests.live import serving

CLIENTS = 50


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _add(db_url: str, username: str, role: str = "planner") -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(conn, username=username, password="secret-pass", role=role, district_code=DISTRICT, actor="t")


def _login(client, username: str, password: str, **headers: str):
    return client.post("/auth/token", data={"username": username, "password": password}, headers=headers)


def test_the_delay_grows_refuses_the_right_password_and_an_admin_can_clear_it(client, db_url):
    _add(db_url, "qian")
    for _ in range(5):
        assert _login(client, "qian", "wrong-one").status_code == 401
    first = _login(client, "qian", "secret-pass")
    assert first.status_code == 429 and first.json()["field"] == "username"
    first_wait = int(first.headers["retry-after"])
    assert 0 < first_wait <= 30
    with psycopg.connect(db_url, autocommit=True) as conn:  # the delay has passed (as time would have it)
        conn.execute("UPDATE login_failures SET blocked_until = now() - interval '1 second' WHERE key = 'qian'")
    assert _login(client, "qian", "wrong-again").status_code == 401  # checked again, and wrong
    second = _login(client, "qian", "secret-pass")
    assert second.status_code == 429 and int(second.headers["retry-after"]) > first_wait  # it grew
    admin = auth_headers(db_url, "admin")
    cleared = client.delete("/admin/users/qian/login-failures", headers=admin)
    assert cleared.status_code == 200 and cleared.json()["cleared"] is True
    assert _login(client, "qian", "secret-pass").status_code == 200
    with psycopg.connect(db_url) as conn:
        assert signin.failures(conn, "qian") == 0
        assert conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'user.clear_login_failures' AND record_code = 'qian'"
        ).fetchone() == (1,)
    for role in ("planner", "resident"):
        assert client.delete("/admin/users/qian/login-failures", headers=auth_headers(db_url, role)).status_code == 403


def test_one_address_guessing_many_usernames_is_delayed_too(client, db_url):
    for n in range(20):  # 20 usernames, one failure each, from one address (the test client's)
        assert _login(client, f"nobody-{n}", "guess", **{"X-Forwarded-For": f"10.0.0.{n}"}).status_code == 401
    _add(db_url, "sun")
    blocked = _login(client, "sun", "secret-pass", **{"X-Forwarded-For": "10.9.9.9"})
    assert blocked.status_code == 429  # the header changed nothing: no proxy is trusted by default


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers, "method": "POST", "path": "/"})


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ("", "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # default: nobody's header is believed
        ("10.0.0.5", "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # not from the proxy
        ("10.0.0.5", "10.0.0.5", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.0/24", "10.0.0.5", "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),  # the last untrusted hop
        ("10.0.0.5", "10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_x_forwarded_for_only_from_trusted_proxies(trusted, peer, forwarded, expected):
    assert client_address(_request(peer, forwarded), trusted) == expected


@pytest.fixture
def live(server: Server, template_db: str) -> Iterator[tuple[str, str]]:
    name = f"wuye_signin_{os.getpid()}"
    db_url = server.create(name, template=template_db)
    env = {
        "WUYE_DATABASE_URL": db_url,
        "WUYE_DISTRICT_CODE": DISTRICT,
        "WUYE_LOGIN_DELAY_SECONDS": "600",  # longer than the crowd takes, however loaded the machine
        "WUYE_POOL_TIMEOUT_S": "60",  # the crowd waits for a connection rather than getting 503
    }
    try:
        with serving(env) as url:  # wuye serve, as deployed
            yield url, db_url
    finally:
        server.drop(name)


def test_fifty_concurrent_wrong_passwords_check_no_more_than_the_limit(live):
    url, db_url = live
    _add(db_url, "zheng")

    def guess(n: int) -> int:
        headers = {"X-Forwarded-For": f"192.0.2.{n}"}  # a header changing per request changes nothing
        return httpx.post(
            f"{url}/auth/token", data={"username": "zheng", "password": f"wrong-{n}"}, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = Counter(pool.map(guess, range(CLIENTS)))
    assert statuses == Counter({401: 5, 429: CLIENTS - 5}), statuses  # 5 checks, no more
    with psycopg.connect(db_url) as conn:
        assert signin.failures(conn, "zheng") == 5
    right = httpx.post(f"{url}/auth/token", data={"username": "zheng", "password": "secret-pass"}, timeout=60)
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0


# --- point 9: the password policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("Ab1!xyz", False),  # 7 characters
        ("alllowercase1", False),  # two classes
        ("ALLUPPER-ONLY", False),  # two classes
        ("Wang.Wu-2024", False),  # contains the username (any case)
        ("Lantern-42", True),
        ("灯不亮了Ab12", True),  # Chinese characters count as "other"
    ],
)
def test_new_users_follow_the_password_policy(client, db_url, password, ok):
    admin = auth_headers(db_url, "admin")
    response = client.post(
        "/admin/users", headers=admin, json={"username": "wang.wu", "password": password, "role": "planner"}
    )
    assert response.status_code == (201 if ok else 400), response.text
    if not ok:
        assert response.json()["field"] == "password" and response.json()["reason_zh"]


def test_an_expired_password_is_changed_without_a_token_then_signs_in(db_url):
    settings = settings_for(db_url)
    settings.auth.password_max_days = 90
    _add(db_url, "old.hand")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE users SET password_changed_at = now() - interval '100 days' WHERE username = 'old.hand'")
    with TestClient(create_app(settings)) as client:
        expired = _login(client, "old.hand", "secret-pass")
        assert expired.status_code == 403 and expired.json()["field"] == "password"
        assert _login(client, "old.hand", "wrong-pass").status_code == 401  # a wrong one is still just wrong
        form = {"username": "old.hand", "old_password": "secret-pass"}
        weak = client.post("/auth/password", data={**form, "new_password": "secretpassword"})
        assert weak.status_code == 400 and weak.json()["field"] == "password"
        changed = client.post("/auth/password", data={**form, "new_password": "Secret-pass-2"})
        assert changed.status_code == 200, changed.text
        assert _login(client, "old.hand", "Secret-pass-2").status_code == 200
        assert client.post("/auth/password", data={"old_password": "x", "new_password": "y"}).status_code == 401


def test_guessing_through_the_password_change_is_limited_too(client, db_url):
    _add(db_url, "li.si")
    for n in range(5):
        form = {"username": "li.si", "old_password": f"guess-{n}", "new_password": "Lantern-42"}
        assert client.post("/auth/password", data=form).status_code == 401
    form = {"username": "li.si", "old_password": "secret-pass", "new_password": "Lantern-42"}
    assert client.post("/auth/password", data=form).status_code == 429
    assert _login(client, "li.si", "secret-pass").status_code == 429
