"""``wuye backup`` / ``wuye restore`` / ``wuye backup --check``: a round trip into a fresh embedded
cluster that a real server then serves, refusals, and damaged archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import auth_headers, settings_for
from tests.helpers import INSIDE, feature, point
from tests.live import serving, wuye

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 8


def _inside(conn: psycopg.Connection, zone: str) -> tuple[float, float]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


@pytest.fixture
def source(db_url: str, tmp_path: Path):
    """A database with cases, photos, an edited feature (history), users and a token; its photo
    store under ``tmp_path/a``."""
    home = tmp_path / "a"
    settings = settings_for(db_url)
    settings.db.home = home
    resident = auth_headers(db_url, "resident")
    planner = auth_headers(db_url, "planner")
    with TestClient(create_app(settings)) as client, psycopg.connect(db_url) as conn:
        lon, lat = _inside(conn, "jinling")
        code = client.post(
            "/cases", json={"category": "garbage_pile", "lon": lon, "lat": lat}, headers=resident
        ).json()["id"]
        shots = [
            client.post(f"/cases/{code}/photos", files={"photo": (name, data, kind)}, headers=resident).json()["id"]
            for name, data, kind in (("a.jpg", JPEG, "image/jpeg"), ("b.png", PNG, "image/png"))
        ]
        made = client.post(
            "/collections/street_lights/items",
            json=feature(point(*INSIDE), code="BK-1", condition="normal", power_w=60),
            headers=planner,
        )
        assert made.status_code == 201, made.text
        edited = client.put(
            "/collections/street_lights/items/BK-1",
            json=feature(point(*INSIDE), code="BK-1", condition="normal", power_w=90),
            headers={**planner, "If-Match": '"1"'},
        )
        assert edited.status_code == 200, edited.text
    return {"url": db_url, "home": home, "case": code, "photos": shots, "resident": resident}


def _fingerprint(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM cases t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM case_events t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM feature_history t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM users t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM auth_tokens t),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM audit_log t)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_backup_and_restore_into_a_fresh_embedded_cluster_served_with_an_old_token(source, tmp_path: Path):
    archive = tmp_path / "wuye.tar"
    env_a = {"WUYE_DATABASE_URL": source["url"], "WUYE_HOME": str(source["home"])}
    made = wuye(env_a, "backup", str(archive))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "2 photos" in made.stdout
    checked = wuye({}, "backup", "--check", str(archive))
    assert checked.returncode == 0 and "intact" in checked.stdout, checked.stdout + checked.stderr

    home_b = tmp_path / "b"
    env_b = {"WUYE_HOME": str(home_b), "WUYE_DATABASE_URL": ""}
    try:
        restored = wuye(env_b, "restore", str(archive))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "restored and verified" in restored.stdout
        url_b = wuye(env_b, "db", "url").stdout.strip()
        assert _fingerprint(url_b) == _fingerprint(source["url"])
        with psycopg.connect(url_b) as conn:
            history = conn.execute(
                "SELECT version, operation FROM feature_history WHERE feature_code = 'BK-1' ORDER BY id"
            ).fetchall()
        assert history == [(1, "insert"), (2, "update")]

        again = wuye(env_b, "restore", str(archive))
        assert again.returncode == 1 and "not empty" in again.stderr, again.stdout + again.stderr

        with serving(env_b) as base:
            case = source["case"]
            for photo_id, body in zip(source["photos"], (JPEG, PNG), strict=True):
                got = httpx.get(f"{base}/cases/{case}/photos/{photo_id}", headers=source["resident"], timeout=10)
                assert got.status_code == 200, got.text
                assert got.content == body
            listed = httpx.get(f"{base}/cases/{case}/photos", headers=source["resident"], timeout=10)
            assert [p["id"] for p in listed.json()] == source["photos"]

        forced = wuye(env_b, "restore", "--force", str(archive))
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert _fingerprint(url_b) == _fingerprint(source["url"])
    finally:
        _remove_cluster(env_b)


def _rewrite(archive: Path, target: Path, change) -> None:
    with tarfile.open(archive) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
        for member in src:
            data = src.extractfile(member)
            body = data.read() if data else b""
            member, body = change(member, body)
            if member is not None:
                member.size = len(body)
                out.addfile(member, io.BytesIO(body))


def test_check_names_a_damaged_photo_a_missing_member_and_a_foreign_file(source, tmp_path: Path):
    archive = tmp_path / "wuye.tar"
    env_a = {"WUYE_DATABASE_URL": source["url"], "WUYE_HOME": str(source["home"])}
    assert wuye(env_a, "backup", str(archive)).returncode == 0

    def flip(member, body):
        if member.name.endswith(".jpg"):
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        return member, body

    damaged = tmp_path / "damaged.tar"
    _rewrite(archive, damaged, flip)
    seen = wuye({}, "backup", "--check", str(damaged))
    assert seen.returncode == 1
    assert ".jpg: sha256" in seen.stdout and "damaged: 1 problem(s)" in seen.stdout, seen.stdout

    short = tmp_path / "short.tar"
    _rewrite(archive, short, lambda m, b: (None, b) if m.name == "database.dump" else (m, b))
    seen = wuye({}, "backup", "--check", str(short))
    assert seen.returncode == 1 and "database.dump: in the manifest but not in the archive" in seen.stdout

    foreign = tmp_path / "foreign.tar"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with tarfile.open(foreign, "w") as tar:
        tar.add(tmp_path / "manifest.json", arcname="manifest.json")
    seen = wuye({}, "backup", "--check", str(foreign))
    assert seen.returncode == 1 and "not a wuye-backup archive" in seen.stderr, seen.stderr

    # a damaged archive restores nothing
    home_c = tmp_path / "c"
    try:
        refused = wuye({"WUYE_HOME": str(home_c), "WUYE_DATABASE_URL": ""}, "restore", str(damaged))
        assert refused.returncode == 1 and "does not match its manifest" in refused.stderr, refused.stderr
        url_c = wuye({"WUYE_HOME": str(home_c), "WUYE_DATABASE_URL": ""}, "db", "url").stdout.strip()
        with psycopg.connect(url_c) as conn:
            assert conn.execute("SELECT to_regclass('cases')").fetchone() == (None,)
    finally:
        _remove_cluster({"WUYE_HOME": str(home_c), "WUYE_DATABASE_URL": ""})


def _remove_cluster(env: dict[str, str]) -> None:
    """Stop the embedded cluster a test made and remove it (it may live under /var/tmp)."""
    import shutil

    from geo.store import embedded

    wuye(env, "db", "stop")
    shutil.rmtree(embedded.locate(Path(env["WUYE_HOME"])).root, ignore_errors=True)


def test_restore_over_a_non_empty_external_database_needs_force(source, tmp_path: Path):
    archive = tmp_path / "wuye.tar"
    env_a = {"WUYE_DATABASE_URL": source["url"], "WUYE_HOME": str(source["home"])}
    assert wuye(env_a, "backup", str(archive)).returncode == 0
    before = _fingerprint(source["url"])
    with psycopg.connect(source["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM case_photos")  # a change after the backup, undone by the restore
    env = {"WUYE_DATABASE_URL": source["url"], "WUYE_HOME": str(tmp_path / "d")}
    refused = wuye(env, "restore", str(archive))
    assert refused.returncode == 1 and "not empty" in refused.stderr, refused.stderr
    forced = wuye(env, "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "restored and verified" in forced.stdout
    assert _fingerprint(source["url"]) == before
    with psycopg.connect(source["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM case_photos").fetchone() == (2,)
    assert sorted(p.name for p in (tmp_path / "d" / "photos").rglob("*") if p.is_file()) == sorted(
        p.name for p in (source["home"] / "photos").rglob("*") if p.is_file()
    )
