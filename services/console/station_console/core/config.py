"""Console settings (``STATION_CONSOLE_*`` environment variables), parsed once, here."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AnyHttpUrl, Field
from pydantic_settings import SettingsConfigDict

from station_protocol.channels import Z2M_ROOT
from station_protocol.ids import Layout
from station_runtime.settings import DatabaseSettings, ServiceSettings, StationLayout, TimeZone

SERVICE = "console"

Language = Literal["zh", "en"]


class Settings(ServiceSettings, DatabaseSettings):
    """Where the owners are, how the board speaks, how long history is kept.

    The database (``STATION_CONSOLE_DATABASE_URL``, by default
    ``sqlite:///<data_dir>/console.db``) holds the console's own: the monitoring history,
    the station's pile set and the registrations of new devices.
    """

    model_config = SettingsConfigDict(env_prefix="STATION_CONSOLE_", frozen=True, extra="ignore")

    port: int = Field(default=8100, ge=0, le=65535)
    station_name: str = Field(default="station", max_length=64)
    """Shown at the top of the board."""
    layout: StationLayout = Layout(4, 12)
    """The station's chargers x piles (``4x12``): its chargers, and its first pile set. The
    set is stored at the console's first start and changes afterwards only through pile
    registration and decommissioning (``console_piles``), never through this setting."""
    zigbee_root: str = Z2M_ROOT
    """The chargers' Zigbee2MQTT base topics are ``<zigbee_root>/<charger>``."""
    bridge_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds to wait for a charger's Zigbee2MQTT to answer a registration request."""
    language: Language = "zh"
    """The board's language until a viewer switches it."""
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    """The currency of the day's revenue on the board (billing's, ``STATION_BILLING_CURRENCY``)."""
    time_zone: TimeZone = ZoneInfo("Asia/Shanghai")
    """Where "today" begins for the day's sessions, energy and revenue."""
    verification_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8101")
    billing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8102")
    faults_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8103")
    owner_timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for an owner's REST answer before telling the caller it is away."""
    kiosk_timeout: float = Field(default=15.0, gt=0)
    """Seconds a kiosk start may take: verification, then billing, then the pile."""
    history_days: int = Field(default=7, ge=1, le=366)
    """Days of monitoring history kept per pile; older rows are deleted."""
    link_bucket: float = Field(default=900.0, gt=0)
    """Seconds of link quality folded into one stored sample (min and mean)."""
