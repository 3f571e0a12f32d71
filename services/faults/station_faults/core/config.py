"""Faults settings (``STATION_FAULTS_*`` environment variables), parsed once, here."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from station_protocol.ids import Layout
from station_runtime.settings import DatabaseSettings, ServiceSettings, StationLayout

SERVICE = "faults"


class Settings(ServiceSettings, DatabaseSettings):
    """How the faults service decides and announces.

    The database is ``STATION_FAULTS_DATABASE_URL``, by default ``sqlite:///<data_dir>/faults.db``
    (see :class:`~station_runtime.settings.DatabaseSettings`).
    """

    model_config = SettingsConfigDict(env_prefix="STATION_FAULTS_", frozen=True, extra="ignore")

    port: int = Field(default=8103, ge=0, le=65535)
    misses: int = Field(default=3, ge=1, le=100)
    """A collector is offline after this many breath periods (its own T1) without a breath."""
    hold_down: float = Field(default=10.0, ge=0)
    """Seconds after a clear in which the same fault coming back continues its episode."""
    layout: StationLayout = Layout(4, 12)
    """The station's chargers x piles (``4x12``), so the fault board shows every pile,
    faulty or not."""
    reconcile_interval: float = Field(default=30.0, gt=0)
    """Seconds between checks that the retained bulletins match the open episodes."""
    startup_grace: float = Field(default=120.0, ge=0)
    """Seconds a collector not heard since this service started, or since it said it stopped
    on purpose (a restart), may stay silent before it is announced offline."""
    forget_after: float = Field(default=86400.0, gt=0)
    """At start, collectors silent for longer than this are not expected to breathe."""
    catalogue_path: Path | None = None
    """An operator's own fault catalogue; default the one that ships with the protocol."""
