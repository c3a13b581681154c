"""The administration pages (issue 20 point 7) in a real Chromium against our app on a real port: an
administrator's walk with real clicks and typing (add a user, change role and scope, disable and
enable, reset the password, issue and revoke an api_key, filter the audit log), the separated duties
of security and audit administrators, bad input, 50 concurrent clients, and the database stopped and
started. The access matrix of every page is generated from the route table (test_access_matrix)."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from geo.access import users
from tests.conftest import DISTRICT
from tests.live import serving, wuye
from tests.test_db_restart import own_home, target  # noqa: F401  (a database this test may stop and start)
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person, _report, _state, base_url, bench_db, people  # noqa: F401

NEW_PASSWORD = "Adm1n-walk-pass"


@pytest.fixture(scope="module")
def officers(bench_db: str) -> dict[str, str]:  # noqa: F811
    """A security administrator and an audit administrator (the separated duties)."""
    with psycopg.connect(bench_db, autocommit=True) as conn:
        for role in ("security_admin", "audit_admin"):
            users.create_user(
                conn, username=f"wb-{role}", password=PASSWORD, role=role, district_code=DISTRICT, actor="tests"
            )
    return {"security_admin": "wb-security_admin", "audit_admin": "wb-audit_admin"}


def _signed_in(base_url: str, username: str, password: str = PASSWORD) -> httpx.Client:  # noqa: F811
    http = httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url})
    r = http.post("/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.text
    return http


def _user_row(url: str, username: str) -> tuple[str, str | None, tuple[str, ...], bool] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT role, unit_code, zone_codes, disabled_at IS NOT NULL FROM users WHERE username = %s", [username]
        ).fetchone()
    return (row[0], row[1], tuple(row[2] or ()), row[3]) if row else None


def _open311(base_url: str, key: str) -> int:  # noqa: F811
    """A client's request with ``key`` (no position): 400 when the key is good, 403 when it is not."""
    r = httpx.post(
        f"{base_url}/open311/v2/requests.json", data={"api_key": key, "service_code": "garbage_pile"}, timeout=60
    )
    return r.status_code


def test_an_administrator_manages_users_and_keys_and_reads_the_audit_log(browser, base_url, bench_db, people):  # noqa: F811
    p = Person(browser)
    try:
        page = p.page
        p.sign_in(base_url, people["admin"], "/")
        p.press(page.locator(".wuye-nav a", has_text="系统管理"))
        page.wait_for_url(f"{base_url}/workbench/admin")
        assert int(page.inner_text("#n-users b")) >= 5
        p.shot("admin-home")
        p.press(page.locator(".admin-tabs a", has_text="用户"))
        page.wait_for_url(f"{base_url}/workbench/admin/users")
        # refused: a contractor needs its unit: the reason in Chinese, what was typed kept (not the password)
        p.type_into("#add-username", "walk-worker")
        p.type_into("#add-name", "张师傅")
        p.type_into("#add-password", NEW_PASSWORD)
        page.select_option("#add-role", "contractor")
        p.press(page.locator("#do-add-user"))
        page.wait_for_selector("#msg.wuye-error")
        assert page.inner_text("#msg") == "角色“维护作业单位”须指定责任单位"
        assert page.input_value("#add-username") == "walk-worker"
        assert page.input_value("#add-name") == "张师傅"
        assert page.input_value("#add-role") == "contractor"
        assert page.input_value("#add-password") == ""
        assert _user_row(bench_db, "walk-worker") is None  # nothing half-written
        p.shot("admin-user-refused")
        assert p.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
        p.errors.clear()
        page.select_option("#add-unit", "contractor-xiangjiang")
        p.type_into("#add-password", NEW_PASSWORD)
        p.press(page.locator("#do-add-user"))
        page.wait_for_selector("#msg.ok:has-text('walk-worker')")
        assert page.locator("tr[data-user='walk-worker']").is_visible()
        assert _user_row(bench_db, "walk-worker") == ("contractor", "contractor-xiangjiang", (), False)
        p.shot("admin-users")
        # role and scope: a property team of two zones
        p.press(page.locator("tr[data-user='walk-worker'] a"))
        page.wait_for_url(re.compile(r".*/workbench/admin/users/walk-worker$"))
        page.select_option("#edit-role", "property_team")
        p.type_into("#edit-zones", "yumin-south，yumin-north")
        p.press(page.locator("#do-save"))
        page.wait_for_selector("#msg.ok")
        assert page.get_attribute("#user-role", "data-role") == "property_team"
        assert _user_row(bench_db, "walk-worker") == (
            "property_team",
            "contractor-xiangjiang",
            ("yumin-south", "yumin-north"),
            False,
        )
        # disable: signing in is refused; enable again
        p.press(page.locator("#do-toggle"))
        page.wait_for_selector("#user-state[data-disabled='true']")
        assert (
            httpx.post(
                f"{base_url}/auth/token", data={"username": "walk-worker", "password": NEW_PASSWORD}, timeout=60
            ).status_code
            == 401
        )
        p.shot("admin-user-disabled")
        p.press(page.locator("#do-toggle"))
        page.wait_for_selector("#user-state[data-disabled='false']")
        # reset the password: a random one, shown once, and it signs in
        p.press(page.locator("#do-reset"))
        page.wait_for_selector("#new-password")
        generated = page.inner_text("#new-password")
        assert len(generated) >= 12 and generated != NEW_PASSWORD
        p.shot("admin-password-reset")
        signed = httpx.post(
            f"{base_url}/auth/token", data={"username": "walk-worker", "password": generated}, timeout=60
        )
        assert signed.status_code == 200, signed.text
        page.goto(f"{base_url}/workbench/admin/users/walk-worker")
        assert not page.locator("#new-password").count()  # once
        # api_keys: issue (shown once), it works; revoke, it does not
        p.press(page.locator(".admin-tabs a", has_text="API 密钥"))
        page.wait_for_url(f"{base_url}/workbench/admin/api-keys")
        p.type_into("#key-client", "市民热线 12345")
        p.press(page.locator("#do-issue"))
        page.wait_for_selector("#new-key")
        key = page.inner_text("#new-key")
        assert key.startswith("wk_") and _open311(base_url, key) == 400
        p.shot("admin-key-issued")
        key_id = page.eval_on_selector_all("#key-list tr[data-revoked='false']", "rs => rs.map(r => r.dataset.key)")[0]
        p.press(page.locator(f"#revoke-{key_id}"))
        page.wait_for_selector(f"#key-list tr[data-key='{key_id}'][data-revoked='true']")
        assert _open311(base_url, key) == 403
        assert key not in page.content()  # never shown again
        # the audit log, filtered by who and what, then by a date range with nothing in it
        p.press(page.locator(".admin-tabs a", has_text="审计记录"))
        page.wait_for_url(f"{base_url}/workbench/admin/audit")
        p.type_into("#f-actor", people["admin"])
        p.type_into("#f-action", "user")
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(r".*actor=wb-admin.*"))
        actions = page.eval_on_selector_all("#audit-list tbody tr", "rs => rs.map(r => r.dataset.action)")
        assert actions[:4] == ["user.password_reset", "user.update", "user.update", "user.update"], actions
        assert actions[-1] == "user.add" and set(actions) == {"user.add", "user.update", "user.password_reset"}
        assert page.input_value("#f-action") == "user"
        p.shot("admin-audit")
        page.fill("#f-since", "2099-01-01")
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(r".*since=2099-01-01.*"))
        assert page.inner_text("#audit-list tbody") == "没有记录。"
        p.press(page.locator(".admin-tabs a", has_text="责任单位"))
        page.wait_for_url(f"{base_url}/workbench/admin/units")
        api_units = httpx.get(f"{base_url}/units", timeout=60).json()
        shown = page.eval_on_selector_all("#unit-list tbody tr", "rs => rs.map(r => r.dataset.unit)")
        assert shown == [u["code"] for u in api_units]
        p.press(page.locator("tr[data-unit='contractor-xiangjiang'] a"))
        page.wait_for_url(re.compile(r".*/workbench/admin/units/contractor-xiangjiang$"))
        members = page.inner_text("#unit-users")
        assert "walk-worker\t物业服务队\t启用" in members  # its unit kept (the role changed)
        assert people["contractor"] in page.inner_text("#unit-users")
        p.shot("admin-unit")
        assert p.errors == []
    finally:
        p.close()


def test_the_webhook_log_shows_each_notice_s_delivery(browser, base_url, bench_db, people):  # noqa: F811
    """A dispatch writes a notice; the service's sender logs it (no webhook configured: ``none``)."""
    code = _report(base_url, bench_db, description="推送记录")
    admin = _signed_in(base_url, people["admin"])
    for move in ({"action": "register"}, {"action": "dispatch", "unit_code": "contractor-xiangjiang"}):
        assert admin.post(f"/cases/{code}/actions", json=move).status_code == 200
    p = Person(browser, "phone")
    try:
        page = p.page
        p.sign_in(base_url, people["admin"], "/workbench/admin/webhooks")
        row = f"#delivery-list tr:has(a:text-is('{code}'))"
        deadline = time.monotonic() + 30
        while page.get_attribute(row, "data-state") != "none":  # the sender's pass runs every 5 s
            assert time.monotonic() < deadline
            page.wait_for_timeout(500)
            page.reload()
        assert "未配置" in page.inner_text(row) and "派遣" in page.inner_text(row)
        page.select_option("#f-state", "failed")
        p.press(page.locator("#f-apply"))
        page.wait_for_url(re.compile(r".*state=failed.*"))
        assert not page.locator(row).count()
        p.shot("admin-webhooks")
        assert p.errors == []
    finally:
        p.close()
    admin.close()


def test_security_and_audit_administrators_see_only_their_duties(base_url, bench_db, people, officers):  # noqa: F811
    security = _signed_in(base_url, officers["security_admin"])
    auditor = _signed_in(base_url, officers["audit_admin"])
    staff = _signed_in(base_url, people["subdistrict_staff"])
    try:
        home = security.get("/workbench/admin").text
        assert 'href="/workbench/admin/users"' in home and 'href="/workbench/admin/audit"' not in home
        denied = security.get("/workbench/admin/audit")
        assert denied.status_code == 403 and "无权进行此操作" in denied.text and "<html" in denied.text
        # a security administrator neither makes an administrator nor resets one's password
        made = security.post(
            "/workbench/admin/users",
            data={"username": "raised", "password": NEW_PASSWORD, "role": "admin", "display_name": "x"},
        )
        assert made.status_code == 403 and "只有系统管理员可以授予或修改系统管理员角色" in made.text
        assert 'value="raised"' in made.text and _user_row(bench_db, "raised") is None
        reset = security.post(f"/workbench/admin/users/{people['admin']}/password", data={"new_password": ""})
        assert reset.status_code == 403 and "只有系统管理员" in reset.text
        # the same rules through the API the pages stand on
        api_reset = security.post("/admin/users/wb-resident/password", json={})
        assert api_reset.status_code == 200 and api_reset.json()["generated"] is True
        token = httpx.post(
            f"{base_url}/auth/token",
            data={"username": "wb-resident", "password": api_reset.json()["password"]},
            timeout=60,
        )
        assert token.status_code == 200, token.text
        refused = security.post(f"/admin/users/{people['admin']}/password", json={"new_password": NEW_PASSWORD})
        assert refused.status_code == 403 and refused.json()["field"] == "role"
        audit = auditor.get("/audit", params={"action": "user", "limit": 1000}).json()
        assert audit and {a["action"].split(".")[0] for a in audit} == {"user"}
        assert "user.password_reset" in {a["action"] for a in audit}
        english = security.get("/workbench/admin/users", params={"lang": "en"})
        assert english.status_code == 200 and '<html lang="en"' in english.text and "Add a user" in english.text
        assert 'id="unit-users"' in security.get("/workbench/admin/units/contractor-xiangjiang").text
        front = auditor.get("/workbench", follow_redirects=False)  # the workbench's front: administration
        assert front.status_code == 303 and front.headers["location"] == "/workbench/admin"
        assert 'href="/workbench/admin"' in auditor.get("/", headers={"Accept": "text/html"}).text
        logs = auditor.get("/workbench/admin")
        assert 'href="/workbench/admin/audit"' in logs.text and 'href="/workbench/admin/users"' not in logs.text
        assert auditor.get("/workbench/admin/users").status_code == 403
        assert auditor.get("/workbench/admin/webhooks").status_code == 200
        assert 'id="unit-users"' not in auditor.get("/workbench/admin/units/contractor-xiangjiang").text
        # case workers get no administration link and no page
        assert "系统管理" not in staff.get("/", headers={"Accept": "text/html"}).text
        assert staff.get("/workbench/admin").status_code == 403
        anonymous = httpx.get(f"{base_url}/workbench/admin/users", timeout=60)
        assert anonymous.status_code == 401 and "请先登录" in anonymous.text
    finally:
        for c in (security, auditor, staff):
            c.close()


def test_bad_input_is_refused_with_the_field_and_the_reason_in_chinese(base_url, bench_db, people):  # noqa: F811
    admin = _signed_in(base_url, people["admin"])
    try:
        since = admin.get("/workbench/admin/audit", params={"since": "yesterday"})
        assert since.status_code == 400 and "“since”须为日期（年-月-日）" in since.text
        state = admin.get("/workbench/admin/webhooks", params={"state": "lost"})
        assert state.status_code == 400 and "pending、delivered、failed 或 none" in state.text
        toggle = admin.post("/workbench/admin/users/wb-resident/disabled", data={"disabled": "maybe"})
        assert toggle.status_code == 400 and "disabled" in toggle.text
        assert _user_row(bench_db, "wb-resident")[3] is False  # type: ignore[index]
        weak = admin.post("/workbench/admin/users/wb-resident/password", data={"new_password": "short"})
        assert weak.status_code == 400 and "密码至少 8 位" in weak.text
        zones = admin.post(
            "/workbench/admin/users/wb-resident", data={"role": "property_team", "zone_codes": "nowhere"}
        )
        assert zones.status_code == 400 and "小区 nowhere 不存在" in zones.text and 'value="nowhere"' in zones.text
        assert _user_row(bench_db, "wb-resident")[0] == "resident"  # type: ignore[index]
        taken = admin.post(
            "/workbench/admin/users", data={"username": "wb-resident", "password": NEW_PASSWORD, "role": "resident"}
        )
        assert taken.status_code == 409 and "用户名“wb-resident”已存在" in taken.text
        gone = admin.post("/workbench/admin/api-keys/999999/revoke")
        assert gone.status_code == 404 and "api_key 999999 不存在或已吊销" in gone.text
        assert admin.get("/workbench/admin/users/nobody-here").status_code == 404
        assert admin.get("/workbench/admin/units/nowhere").status_code == 404
        # yourself: not disabled (the API's rule), the page says why
        own = admin.post(f"/workbench/admin/users/{people['admin']}/disabled", data={"disabled": "true"})
        assert own.status_code == 409 and "不能停用或降级自己的管理员账号" in own.text
        # a form posted from another site with the session cookie writes nothing
        foreign = admin.post(
            "/workbench/admin/users/wb-resident/disabled",
            data={"disabled": "true"},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 401 and _user_row(bench_db, "wb-resident")[3] is False  # type: ignore[index]
    finally:
        admin.close()


def test_fifty_concurrent_clients_read_the_administration_pages(base_url, people):  # noqa: F811
    admin = _signed_in(base_url, people["admin"])
    cookie = admin.cookies["wuye_session"]
    admin.close()
    paths = [
        "/workbench/admin",
        "/workbench/admin/users",
        "/workbench/admin/api-keys",
        "/workbench/admin/units",
        "/workbench/admin/audit",
        "/workbench/admin/webhooks",
    ] * 9

    async def crowd() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, cookies={"wuye_session": cookie}, timeout=120) as client:
            answers = await asyncio.gather(*(client.get(p) for p in paths))
            return [a.status_code for a in answers]

    with ThreadPoolExecutor(1) as pool:  # (Playwright's sync API keeps an event loop in this thread)
        assert pool.submit(asyncio.run, crowd()).result() == [200] * len(paths)


def test_administration_answers_503_in_chinese_while_the_database_is_down_and_works_after(target: Any):  # noqa: F811
    with psycopg.connect(target.url(), autocommit=True) as conn:
        users.create_user(
            conn, username="wb-admin-restart", password=PASSWORD, role="admin", district_code=DISTRICT, actor="tests"
        )
    with serving(target.env) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/login", data={"username": "wb-admin-restart", "password": PASSWORD}).status_code == 303
        assert http.get("/workbench/admin/users").status_code == 200
        assert wuye(target.env, "db", "stop").returncode == 0
        down = http.get("/workbench/admin/audit")
        assert down.status_code == 503 and 'data-status="503"' in down.text and "数据库" in down.text, down.text
        if target.fast:
            target.start()
        else:
            assert wuye(target.env, "db", "start").returncode == 0
        deadline = time.monotonic() + 30
        while (again := http.get("/workbench/admin/users")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert "wb-admin-restart" in again.text
