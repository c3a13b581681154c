"""Case categories (事件类别): data in ``layers/categories.toml``, mirrored into
``case_categories`` so that routing can join them in SQL."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg

from geo.errors import InvalidInput
from layers.catalogue import vocabulary

RULES = ("section_contractor", "zone_team", "subdistrict_office")


@dataclass(frozen=True)
class Category:
    """One kind of problem: its service kind, deadline, facility layer and routing rules."""

    code: str
    name: str
    name_en: str
    kind: str
    deadline: str
    facility_layer: str | None
    rules: tuple[str, ...]


@cache
def categories() -> dict[str, Category]:
    """Every category, in file order."""
    raw = tomllib.loads(resources.files("layers").joinpath("categories.toml").read_text(encoding="utf-8"))
    default_rules = tuple(raw.get("defaults", {}).get("rules", RULES))
    kinds = vocabulary("service_kinds")
    out = {}
    for code, item in raw["categories"].items():
        rules = tuple(item.get("rules", default_rules))
        if item["kind"] not in kinds or set(rules) - set(RULES) or len(set(rules)) != len(rules):
            # (assign SQL tries at most three rules: each of RULES once)
            raise ValueError(f"categories.toml: category '{code}' has an unknown kind, or unknown or repeated rules")
        out[code] = Category(
            code=code,
            name=item["name"],
            name_en=item["name_en"],
            kind=item["kind"],
            deadline=item["deadline"],
            facility_layer=item.get("facility_layer"),
            rules=rules,
        )
    return out


def category(code: str) -> Category:
    """The category called ``code`` (its key or its Chinese name), or a 400 naming the allowed ones."""
    found = categories().get(code) or next((c for c in categories().values() if c.name == code), None)
    if found is None:
        allowed = ", ".join(f"{c.code} ({c.name})" for c in categories().values())
        raise InvalidInput(f"category '{code}' is unknown; allowed: {allowed}", field="category")
    return found


def sync_categories(conn: psycopg.Connection) -> None:
    """Mirror the TOML into ``case_categories`` (insert, update, delete), in one transaction."""
    rows = [(c.code, c.name, c.kind, c.deadline, c.facility_layer, list(c.rules)) for c in categories().values()]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO case_categories (code, name, kind, deadline, facility_layer, rules) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
            "kind = EXCLUDED.kind, deadline = EXCLUDED.deadline, facility_layer = EXCLUDED.facility_layer, "
            "rules = EXCLUDED.rules",
            rows,
        )
        cur.execute("DELETE FROM case_categories WHERE code <> ALL(%s)", [[r[0] for r in rows]])
