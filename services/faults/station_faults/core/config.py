"""Faults settings (``STATION_FAULTS_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from station_protocol.ids import Layout
from station_runtime.settings import ServiceSettings

SERVICE = "faults"


class Settings(ServiceSettings):
    """How the faults service decides and announces."""

    model_config = SettingsConfigDict(env_prefix="STATION_FAULTS_", frozen=True, extra="ignore")

    port: int = Field(default=8103, ge=0, le=65535)
    data_dir: Path = Path(".station")
    database_url: str = ""
    """Default ``sqlite:///<data_dir>/faults.db``; a ``postgresql://`` URL works too."""
    misses: int = Field(default=3, ge=1, le=100)
    """A collector is offline after this many breath periods (its own T1) without a breath."""
    hold_down: float = Field(default=10.0, ge=0)
    """Seconds after a clear in which the same fault coming back continues its episode."""
    layout: str = "4x12"
    """The station's chargers x piles, so the fault board shows every pile, faulty or not."""
    reconcile_interval: float = Field(default=30.0, gt=0)
    """Seconds between checks that the retained bulletins match the open episodes."""
    forget_after: float = Field(default=86400.0, gt=0)
    """At start, collectors silent for longer than this are not expected to breathe."""
    catalogue_path: Path | None = None
    """An operator's own fault catalogue; default the one that ships with the protocol."""

    @field_validator("layout")
    @classmethod
    def _valid_layout(cls, value: str) -> str:
        Layout.parse(value)
        return value

    @property
    def station_layout(self) -> Layout:
        return Layout.parse(self.layout)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / f'{SERVICE}.db'}"
