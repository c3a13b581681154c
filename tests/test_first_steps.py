"""First steps (issue 20 point 2): `wuye serve` on a database without an administrator says how to
make the first one; `wuye demo --users` makes one demo account per role (passwords shown once,
marked demo), refused — and their sign-in refused — when WUYE_DEMO_USERS=false."""

from __future__ import annotations

import os
import re
import subprocess
import time

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import FIRST_ADMIN, main
from geo.access import users
from geo.access.scope import ROLES
from tests.conftest import DISTRICT, settings_for
from tests.live import ROOT, WUYE, free_port

SIGNING_ROLES = [r for r in ROLES if r != "anonymous"]


def _serve_output(db_url: str) -> str:
    """What `wuye serve` prints until it serves (then it is stopped)."""
    env = {**os.environ, "WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}
    cmd = [*WUYE, "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving on" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return "".join(lines)


def test_serve_says_how_to_make_the_first_administrator_until_there_is_one(db_url):
    first = _serve_output(db_url)
    assert FIRST_ADMIN in first and "--role admin" in first
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.create_user(
            conn, username="first-admin", password="first-pass", role="admin", district_code=DISTRICT, actor="tests"
        )
    assert "尚无管理员" not in _serve_output(db_url)


def test_demo_users_one_per_role_passwords_once_and_each_signs_in(db_url, capsys):
    settings = settings_for(db_url)
    assert main(["demo", "--users"], settings=settings) == 0
    out = capsys.readouterr().out
    shown = dict(re.findall(r"^\s+(demo-[a-z-]+)\s+\S+\s+\S+\s+(\S+)$", out, re.M))
    assert set(shown) == {"demo-" + r.replace("_", "-") for r in SIGNING_ROLES}, out
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT username, role, demo FROM users WHERE username LIKE 'demo-%'").fetchall()
    assert {(r[1], r[2]) for r in rows} == {(r, True) for r in SIGNING_ROLES}
    with TestClient(create_app(settings)) as client:
        for username, password in shown.items():
            r = client.post("/auth/token", data={"username": username, "password": password})
            assert r.status_code == 200, (username, r.text)
            me = client.get("/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
            assert me["username"] == username
    # again: nothing new, no password shown a second time
    assert main(["demo", "--users"], settings=settings) == 0
    again = capsys.readouterr().out
    assert not any(p in again for p in shown.values()) and "已存在" in again


def test_demo_users_refused_when_switched_off_and_so_is_their_sign_in(db_url, capsys):
    settings = settings_for(db_url)
    assert main(["demo", "--users"], settings=settings) == 0
    out = capsys.readouterr().out
    password = re.search(r"^\s+demo-admin\s+\S+\s+\S+\s+(\S+)$", out, re.M)
    assert password is not None
    settings.auth.demo_users = False
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE username = 'demo-planner'")
    assert main(["demo", "--users"], settings=settings) == 2
    assert "WUYE_DEMO_USERS=false" in capsys.readouterr().out
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE username = 'demo-planner'").fetchone() == (0,)
    with TestClient(create_app(settings)) as client:
        api = client.post("/auth/token", data={"username": "demo-admin", "password": password.group(1)})
        assert api.status_code == 401 and api.json()["reason_zh"] == "演示账号已停用"
        page = client.post(
            "/login", data={"username": "demo-admin", "password": password.group(1)}, follow_redirects=False
        )
        assert page.status_code == 401 and "演示账号已停用" in page.text
        assert "wuye_session" not in page.cookies
