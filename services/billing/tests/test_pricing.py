"""Pricing by the documented rules: exact decimals, one half-up rounding at the end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from station_billing.pricing import price_session, round_money, session_energy
from station_protocol.ocpi import (
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
)

UPDATED = datetime(2026, 11, 1, tzinfo=UTC)


def energy_tariff(
    price: str,
    vat: str | None = None,
    step_size: int = 0,
    currency: str = "CNY",
    **extra: Price,
) -> Tariff:
    component = PriceComponent(
        type=TariffDimensionType.ENERGY,
        price=Decimal(price),
        vat=Decimal(vat) if vat is not None else None,
        step_size=step_size,
    )
    return Tariff(
        id="t",
        currency=currency,
        elements=[TariffElement(price_components=[component])],
        last_updated=UPDATED,
        **extra,
    )


def price(excl: str, incl: str) -> Price:
    return Price(excl_vat=Decimal(excl), incl_vat=Decimal(incl))


def test_energy_times_price_rounded_once_to_cents() -> None:
    cost = price_session(energy_tariff("1.20"), Decimal("12.345"))
    # 12.345 x 1.20 = 14.814 exactly, then 14.81
    assert cost == price("14.81", "14.81")
    assert str(cost.excl_vat) == "14.81"


def test_half_up_not_bankers_rounding() -> None:
    assert price_session(energy_tariff("1.00"), Decimal("0.125")) == price("0.13", "0.13")
    assert price_session(energy_tariff("1.00"), Decimal("0.135")) == price("0.14", "0.14")
    assert price_session(energy_tariff("1.00"), Decimal("0.1249")) == price("0.12", "0.12")
    assert round_money(Decimal("2.5"), "JPY") == Decimal("3")


def test_omitted_vat_means_the_price_is_what_the_driver_pays() -> None:
    cost = price_session(energy_tariff("1.20"), Decimal("10"))
    assert cost.incl_vat == cost.excl_vat == Decimal("12.00")


def test_vat_13_percent_added_on_top() -> None:
    cost = price_session(energy_tariff("1.20", vat="13"), Decimal("12.345"))
    # excl 14.814 -> 14.81; incl 14.814 x 1.13 = 16.73982 -> 16.74
    assert cost == price("14.81", "16.74")


def test_incl_vat_is_rounded_from_the_exact_excl_not_from_the_rounded_one() -> None:
    cost = price_session(energy_tariff("0.115", vat="13"), Decimal("1"))
    # exact: 0.115 -> 0.12 and 0.115 x 1.13 = 0.12995 -> 0.13 (0.12 x 1.13 = 0.1356 would be 0.14)
    assert cost == price("0.12", "0.13")


def test_vat_zero_is_allowed_and_adds_nothing() -> None:
    assert price_session(energy_tariff("1.20", vat="0"), Decimal("1.5")) == price("1.80", "1.80")


def test_no_float_error_anywhere() -> None:
    # as floats: 0.1 x 3 = 0.30000000000000004 and 1.15 x 1.0 rounds to 1.1 (1.149999...)
    assert price_session(energy_tariff("0.1"), Decimal("3")) == price("0.30", "0.30")
    assert price_session(energy_tariff("1.0"), Decimal("1.005")) == price("1.01", "1.01")
    assert session_energy(Decimal("0.1"), Decimal("0.3")) == Decimal("0.2")


def test_no_energy_costs_nothing() -> None:
    assert price_session(energy_tariff("1.20"), Decimal("0")) == price("0.00", "0.00")


def test_first_element_with_an_energy_component_prices_energy() -> None:
    tariff = Tariff(
        id="t",
        currency="CNY",
        elements=[
            TariffElement(
                price_components=[PriceComponent(type=TariffDimensionType.TIME, price=Decimal(5))]
            ),
            TariffElement(
                price_components=[
                    PriceComponent(type=TariffDimensionType.ENERGY, price=Decimal("0.80"))
                ]
            ),
            TariffElement(
                price_components=[
                    PriceComponent(type=TariffDimensionType.ENERGY, price=Decimal("9.99"))
                ]
            ),
        ],
        last_updated=UPDATED,
    )
    assert price_session(tariff, Decimal("10")) == price("8.00", "8.00")


def test_a_tariff_without_energy_component_makes_energy_free() -> None:
    tariff = Tariff(
        id="t",
        currency="CNY",
        elements=[
            TariffElement(
                price_components=[PriceComponent(type=TariffDimensionType.TIME, price=Decimal(5))]
            )
        ],
        last_updated=UPDATED,
    )
    assert price_session(tariff, Decimal("10")) == price("0.00", "0.00")


def test_step_size_rounds_the_session_energy_up_to_whole_steps_once() -> None:
    # step 100 Wh: 12.345 kWh is billed as 12.4 kWh; 12.4 exactly stays 12.4
    assert price_session(energy_tariff("1.00", step_size=100), Decimal("12.345")) == price(
        "12.40", "12.40"
    )
    assert price_session(energy_tariff("1.00", step_size=100), Decimal("12.4")) == price(
        "12.40", "12.40"
    )
    assert price_session(energy_tariff("1.00", step_size=7), Decimal("0.001")) == price(
        "0.01", "0.01"
    )


def test_min_and_max_price_bound_excl_and_incl_each() -> None:
    floor = energy_tariff("1.00", vat="10", min_price=price("5.00", "5.20"))
    assert price_session(floor, Decimal("1")) == price("5.00", "5.20")
    ceiling = energy_tariff("1.00", vat="10", max_price=price("50.00", "54.00"))
    assert price_session(ceiling, Decimal("100")) == price("50.00", "54.00")
    assert price_session(ceiling, Decimal("49.5")) == price("49.50", "54.00")


def test_currency_minor_unit() -> None:
    assert price_session(energy_tariff("1.20", currency="EUR"), Decimal("1.005")) == price(
        "1.21", "1.21"
    )
    assert price_session(energy_tariff("31", currency="JPY"), Decimal("1.5")) == price("47", "47")


def test_negative_or_infinite_energy_is_refused() -> None:
    with pytest.raises(ValueError, match="energy"):
        price_session(energy_tariff("1.20"), Decimal("-0.001"))
    with pytest.raises(ValueError, match="energy"):
        price_session(energy_tariff("1.20"), Decimal("Infinity"))


def test_big_readings_stay_exact() -> None:
    energy = session_energy(Decimal("123456789012345.678"), Decimal("123456789012357.901"))
    assert energy == Decimal("12.223")
    assert price_session(energy_tariff("1.2345678"), energy) == price("15.09", "15.09")
