"""Settings of the verification service (``STATION_VERIFICATION_*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from station_runtime.settings import DatabaseSettings, ServiceSettings

SERVICE = "verification"


class Settings(ServiceSettings, DatabaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATION_VERIFICATION_", frozen=True, extra="ignore"
    )

    port: int = Field(default=8101, ge=0, le=65535)
    min_balance: Decimal = Field(default=Decimal("0.01"), ge=0, allow_inf_nan=False)
    """Below this balance a card may not start a charge: it could not pay for any energy."""
    billing_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for billing to confirm a session's record before booking its debit
    (unconfirmed: ``not_billed``, and billing asks again later)."""
    authorization_ttl: float = Field(default=120.0, gt=0)
    """Seconds an accepted card holds its authorization while its charge has not started.

    Long enough for the collector to open the session at billing; short enough that a
    charge that never started does not lock the card out of every other pile for long.
    """
