"""The last administrator stays (issue 13 point 6): an admin cannot disable or demote themselves,
and nobody can disable or demote the district's last active admin (409, Chinese first); API and CLI."""

from __future__ import annotations

import re

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from geo.access import users
from tests.conftest import DISTRICT, settings_for

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _admin(db_url: str, client: TestClient, username: str) -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(
            conn, username=username, password="secret-pass", role="admin", district_code=DISTRICT, actor="tests"
        )
    token = client.post("/auth/token", data={"username": username, "password": "secret-pass"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _only_admins(db_url: str, *keep: str) -> None:
    """Disable every other administrator the database holds (demo or earlier tests)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE users SET disabled_at = now() WHERE role = 'admin' AND NOT (username = ANY(%s))", [list(keep)]
        )


def _active_admins(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT username FROM users WHERE role = 'admin' AND disabled_at IS NULL").fetchall()
    return sorted(r[0] for r in rows)


def _conflict(response, words: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["field"] == "username" and words in body["reason"], body
    assert HAN.match(body["reason_zh"]), body  # Chinese first


def test_an_admin_cannot_disable_or_demote_themselves(client, db_url):
    wang = _admin(db_url, client, "wang.admin")
    _admin(db_url, client, "li.admin")
    _conflict(client.patch("/admin/users/wang.admin", json={"disabled": True}, headers=wang), "themselves")
    _conflict(client.patch("/admin/users/wang.admin", json={"role": "planner"}, headers=wang), "themselves")
    assert client.patch("/admin/users/wang.admin", json={"zone_codes": []}, headers=wang).status_code == 200
    assert "wang.admin" in _active_admins(db_url)


def test_the_last_active_admin_cannot_be_disabled_or_demoted(client, db_url):
    wang = _admin(db_url, client, "wang.admin")
    _admin(db_url, client, "li.admin")
    _only_admins(db_url, "wang.admin", "li.admin")
    assert client.patch("/admin/users/li.admin", json={"disabled": True}, headers=wang).status_code == 200
    assert _active_admins(db_url) == ["wang.admin"]
    # the CLI acts as nobody in particular, so only the last-admin rule can stop it
    settings = settings_for(db_url)
    assert main(["user", "disable", "wang.admin"], settings=settings) == 1
    assert main(["user", "set-role", "wang.admin", "--role", "planner"], settings=settings) == 1
    assert _active_admins(db_url) == ["wang.admin"]
    # re-enabling another admin makes room again
    assert main(["user", "enable", "li.admin"], settings=settings) == 0
    assert main(["user", "set-role", "wang.admin", "--role", "planner"], settings=settings) == 0
    assert _active_admins(db_url) == ["li.admin"]


def test_the_cli_says_why_in_chinese_first(db_url, capsys):
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(
            conn, username="zhao.admin", password="secret-pass", role="admin", district_code=DISTRICT, actor="tests"
        )
    _only_admins(db_url, "zhao.admin")
    assert main(["user", "disable", "zhao.admin"], settings=settings_for(db_url)) == 1
    err = capsys.readouterr().err
    assert "最后一位启用的管理员" in err, err


def test_nobody_resets_their_own_password_by_the_administrators_reset(client, db_url):
    """The reset needs no old password: on one's own account it would let a stolen session take the
    account over (and it ended the caller's own sessions). One's own password is changed with the
    old one at /auth/password."""
    wang = _admin(db_url, client, "wang.admin")
    _admin(db_url, client, "li.admin")
    refused = client.post("/admin/users/wang.admin/password", json={"new_password": "Another-pass-2026"}, headers=wang)
    _conflict(refused, "/auth/password")
    assert client.get("/auth/me", headers=wang).status_code == 200  # the session goes on
    assert client.post("/auth/token", data={"username": "wang.admin", "password": "secret-pass"}).status_code == 200
    # another administrator's reset still works
    done = client.post("/admin/users/li.admin/password", json={"new_password": "Another-pass-2026"}, headers=wang)
    assert done.status_code == 200, done.text
