"""Map settings (``WUYE_BASEMAP``, ``WUYE_TIANDITU_KEY``), kept with the maps that read them."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Basemap = Literal["none", "osm", "tianditu", "amap"]


class MapSettings(BaseSettings):
    """Which basemap the pages draw under our layers; ``none`` keeps every request on our server."""

    model_config = SettingsConfigDict(env_prefix="WUYE_", extra="ignore")

    basemap: Basemap = "none"
    tianditu_key: str | None = None
    snapshot_timeout_s: float = 30.0

    @model_validator(mode="after")
    def _tianditu_needs_key(self) -> MapSettings:
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError("WUYE_BASEMAP=tianditu needs WUYE_TIANDITU_KEY (a key from console.tianditu.gov.cn)")
        return self
