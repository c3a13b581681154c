"""Notifications (issue 20 point 5): a case dispatched to a unit (or sent back, or overdue) is a notice
every user of the unit sees on the portal until read, and — with ``WUYE_WEBHOOK_URLS`` — a group
robot's JSON message POSTed to the unit's webhook by the service, retried, each outcome logged. Real
local HTTP receivers check what arrives, and that a failing receiver delays nobody else's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.maps import local_server
from geo.access import users
from geo.cases.workflow import escalate_overdue
from tests.conftest import DISTRICT, auth_headers, settings_for
from tests.test_maps import browser  # noqa: F401  (one browser for this module)
from tests.test_workbench import PASSWORD, Person, _point_in

GOOD_UNIT = "contractor-xiangjiang"


class Receiver:
    """A local HTTP server that keeps every JSON body POSTed to it and answers ``status`` (after
    ``delay_s``: a slow receiver)."""

    def __init__(self, status: int = 200, *, delay_s: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                time.sleep(delay_s)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0}' if status == 200 else b'{"errcode": 1}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def notices_db(server: Any, template_db: str) -> Iterator[str]:
    with server.copy("notices", template_db) as url:
        yield url


@pytest.fixture(scope="module")
def other_unit(notices_db: str) -> str:
    with psycopg.connect(notices_db) as conn:
        row = conn.execute("SELECT code FROM units WHERE code <> %s ORDER BY code LIMIT 1", [GOOD_UNIT]).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def served(notices_db: str, other_unit: str) -> Iterator[tuple[str, Receiver, Receiver]]:
    """The app on a real port with the contractor's webhook on a good receiver and another unit's on
    one that always answers 500; retries quick."""
    with Receiver(200) as good, Receiver(500) as bad:
        settings = settings_for(notices_db)
        settings.webhook.urls = {GOOD_UNIT: good.url, other_unit: bad.url}
        settings.webhook.interval_seconds = 0.2
        settings.webhook.retry_seconds = 0.2
        settings.webhook.max_attempts = 3
        settings.webhook.timeout_s = 2
        with local_server(create_app(settings)) as url:
            yield url, good, bad


def _dispatch(url: str, db: str, unit: str, staff: dict[str, str]) -> str:
    lon, lat = _point_in(db, "yumin-south")
    body = {"category": "garbage_pile", "lon": lon, "lat": lat}
    code = httpx.post(f"{url}/cases", json=body, timeout=60).json()["id"]
    for move in ({"action": "register"}, {"action": "dispatch", "unit_code": unit}):
        r = httpx.post(f"{url}/cases/{code}/actions", json=move, headers=staff, timeout=60)
        assert r.status_code == 200, r.text
    return str(code)


def _wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + 60
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def _log(db: str, code: str) -> tuple[str, int, int | None, str | None]:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT n.webhook_state, n.webhook_attempts, n.webhook_status, n.webhook_error FROM case_notices n "
            "JOIN cases c ON c.id = n.case_id WHERE c.code = %s AND n.kind = 'dispatched'",
            [code],
        ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


def test_a_failing_receiver_is_retried_and_logged_and_delays_nobody_elses(served, notices_db, other_unit):
    url, good, bad = served
    staff = auth_headers(notices_db, "admin")
    failing = _dispatch(url, notices_db, other_unit, staff)  # first: its receiver answers 500
    working = _dispatch(url, notices_db, GOOD_UNIT, staff)
    body = _wait(lambda: next((b for b in good.bodies if b["wuye"]["case"] == working), None), "no message arrived")
    assert (
        body["msgtype"] == "text" and working in body["text"]["content"] and "已派遣给本单位" in body["text"]["content"]
    )
    assert body["wuye"] == {"case": working, "kind": "dispatched", "unit": GOOD_UNIT}
    assert _wait(lambda: _log(notices_db, working)[0] == "delivered", "not logged delivered")
    assert _log(notices_db, working)[1:3] == (1, 200)
    # the failing one: tried max_attempts times, then logged as failed with the receiver's answer
    _wait(lambda: _log(notices_db, failing)[0] == "failed", "not given up")
    _, attempts, status, error = _log(notices_db, failing)
    assert (attempts, status) == (3, 500) and error is not None and error.startswith("HTTP 500")
    assert sum(1 for b in bad.bodies if b["wuye"]["case"] == failing) == 3


def test_the_units_people_see_the_notice_on_the_portal_until_they_read_it(browser, served, notices_db):  # noqa: F811
    url, _, _ = served
    with psycopg.connect(notices_db, autocommit=True) as conn:
        users.create_user(
            conn,
            username="notice-contractor",
            password=PASSWORD,
            role="contractor",
            district_code=DISTRICT,
            actor="tests",
            unit_code=GOOD_UNIT,
        )
    code = _dispatch(url, notices_db, GOOD_UNIT, auth_headers(notices_db, "admin"))
    p = Person(browser, "phone")
    try:
        page = p.page
        p.sign_in(url, "notice-contractor", "/")
        assert int(page.inner_text("#unread")) >= 1
        notice = page.locator(f"li.notice.is-unread[data-case='{code}']")
        assert "已派遣给本单位" in notice.inner_text()
        p.shot("portal-notices")
        p.press(notice.locator("a"))
        page.wait_for_url(f"{url}/workbench/cases/{code}")
        page.go_back()
        # The portal is at "/" already: wait for the form's answer (the POST's redirect), not the address.
        with page.expect_response(lambda r: r.url.endswith("/workbench/notices/read")) as answer:
            p.press(page.locator("#mark-read"))
        assert answer.value.status == 303
        page.wait_for_load_state()
        assert page.inner_text("#unread") == "0"
        assert not page.locator("li.notice.is-unread").count()
        assert p.errors == []
    finally:
        p.close()


def test_an_overdue_case_notifies_its_unit_and_the_office_it_goes_to(notices_db):
    with psycopg.connect(notices_db, autocommit=True) as conn:
        case = conn.execute("SELECT id FROM cases ORDER BY id DESC LIMIT 1").fetchone()
        assert case is not None
        conn.execute(
            "UPDATE cases SET due_at = now() - interval '3 days', escalated_at = NULL, state = 'dispatched', "
            "unit_code = %s WHERE id = %s",
            [GOOD_UNIT, case[0]],
        )
        assert escalate_overdue(conn, district_code=DISTRICT, grace=timedelta(hours=1)) >= 1
        units = {
            r[0]
            for r in conn.execute(
                "SELECT unit_code FROM case_notices WHERE case_id = %s AND kind = 'overdue'", [case[0]]
            )
        }
        office = conn.execute("SELECT unit_code FROM cases WHERE id = %s", [case[0]]).fetchone()[0]
    assert units == {GOOD_UNIT, office} - {None}
