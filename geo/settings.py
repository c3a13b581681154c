"""Settings by concern, read from ``WUYE_*`` environment variables.

The app factory and the CLI take a :class:`Settings`, so tests build their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = SettingsConfigDict(env_prefix="WUYE_", extra="ignore")


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


class AuthSettings(BaseSettings):
    """Tokens and sign-in limits."""

    model_config = _ENV

    token_minutes: int = Field(default=480, description="bearer token lifetime (a working day)")
    login_attempts: int = Field(default=5, description="failed sign-ins allowed per window")
    login_window_seconds: int = 300


class CaseSettings(BaseSettings):
    """The case workflow's timing."""

    model_config = _ENV

    escalation_grace_hours: float = Field(default=24.0, description="overdue this long → sub-district office")
    escalation_interval_seconds: float = Field(default=300.0, description="how often serve checks (0: never)")


class Settings(BaseSettings):
    """All settings, grouped by concern."""

    model_config = _ENV

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    district: DistrictSettings = Field(default_factory=DistrictSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    acceptance: AcceptanceSettings = Field(default_factory=lambda: AcceptanceSettings())


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


# AcceptanceSettings is defined after Settings (appended), so resolve the forward reference now.
Settings.model_rebuild()
