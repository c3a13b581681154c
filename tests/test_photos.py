"""Photos on disk and in the database: durable writes, missing files, orphans, ``wuye check``."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import auth_headers, settings_for

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


def _inside(conn: psycopg.Connection, zone: str) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


@pytest.fixture
def home_client(db_url: str, tmp_path: Path):
    settings = settings_for(db_url)
    settings.db.home = tmp_path
    with TestClient(create_app(settings)) as c:
        yield c


def _case_with_photo(client: TestClient, db_url: str) -> tuple[str, int, dict[str, str]]:
    resident = auth_headers(db_url, "resident")
    with psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "jinling")
    code = client.post("/cases", json={"category": "garbage_pile", "lon": lon, "lat": lat}, headers=resident).json()[
        "id"
    ]
    sent = client.post(f"/cases/{code}/photos", files={"photo": ("p.jpg", JPEG, "image/jpeg")}, headers=resident)
    assert sent.status_code == 201, sent.text
    return code, int(sent.json()["id"]), resident


def test_a_photo_whose_file_is_missing_is_404_naming_it(home_client, db_url, tmp_path: Path):
    code, photo_id, resident = _case_with_photo(home_client, db_url)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT path FROM case_photos WHERE id = %s", [photo_id]).fetchone()
    assert row is not None
    (tmp_path / row[0]).unlink()
    got = home_client.get(f"/cases/{code}/photos/{photo_id}", headers=resident)
    assert got.status_code == 404, got.text
    body = got.json()
    assert body["field"] == "photo_id"
    assert f"photo {photo_id}" in body["reason"] and "missing" in body["reason"]
    assert body["reason_zh"]


def test_a_failed_transaction_leaves_no_file(db_url: str, tmp_path: Path):
    from geo.access.scope import Principal
    from geo.io import photos

    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        photos.store(
            conn, Principal("tests", "admin"), case_id=-1, data=JPEG, kind="report", root=tmp_path, max_bytes=10**6
        )
    assert photos.stored_files(tmp_path) == []


def test_a_stored_photo_is_whole_and_named_by_its_row(db_url: str, tmp_path: Path):
    from geo.io import photos

    with psycopg.connect(db_url, autocommit=True) as conn:
        case_id = _any_case(conn)
        shot = photos.store(conn, _admin(), case_id=case_id, data=JPEG, kind="report", root=tmp_path, max_bytes=10**6)
        path, _ = photos.photo_file(conn, case_id=case_id, photo_id=shot["id"], root=tmp_path)
        assert path.read_bytes() == JPEG
        assert photos.stored_files(tmp_path) == [path]  # no temporary file left beside it
        assert photos.audit(conn, tmp_path, min_age_s=0).problems == 0


def _admin():
    from geo.access.scope import Principal

    return Principal("tests", "admin")


def _any_case(conn: psycopg.Connection) -> int:
    from geo.cases import workflow
    from geo.cases.shapes import Report
    from geo.steps import run

    lon, lat = _inside(conn, "jinling")
    made = run(
        conn,
        workflow.report(_admin(), Report(category_code="garbage_pile", lon=lon, lat=lat), district_code="430104"),
    )
    row = conn.execute("SELECT id FROM cases WHERE code = %s", [made["id"]]).fetchone()
    assert row is not None
    return int(row[0])


# A child that stores one photo of case ``case_id``: the file is written first, then the INSERT,
# whose foreign-key check waits while the test holds the case row FOR UPDATE. Killed there, the
# process leaves a file whose row never committed.
_CHILD = """
import sys
from pathlib import Path
import psycopg
from geo.access.scope import Principal
from geo.io import photos
url, root, case_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
with psycopg.connect(url, autocommit=True) as conn:
    photos.store(conn, Principal("child", "admin"), case_id=case_id, data=sys.stdin.buffer.read(),
                 kind="report", root=root, max_bytes=10**6)
"""


def test_a_crash_between_file_and_commit_is_repaired_by_wuye_check(db_url: str, tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from geo.io import photos
    from tests.live import ROOT, wuye

    with psycopg.connect(db_url, autocommit=True) as conn:
        case_id = _any_case(conn)
        kept = photos.store(conn, _admin(), case_id=case_id, data=JPEG, kind="report", root=tmp_path, max_bytes=10**6)
    env = {"PYTHONPATH": str(ROOT), "WUYE_DATABASE_URL": db_url, "WUYE_HOME": str(tmp_path)}
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM cases WHERE id = %s FOR UPDATE", [case_id])
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, db_url, str(tmp_path), str(case_id)],
            stdin=subprocess.PIPE,
            env={**os.environ, **env},
            cwd=ROOT,
        )
        assert child.stdin is not None
        child.stdin.write(JPEG)
        child.stdin.close()
        deadline = time.monotonic() + 60
        while len(photos.stored_files(tmp_path)) < 2 or _waiting(db_url) == 0:
            assert child.poll() is None, "the child finished although the case row was locked"
            assert time.monotonic() < deadline, "the child never reached the INSERT"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        holder.rollback()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM case_photos WHERE case_id = %s", [case_id]).fetchone() == (1,)
    orphan = [p for p in photos.stored_files(tmp_path) if p.name != Path(_path_of(db_url, kept["id"])).name]
    assert len(orphan) == 1 and orphan[0].read_bytes() == JPEG

    seen = wuye(env, "check", "--min-age", "0")
    assert f"photo file without a row: {orphan[0].relative_to(tmp_path)}" in seen.stdout, seen.stdout + seen.stderr
    assert "photo check: 1 problem(s)" in seen.stdout
    young = wuye(env, "check", "--repair")  # the default: a file this young may be an upload in flight
    assert "recent file without a row, left alone" in young.stdout and orphan[0].exists()
    fixed = wuye(env, "check", "--repair", "--min-age", "0")
    assert "1 orphan file(s) removed" in fixed.stdout, fixed.stdout + fixed.stderr
    assert not orphan[0].exists()
    again = wuye(env, "check", "--min-age", "0")
    assert "photo check: 0 problem(s)" in again.stdout
    with psycopg.connect(db_url) as conn:
        assert photos.audit(conn, tmp_path, min_age_s=0).problems == 0
        path, _ = photos.photo_file(conn, case_id=case_id, photo_id=kept["id"], root=tmp_path)
    assert path.read_bytes() == JPEG  # the committed photo is untouched


def _waiting(url: str) -> int:
    """Backends waiting on a lock (the child's INSERT)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _path_of(url: str, photo_id: int) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT path FROM case_photos WHERE id = %s", [photo_id]).fetchone()
    assert row is not None
    return str(row[0])


def test_wuye_check_repair_deletes_rows_without_files(db_url: str, tmp_path: Path):
    from geo.io import photos
    from tests.live import wuye

    with psycopg.connect(db_url, autocommit=True) as conn:
        case_id = _any_case(conn)
        shot = photos.store(conn, _admin(), case_id=case_id, data=JPEG, kind="report", root=tmp_path, max_bytes=10**6)
    (tmp_path / _path_of(db_url, shot["id"])).unlink()
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_HOME": str(tmp_path)}
    seen = wuye(env, "check")
    assert f"photo row without its file: case_photos {shot['id']}" in seen.stdout, seen.stdout + seen.stderr
    assert seen.returncode == 1
    fixed = wuye(env, "check", "--repair")
    assert "1 row(s) without a file deleted" in fixed.stdout
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM case_photos WHERE id = %s", [shot["id"]]).fetchone() == (0,)


def test_sixty_clients_read_a_photo_and_a_missing_one_at_once(db_url: str, tmp_path: Path):
    """The photo route against a real port: every reader of the stored photo gets its exact bytes,
    every reader of the one whose file is gone gets the 404 naming it; nothing else."""
    import asyncio
    from collections import Counter

    import httpx

    from geo.io import photos
    from tests.live import serving

    with psycopg.connect(db_url, autocommit=True) as conn:
        case_id = _any_case(conn)
        code = conn.execute("SELECT code FROM cases WHERE id = %s", [case_id]).fetchone()[0]  # type: ignore[index]
        kept = photos.store(conn, _admin(), case_id=case_id, data=JPEG, kind="report", root=tmp_path, max_bytes=10**6)
        gone = photos.store(conn, _admin(), case_id=case_id, data=JPEG, kind="after", root=tmp_path, max_bytes=10**6)
    (tmp_path / _path_of(db_url, gone["id"])).unlink()
    admin = auth_headers(db_url, "admin")
    env = {"WUYE_DATABASE_URL": db_url, "WUYE_HOME": str(tmp_path), "WUYE_MIN_FREE_DISK_MB": "0"}

    async def crowd(base: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=70, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, headers=admin) as client:
            paths = [f"/cases/{code}/photos/{(kept if i % 2 else gone)['id']}" for i in range(60)]
            return list(await asyncio.gather(*(client.get(p) for p in paths)))

    with serving(env) as base:
        answers = asyncio.run(crowd(base))
    assert Counter(r.status_code for r in answers) == {200: 30, 404: 30}
    assert all(r.content == JPEG for r in answers if r.status_code == 200)
    assert all(f"photo {gone['id']}" in r.json()["reason"] for r in answers if r.status_code == 404)


def test_remediation_photos_missing_file_is_404_and_a_refused_upload_leaves_no_file(home_client, db_url, tmp_path):
    from geo.io import photos

    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south",))
    body = {"item": "路灯", "planned_start": "2023-04-01", "planned_end": "2023-04-30"}
    code = home_client.post("/zones/yumin-south/remediation", json=body, headers=staff).json()["id"]
    sent = home_client.post(
        f"/remediation/{code}/photos",
        data={"stage": "before"},
        files={"photo": ("p.jpg", JPEG, "image/jpeg")},
        headers=team,
    )
    assert sent.status_code == 201, sent.text
    [stored] = photos.stored_files(tmp_path)
    stored.unlink()
    got = home_client.get(sent.json()["url"], headers=team)
    assert got.status_code == 404 and f"photo {sent.json()['id']}" in got.json()["reason"], got.text
    # a verified task refuses more photos (409) after the file was written: the file goes again
    for action in ("start", "finish"):
        assert (
            home_client.post(f"/remediation/{code}/actions", json={"action": action}, headers=team).status_code == 200
        )
    assert home_client.post(f"/remediation/{code}/actions", json={"action": "verify"}, headers=staff).status_code == 200
    refused = home_client.post(
        f"/remediation/{code}/photos",
        data={"stage": "after"},
        files={"photo": ("q.jpg", JPEG, "image/jpeg")},
        headers=team,
    )
    assert refused.status_code == 409, refused.text
    assert photos.stored_files(tmp_path) == []
