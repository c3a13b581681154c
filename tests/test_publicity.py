"""Publicity first (先宣传后实施, issue 19 point 2) and the responsibility table as data (point 6):
publicity records with their place within 50 m of the zone, a remediation task's start refused (409
naming the rule) before its zone has one (WUYE_PUBLICITY_REQUIRED), photos, and GET /units."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.maps import local_server
from geo.programme import publicity
from geo.settings import ProgrammeSettings
from tests.conftest import auth_headers, settings_for

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def _client(db_url: str, home: Path, *, required: bool = True) -> TestClient:
    settings = settings_for(db_url)
    settings.db.home = home
    settings.programme.publicity_required = required
    return TestClient(create_app(settings))


@pytest.fixture
def client(db_url: str, tmp_path):
    with _client(db_url, tmp_path) as c:
        yield c


def _east_of(db_url: str, zone: str, metres: float) -> list[float]:
    """A point ``metres`` due east of the zone's easternmost vertex (CRS84 lon/lat): that far from the zone."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(q), ST_Y(q) FROM (SELECT ST_Transform(ST_Translate((SELECT d.geom FROM "
            "ST_DumpPoints(ST_Transform(z.geom, 4547)) d ORDER BY ST_X(d.geom) DESC LIMIT 1), %s, 0), 4490) q "
            "FROM zones z WHERE z.code = %s) p",
            [metres, zone],
        ).fetchone()
    assert row is not None
    return [float(row[0]), float(row[1])]


def _count(db_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def _task(client, staff) -> str:
    body = {"item": "路灯", "planned_start": "2023-04-01", "planned_end": "2023-04-30"}
    created = client.post("/zones/yumin-south/remediation", json=body, headers=staff)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _publicity(db_url: str, zone: str = "yumin-south", **extra: object) -> dict:
    return {
        "kind": "公告张贴",
        "held_on": "2023-03-02",
        "place": {"type": "Point", "coordinates": _east_of(db_url, zone, 30)},
        "unit_code": "office-xihu",
        "attendance": 0,
        "note": "小区出入口张贴整治公告",
        **extra,
    }


def test_the_demo_has_publicity_for_every_zone_and_the_phase_table_shows_it(client, db_url):
    zones = _count(db_url, "SELECT count(*) FROM zones")
    assert _count(db_url, "SELECT count(DISTINCT zone_code) FROM publicity_records") == zones
    rows = client.get("/zones/jinling/publicity").json()
    assert [r["kind"] for r in rows] == [
        "notice",
        "coordination_meeting",
        "deployment_meeting",
        "residents_meeting",
        "study_visit",
    ]
    assert rows[1]["kind_zh"] == "协调会" and rows[1]["unit_name"] == "区城管局"
    assert rows[4]["held_on"].endswith("-05-09") and rows[4]["kind_zh"] == "参观学习"
    table = client.get("/phases").json()
    jinling = next(z for z in table["zones"] if z["zone_code"] == "jinling")
    assert jinling["publicity"] == {k: int(k != "door_to_door") for k in publicity.KINDS}  # none door to door
    assert client.get("/zones/no-such/publicity").status_code == 404


def test_start_is_409_naming_the_rule_until_the_zone_has_publicity(client, db_url):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    code = _task(client, staff)
    # the demo's first publicity in 裕民南片 is its notice of 1 March: a start dated before it is refused
    early = client.post(f"/remediation/{code}/actions", json={"action": "start", "date": "2023-02-20"}, headers=staff)
    assert early.status_code == 409, early.text
    body = early.json()
    assert body["rule"] == "publicity_required" and "WUYE_PUBLICITY_REQUIRED" in body["reason"]
    assert body["reason_zh"].startswith("先宣传后实施")
    task = client.get(f"/remediation/{code}").json()["properties"]
    assert task["state"] == "planned" and [e["action"] for e in task["events"]] == ["create"]
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM publicity_records WHERE zone_code = 'yumin-south'")
    again = client.post(f"/remediation/{code}/actions", json={"action": "start"}, headers=staff)
    assert again.status_code == 409 and "yumin-south" in again.json()["reason"]
    recorded = client.post("/zones/yumin-south/publicity", json=_publicity(db_url), headers=staff)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["kind"] == "notice" and recorded.json()["unit_name"] == "西湖街道办事处"
    started = client.post(f"/remediation/{code}/actions", json={"action": "start", "date": "2023-03-02"}, headers=staff)
    assert started.status_code == 200 and started.json()["properties"]["state"] == "in_progress"


def test_the_rule_can_be_switched_off(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("WUYE_PUBLICITY_REQUIRED", "false")
    assert ProgrammeSettings().publicity_required is False
    monkeypatch.delenv("WUYE_PUBLICITY_REQUIRED")
    assert ProgrammeSettings().publicity_required is True
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM publicity_records")
    with _client(db_url, tmp_path, required=False) as client:
        staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
        code = _task(client, staff)
        started = client.post(f"/remediation/{code}/actions", json={"action": "start"}, headers=staff)
        assert started.status_code == 200, started.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"place": "far"}, "place"),
        ({"kind": "游园会"}, "kind"),
        ({"attendance": -3}, "attendance"),
        ({"unit_code": "nobody"}, "unit_code"),
        ({"held_on": "2999-01-01"}, "held_on"),
        ({"place": {"type": "LineString", "coordinates": [[112.9, 28.2], [112.91, 28.21]]}}, "place"),
    ],
)
def test_bad_publicity_is_400_naming_the_field_and_writes_nothing(client, db_url, change, field):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    before = _count(db_url, "SELECT count(*) FROM publicity_records")
    if change.get("place") == "far":
        change = {"place": {"type": "Point", "coordinates": _east_of(db_url, "yumin-south", 80)}}
    answer = client.post("/zones/yumin-south/publicity", json=_publicity(db_url, **change), headers=staff)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and answer.json()["reason_zh"]
    if field == "place" and "Point" in str(change):
        assert "50 m" in answer.json()["reason"] and "80 m" in answer.json()["reason"]
    assert _count(db_url, "SELECT count(*) FROM publicity_records") == before


def test_publicity_scope_roles_and_photos(client, db_url, tmp_path):
    staff = auth_headers(db_url, "subdistrict_staff", subdistrict_code="xihu")
    contractor = auth_headers(db_url, "contractor", unit_code="contractor-xiangjiang")
    body = _publicity(db_url, "daopo", unit_code="office-wangyue")
    assert client.post("/zones/daopo/publicity", json=body, headers=staff).status_code == 404  # not their zone
    assert client.post("/zones/yumin-south/publicity", json=_publicity(db_url), headers=contractor).status_code == 403
    team = auth_headers(db_url, "property_team", zone_codes=("yumin-south", "yumin-north"))
    made = client.post(
        "/zones/yumin-south/publicity", json=_publicity(db_url, kind="door_to_door", attendance=120), headers=team
    )
    assert made.status_code == 201, made.text
    record = made.json()["id"]
    photo = client.post(f"/publicity/{record}/photos", files={"photo": ("a.jpg", JPEG)}, headers=team)
    assert photo.status_code == 201, photo.text
    url = photo.json()["url"]
    assert client.get(url).status_code == 401
    got = client.get(url, headers=staff)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    bad = client.post(f"/publicity/{record}/photos", files={"photo": ("a.jpg", b"not an image")}, headers=team)
    assert bad.status_code in (400, 415)
    listed = next(r for r in client.get("/zones/yumin-south/publicity").json() if r["id"] == record)
    assert listed["photos"] == [url] and listed["attendance"] == 120 and listed["kind_zh"] == "入户宣传"
    assert _count(db_url, "SELECT count(*) FROM publicity_photos") == 1
    stored = [p for p in (tmp_path / "photos" / "publicity").rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].read_bytes() == JPEG


def test_units_carry_their_duty_from_the_plan(client):
    units = {u["name"]: u for u in client.get("/units").json()}
    for name, duty in (
        ("区政府办", "负责协调解决企业办社会职能分离的历史遗留问题"),
        ("区综治办", "负责指导和支持做好治安防控工作"),
        ("区工商分局", "负责对成立物业服务公司的办证和资质审批提供支持"),
        ("区发改局", "负责指导确定社区物业服务收费标准"),
        ("区城管局", "负责牵头组织协调和监督考核工作"),
    ):
        assert units[name]["duty"] == duty and units[name]["kind_zh"] == "区直部门"
    assert units["西湖街道办事处"]["duty"] == "组织社区实施社区物业服务工作"
    assert "phone" not in units["区城管局"] and "contact_person" not in units["区城管局"]


def test_fifty_clients_read_publicity_units_and_phases_on_a_real_port(db_url):
    settings = settings_for(db_url)
    settings.db.pool_max_size = 20
    paths = ["/publicity", "/zones/jinling/publicity", "/units", "/phases", "/zones/jinling/phases"]
    with local_server(create_app(settings)) as url:
        expected = {p: httpx.get(f"{url}{p}", timeout=60).json() for p in paths}

        async def crowd() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=60)) as http:
                return await asyncio.gather(*(http.get(paths[i % len(paths)]) for i in range(50)))

        responses = asyncio.run(crowd())
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.json() == expected[paths[i % len(paths)]] for i, r in enumerate(responses))
