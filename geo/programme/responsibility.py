"""The plan's responsibility table (责任分工, issue 19 point 6) as data: every department and company the
plan names is a unit with its duty as the plan states it; programme records (baselines, service starts,
publicity, redo items) name their responsible unit from this list."""

from __future__ import annotations

from typing import Any

from geo.steps import Statement, Steps
from layers.catalogue import vocabulary

KINDS: dict[str, str] = vocabulary("unit_kinds").zh


def units(*, district_code: str) -> Steps[list[dict[str, Any]]]:
    """The district's units (no contact details) with their kind and duty, by kind as the vocabulary
    orders them, then name."""
    rows = yield Statement(
        "SELECT u.code, u.name, u.kind, k.name, u.duty FROM units u "
        "LEFT JOIN unnest(%(kinds)s::text[], %(names)s::text[]) WITH ORDINALITY AS k(code, name, n) "
        " ON k.code = u.kind WHERE u.district_code = %(district)s ORDER BY k.n NULLS LAST, u.name, u.code",
        {"kinds": list(KINDS), "names": list(KINDS.values()), "district": district_code},
    )
    return [{"code": c, "name": n, "kind": k, "kind_zh": kz, "duty": d} for c, n, k, kz, d in rows]
