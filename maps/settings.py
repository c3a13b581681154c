"""Map settings (``WUYE_BASEMAP``, ``WUYE_TIANDITU_KEY``), kept with the maps that read them."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maps import basemap as local_basemap

REMOTE = ("none", "osm", "tianditu", "amap")


class MapSettings(BaseSettings):
    """Which basemap the pages draw under our layers; ``none`` keeps every request on our server.

    ``basemap`` is one of none, osm, tianditu, amap, or a tile file of our own served by the app
    (``mbtiles:PATH`` or ``pmtiles:PATH``, raster or vector), checked when the settings are read.
    """

    model_config = SettingsConfigDict(env_prefix="WUYE_", extra="ignore")

    basemap: str = "none"
    tianditu_key: str | None = None
    snapshot_timeout_s: float = 30.0

    @model_validator(mode="after")
    def _check_basemap(self) -> MapSettings:
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError("WUYE_BASEMAP=tianditu needs WUYE_TIANDITU_KEY (a key from console.tianditu.gov.cn)")
        if self.basemap not in REMOTE:
            if local_basemap.parse(self.basemap) is None:
                raise local_basemap.BasemapError(
                    f"WUYE_BASEMAP={self.basemap!r}: use one of {', '.join(REMOTE)}, mbtiles:PATH or pmtiles:PATH"
                )
            local_basemap.open_archive(self.basemap)  # a missing or unreadable file stops the start
        return self

    def local(self) -> local_basemap.Archive | None:
        """The opened MBTiles/PMTiles archive when the basemap is one."""
        return None if self.basemap in REMOTE else local_basemap.open_archive(self.basemap)
