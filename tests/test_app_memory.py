"""An app a process has built and dropped is freed. FastAPI keeps what it learnt of each endpoint and
dependency in process-wide caches keyed by the callable (thousands of entries): an endpoint that was a
closure over its app (``/api``, ``/health``) kept every app a process built alive. A test worker held
~250 of them (10 M objects), and each full garbage collection, one at every app's start among them,
took 10 s. Real PostGIS for the started app."""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import settings_for


def _dropped(build) -> bool:  # type: ignore[no-untyped-def]
    ref = weakref.ref(build())
    gc.collect()
    return ref() is None


def test_an_app_built_and_dropped_is_freed():
    assert _dropped(create_app)


def test_an_app_that_served_and_stopped_is_freed(shared_db_url):
    def served():  # type: ignore[no-untyped-def]
        app = create_app(settings_for(shared_db_url))
        with TestClient(app) as client:
            assert client.get("/health").status_code in (200, 503)  # the health route ran
            assert client.get("/api").status_code == 200  # and the OpenAPI document's
        return app

    assert _dropped(served)
