"""Money in the pricing engine: exact decimals, VAT per component, one rounding at the end.

Rules of ``docs/pricing.md`` applied here:

* **Rule 7, VAT per component.** ``incl = excl x (1 + vat/100)``, with the VAT of the
  component that priced the volume. An omitted ``vat`` means the price carries no VAT
  (``incl = excl``), which OCPI distinguishes from ``vat: 0`` (VAT considered, none due);
  both give the same amounts.
* **Rule 9, money.** ``Decimal`` all the way, never a float. Nothing is rounded inside the
  computation: every volume times its price is exact (a product of two decimals), and so is
  every sum. The one division money ever meets is a time ``step_size`` (seconds) turned into
  hours, ``n x step / 3600``, which has no finite decimal when 3 divides the step an odd
  number of times; it is carried at :data:`PRECISION` significant digits (Decimal division
  is correctly rounded, so an amount that does have a finite decimal stays exact). The
  totals are then rounded **half-up** (``0.125 -> 0.13``, not banker's ``0.12``) to the
  currency's minor unit (2 decimals for CNY and EUR), once, at the very end.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import NamedTuple

from station_protocol.ocpi import Price

PRECISION = 60
"""Significant digits: far beyond any meter reading times any price (and exact for both)."""

CONTEXT = decimal.Context(
    prec=PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
"""The context every pricing computation runs in (``decimal.localcontext(CONTEXT)``)."""

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

MINOR_UNIT_DIGITS = MappingProxyType(
    {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3}
)
"""ISO 4217 minor units that are not 2 (CNY and EUR have 2, the default)."""


def vat_factor(vat_percent: Decimal | None) -> Decimal:
    """Rule 7: the factor from excl to incl VAT; an omitted VAT is no VAT."""
    if vat_percent is None:
        return ONE
    with decimal.localcontext(CONTEXT):
        return ONE + vat_percent / HUNDRED


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``0.01`` for CNY and EUR."""
    return ONE.scaleb(-MINOR_UNIT_DIGITS.get(currency, 2))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Rule 9: half-up to the minor unit, the only rounding money ever gets."""
    with decimal.localcontext(CONTEXT):
        return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def floor_money(amount: Decimal, currency: str) -> Decimal:
    """A ``max_price`` finer than the currency, rounded inward so a total never exceeds it."""
    with decimal.localcontext(CONTEXT):
        return amount.quantize(minor_unit(currency), rounding=ROUND_FLOOR)


def ceil_money(amount: Decimal, currency: str) -> Decimal:
    """A ``min_price`` finer than the currency, rounded inward so a total never falls below."""
    with decimal.localcontext(CONTEXT):
        return amount.quantize(minor_unit(currency), rounding=ROUND_CEILING)


def money_text(amount: Decimal) -> str:
    """An exact decimal as plain text (``"14.81"``, never ``1.481E+1``)."""
    return format(amount, "f")


class Amount(NamedTuple):
    """An amount excluding and including VAT (the engine's light OCPI ``Price``)."""

    excl_vat: Decimal
    incl_vat: Decimal

    def price(self) -> Price:
        return Price(excl_vat=self.excl_vat, incl_vat=self.incl_vat)
