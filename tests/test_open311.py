"""Open311 GeoReport v2: every response checked against the GeoReport rules."""

from __future__ import annotations

import re

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.access import users
from tests.conftest import DISTRICT, settings_for

ISO_WITH_ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


def check_service(s: dict) -> None:
    assert isinstance(s["service_code"], str) and s["service_code"]
    assert isinstance(s["service_name"], str) and s["service_name"]
    assert isinstance(s["metadata"], bool)
    assert s["type"] in ("realtime", "batch", "blackbox")


def check_request(r: dict) -> None:
    assert isinstance(r["service_request_id"], str) and r["service_request_id"]
    assert r["status"] in ("open", "closed")
    assert isinstance(r["service_code"], str)
    assert ISO_WITH_ZONE.match(r["requested_datetime"]), r["requested_datetime"]
    for key in ("updated_datetime", "expected_datetime"):
        if key in r:
            assert ISO_WITH_ZONE.match(r[key])
    for key, value in r.items():
        if key in ("lat", "long"):
            assert isinstance(value, float)
        else:
            assert isinstance(value, str), (key, value)  # no nulls where the schema says string


def check_errors(response, status: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert isinstance(body, list) and body
    for err in body:
        assert set(err) == {"code", "description"} and err["code"] == status and err["description"]


@pytest.fixture
def client(db_url):
    with TestClient(create_app(settings_for(db_url))) as c:
        yield c


@pytest.fixture
def api_key(db_url) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return users.create_api_key(conn, client_name="12345热线", district_code=DISTRICT, actor="tests")[1]


def _inside(db_url, zone="jinling"):
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
        ).fetchone()
    assert row is not None
    return row


def test_services(client):
    services = client.get("/open311/v2/services.json").json()
    assert len(services) == 20  # the categories of layers/categories.toml (issue 18 added three)
    for s in services:
        check_service(s)
    assert {s["service_name"] for s in services} >= {"路灯不亮", "下水不通", "流动摊贩"}
    definition = client.get("/open311/v2/services/light_out.json").json()
    assert definition == {"service_code": "light_out", "attributes": []}
    check_errors(client.get("/open311/v2/services/nope.json"), 404)
    check_errors(client.get("/open311/v2/services.json", params={"jurisdiction_id": "110101"}), 404)


def test_post_then_read_back(client, db_url, api_key):
    lon, lat = _inside(db_url)
    created = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": api_key,
            "service_code": "drain_blocked",
            "lat": lat,
            "long": lon,
            "description": "下水道堵了",
            "first_name": "三",
            "last_name": "张",
            "phone": "13800000000",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert isinstance(body, list) and len(body) == 1
    request_id = body[0]["service_request_id"]
    assert isinstance(request_id, str) and "责任单位" in body[0]["service_notice"]
    one = client.get(f"/open311/v2/requests/{request_id}.json").json()
    assert isinstance(one, list) and len(one) == 1
    check_request(one[0])
    record = one[0]
    assert record["status"] == "open" and record["status_notes"].startswith("reported")
    assert record["agency_responsible"]
    assert "phone" not in str(record) and "13800000000" not in str(record)  # public record
    listed = client.get("/open311/v2/requests.json", params={"status": "open"}).json()
    assert [r["service_request_id"] for r in listed] == [request_id]
    for r in listed:
        check_request(r)
    assert client.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    assert client.get(f"/open311/v2/tokens/{request_id}.json").json() == [
        {"service_request_id": request_id, "token": request_id}
    ]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT source, client_name, reporter_name, coord_sys FROM cases").fetchone()
    assert row == ("open311", "12345热线", "张 三", "wgs84")


def test_default_window_is_90_days(client, db_url, api_key):
    lon, lat = _inside(db_url)
    made = client.post(
        "/open311/v2/requests.json", data={"api_key": api_key, "service_code": "light_out", "lat": lat, "long": lon}
    ).json()[0]["service_request_id"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE cases SET created_at = now() - interval '120 days' WHERE code = %s", [made])
    assert client.get("/open311/v2/requests.json").json() == []
    assert len(client.get("/open311/v2/requests.json", params={"service_request_id": made}).json()) == 1


@pytest.mark.parametrize(
    ("with_key", "data", "status", "text"),
    [
        (False, {"api_key": "wrong", "service_code": "light_out", "lat": 28.2, "long": 112.95}, 403, "api_key"),
        (False, {"service_code": "light_out", "lat": 28.2, "long": 112.95}, 400, "api_key"),
        (True, {"service_code": "nope", "lat": 28.23, "long": 112.95}, 400, "category"),
        (True, {"service_code": "light_out", "address_string": "金岭小区3栋"}, 400, "not geocoded"),
        (True, {"service_code": "light_out", "lat": 112.95, "long": 28.23}, 400, "swapped"),
        (True, {"service_code": "light_out", "lat": 30.5, "long": 114.3}, 400, "outside district"),
        (True, {"service_code": "light_out", "lat": "north", "long": 112.95}, 400, "lat"),
    ],
)
def test_errors_are_open311_arrays(client, api_key, with_key, data, status, text):
    response = client.post("/open311/v2/requests.json", data={"api_key": api_key, **data} if with_key else data)
    check_errors(response, status)
    assert text in response.json()[0]["description"]


def test_revoked_key_is_refused(client, db_url, api_key):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now()")
    lon, lat = _inside(db_url)
    check_errors(
        client.post(
            "/open311/v2/requests.json", data={"api_key": api_key, "service_code": "light_out", "lat": lat, "long": lon}
        ),
        403,
    )


def test_unknown_request_is_a_404_array(client):
    check_errors(client.get("/open311/v2/requests/C-none.json"), 404)
    check_errors(client.get("/open311/v2/tokens/nothing.json"), 404)
    check_errors(client.get("/open311/v2/requests.json", params={"status": "maybe"}), 400)
