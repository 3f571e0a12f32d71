"""Settings of one collector (``STATION_COLLECTOR_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from station_protocol.ids import CHARGER_PATTERN
from station_protocol.service.settings import ServiceSettings
from station_protocol.topics import Z2M_ROOT


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATION_COLLECTOR_", frozen=True, extra="ignore")

    charger: str = Field(default="c1", pattern=CHARGER_PATTERN)
    piles: int = Field(default=12, ge=1, le=99)
    """How many piles this charger has: ``c<i>-p01`` .. ``c<i>-p<piles>`` are registered."""
    zigbee_root: str = Z2M_ROOT
    port: int = Field(default=8121, ge=0, le=65535)
    pairing_window: float = Field(default=60.0, gt=0)
    """Seconds within which a plug and a swipe on the same pile pair, in either order."""
    repeat_window: float = Field(default=1.0, ge=0)
    """Seconds within which the same card on the same pile counts as one swipe."""
    t1: float = Field(default=1.0, gt=0)
    request_timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for verification or billing to answer one request."""
    stop_settle: float = Field(default=3.0, ge=0)
    """Seconds to wait, after a stop command, for the pile to report it stopped metering."""
    max_current: int = Field(default=32, gt=0)
    data_dir: Path = Path(".station")
