"""Settings by concern, read from ``WUYE_*`` environment variables.

The app factory and the CLI take a :class:`Settings`, so tests build their own.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = SettingsConfigDict(env_prefix="WUYE_", extra="ignore")

# The plan's four standards and their criteria (geo/programme/standards.py judges them), and the parts
# of the performance points: here, so the settings that name them are checked when read.
STANDARD_CRITERIA: dict[str, tuple[str, ...]] = {
    "clean": ("cases", "facilities"),
    "appearance": ("remediation", "remediation_photos"),
    "mechanism": ("property_service", "fee_standard", "collection"),
    "satisfaction": ("satisfaction",),
}
CRITERIA_SWITCHES: tuple[str, ...] = (*STANDARD_CRITERIA, *(c for cs in STANDARD_CRITERIA.values() for c in cs))
POINT_PARTS: tuple[str, ...] = ("first_pass", "redo", "case_on_time", "remediation_on_schedule", "collection")


class DatabaseSettings(BaseSettings):
    """Where the PostGIS database is: an external URL or the embedded cluster."""

    model_config = _ENV

    database_url: str | None = Field(default=None, description="PostGIS ≥ 3.1 to use instead of the embedded cluster")
    home: Path = Field(default=Path("var"), description="state directory (embedded cluster)")
    database_name: str = Field(default="wuye", description="database in the embedded cluster")
    db_listen_tcp: bool = Field(
        default=False, description="embedded cluster also listens on 127.0.0.1 (password asked), not only its socket"
    )
    pool_min_size: int = 2
    pool_max_size: int = Field(default=8, ge=1, description="connections per pool (two pools: sync and async)")
    pool_timeout_s: float = Field(default=5.0, gt=0, description="longest wait for a free connection, then 503")
    pool_max_waiting: int = Field(default=64, ge=0, description="requests allowed to wait for a connection, then 503")
    statement_timeout_ms: int = 30_000


class DistrictSettings(BaseSettings):
    """The jurisdiction this deployment serves."""

    model_config = _ENV

    district_code: str = Field(default="430104", description="administrative code (岳麓区)")
    district_name: str = "岳麓区"


class ServerSettings(BaseSettings):
    """HTTP server and request limits."""

    model_config = _ENV

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 5 * 1024 * 1024
    max_photo_bytes: int = 8 * 1024 * 1024
    cors_origins: list[str] = Field(default_factory=list)
    min_free_disk_mb: int = Field(default=200, ge=0, description="/health answers 503 below this free disk")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")
    shutdown_timeout_s: int = Field(default=8, gt=0, description="SIGTERM: longest wait for requests in flight")
    workers: int = Field(
        default=1,
        ge=0,
        le=32,
        description="wuye serve's processes; 0: one per core this process may use, at most 4 (see README)",
    )

    def worker_count(self) -> int:
        """The processes ``wuye serve`` runs: ``workers``, or one per usable core (at most 4)."""
        if self.workers:
            return self.workers
        import os

        return max(1, min(len(os.sched_getaffinity(0)), 4))


class AuthSettings(BaseSettings):
    """Tokens and sign-in limits."""

    model_config = _ENV

    token_minutes: int = Field(default=480, description="bearer token lifetime (a working day)")
    idle_minutes: int = Field(default=30, ge=1, description="a session ends after this long without use")
    password_classes: int = Field(
        default=3, ge=1, le=4, description="character classes a new password mixes (lower, upper, digits, others)"
    )
    password_max_days: int | None = Field(
        default=None, ge=1, description="a password older than this must be changed before signing in (optional)"
    )
    audit_retention_days: int = Field(
        default=180, ge=180, description="the audit trail is kept at least this long (等保 2.0: six months)"
    )
    login_attempts: int = Field(default=5, description="failed sign-ins of a username before the delay")
    login_address_attempts: int = Field(default=20, description="failed sign-ins from one address before the delay")
    login_delay_seconds: float = Field(default=30.0, description="the first delay; it doubles with each failure")
    login_max_delay_seconds: float = Field(default=900.0, description="the longest delay")
    login_window_seconds: int = Field(default=3600, description="a counter starts again after this long")
    trusted_proxies: str = Field(
        default="",
        description="addresses or networks (comma-separated) of the reverse proxies whose X-Forwarded-For "
        "names the client; from anyone else the header is ignored (default: none)",
    )
    demo_users: bool = Field(
        default=True,
        description="WUYE_DEMO_USERS: false refuses `wuye demo --users` and signing in with a demo account",
    )


class CaseSettings(BaseSettings):
    """The case workflow's timing."""

    model_config = _ENV

    escalation_grace_hours: float = Field(default=24.0, description="overdue this long → sub-district office")
    escalation_interval_seconds: float = Field(default=300.0, description="how often serve checks (0: never)")
    pii_retention_days: int = Field(
        default=365, ge=0, description="reporters' names and phones are erased this long after a case is closed"
    )


class WebhookSettings(BaseSettings):
    """Case notices POSTed to units' group robots (企业微信, 钉钉): ``WUYE_WEBHOOK_*``."""

    model_config = SettingsConfigDict(env_prefix="WUYE_WEBHOOK_", extra="ignore")

    urls: dict[str, str] = Field(
        default_factory=dict, description='WUYE_WEBHOOK_URLS: JSON {"unit_code": "https://…"}; none by default'
    )
    interval_seconds: float = Field(default=5.0, description="how often serve sends what is due (0: never)")
    retry_seconds: float = Field(default=30.0, description="first wait after a failure; doubled each time")
    max_attempts: int = Field(default=6, ge=1, description="then the delivery is logged as failed")
    timeout_s: float = Field(default=5.0, description="per POST")


class Settings(BaseSettings):
    """All settings, grouped by concern."""

    model_config = _ENV

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    district: DistrictSettings = Field(default_factory=DistrictSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    acceptance: AcceptanceSettings = Field(default_factory=lambda: AcceptanceSettings())
    programme: ProgrammeSettings = Field(default_factory=lambda: ProgrammeSettings())


class AcceptanceSettings(BaseSettings):
    """The acceptance rule's thresholds (考核验收): a zone passes only above all of them."""

    model_config = _ENV

    satisfaction_pass_percent: int = Field(
        default=85, ge=0, le=100, description="minimum satisfaction rate, in whole percent (compared in integers)"
    )
    case_overdue_grace_hours: int = Field(
        default=72, ge=0, description="an open case overdue by more than this many hours fails the zone"
    )
    survey_round: str | None = Field(
        default=None,
        description="survey round judged for the zones it covers, unless an administrator fixed another "
        "(default: each zone's latest round with answers)",
    )
    document_number_pattern: str = Field(
        default="岳麓城管验〔{year}〕{seq}号",
        description="number of an issued acceptance document: {year} and {seq} (the year's sequence)",
    )
    redo_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="calendar days after an issued 补课 verdict by which each item of its redo plan is due",
    )
    patrol_min_scans: int = Field(
        default=1, ge=1, le=100, description="a checkpoint counts as patrolled on a day with at least this many scans"
    )
    min_patrol_coverage: float = Field(
        default=80.0,
        ge=0,
        le=100,
        description="a zone whose last full week's patrol coverage (percent) is below this is flagged",
    )
    # the plan's four standards (issue 19 point 4): each criterion's threshold
    min_facilities_normal_percent: int = Field(
        default=95,
        ge=0,
        le=100,
        description="脏乱差现象消除: at least this share (whole percent) of the zone's facilities normal at their "
        "last inspection (compared in integers)",
    )
    min_collection_percent: int = Field(
        default=80,
        ge=0,
        le=100,
        description="长效机制形成: once charging may have started, fee collection by amount at least this "
        "(whole percent, compared exactly)",
    )
    standard_case_kinds: list[str] = Field(
        default_factory=lambda: ["sanitation", "public_order"],
        min_length=1,
        description="脏乱差现象消除: the service kinds whose open cases overdue beyond the grace period fail the zone",
    )
    criteria_off: dict[int, list[str]] = Field(
        default_factory=dict,
        description='WUYE_CRITERIA_OFF: JSON {"2023": ["mechanism", "facilities"]}: standards (clean, appearance, '
        "mechanism, satisfaction) or single criteria switched off for zones of that programme year",
    )
    # 以奖代补 and performance points (issue 19 point 5)
    reward_basis: Literal["zone", "household"] = Field(
        default="zone", description="以奖代补: the reward is an amount per zone, or per recorded household"
    )
    reward_amount: Decimal = Field(
        default=Decimal("0"), ge=0, max_digits=14, decimal_places=2, description="yuan per zone or per household"
    )
    reward_zones: dict[str, Decimal] = Field(
        default_factory=dict, description='WUYE_REWARD_ZONES: JSON {"zone_code": yuan}: a zone\'s own reward'
    )
    points_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "first_pass": 30.0,
            "case_on_time": 25.0,
            "remediation_on_schedule": 25.0,
            "collection": 20.0,
            "redo": 5.0,
        },
        description="performance points: weight × rate (0-1) for first_pass, case_on_time, remediation_on_schedule "
        "and collection; redo: points taken off per 补课 verdict issued",
    )

    @field_validator("criteria_off")
    @classmethod
    def _known_criteria(cls, value: dict[int, list[str]]) -> dict[int, list[str]]:
        for year, keys in value.items():
            unknown = sorted(set(keys) - set(CRITERIA_SWITCHES))
            if unknown:
                raise ValueError(f"criteria_off {year}: unknown {unknown}; known: {', '.join(CRITERIA_SWITCHES)}")
        return value

    @field_validator("points_weights")
    @classmethod
    def _known_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(POINT_PARTS))
        if unknown or any(w < 0 for w in value.values()):
            raise ValueError(f"points_weights: unknown {unknown} or a negative weight; known: {', '.join(POINT_PARTS)}")
        return value


class ProgrammeSettings(BaseSettings):
    """The programme's rules (issue 19): 先宣传后实施, 先服务后收费."""

    model_config = _ENV

    publicity_required: bool = Field(
        default=True,
        description="a zone's remediation tasks start only once it has a publicity record (先宣传后实施)",
    )
    fee_grace_months: int = Field(
        default=2,
        ge=0,
        le=36,
        description="fees are charged from the first full month after the service start plus this many months",
    )


# AcceptanceSettings and ProgrammeSettings are defined after Settings (appended), so resolve the forward reference now.
Settings.model_rebuild()
