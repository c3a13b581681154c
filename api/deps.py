"""Request dependencies: a pooled connection and the settings/catalogue on app.state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from geo.settings import Settings
from layers.catalogue import Catalogue


def _connection(request: Request) -> Iterator[psycopg.Connection]:
    with request.app.state.pool.connection() as conn:
        yield conn


async def _settings(request: Request) -> Settings:  # async: no thread hop for a lookup
    settings: Settings = request.app.state.settings
    return settings


async def _catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


Connection = Annotated[psycopg.Connection, Depends(_connection)]
AppSettings = Annotated[Settings, Depends(_settings)]
AppCatalogue = Annotated[Catalogue, Depends(_catalogue)]
