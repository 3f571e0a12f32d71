"""The OCPI 2.2.1 tariffs billing makes itself, and how it writes a tariff as OCPI JSON.

Rule 10 of ``docs/pricing.md``, Chinese time of use: the electricity price and the service
fee per kWh are one ENERGY price per band (OCPI lets only one ENERGY component be active at a
time), so a peak / flat / valley tariff is one element per band with an ENERGY component of
electricity plus service fee, restricted to the band's hours (:func:`time_of_use_tariff`).
A European tariff (per kWh, per hour charging, parking after charging) is the same Tariff
with ENERGY, TIME and PARKING_TIME components.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from station_billing.core.config import Settings
from station_protocol.ocpi import (
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)


def default_tariff(settings: Settings, last_updated: datetime) -> Tariff:
    """One ENERGY price per kWh: what the station charges where no tariff is assigned."""
    return Tariff(
        id=settings.default_tariff_id,
        currency=settings.currency,
        elements=[
            TariffElement(
                price_components=[
                    PriceComponent(
                        type=TariffDimensionType.ENERGY,
                        price=settings.price_per_kwh,
                        vat=settings.vat_percent,
                    )
                ]
            )
        ],
        last_updated=last_updated,
    )


@dataclass(frozen=True)
class Band:
    """A Chinese time-of-use band: local hours and the electricity price per kWh in it."""

    start: time
    end: time
    electricity: Decimal


def time_of_use_tariff(
    tariff_id: str,
    currency: str,
    bands: Sequence[Band],
    service_fee: Decimal,
    last_updated: datetime,
    vat: Decimal | None = None,
    parking_per_hour: Decimal | None = None,
) -> Tariff:
    """Peak / flat / valley bands plus a service fee per kWh, as one OCPI tariff (rule 10)."""
    elements = [
        TariffElement(
            price_components=[
                PriceComponent(
                    type=TariffDimensionType.ENERGY, price=band.electricity + service_fee, vat=vat
                )
            ],
            restrictions=TariffRestrictions(start_time=band.start, end_time=band.end),
        )
        for band in bands
    ]
    if parking_per_hour is not None:
        elements.append(
            TariffElement(
                price_components=[
                    PriceComponent(
                        type=TariffDimensionType.PARKING_TIME, price=parking_per_hour, vat=vat
                    )
                ]
            )
        )
    return Tariff(id=tariff_id, currency=currency, elements=elements, last_updated=last_updated)


def tariff_json(tariff: Tariff) -> dict[str, Any]:
    """The tariff as OCPI JSON: money as exact strings, times ``HH:MM`` as OCPI writes them."""
    data: dict[str, Any] = tariff.model_dump(mode="json", exclude_none=True)
    for element in data["elements"]:
        restrictions = element.get("restrictions")
        for name in ("start_time", "end_time"):
            if restrictions is not None and name in restrictions:
                restrictions[name] = restrictions[name][:5]
    return data
