"""Compiled tariffs are found by tariff id and version; two configured defaults never mix."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from station_billing.compiled_tariffs import CompiledTariffs
from station_billing.core.config import Settings
from station_billing.models import ChargingSession
from station_billing.ocpi_tariffs import default_tariff
from station_billing.pricing import CompiledTariff
from station_billing.tariff_store import StoredTariff
from station_protocol.ocpi import PriceComponent, Tariff, TariffDimensionType, TariffElement

STARTED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def energy(tariff_id: str, price: str) -> Tariff:
    component = PriceComponent(type=TariffDimensionType.ENERGY, price=Decimal(price))
    return Tariff(
        id=tariff_id,
        currency="CNY",
        elements=[TariffElement(price_components=[component])],
        last_updated=STARTED,
    )


def default(price: str) -> StoredTariff:
    """The configured default of one billing start, as ``assemble`` builds it."""
    settings = Settings(price_per_kwh=Decimal(price))
    return StoredTariff(default_tariff(settings, STARTED), None)


def frozen(stored: StoredTariff) -> ChargingSession:
    """A session opened on ``stored``, as the session store freezes it."""
    return ChargingSession(
        id="s-1",
        pile_id="c1-p01",
        card_uid="CARD-1",
        status="active",
        started_at=STARTED,
        meter_start=Decimal(0),
        currency="CNY",
        tariff_id=stored.tariff.id,
        tariff_version=stored.version,
        tariff=stored.tariff.model_dump_json(),
    )


def price(compiled: CompiledTariff) -> Decimal:
    return compiled.components[0].price


def test_a_stored_version_is_compiled_once_for_its_sessions_and_its_displays() -> None:
    compiled = CompiledTariffs(default("1.20"))
    v1 = StoredTariff(energy("tou", "0.90"), 1)
    shown = compiled.of_stored(v1)
    assert compiled.of_session(frozen(v1)) is shown
    assert compiled.of_session(frozen(v1)) is shown
    v2 = StoredTariff(energy("tou", "1.10"), 2)
    assert price(compiled.of_stored(v2)) == Decimal("1.10")
    assert price(compiled.of_session(frozen(v1))) == Decimal("0.90")


def test_the_default_of_this_start_is_shared_by_its_sessions_and_its_displays() -> None:
    now = default("1.20")
    compiled = CompiledTariffs(now)
    assert compiled.of_session(frozen(now)) is compiled.of_stored(now)
    assert price(compiled.of_stored(now)) == Decimal("1.20")


def test_a_session_frozen_under_an_earlier_default_keeps_its_price() -> None:
    """Same id, no version, another price (the setting changed across a restart)."""
    earlier, now = default("1.20"), default("2.00")
    assert (earlier.tariff.id, earlier.version) == (now.tariff.id, now.version)
    compiled = CompiledTariffs(now)
    assert price(compiled.of_stored(now)) == Decimal("2.00")
    assert price(compiled.of_session(frozen(earlier))) == Decimal("1.20")
    assert price(compiled.of_session(frozen(now))) == Decimal("2.00")
    assert price(compiled.of_stored(now)) == Decimal("2.00")


def test_a_stored_tariff_under_the_default_id_is_not_the_default() -> None:
    now = default("1.20")
    compiled = CompiledTariffs(now)
    stored = StoredTariff(energy(now.tariff.id, "3.00"), 1)
    assert price(compiled.of_stored(now)) == Decimal("1.20")
    assert price(compiled.of_session(frozen(stored))) == Decimal("3.00")
    assert price(compiled.of_stored(now)) == Decimal("1.20")
