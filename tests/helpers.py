"""Small builders for test files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

# Inside 观沙岭街道 (and the district), away from the zones' edges.
INSIDE = (112.952, 28.232)


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(lon: float, lat: float, size: float = 0.001) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8"
    )
    return path


def count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def lights(n: int, prefix: str = "T", start: tuple[float, float] = INSIDE) -> list[dict[str, Any]]:
    """``n`` valid street-light features in a row, 1e-4 degrees apart."""
    return [
        feature(point(start[0] + i * 1e-4, start[1]), code=f"{prefix}-{i:04d}", condition="normal", power_w=60)
        for i in range(n)
    ]
