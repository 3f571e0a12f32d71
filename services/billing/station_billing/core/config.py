"""Billing settings (``STATION_BILLING_*`` environment variables), parsed once into typed values."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, StringConstraints, field_validator
from pydantic_settings import SettingsConfigDict

from station_runtime.settings import (
    DatabaseSettings,
    MeterSettings,
    ServiceSettings,
    StationLayout,
    TimeZone,
)

SERVICE = "billing"


class Settings(ServiceSettings, DatabaseSettings, MeterSettings):
    """How this station bills.

    ``price_per_kwh`` is the price the driver pays per kWh. With ``vat_percent`` unset
    (the default) the price carries no VAT, as OCPI reads an omitted ``vat``: the total
    including VAT equals the total excluding it. Set ``vat_percent`` (13 for 13 %) only when
    VAT is to be added on top of ``price_per_kwh``.
    """

    model_config = SettingsConfigDict(env_prefix="STATION_BILLING_", frozen=True, extra="ignore")

    port: int = Field(default=8102, ge=0, le=65535)
    station_id: str = "station-1"
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    default_tariff_id: Annotated[str, StringConstraints(min_length=1, max_length=36)] = "default"
    price_per_kwh: Decimal = Field(default=Decimal("1.20"), ge=0, allow_inf_nan=False)
    vat_percent: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    operator_stop_wait: float = Field(default=15.0, ge=0)
    """Seconds ``POST /sessions/{id}/stop`` waits for the collector's checkout before 202."""
    time_zone: TimeZone = ZoneInfo("Asia/Shanghai")
    """IANA zone in which tariff restrictions (time bands, days) are evaluated."""
    layout: StationLayout | None = None
    """``NxM``: the station's first pile set, until the console's word on the piles arrives
    (``station/v1/console/piles``), which replaces it whole: the piles sessions open on and
    that get the tariff display before anyone charges.

    Without a layout billing takes any pile until the console's first word, and shows the
    tariff on the piles it hears of (a session, a meter reading).
    """
    meter_sample_interval: float = Field(default=15.0, gt=0)
    """Seconds between kept meter samples of a session while nothing price-relevant changes.

    A reading where the pile starts or stops charging, or whose current or power crosses a
    tariff limit, is always kept; the others at most this often.
    """
    running_cost_interval: float = Field(default=5.0, ge=0)
    """Seconds between two checks of a session's running cost against the card's balance."""
    stop_repeat_interval: float = Field(default=10.0, gt=0)
    """Seconds before asking a collector again to stop a session whose balance ran out."""
    debit_timeout: float = Field(default=2.0, gt=0)
    """Seconds checkout waits for verification to book the debit before the receipt goes."""
    debit_retry_interval: float = Field(default=5.0, gt=0)
    """Seconds between two rounds over the debits verification has not acknowledged."""
    balance_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for a card's balance when the session open did not carry it."""
    display_max_wait: float = Field(default=300.0, gt=0)
    """The tariff displays are published again at least this often (seconds)."""

    @field_validator("layout", mode="before")
    @classmethod
    def _no_layout(cls, value: Any) -> Any:
        # ``STATION_BILLING_LAYOUT=`` (empty) means no layout, as it always has.
        return None if value == "" else value
