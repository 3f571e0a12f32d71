"""How the service keeps and shows money: exact ten-thousandths, shown as ``"1.20"``.

Four places are enough for a per-kWh price times energy before billing rounds it, and a
fixed number of places is what lets the ledger store whole numbers (see ``columns``).
"""

from __future__ import annotations

from decimal import Decimal

MONEY_PLACES = 4
"""Decimal places the ledger keeps; an amount with more is refused, never rounded away."""
UNIT = Decimal(1).scaleb(-MONEY_PLACES)
SHOWN_PLACES = 2
MAX_UNITS = 2**63 - 1
"""The ledger's columns are 64-bit integers: an amount beyond is refused, never overflowed."""


class InexactAmount(ValueError):
    """An amount the ledger cannot keep exactly: more decimal places, or too large."""


def to_units(amount: Decimal) -> int:
    if not amount.is_finite():
        raise InexactAmount(f"{amount} is not an amount")
    units = amount.scaleb(MONEY_PLACES)
    if units != units.to_integral_value():
        raise InexactAmount(f"{amount} has more than {MONEY_PLACES} decimal places")
    if abs(units) > MAX_UNITS:
        raise InexactAmount(f"{amount} is more than the ledger can hold")
    return int(units)


def from_units(units: int) -> Decimal:
    return (Decimal(units) * UNIT).quantize(UNIT)


def money_text(amount: Decimal) -> str:
    """``1.2`` as ``"1.20"``, ``1.2345`` as ``"1.2345"``: cents always, more places only if used."""
    text = f"{amount.quantize(UNIT):f}"
    whole, _, places = text.partition(".")
    places = places.rstrip("0").ljust(SHOWN_PLACES, "0")
    return f"{whole}.{places}"


def shown(amount: Decimal) -> Decimal:
    """The amount with the places ``money_text`` shows, for a message that carries a Decimal."""
    return Decimal(money_text(amount))
