"""OCPI 2.2.1 models the station prices with: Price, Tariff (and its parts).

Money is ``Decimal`` and travels as a JSON string (``"1.20"``), so no float ever touches it.
Field names are OCPI's own, so that a Tariff can be exchanged with any OCPI party as is.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from station_protocol.times import Instant

Money = Annotated[Decimal, Field(allow_inf_nan=False)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Price(BaseModel):
    """OCPI Price: an amount excluding and including VAT."""

    model_config = ConfigDict(frozen=True)

    excl_vat: Money
    incl_vat: Money


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class PriceComponent(BaseModel):
    """Price per unit of a dimension (kWh, hour, session) excluding VAT.

    ``vat`` omitted means the price carries no VAT (incl = excl), which OCPI distinguishes
    from ``vat: 0``.
    """

    model_config = ConfigDict(frozen=True)

    type: TariffDimensionType
    price: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    vat: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None
    step_size: Annotated[int, Field(ge=0)] = 0


class TariffRestrictions(BaseModel):
    model_config = ConfigDict(frozen=True)

    start_time: time | None = None
    end_time: time | None = None
    start_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    end_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    min_kwh: Decimal | None = Field(default=None, ge=0)
    max_kwh: Decimal | None = Field(default=None, ge=0)
    min_current: Decimal | None = Field(default=None, ge=0)
    max_current: Decimal | None = Field(default=None, ge=0)
    min_power: Decimal | None = Field(default=None, ge=0)
    max_power: Decimal | None = Field(default=None, ge=0)
    min_duration: int | None = Field(default=None, ge=0)
    max_duration: int | None = Field(default=None, ge=0)
    day_of_week: list[DayOfWeek] | None = None
    reservation: str | None = None


class TariffElement(BaseModel):
    model_config = ConfigDict(frozen=True)

    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(BaseModel):
    """OCPI 2.2.1 Tariff object."""

    model_config = ConfigDict(frozen=True)

    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "CN"
    party_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")] = "STN"
    id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    currency: CurrencyCode
    elements: list[TariffElement] = Field(min_length=1)
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: AwareDatetime | None = None
    end_date_time: AwareDatetime | None = None
    last_updated: AwareDatetime


class CdrDimensionType(StrEnum):
    """OCPI 2.2.1 CdrDimensionType: what a charging period's volume measures."""

    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


class CdrDimension(BaseModel):
    """One measured volume of a charging period: kWh, hours (TIME, PARKING_TIME), A, kW."""

    model_config = ConfigDict(frozen=True)

    type: CdrDimensionType
    volume: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ChargingPeriod(BaseModel):
    """OCPI 2.2.1 CdrChargingPeriod: from ``start_date_time`` to the next period (or the end)."""

    model_config = ConfigDict(frozen=True)

    start_date_time: Instant
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: Annotated[str, StringConstraints(max_length=36)] | None = None
