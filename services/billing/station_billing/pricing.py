"""What a session costs, by the OCPI 2.2.1 pricing rules (/work/shared/ocpi-pricing.md).

This is the one place money is computed: the final cost of a session and, later, the
running cost shown while it charges both come from :func:`price_session`, so the driver
never sees two different figures for the same energy.

Today only ENERGY is priced, on the session total; the tariff engine will add charging
periods, restrictions, TIME, PARKING_TIME and FLAT here without changing the rules below.

Rules applied (numbers as in ocpi-pricing.md):

* Rule 1, which element: per dimension, the first element in list order that has a
  component of that dimension. Restrictions are not evaluated yet (the station's default
  tariff has none); the tariff engine adds rules 2 and 3. A dimension with no component is
  free, so a tariff without an ENERGY component makes the energy cost 0.
* Rule 5, step_size: applied once per session, on the session's total energy. ENERGY
  step_size is in Wh: the billed energy is the total rounded UP to the next whole step.
  A step size of 0 means no rounding.
* Rule 7, VAT per component: ``incl = excl x (1 + vat/100)``. An omitted ``vat`` means no
  VAT, so ``incl = excl``; that is not the same as ``vat: 0`` (which also gives incl = excl
  but says VAT was considered).
* Rule 8, min_price / max_price bound the session total, excl and incl VAT independently.
* Rule 9, money: Decimal all the way, never a float. No rounding inside the computation:
  every step runs in a decimal context that raises on any inexact result instead of
  rounding silently. The two totals are then rounded half-up (ROUND_HALF_UP, so 0.125 ->
  0.13, not banker's 0.12) to the currency's minor unit, once, at the very end.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from station_protocol.ocpi import Price, PriceComponent, Tariff, TariffDimensionType

WH_PER_KWH = Decimal(1000)
EXACT_PRECISION = 100
"""Significant digits of the exact computation: far beyond any meter reading times a price."""

MINOR_UNIT_DIGITS = MappingProxyType({"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "OMR": 3})
"""ISO 4217 minor units that are not 2 (CNY and EUR have 2, the default)."""


@contextmanager
def exact_arithmetic() -> Iterator[None]:
    """Decimal arithmetic that raises on any result it would have to round."""
    with decimal.localcontext() as context:
        context.prec = EXACT_PRECISION
        context.traps[decimal.Inexact] = True
        context.traps[decimal.Rounded] = True
        yield


def session_energy(meter_start: Decimal, meter_stop: Decimal) -> Decimal:
    """The energy between two readings of the pile's cumulative meter, exactly."""
    with exact_arithmetic():
        return meter_stop - meter_start


def price_session(tariff: Tariff, energy_kwh: Decimal) -> Price:
    """The cost of ``energy_kwh`` under ``tariff``, rounded once to the currency's minor unit."""
    if not energy_kwh.is_finite() or energy_kwh < 0:
        raise ValueError(f"energy must be a finite amount of 0 kWh or more, got {energy_kwh}")
    excl, incl = exact_total(tariff, energy_kwh)
    return Price(
        excl_vat=round_money(excl, tariff.currency),
        incl_vat=round_money(incl, tariff.currency),
    )


def exact_total(tariff: Tariff, energy_kwh: Decimal) -> tuple[Decimal, Decimal]:
    """Excl and incl VAT totals before the final rounding; raises rather than round."""
    with exact_arithmetic():
        component = active_component(tariff, TariffDimensionType.ENERGY)
        if component is None:
            excl = incl = Decimal(0)
        else:
            excl = billed_energy(energy_kwh, component.step_size) * component.price
            incl = with_vat(excl, component.vat)
        return bounded(tariff, excl, incl)


def active_component(tariff: Tariff, dimension: TariffDimensionType) -> PriceComponent | None:
    """Rule 1: the first component of ``dimension`` in element order (restrictions: later)."""
    for element in tariff.elements:
        for component in element.price_components:
            if component.type == dimension:
                return component
    return None


def billed_energy(energy_kwh: Decimal, step_size_wh: int) -> Decimal:
    """Rule 5: the session's energy rounded up to whole steps of ``step_size_wh`` Wh."""
    if step_size_wh == 0:
        return energy_kwh
    steps, rest = divmod(energy_kwh * WH_PER_KWH, Decimal(step_size_wh))
    if rest > 0:
        steps += 1
    return steps * step_size_wh / WH_PER_KWH


def with_vat(excl: Decimal, vat_percent: Decimal | None) -> Decimal:
    """Rule 7: an omitted VAT means the price carries none."""
    if vat_percent is None:
        return excl
    return excl * (1 + vat_percent / 100)


def bounded(tariff: Tariff, excl: Decimal, incl: Decimal) -> tuple[Decimal, Decimal]:
    """Rule 8: min_price and max_price, excl and incl VAT each on its own."""
    if tariff.min_price is not None:
        excl = max(excl, tariff.min_price.excl_vat)
        incl = max(incl, tariff.min_price.incl_vat)
    if tariff.max_price is not None:
        excl = min(excl, tariff.max_price.excl_vat)
        incl = min(incl, tariff.max_price.incl_vat)
    return excl, incl


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``0.01`` for CNY and EUR."""
    return Decimal(1).scaleb(-MINOR_UNIT_DIGITS.get(currency, 2))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Rule 9: half-up to the minor unit, the only rounding money ever gets."""
    with decimal.localcontext() as context:
        context.prec = EXACT_PRECISION
        return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
