"""Several server processes on one database (``wuye serve``'s ``WUYE_WORKERS``, one per core by
default): each serves the port, and the background jobs run in one of them at a time — a notice's
webhook is posted once, not once per process, and when the process running the jobs goes, another
takes them over (geo/cases/leader.py)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from geo.cases.leader import JOBS_LOCK, Leadership
from tests.conftest import DISTRICT, auth_headers
from tests.live import serving, wuye
from tests.test_notices import GOOD_UNIT, Receiver, _dispatch, _wait


def _lock_holders(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND (classid::bigint << 32 | objid::bigint) = %s",
            [JOBS_LOCK],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_one_process_holds_the_jobs_and_another_takes_them_when_it_goes(db_url: str) -> None:
    first, second = Leadership(db_url), Leadership(db_url)
    try:
        assert first.held() and not second.held()
        assert first.held() and not second.held()  # asking again changes nothing
        assert _lock_holders(db_url) == 1
        first.close()  # the process stopped
        assert second.held() and not first.held()
        # the holder's session ends under it (a broken connection, the database restarted)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'wuye-jobs' AND datname = current_database()"
            )
        assert not second.held()  # it finds out, and holds nothing meanwhile
        deadline = time.monotonic() + 10  # the ended session's backend lets go as it exits
        while not first.held():
            assert time.monotonic() < deadline, "the lock of an ended session was not freed"
            time.sleep(0.05)
        assert not second.held()
    finally:
        first.close()
        second.close()


def test_two_workers_serve_a_crowd_and_post_each_notice_once(db_url: str) -> None:
    # A slow receiver: a notice stays pending while it is being posted, which is when a second
    # sender (in the other process) would read it as due and post it again.
    with Receiver(200, delay_s=0.4) as receiver:
        env = {
            "WUYE_DATABASE_URL": db_url,
            "WUYE_DISTRICT_CODE": DISTRICT,
            "WUYE_WORKERS": "2",
            "WUYE_WEBHOOK_URLS": json.dumps({GOOD_UNIT: receiver.url}),
            "WUYE_WEBHOOK_INTERVAL_SECONDS": "0.1",
            "WUYE_ESCALATION_INTERVAL_SECONDS": "0.2",
        }
        staff = auth_headers(db_url, "admin")
        with serving(env) as url:
            with psycopg.connect(db_url) as conn:
                sessions = conn.execute(
                    "SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'wuye-jobs'"
                ).fetchone()
            codes = [_dispatch(url, db_url, GOOD_UNIT, staff) for _ in range(6)]

            def delivered() -> bool:
                with psycopg.connect(db_url) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM case_notices n JOIN cases c ON c.id = n.case_id"
                        " WHERE c.code = ANY(%s) AND n.kind = 'dispatched' AND n.webhook_state = 'delivered'",
                        [codes],
                    ).fetchone()
                return bool(row and row[0] == len(codes))

            _wait(delivered, "the notices were not delivered")
            time.sleep(1.5)  # time for a second sender, were there one, to post again

            # 51 readers at once, answered by both processes
            def read(i: int) -> int:
                path = "/collections/street_lights/items?limit=20" if i % 2 else "/cases?limit=10"
                return httpx.get(url + path, headers=staff, timeout=60).status_code

            with ThreadPoolExecutor(max_workers=51) as pool:
                statuses = Counter(pool.map(read, range(51 * 3)))
            assert statuses == Counter({200: 153}), statuses
            assert _lock_holders(db_url) == 1
        posted = Counter(b["wuye"]["case"] for b in receiver.bodies if b["wuye"]["kind"] == "dispatched")
    assert sessions is not None and sessions[0] >= 1
    assert set(posted) == set(codes) and set(posted.values()) == {1}, posted


def test_workers_must_be_a_sensible_number(db_url: str) -> None:
    done = wuye({"WUYE_DATABASE_URL": db_url, "WUYE_DISTRICT_CODE": DISTRICT}, "serve", "--workers", "0")
    assert done.returncode == 2 and "--workers" in done.stdout + done.stderr
