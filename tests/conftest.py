"""Test fixtures against a real PostGIS.

One embedded cluster (under ``var/test``, or ``var/test-gw0`` … per pytest-xdist worker, fsync off) or the server of
``WUYE_TEST_DATABASE_URL``; a template database migrated and loaded with the
demo district once per session; each test that writes gets its own copy
(CREATE DATABASE … TEMPLATE, a file copy) or a connection rolled back after.
The session leaves no server running that it started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from geo.demo.load import load_demo
from geo.settings import DatabaseSettings, DistrictSettings, Settings
from geo.store import embedded
from geo.store.migrate import migrate
from layers.catalogue import Catalogue, load_catalogue

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = "430104"
# The session's own embedded cluster: one per pytest-xdist worker (``make test`` runs several), since
# the restart tests stop and start it under the tests of their own process.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_HOME = ROOT / "var" / (f"test-{_WORKER}" if _WORKER else "test")

# The plan's four standards (issue 19 point 4) also judge facilities, before/after photos, the property
# service and fees, which the tests written for the three earlier criteria (satisfaction, remediation,
# cases) do not record: they judge the demo year (2023) with those switched off, as an administrator may
# for a year (WUYE_CRITERIA_OFF; servers the tests start inherit it). tests/test_standards.py judges all
# four with nothing switched off.
CRITERIA_OFF_2023 = '{"2023": ["facilities", "remediation_photos", "mechanism"]}'
os.environ.setdefault("WUYE_CRITERIA_OFF", CRITERIA_OFF_2023)


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


class Server:
    """A PostgreSQL server the tests may create databases in."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, dbname: str) -> str:
        return _with_db(self.admin_url, dbname)

    def create(self, dbname: str, template: str | None = None) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(stmt)
        return self.url(dbname)

    @contextmanager
    def copy(self, label: str, template: str) -> Iterator[str]:
        """A copy of ``template`` for a test module (named after ``label`` and this process), dropped after."""
        name = f"wuye_{label}_{os.getpid()}"
        url = self.create(name, template=template)
        try:
            yield url
        finally:
            self.drop(name)

    def drop(self, dbname: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    external = os.environ.get("WUYE_TEST_DATABASE_URL")
    if external:
        yield Server(external)
        return
    cluster = embedded.locate(TEST_HOME)
    was_running = embedded.status(cluster).running
    state = embedded.start(cluster, fast=True)
    assert state.port is not None
    try:
        yield Server(embedded.server_url(cluster, "postgres"))
    finally:
        if not was_running:
            embedded.stop(cluster)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="session")
def template_db(server: Server, catalogue: Catalogue) -> Iterator[str]:
    """A database migrated and loaded with the demo district (seed 2023, scale 1)."""
    name = f"wuye_tpl_{os.getpid()}"
    url = server.create(name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, catalogue)
    with psycopg.connect(url) as conn:
        # without the demo's patrols, which are dated from today: the patrol tests lay out their own
        # (tests/test_patrols.py test the demo's)
        load_demo(conn, catalogue, district_code=DISTRICT, patrols=False)
    try:
        yield name
    finally:
        server.drop(name)


_counter = iter(range(1_000_000))


@pytest.fixture
def db_url(server: Server, template_db: str) -> Iterator[str]:
    """A fresh copy of the demo database for one test, dropped afterwards."""
    name = f"wuye_t{os.getpid()}_{next(_counter)}"
    url = server.create(name, template=template_db)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def empty_db_url(server: Server, catalogue: Catalogue) -> Iterator[str]:
    """A migrated database with no data at all."""
    name = f"wuye_e{os.getpid()}_{next(_counter)}"
    url = server.create(name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, catalogue)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture(scope="session")
def shared_db_url(server: Server, template_db: str) -> Iterator[str]:
    """One copy of the demo database for read-only tests and rolled-back connections."""
    name = f"wuye_s{os.getpid()}"
    url = server.create(name, template=template_db)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def conn(shared_db_url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back after the test."""
    with psycopg.connect(shared_db_url) as c:
        # Begin the outer transaction now, so that the code's own transaction()
        # blocks become savepoints and the rollback below undoes them too.
        c.execute("SELECT 1")
        try:
            yield c
        finally:
            c.rollback()


def settings_for(url: str) -> Settings:
    """Settings pointing at ``url`` (as WUYE_DATABASE_URL would)."""
    return Settings(db=DatabaseSettings(database_url=url), district=DistrictSettings(district_code=DISTRICT))


_users = iter(range(1_000_000))


def auth_headers(url: str, role: str, **scope: object) -> dict[str, str]:
    """Create a user of ``role`` (with ``scope``: subdistrict_code=, zone_codes=, unit_code=) in the
    database at ``url`` and return the Authorization header of a fresh token."""
    from datetime import timedelta

    from geo.access import users

    username = f"{role}-{os.getpid()}-{next(_users)}"
    with psycopg.connect(url, autocommit=True) as conn:
        user = users.create_user(
            conn, username=username, password="secret-pass", role=role, district_code=DISTRICT, actor="tests", **scope
        )  # type: ignore[arg-type]
        token, _ = users.issue_token(conn, user, ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def make_people(url: str, prefix: str, scopes: dict[str, dict[str, object]], password: str) -> dict[str, str]:
    """One user per role of ``scopes`` (role -> its scope: subdistrict_code=, zone_codes=, unit_code=),
    named ``<prefix>-<role>``, all with ``password``; role -> username (the pages' tests sign them in)."""
    from geo.access import users

    made = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for role, scope in scopes.items():
            username = f"{prefix}-{role}"
            users.create_user(
                conn, username=username, password=password, role=role, district_code=DISTRICT, actor="tests", **scope
            )  # type: ignore[arg-type]
            made[role] = username
    return made


# A scope that fits each scoped role in the demo district.
DEFAULT_SCOPE: dict[str, dict[str, object]] = {
    "subdistrict_staff": {"subdistrict_code": "xihu"},
    "property_team": {"zone_codes": ("yumin-south", "yumin-north")},
    "survey_team": {"zone_codes": ("jinling",)},
    "contractor": {"unit_code": "contractor-xiangjiang"},
}
