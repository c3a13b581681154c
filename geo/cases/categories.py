"""Case categories (事件类别): data in ``layers/categories.toml``, mirrored into
``case_categories`` so that routing can join them in SQL."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg

from geo.errors import InvalidInput
from layers.catalogue import load_catalogue, vocabulary

RULES = ("section_contractor", "zone_team", "subdistrict_office")
FACILITY_RADIUS_M = 30.0  # a case links to the nearest facility within this, unless its category says


@dataclass(frozen=True)
class Category:
    """One kind of problem: its service kind, deadline, facility layers and routing rules."""

    code: str
    name: str
    name_en: str
    kind: str
    deadline: str
    facility_layers: tuple[str, ...]  # searched together for the nearest facility (points and lines)
    rules: tuple[str, ...]
    facility_radius_m: float = FACILITY_RADIUS_M

    @property
    def facility_layer(self) -> str | None:
        """The first facility layer (``case_categories.facility_layer``, older clients), if any."""
        return self.facility_layers[0] if self.facility_layers else None


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
        layers = _facility_layers(code, item)
        out[code] = Category(
            code=code,
            name=item["name"],
            name_en=item["name_en"],
            kind=item["kind"],
            deadline=item["deadline"],
            facility_layers=layers,
            rules=rules,
            facility_radius_m=float(item.get("facility_radius_m", FACILITY_RADIUS_M)),
        )
    return out


def _facility_layers(code: str, item: dict[str, object]) -> tuple[str, ...]:
    """The category's facility layers (``facility_layers = [...]``, or one ``facility_layer``), each a
    facility layer of the catalogue."""
    raw = item.get("facility_layers", [item["facility_layer"]] if "facility_layer" in item else [])
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw) or len(set(raw)) != len(raw):
        raise ValueError(f"categories.toml: category '{code}': facility_layers must be a list of layer names")
    catalogue = load_catalogue()
    unknown = [name for name in raw if name not in catalogue or not catalogue[name].facility]
    if unknown:
        raise ValueError(f"categories.toml: category '{code}' names {unknown}, which are not facility layers")
    return tuple(raw)


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
