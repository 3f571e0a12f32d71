"""Settings of one collector (``STATION_COLLECTOR_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from station_protocol.channels import Z2M_ROOT
from station_protocol.ids import CHARGER_PATTERN
from station_runtime.settings import MeterSettings, ServiceSettings


class Settings(ServiceSettings, MeterSettings):
    """No database settings: a collector keeps nothing on disk. What it must remember across
    a restart (the sessions of its piles, its own fault reports) is retained on the broker."""

    model_config = SettingsConfigDict(env_prefix="STATION_COLLECTOR_", frozen=True, extra="ignore")

    charger: str = Field(default="c1", pattern=CHARGER_PATTERN)
    piles: int = Field(default=12, ge=1, le=99)
    """The charger's first pile set, ``c<i>-p01`` .. ``c<i>-p<piles>``: served until the
    console's word on the station's piles (``station/v1/console/piles``) is heard, which then
    replaces it whole (a pile approved since may be beyond this count)."""
    zigbee_root: str = Z2M_ROOT
    port: int = Field(default=8121, ge=0, le=65535)
    pairing_window: float = Field(default=60.0, gt=0)
    """Seconds within which a plug and a swipe on the same pile pair, in either order."""
    repeat_window: float = Field(default=1.0, ge=0)
    """Seconds within which the same card on the same pile counts as one swipe."""
    t1: float = Field(default=1.0, gt=0)
    """Breath period: a breath frame to every pile and to the local server every T1 seconds."""
    misses: int = Field(default=3, ge=1)
    """A pile (or the local server) is disconnected after ``misses x t1`` with no answer."""
    startup_grace: float = Field(default=120.0, ge=0)
    """Seconds after the start in which a pile, the Zigbee2MQTT bridge or the local server not
    heard yet is "not yet seen" (not up, but not reported): a station's parts start in any
    order. A local server that says it stopped on purpose gets it again to come back."""
    weak_link_below: int = Field(default=40, ge=0, le=255)
    """Zigbee link quality under which a pile's link is reported weak (clears 10 above)."""
    meter_stuck_after: float = Field(default=120.0, gt=0)
    """Seconds a charging pile drawing power may show the same meter reading before a fault."""
    request_timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for verification or billing to answer one request."""
    stop_settle: float = Field(default=3.0, ge=0)
    """Seconds to wait, after a stop command, for the pile to report it stopped metering."""
    max_current: int = Field(default=32, gt=0)
    status_interval: float = Field(default=1.0, gt=0)
    """Seconds between two statuses of one pile for its telemetry alone (power, energy, link
    quality, last seen): coalesced, the last value kept. A change of its board word, session
    or faults is published at once."""
