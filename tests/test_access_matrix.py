"""Every route × every role → the status its declared rule implies.

The rule of a route is the :class:`api.auth.Guard` among its dependencies (it
both declares and enforces). A route without one fails here, so a new route
cannot ship without an access rule; a route whose parameters this file has no
sample for fails too, so the matrix covers it for real.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Guard
from geo.access import users
from geo.access.scope import ROLES
from geo.steps import run
from tests.conftest import DEFAULT_SCOPE, DISTRICT, settings_for

# A value for every path parameter any route uses (an existing object where that matters).
SAMPLES = {
    "collection_id": "zones",
    "feature_id": "jinling",
    "username": "nobody-here",
    "key_id": "999999",
    "z": "15",
    "x": "26661",
    "y": "13859",
    "tile_matrix_set_id": "WebMercatorQuad",
    "tileMatrixSetId": "WebMercatorQuad",
    "tms": "WebMercatorQuad",
    "version": "1",
    "style_id": "default",
    "code": "C-none",
    "service_code": "light_out",
    "service_request_id": "C-none",
    "token": "C-none",
    "photo_id": "1",
    "layer": "street_lights",
    "phase": "survey",
    "fmt": "png",
    "root": "app",
    "asset": "wuye-maps.js",
    "answer_id": "999999",
    "batch_id": "999999",
    "doc_id": "999999",
    "item_id": "999999",
    "record_id": "999999",
    "chart": "state",
}


def _routes() -> list[Any]:
    """The app's API routes, flattened through included routers (FastAPI's route contexts)."""
    app = create_app()  # not started: only the route table is read
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _guard(route: Any) -> Guard | None:
    guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Guard)]
    return guards[0] if len(guards) == 1 else None


def test_every_route_declares_exactly_one_access_rule():
    missing = [f"{sorted(r.methods)} {r.path}" for r in _routes() if _guard(r) is None]
    assert missing == [], "routes without exactly one Guard dependency (api/auth.py): " + ", ".join(missing)


def test_every_path_parameter_has_a_sample():
    params = {p for r in _routes() for p in re.findall(r"{(\w+)(?::\w+)?}", r.path)}
    assert params <= set(SAMPLES), f"add samples for {sorted(params - set(SAMPLES))}"


CASES = [(route.path, method) for route in _routes() for method in sorted(route.methods - {"HEAD"})]


@pytest.fixture(scope="module")
def matrix_client(server, template_db):
    """A client, and fresh credentials per call (a route like /auth/logout revokes the one it gets)."""
    name = f"wuye_access_matrix_{os.getpid()}"
    url = server.create(name, template=template_db)
    made: dict[str, users.User] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for role in ROLES:
            if role != "anonymous":
                made[role] = users.create_user(
                    conn,
                    username=f"matrix-{role}",
                    password="secret-pass",
                    role=role,
                    district_code=DISTRICT,
                    actor="tests",
                    **DEFAULT_SCOPE.get(role, {}),
                )
    conn = psycopg.connect(url, autocommit=True)

    def headers(role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        token, _ = users.issue_token(conn, made[role], ttl=timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(settings_for(url))) as client:
        yield client, headers
    conn.close()
    server.drop(name)


@pytest.mark.parametrize(("path", "method"), CASES, ids=[f"{m} {p}" for p, m in CASES])
def test_route_answers_each_role_as_its_rule_says(matrix_client, path, method):
    client, headers = matrix_client
    route = next(r for r in _routes() if r.path == path and method in r.methods)
    guard = _guard(route)
    assert guard is not None
    url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: SAMPLES[m.group(1)], path)
    for role in ROLES:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = client.request(method, url, json=body, headers=headers(role))
        if role in guard.roles:
            assert response.status_code not in (401, 403), (role, response.status_code, response.text[:200])
        else:
            expected = 401 if role == "anonymous" else 403
            assert response.status_code == expected, (role, response.status_code, response.text[:200])


# ---------------------------------------------------------------------------------------------------
# Inside / outside scope: routes whose Guard names a ``scoped`` path parameter are called by scoped
# roles with an object inside their scope (in 西湖's yumin-south) and one outside it (in 望岳's daopo):
# a case, a street light, a remediation task, as the request's ``of`` says. Inside: neither 401, 403
# nor 404; outside: 404 (existence is not leaked).
SCOPED_ROLES = ("subdistrict_staff", "property_team")  # both scoped to the yumin zones (DEFAULT_SCOPE)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
SCOPED_REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/cases/{code}/actions"): {"of": "case", "json": {"action": "start"}},  # 409 inside ('reported')
    ("GET", "/cases/{code}/photos"): {"of": "case"},
    ("POST", "/cases/{code}/call"): {"of": "case"},
    ("GET", "/cases/{code}/photos/{photo_id}"): {"of": "case"},
    ("POST", "/cases/{code}/photos"): {"of": "case", "files": {"photo": ("p.jpg", JPEG, "image/jpeg")}},
    ("GET", "/facilities/{layer}/{code}/inspections"): {"of": "facility"},
    ("POST", "/facilities/{layer}/{code}/inspections"): {
        "of": "facility",
        "json": {"inspected_on": "2024-05-02", "condition": "normal"},
    },
    ("POST", "/remediation/{code}/actions"): {"of": "remediation", "json": {"action": "start"}},
    ("POST", "/remediation/{code}/photos"): {
        "of": "remediation",
        "data": {"stage": "before"},
        "files": {"photo": ("p.jpg", JPEG, "image/jpeg")},
    },
    ("GET", "/remediation/{code}/photos/{photo_id}"): {"of": "remediation"},
    ("PATCH", "/redo-items/{item_id}"): {"of": "redo", "json": {"state": "in_progress"}},
    ("POST", "/redo-items/{item_id}/photos"): {"of": "redo", "files": {"photo": ("p.jpg", JPEG, "image/jpeg")}},
    ("GET", "/redo-items/{item_id}/photos/{photo_id}"): {"of": "redo"},
    # the case desk's pages and forms (api/workbench.py): the same scope as /cases
    ("GET", "/workbench/cases/{code}"): {"of": "case"},
    ("POST", "/workbench/cases/{code}/actions"): {"of": "case", "data": {"action": "start"}},
    ("POST", "/workbench/cases/{code}/photos"): {
        "of": "case",
        "data": {"kind": "handled"},
        "files": {"photo": ("p.jpg", JPEG, "image/jpeg")},
    },
    # the facility-faults page's facility and forms (api/faults.py): where the facility lies
    ("GET", "/workbench/facilities/{layer}/{code}"): {"of": "facility"},
    ("POST", "/workbench/facilities/{layer}/{code}/inspections"): {
        "of": "facility",
        "data": {"condition": "normal", "inspected_on": "2024-05-02"},
    },
    ("POST", "/workbench/facilities/{layer}/{code}/cases"): {"of": "facility", "data": {"category": "light_out"}},
    # the programme's pages (api/workbench_programme.py): a zone's board and publicity, a task's forms
    ("GET", "/workbench/remediation/{code}"): {"of": "zone"},
    ("POST", "/workbench/remediation/tasks/{code}/actions"): {"of": "remediation", "data": {"action": "start"}},
    ("POST", "/workbench/remediation/tasks/{code}/photos"): {
        "of": "remediation",
        "data": {"stage": "before"},
        "files": {"photo": ("p.jpg", JPEG, "image/jpeg")},
    },
    ("GET", "/workbench/publicity/{code}"): {"of": "zone"},
    ("POST", "/workbench/publicity/{code}"): {"of": "zone", "data": {"kind": "notice"}},
    ("POST", "/workbench/publicity/{code}/records/{record_id}/photos"): {
        "of": "publicity",
        "files": {"photo": ("p.jpg", JPEG, "image/jpeg")},
    },
    # a zone's fees page (api/fees_pages.py)
    ("GET", "/workbench/fees/zones/{code}"): {"of": "zone"},
}
SCOPED_CASES = [
    (route.path, method)
    for route in _routes()
    for method in sorted(route.methods - {"HEAD"})
    if (g := _guard(route)) is not None and g.scoped
]


def test_every_scoped_route_has_a_scoped_request():
    missing = [c for c in SCOPED_CASES if (c[1], c[0]) not in SCOPED_REQUESTS]
    assert SCOPED_CASES and missing == [], f"add SCOPED_REQUESTS for {missing}"


@pytest.fixture(scope="module")
def scoped_objects(matrix_client):
    """Inside the scoped roles' zones and outside: a case and a remediation task (each with a photo),
    a street light."""
    from pathlib import Path

    from geo.access.scope import ANONYMOUS, Principal
    from geo.cases import workflow as cases
    from geo.cases.shapes import Report
    from geo.io import photos
    from geo.programme import redo, remediation

    client, _ = matrix_client
    url = client.app.state.settings.db.database_url
    objects = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for where, zone in (("inside", "yumin-south"), ("outside", "daopo")):
            lon, lat = conn.execute(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM zones WHERE code = %s) q", [zone]
            ).fetchone()
            report = Report("safety_hazard", lon, lat, reporter_phone="13800000000")
            code = run(conn, cases.report(ANONYMOUS, report, district_code=DISTRICT))["id"]
            case_id = conn.execute("SELECT id FROM cases WHERE code = %s", [code]).fetchone()[0]
            photo = photos.store(
                conn,
                Principal(username="tests", role="admin"),
                case_id=case_id,
                data=JPEG,
                kind="report",
                root=Path(client.app.state.settings.db.home),
                max_bytes=10_000,
            )
            light = conn.execute(
                "SELECT f.code FROM street_lights f JOIN zones z ON ST_Intersects(z.geom, f.geom) "
                "WHERE z.code = %s ORDER BY f.code LIMIT 1",
                [zone],
            ).fetchone()[0]
            admin = Principal(username="tests", role="admin")
            task = remediation.create(conn, admin, zone, district_code=DISTRICT, item="walls")["id"]
            shot = remediation.add_photo(
                conn,
                admin,
                task,
                stage="before",
                data=JPEG,
                district_code=DISTRICT,
                root=Path(client.app.state.settings.db.home),
                max_bytes=10_000,
            )
            # a redo item of the zone (as an issued 补课 verdict opens one) with an evidence photo
            item = conn.execute(
                "INSERT INTO redo_items (district_code, zone_code, criterion, title_zh, due_on, created_by) "
                "VALUES (%s, %s, 'cases', '无超期未结事件', DATE '2030-01-01', 'tests') RETURNING id",
                [DISTRICT, zone],
            ).fetchone()[0]
            evidence = redo.add_photo(
                conn,
                admin,
                item,
                data=JPEG,
                district_code=DISTRICT,
                root=Path(client.app.state.settings.db.home),
                max_bytes=10_000,
            )["added"]
            # a publicity record of the zone (the demo's, 先宣传后实施)
            record = conn.execute(
                "SELECT id FROM publicity_records WHERE zone_code = %s ORDER BY id LIMIT 1", [zone]
            ).fetchone()[0]
            objects[where] = {
                "case": {"code": code, "photo_id": str(photo["id"])},
                "facility": {"layer": "street_lights", "code": light},
                "remediation": {"code": task, "photo_id": str(shot["id"])},
                "redo": {"item_id": str(item), "photo_id": str(evidence)},
                "zone": {"code": zone},
                "publicity": {"code": zone, "record_id": str(record)},
            }
    return objects


@pytest.mark.parametrize(("path", "method"), SCOPED_CASES, ids=[f"{m} {p}" for p, m in SCOPED_CASES])
def test_scoped_route_hides_what_is_outside_the_callers_scope(matrix_client, scoped_objects, path, method):
    client, headers = matrix_client
    route = next(r for r in _routes() if r.path == path and method in r.methods)
    guard = _guard(route)
    assert guard is not None
    for role in SCOPED_ROLES:
        assert role in guard.roles
        for where, expect_hidden in (("inside", False), ("outside", True)):
            request = dict(SCOPED_REQUESTS[(method, path)])
            values = {**SAMPLES, **scoped_objects[where][request.pop("of")]}
            url = re.sub(r"{(\w+)(?::\w+)?}", lambda m, v=values: v[m.group(1)], path)
            response = client.request(method, url, headers=headers(role), **request)
            if expect_hidden:
                assert response.status_code == 404, (role, where, response.status_code, response.text[:200])
            else:
                assert response.status_code not in (401, 403, 404), (
                    role,
                    where,
                    response.status_code,
                    response.text[:200],
                )


# ---------------------------------------------------------------------------------------------------
# Fields: what each role sees of a case in its area (issue 13's table, README "Personal data"):
# "cell" = the public 50 m cell; "masked" = 138****5678 with the audited call action.
PHONE = "13812345678"
FIELD_TABLE: dict[str, dict[str, Any]] = {
    # role: position, description/photos/events, reporter name, reporter phone
    "anonymous": {"position": "cell", "work": False, "name": False, "phone": None},
    "resident": {"position": "cell", "work": False, "name": False, "phone": None},
    "survey_team": {"position": "cell", "work": False, "name": False, "phone": None},
    "security_admin": {"position": "cell", "work": False, "name": False, "phone": None},
    "audit_admin": {"position": "cell", "work": False, "name": False, "phone": None},
    "reporter": {"position": "exact", "work": True, "name": True, "phone": "whole"},
    "property_team": {"position": "exact", "work": True, "name": False, "phone": "masked"},
    "contractor": {"position": "exact", "work": True, "name": False, "phone": "masked"},
    "planner": {"position": "exact", "work": True, "name": False, "phone": "masked"},
    "subdistrict_staff": {"position": "exact", "work": True, "name": True, "phone": "whole"},
    "admin": {"position": "exact", "work": True, "name": True, "phone": "whole"},
}
FIELD_SCOPE = {  # each scoped role with the zone / section of the case in its area
    "survey_team": {"zone_codes": ("yumin-south",)},
    "property_team": {"zone_codes": ("yumin-south",)},
}


def test_every_role_is_in_the_field_table():
    assert set(FIELD_TABLE) == set(ROLES) | {"reporter"}


@pytest.fixture(scope="module")
def field_case(matrix_client):
    """A resident's case with name, phone, description and a photo, in a contract section of the
    contractor of DEFAULT_SCOPE (so in every scoped role's area), and a client per role."""
    client, _ = matrix_client
    url = client.app.state.settings.db.database_url
    from tests.conftest import auth_headers

    with psycopg.connect(url, autocommit=True) as conn:
        zone, lon, lat = conn.execute(
            "SELECT s.zone_code, ST_X(p), ST_Y(p) FROM contract_sections s "
            "CROSS JOIN LATERAL ST_PointOnSurface(s.geom) p WHERE s.contractor_unit = %s ORDER BY s.code LIMIT 1",
            [DEFAULT_SCOPE["contractor"]["unit_code"]],
        ).fetchone()
        subdistrict = conn.execute("SELECT subdistrict_code FROM zones WHERE code = %s", [zone]).fetchone()[0]
    scope = {
        "subdistrict_staff": {"subdistrict_code": subdistrict},
        "property_team": {"zone_codes": (zone,)},
        "survey_team": {"zone_codes": (zone,)},
        "contractor": DEFAULT_SCOPE["contractor"],
    }
    headers = {role: auth_headers(url, role, **scope.get(role, {})) for role in ROLES if role != "anonymous"}
    headers["anonymous"] = {}
    headers["reporter"] = auth_headers(url, "resident")
    body = {
        "category": "garbage_pile",
        "lon": lon,
        "lat": lat,
        "description": "三栋楼下",
        "reporter_name": "王五",
        "reporter_phone": PHONE,
    }
    created = client.post("/cases", json=body, headers=headers["reporter"])
    assert created.status_code == 201, created.text
    code = created.json()["id"]
    photo = client.post(
        f"/cases/{code}/photos", headers=headers["reporter"], files={"photo": ("p.jpg", JPEG, "image/jpeg")}
    )
    assert photo.status_code == 201, photo.text
    return code, (lon, lat), headers


@pytest.mark.parametrize("role", list(FIELD_TABLE))
def test_each_role_sees_the_fields_its_row_says(matrix_client, field_case, role):
    client, _ = matrix_client
    code, (lon, lat), headers = field_case
    row = FIELD_TABLE[role]
    detail = client.get(f"/cases/{code}", headers=headers[role]).json()
    listed = [
        f
        for f in client.get("/cases", params={"limit": 1000}, headers=headers[role]).json()["features"]
        if f["id"] == code
    ]
    assert len(listed) == 1, role
    for feature in (detail, listed[0]):
        props = feature["properties"]
        exact = feature["geometry"]["coordinates"] == [pytest.approx(lon, abs=1e-7), pytest.approx(lat, abs=1e-7)]
        assert exact is (row["position"] == "exact"), (role, feature["geometry"])
        assert ("description" in props) is row["work"], role
        assert ("reporter_name" in props) is row["name"], role
        phone = props.get("reporter_phone")
        expected = {None: None, "whole": PHONE, "masked": "138****5678"}[row["phone"]]
        assert phone == expected, (role, phone)
        assert props.get("reporter_phone_masked", False) is (row["phone"] == "masked"), role
        assert ("facility_distance_m" not in props) or row["work"], role
    assert ("events" in detail["properties"]) is row["work"], role
    photos = client.get(f"/cases/{code}/photos", headers=headers[role])
    assert photos.status_code == (200 if row["work"] else 401 if role == "anonymous" else 404), (role, photos.text)


@pytest.mark.parametrize("role", list(FIELD_TABLE))
def test_the_call_action_reveals_the_phone_to_the_workers_and_is_audited(matrix_client, field_case, role):
    client, _ = matrix_client
    code, _, headers = field_case
    url = client.app.state.settings.db.database_url
    with psycopg.connect(url) as conn:
        before = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'case.call' AND record_code = %s", [code]
        ).fetchone()[0]
        response = client.post(f"/cases/{code}/call", headers=headers[role])
        after = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'case.call' AND record_code = %s", [code]
        ).fetchone()[0]
    if role in ("contractor", "property_team", "subdistrict_staff", "admin"):
        assert response.status_code == 200 and response.json()["reporter_phone"] == PHONE, response.text
        assert after == before + 1
    else:
        assert response.status_code in (401, 403), (role, response.status_code)
        assert after == before


def test_separated_duties(matrix_client):
    """The security administrator keeps users and keys, the audit administrator reads the audit trail,
    neither does the other's work, and no route changes or deletes the audit trail."""
    client, headers = matrix_client
    security, audit = headers("security_admin"), headers("audit_admin")
    new = {"username": "duty-made", "password": "Lantern-42", "role": "planner"}
    assert client.post("/admin/users", json=new, headers=security).status_code == 201
    assert (
        client.post("/admin/users", json=new | {"username": "x-admin", "role": "admin"}, headers=security).status_code
        == 403
    )
    assert client.patch("/admin/users/matrix-admin", json={"disabled": True}, headers=security).status_code == 403
    assert client.get("/admin/api-keys", headers=security).status_code == 200
    assert client.get("/audit", headers=security).status_code == 403
    assert client.get("/audit", headers=audit).status_code == 200
    assert client.post("/admin/users", json=new | {"username": "duty-2"}, headers=audit).status_code == 403
    assert client.get("/cases", headers=audit).status_code == 200  # the public view only (FIELD_TABLE)
    audit_routes = [(m, r.path) for r in _routes() for m in r.methods if "audit" in r.path and m != "GET"]
    assert audit_routes == []


def test_feature_history_is_for_planners_and_administrators(matrix_client):
    client, headers = matrix_client
    for role in ROLES:
        status = client.get("/collections/zones/items/jinling/history", headers=headers(role)).status_code
        assert (status == 200) is (role in ("admin", "planner")), (role, status)


# ---------------------------------------------------------------------------------------------------
# The workbench's pages as each role finds them (issue 21 point 8): the navigation bar and the portal's
# list of pages offer a role exactly the pages their routes' Guards let it open, and each one opens.
NAV_PAGES = (
    "/workbench/cases",
    "/workbench/facilities",
    "/workbench/surveys",
    "/workbench/acceptance",
    "/workbench/remediation",
    "/workbench/phases",
    "/workbench/publicity",
    "/workbench/fees",
    "/workbench/stats",
    "/workbench/admin",
)


def test_every_workbench_section_is_a_page_of_the_navigation():
    """Each GET /workbench/<section> route is in NAV_PAGES (a new section cannot miss this check)."""
    sections = {r.path for r in _routes() if "GET" in r.methods and re.fullmatch(r"/workbench/[^/{]+", r.path)}
    assert sections == set(NAV_PAGES)


def _offered(html: str, start: str, end: str) -> set[str]:
    """The workbench sections linked from the part of ``html`` between ``start`` and ``end``."""
    part = html.split(start, 1)[1].split(end, 1)[0]
    return {href for href in re.findall(r'href="(/workbench/[^"?#]*)', part) if href in NAV_PAGES}


@pytest.mark.parametrize("role", list(ROLES))
def test_the_navigation_and_the_portal_offer_each_role_the_pages_its_rules_allow(matrix_client, role):
    client, headers = matrix_client
    rules = {r.path: _guard(r) for r in _routes() if "GET" in r.methods and r.path in NAV_PAGES}
    allowed = {path for path in NAV_PAGES if role in rules[path].roles}
    auth = headers(role)
    portal = client.get("/", headers={**auth, "Accept": "text/html"})
    assert portal.status_code == 200, portal.text[:300]
    assert _offered(portal.text, '<nav class="wuye-nav"', "</nav>") == allowed, role
    assert _offered(portal.text, '<main id="main">', "</main>") == allowed, role
    for path in sorted(allowed):
        opened = client.get(path, headers={**auth, "Accept": "text/html"})
        assert opened.status_code == 200, (role, path, opened.status_code, opened.text[:300])
        assert _offered(opened.text, '<nav class="wuye-nav"', "</nav>") == allowed, (role, path)
