"""The station's tariff, as an OCPI 2.2.1 Tariff, so it can later be exchanged as is."""

from __future__ import annotations

from datetime import datetime

from station_billing.core.config import Settings
from station_protocol.ocpi import PriceComponent, Tariff, TariffDimensionType, TariffElement


def default_tariff(settings: Settings, last_updated: datetime) -> Tariff:
    """One ENERGY price per kWh for every session (time-of-use bands come with the engine)."""
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
