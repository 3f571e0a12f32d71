"""Settings of the verification service (``STATION_VERIFICATION_*``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from station_protocol.service.settings import ServiceSettings

SERVICE = "verification"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATION_VERIFICATION_", frozen=True, extra="ignore"
    )

    port: int = Field(default=8101, ge=0, le=65535)
    data_dir: Path = Path(".station")
    database_url: str = ""
    """Empty means ``sqlite:///<data_dir>/verification.db``; a ``postgresql://`` URL works too."""
    min_balance: Decimal = Field(default=Decimal("0.01"), ge=0, allow_inf_nan=False)
    """Below this balance a card may not start a charge: it could not pay for any energy."""
    authorization_ttl: float = Field(default=120.0, gt=0)
    """Seconds an accepted card holds its authorization while its charge has not started.

    Long enough for the collector to open the session at billing; short enough that a
    charge that never started does not lock the card out of every other pile for long.
    """

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'verification.db'}"
