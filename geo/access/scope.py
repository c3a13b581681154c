"""Who is calling and what they may touch: roles, principals and their geographic scope.

A :class:`Principal` is built once per request (from a bearer token or an
Open311 api_key) and passed into every geo/ function that reads or writes
scoped data, which turns it into a WHERE clause (see :func:`scope_clause`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql

from geo.errors import Forbidden, Unauthenticated
from layers.catalogue import vocabulary

Role = Literal[
    "admin",
    "planner",
    "subdistrict_staff",
    "property_team",
    "contractor",
    "survey_team",
    "security_admin",
    "audit_admin",
    "resident",
    "anonymous",
]
ROLES: dict[str, str] = vocabulary("roles").zh  # role -> Chinese label (layers/vocabulary.toml)
LAYER_EDITORS: tuple[str, ...] = ("admin", "planner")
UNSCOPED_ROLES: tuple[str, ...] = ("admin", "planner")
# Separated duties (等保 2.0 三员分立) beside the system administrator: the security administrator keeps
# users, roles and api_keys; the audit administrator reads the audit trail. Neither sees case data.
DUTY_ROLES: tuple[str, ...] = ("security_admin", "audit_admin")


@dataclass(frozen=True)
class Principal:
    """The caller: a user with a role and, for scoped roles, the codes of their scope."""

    username: str
    role: Role
    user_id: int | None = None
    subdistrict_code: str | None = None  # subdistrict_staff
    zone_codes: tuple[str, ...] = ()  # property_team, survey_team
    unit_code: str | None = None  # contractor / property_team / subdistrict office
    # The scope's names for people to read (the navigation bar): sub-district, zones, unit, in that
    # order; empty when not looked up. Never used to decide access: the codes above do.
    scope_names: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_anonymous(self) -> bool:
        """True for a caller who has not signed in."""
        return self.role == "anonymous"

    @property
    def actor(self) -> str:
        """How writes record this caller (audit columns)."""
        return self.username


ANONYMOUS = Principal(username="anonymous", role="anonymous")


def require(principal: Principal, *roles: str) -> None:
    """Raise 401 for an anonymous caller and 403 for a role not in ``roles``."""
    if principal.role in roles:
        return
    if principal.is_anonymous:
        raise Unauthenticated("sign in first: this action needs one of the roles " + ", ".join(roles))
    raise Forbidden(
        f"role '{principal.role}' ({ROLES[principal.role]}) may not do this; it needs one of: {', '.join(roles)}"
    )


def require_layer_editor(principal: Principal) -> None:
    """Edits of boundary and facility layers: planners and administrators."""
    require(principal, *LAYER_EDITORS)


def zone_scope(principal: Principal, zone_code: sql.Composable) -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE-clause predicate limiting rows to the zones the caller acts in, with its parameters.

    ``zone_code`` is the (qualified) column holding the row's zone code. Unscoped
    roles (administrators, planners) see everything; scoped roles see their
    sub-district's zones, their own zones, or the zones of their contract sections.
    """
    params: dict[str, Any] = {
        "scope_all": principal.role in UNSCOPED_ROLES,
        "scope_subdistrict": principal.subdistrict_code if principal.role == "subdistrict_staff" else None,
        "scope_zones": list(principal.zone_codes) if principal.role in ("property_team", "survey_team") else [],
        "scope_unit": principal.unit_code if principal.role == "contractor" else None,
    }
    predicate = sql.SQL(
        "(%(scope_all)s OR {z} IN (SELECT code FROM zones WHERE subdistrict_code = %(scope_subdistrict)s) "
        "OR {z} = ANY(%(scope_zones)s::text[]) "
        "OR {z} IN (SELECT zone_code FROM contract_sections WHERE contractor_unit = %(scope_unit)s))"
    ).format(z=zone_code)
    return predicate, params


def area_scope(principal: Principal, geom: sql.Composable) -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE-clause predicate limiting rows to those whose geometry lies in (intersects) a zone the
    caller acts in (:func:`zone_scope`), with its parameters; unscoped roles see everything, also what
    lies outside every zone. ``geom`` is the (qualified) geometry column, in the zones' CRS."""
    predicate, params = zone_scope(principal, sql.SQL("scope_zone.code"))
    return sql.SQL(
        "(%(scope_all)s OR EXISTS (SELECT 1 FROM zones scope_zone WHERE ST_Intersects(scope_zone.geom, {g}) AND {p}))"
    ).format(g=geom, p=predicate), params


def case_scope(principal: Principal, alias: str = "c") -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE-clause predicate: the case (table alias ``alias``) lies in the caller's area, with its
    parameters. The text is the same for every caller (only the parameters differ), so statements
    prepared once can carry it.

    - administrators and planners: every case;
    - sub-district staff: every case whose point lies in their sub-district — also those outside every
      zone and those routed to the sub-district office (public order, triage), which have no zone of
      theirs to match — and the cases of the sub-district's zones;
    - property teams: their zones' cases and whatever is routed to their unit;
    - contractors: what is routed to them and what lies in their own contract sections;
    - survey teams: their zones' cases (what they see of them is the public view, see geo/cases).
    """
    a = sql.Identifier(alias)
    zone_predicate, params = zone_scope(principal, sql.SQL("{}.zone_code").format(a))
    params = {
        **params,
        "scope_contractor": principal.role == "contractor",
        "scope_team_unit": principal.unit_code if principal.role == "property_team" else None,
    }
    predicate = sql.SQL(
        "coalesce(CASE WHEN %(scope_contractor)s THEN ({a}.unit_code = %(scope_unit)s OR {a}.section_code IN "
        "(SELECT code FROM contract_sections WHERE contractor_unit = %(scope_unit)s)) "
        "ELSE ({zone} OR {a}.subdistrict_code = %(scope_subdistrict)s "
        "OR {a}.unit_code = %(scope_team_unit)s) END, false)"
    ).format(a=a, zone=zone_predicate)
    return predicate, params
