"""Users, tokens, api_keys, admin API, audit and hardening, through the real app and PostGIS."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from geo.access import users
from geo.errors import Unauthenticated
from tests.conftest import DEFAULT_SCOPE, DISTRICT, auth_headers, settings_for


@pytest.fixture
def client(db_url: str):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


def _login(client: TestClient, username: str, password: str):
    return client.post("/auth/token", data={"username": username, "password": password})


def _add(db_url: str, username: str, role: str = "planner", password: str = "secret-pass", **scope):
    with psycopg.connect(db_url, autocommit=True) as conn:
        return users.create_user(
            conn, username=username, password=password, role=role, district_code=DISTRICT, actor="tests", **scope
        )


def test_password_flow_gives_a_token_that_identifies_the_user(client, db_url):
    _add(db_url, "wang.planner")
    response = _login(client, "wang.planner", "secret-pass")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 480 * 60
    assert response.headers["cache-control"] == "no-store"
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "wang.planner" and me.json()["role_zh"] == "规划编辑"
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE username = 'wang.planner'").fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$")


def test_a_request_looks_its_token_up_once(client, db_url, monkeypatch):
    """The route's guard and the route's own CurrentUser share one lookup of the caller's token."""
    _add(db_url, "li.planner")
    token = _login(client, "li.planner", "secret-pass").json()["access_token"]
    lookups: list[str] = []
    original = users.principal_for_token

    def counting(token: str, **kwargs):  # type: ignore[no-untyped-def]
        lookups.append(token)
        return original(token, **kwargs)

    monkeypatch.setattr(users, "principal_for_token", counting)
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "li.planner"
    assert lookups == [token]


def test_wrong_password_and_unknown_user_answer_the_same_401(client, db_url):
    _add(db_url, "li")
    wrong, unknown = _login(client, "li", "not-it-at-all"), _login(client, "nobody", "secret-pass")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["reason"] == unknown.json()["reason"]
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_login_attempts_are_rate_limited(client, db_url):
    _add(db_url, "zhao")
    for _ in range(5):
        assert _login(client, "zhao", "bad-password").status_code == 401
    blocked = _login(client, "zhao", "secret-pass")  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in blocked.json()["reason"]


@pytest.mark.parametrize("header", ["Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", "token"])
def test_missing_scheme_or_forged_token_is_401(client, header):
    response = client.get("/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


def test_expired_token_is_401(client, db_url):
    user = _add(db_url, "qian")
    with psycopg.connect(db_url, autocommit=True) as conn:
        token, _ = users.issue_token(conn, user, ttl=timedelta(seconds=-1))
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "expired" in response.json()["reason"]


def test_logout_revokes_the_token(client, db_url):
    headers = auth_headers(db_url, "planner")
    assert client.post("/auth/logout", headers=headers).status_code == 200
    response = client.get("/auth/me", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["reason"]


def test_disabling_a_user_revokes_their_tokens_and_blocks_login(client, db_url):
    _add(db_url, "sun")
    token = _login(client, "sun", "secret-pass").json()["access_token"]
    admin = auth_headers(db_url, "admin")
    response = client.patch("/admin/users/sun", json={"disabled": True}, headers=admin)
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _login(client, "sun", "secret-pass").status_code == 401


def test_password_change_signs_out_other_sessions(client, db_url):
    _add(db_url, "zhou")
    token = _login(client, "zhou", "secret-pass").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    short = client.post(
        "/auth/password", data={"old_password": "secret-pass", "new_password": "short"}, headers=headers
    )
    assert short.status_code == 400 and short.json()["field"] == "password"
    ok = client.post(
        "/auth/password", data={"old_password": "secret-pass", "new_password": "A-longer-one"}, headers=headers
    )
    assert ok.status_code == 200
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert _login(client, "zhou", "A-longer-one").status_code == 200


def test_admin_creates_users_with_scopes_and_refuses_bad_ones(client, db_url):
    admin = auth_headers(db_url, "admin")
    created = client.post(
        "/admin/users",
        headers=admin,
        json={
            "username": "xihu.staff",
            "password": "Secret-pass1",
            "role": "subdistrict_staff",
            "subdistrict_code": "xihu",
        },
    )
    assert created.status_code == 201, created.text
    duplicate = client.post(
        "/admin/users", headers=admin, json={"username": "xihu.staff", "password": "Secret-pass1", "role": "planner"}
    )
    assert duplicate.status_code == 409
    no_scope = client.post(
        "/admin/users", headers=admin, json={"username": "team1", "password": "Secret-pass1", "role": "property_team"}
    )
    assert no_scope.status_code == 400 and no_scope.json()["field"] == "zone_codes"
    bad_zone = client.post(
        "/admin/users",
        headers=admin,
        json={"username": "team2", "password": "Secret-pass1", "role": "property_team", "zone_codes": ["atlantis"]},
    )
    assert bad_zone.status_code == 400 and "atlantis" in bad_zone.json()["reason"]
    bad_role = client.post(
        "/admin/users", headers=admin, json={"username": "x2", "password": "Secret-pass1", "role": "emperor"}
    )
    assert bad_role.status_code == 400 and bad_role.json()["field"] == "role"
    listed = {u["username"] for u in client.get("/admin/users", headers=admin).json()}
    assert "xihu.staff" in listed and "team1" not in listed


def test_privilege_escalation_is_refused(client, db_url):
    contractor = auth_headers(db_url, "contractor", **DEFAULT_SCOPE["contractor"])
    me = client.get("/auth/me", headers=contractor).json()["username"]
    escalate = client.patch(f"/admin/users/{me}", json={"role": "admin"}, headers=contractor)
    assert escalate.status_code == 403
    planner = auth_headers(db_url, "planner")
    assert (
        client.post(
            "/admin/users", headers=planner, json={"username": "mole", "password": "Secret-pass1", "role": "admin"}
        ).status_code
        == 403
    )
    assert client.get("/admin/users").status_code == 401
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT role FROM users WHERE username = %s", [me]).fetchone() == ("contractor",)


def test_api_keys_are_shown_once_and_revocable(client, db_url):
    admin = auth_headers(db_url, "admin")
    made = client.post("/admin/api-keys", json={"client_name": "微信小程序"}, headers=admin)
    assert made.status_code == 201
    key, key_id = made.json()["api_key"], made.json()["id"]
    with psycopg.connect(db_url) as conn:
        assert users.client_for_api_key(conn, key) == "微信小程序"
    listed = client.get("/admin/api-keys", headers=admin).json()
    assert listed[0]["client_name"] == "微信小程序" and "api_key" not in listed[0]
    assert client.delete(f"/admin/api-keys/{key_id}", headers=admin).status_code == 204
    assert client.delete(f"/admin/api-keys/{key_id}", headers=admin).status_code == 404
    with psycopg.connect(db_url) as conn, pytest.raises(Unauthenticated):
        users.client_for_api_key(conn, key)


def test_audit_lists_admin_actions_imports_and_filters(client, db_url):
    admin = auth_headers(db_url, "admin")
    admin_name = client.get("/auth/me", headers=admin).json()["username"]
    client.post(
        "/admin/users", headers=admin, json={"username": "audited", "password": "Secret-pass1", "role": "planner"}
    )
    entries = client.get("/audit", params={"user": admin_name}, headers=admin).json()
    assert [(e["action"], e["code"]) for e in entries] == [("user.add", "audited")]
    imports = client.get("/audit", params={"table": "street_lights"}, headers=admin).json()
    assert imports and all(e["action"] == "import.replace" and e["actor"] == "demo" for e in imports)
    assert client.get("/audit", params={"limit": 0}, headers=admin).status_code == 400


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", 10),
        ("planner", 10),
        ("subdistrict_staff", {"yumin-south", "yumin-north"}),
        ("property_team", {"yumin-south", "yumin-north"}),
        ("survey_team", {"jinling"}),
    ],
)
def test_my_area_is_the_callers_scope(client, db_url, role, expected):
    headers = auth_headers(db_url, role, **DEFAULT_SCOPE.get(role, {}))
    response = client.get("/me/area", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    codes = {f["id"] for f in response.json()["features"]}
    assert (len(codes) if isinstance(expected, int) else codes) == expected


def test_contractor_area_is_the_zones_of_its_sections(client, db_url):
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT zone_code, code FROM contract_sections WHERE contractor_unit = %s",
            [DEFAULT_SCOPE["contractor"]["unit_code"]],
        ).fetchall()
    headers = auth_headers(db_url, "contractor", **DEFAULT_SCOPE["contractor"])
    features = client.get("/me/area", headers=headers).json()["features"]
    assert {f["id"] for f in features} == {z for z, _ in rows}
    assert sorted(s for f in features for s in f["properties"]["sections"]) == sorted(c for _, c in rows)


INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE users; --", "\\\\x00", "<script>alert(1)</script>", "%' --"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_in_text_parameters_are_just_text(client, db_url, evil):
    admin = auth_headers(db_url, "admin")
    assert client.get("/audit", params={"user": evil, "table": evil}, headers=admin).json() == []
    assert client.patch(f"/admin/users/{evil}", json={"disabled": True}, headers=admin).status_code == 404
    assert _login(client, evil, evil).status_code == 401
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) > 0 FROM users").fetchone() == (True,)


def test_oversize_bodies_are_refused_with_413(db_url):
    settings = settings_for(db_url)
    settings.server.max_body_bytes = 1000
    with TestClient(create_app(settings)) as client:
        big = client.post(
            "/auth/token",
            content=b"username=" + b"a" * 5000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413 and big.json()["field"] == "body"

        def chunks():
            for _ in range(10):
                yield b"a" * 500

        streamed = client.post(
            "/auth/token", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert streamed.status_code == 413


def test_security_headers_and_no_stack_traces(client):
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    api = client.get("/auth/me")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers


def test_cors_only_for_configured_origins(db_url):
    settings = settings_for(db_url)
    settings.server.cors_origins = ["https://intranet.example"]
    with TestClient(create_app(settings)) as client:
        ok = client.get("/auth/me", headers={"Origin": "https://intranet.example"})
        other = client.get("/auth/me", headers={"Origin": "https://evil.example"})
    assert ok.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "access-control-allow-origin" not in other.headers


def test_cli_user_commands(db_url, capsys, monkeypatch):
    import io

    settings = settings_for(db_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("Cli-password1\n"))
    assert (
        main(
            ["user", "add", "cli.user", "--role", "property_team", "--zones", "jinling", "--password-stdin"],
            settings=settings,
        )
        == 0
    )
    assert main(["user", "list"], settings=settings) == 0
    assert "cli.user" in capsys.readouterr().out
    assert main(["user", "set-role", "cli.user", "--role", "planner"], settings=settings) == 0
    assert main(["user", "disable", "cli.user"], settings=settings) == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT role, disabled_at IS NOT NULL FROM users WHERE username = 'cli.user'").fetchone()
        assert row == ("planner", True)
        with pytest.raises(Unauthenticated):
            users.authenticate(conn, "cli.user", "Cli-password1")
    assert main(["user", "add", "x", "--role", "contractor", "--password-stdin"], settings=settings) == 1


def test_audit_includes_case_moves_by_their_actor(client, db_url):
    with psycopg.connect(db_url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = 'yumin-south') q"
        ).fetchone()
    code = client.post("/cases", json={"category": "garbage_pile", "lon": lon, "lat": lat}).json()["id"]
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    staff_name = client.get("/auth/me", headers=staff).json()["username"]
    assert client.post(f"/cases/{code}/actions", json={"action": "register"}, headers=staff).status_code == 200
    admin = auth_headers(db_url, "admin")
    entries = client.get("/audit", params={"user": staff_name, "table": "cases"}, headers=admin).json()
    assert [(e["action"], e["code"], e["details"]["to_state"]) for e in entries] == [
        ("case.register", code, "registered")
    ]
