"""OCPI CDRs in and out of the engine, for the CLI and for the service alike.

The service builds its charging record as an OCPI CDR (start, end, charging periods) and
prices it through :func:`session_from_cdr`, exactly as ``station-billing price`` does with
a CDR from a file: one path from CDR to totals, so both give the same totals.

Read from JSON with ``parse_float=Decimal`` (numbers keep their exact text, never a float).
Timestamps are RFC 3339; one without a zone is UTC, as OCPI reads it. Dimensions the engine
does not price (``STATE_OF_CHARGE``, ``ENERGY_IMPORT``...) are accepted and ignored; a type
OCPI 2.2.1 does not define is an error, since a misspelt ``ENERGY`` would make energy free.
The checks are written out by hand rather than through pydantic: a month of CDRs is priced
in one go, and each error names the field that is wrong.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from station_billing.pricing.engine import SessionInput, Totals
from station_billing.pricing.localtime import StationZone, to_us
from station_billing.pricing.money import ZERO, Amount, money_text
from station_billing.pricing.tariff import Period
from station_protocol.ocpi import CdrDimensionType

KNOWN_DIMENSIONS = frozenset(item.value for item in CdrDimensionType)


class CdrError(ValueError):
    """The CDR cannot be priced; the message starts with the path of the field at fault."""


def session_from_cdr(cdr: Any, zone: StationZone) -> SessionInput:
    """A priceable session from an OCPI CDR object (a ``dict`` from JSON)."""
    if not isinstance(cdr, dict):
        raise CdrError("the CDR must be a JSON object")
    start = _instant(cdr.get("start_date_time"), "start_date_time")
    end = _instant(cdr.get("end_date_time"), "end_date_time")
    if end < start:
        raise CdrError("end_date_time: before start_date_time")
    raw_periods = cdr.get("charging_periods")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise CdrError("charging_periods: a list of at least one charging period is required")
    periods: list[Period] = []
    previous = start
    for number, raw in enumerate(raw_periods):
        period = _period(raw, f"charging_periods[{number}]")
        if period[0] < previous:
            where = "start_date_time" if number == 0 else "the period before"
            raise CdrError(f"charging_periods[{number}].start_date_time: before {where}")
        if period[0] > end:
            raise CdrError(f"charging_periods[{number}].start_date_time: after end_date_time")
        previous = period[0]
        periods.append(period)
    return SessionInput(start, end, periods, zone)


def _instant(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise CdrError(f"{where}: an RFC 3339 timestamp is required")
    try:
        return to_us(datetime.fromisoformat(value))
    except ValueError:
        raise CdrError(f"{where}: not an RFC 3339 timestamp: {value!r}") from None


def _period(raw: Any, where: str) -> Period:
    """One charging period; written for speed (a month of CDRs is millions of these)."""
    if type(raw) is not dict:
        raise CdrError(f"{where}: a charging period object is required")
    start = _instant(raw.get("start_date_time"), f"{where}.start_date_time")
    dimensions = raw.get("dimensions")
    if type(dimensions) is not list or not dimensions:
        raise CdrError(f"{where}.dimensions: a list of at least one dimension is required")
    energy = time = parking = None
    measured: dict[str, Decimal] | None = None
    for number, dimension in enumerate(dimensions):
        if type(dimension) is not dict:
            raise CdrError(f"{where}.dimensions[{number}]: a dimension object is required")
        kind = dimension.get("type")
        amount = _volume(dimension.get("volume"), where, number)
        if kind == "ENERGY":
            energy = amount if energy is None else energy + amount
        elif kind == "TIME":
            time = amount if time is None else time + amount
        elif kind == "PARKING_TIME":
            parking = amount if parking is None else parking + amount
        elif kind in KNOWN_DIMENSIONS:
            if measured is None:
                measured = {}
            measured[kind] = amount
        else:
            raise CdrError(
                f"{where}.dimensions[{number}].type: not an OCPI 2.2.1 CdrDimensionType: {kind!r}"
            )
    if measured is None:
        return (start, energy or ZERO, time or ZERO, parking or ZERO, None, None, None, None)
    imin, imax = _range(measured, "MIN_CURRENT", "CURRENT", "MAX_CURRENT")
    pmin, pmax = _range(measured, "MIN_POWER", "POWER", "MAX_POWER")
    return (start, energy or ZERO, time or ZERO, parking or ZERO, imin, imax, pmin, pmax)


def _range(
    found: dict[str, Decimal], low: str, middle: str, high: str
) -> tuple[Decimal | None, Decimal | None]:
    """The lowest and highest value a period measured, from what its dimensions say.

    Each falls back to the next best: a period that gives only ``MIN_CURRENT`` 43 never
    charged below 43 A, so it did not stay below a ``max_current`` of 32 either.
    """
    first = found.get(low, found.get(middle, found.get(high)))
    last = found.get(high, found.get(middle, found.get(low)))
    return first, last


def _volume(volume: Any, where: str, number: int) -> Decimal:
    kind = type(volume)
    if kind is not Decimal and kind is not str and kind is not int:
        raise CdrError(f"{where}.dimensions[{number}].volume: a number is required")
    try:
        amount = Decimal(volume)
    except ArithmeticError:
        raise CdrError(f"{where}.dimensions[{number}].volume: not a number: {volume!r}") from None
    if not amount.is_finite() or amount < 0:
        raise CdrError(f"{where}.dimensions[{number}].volume: must be a finite number of 0 or more")
    return amount


def amount_json(amount: Amount) -> dict[str, str]:
    return {"excl_vat": money_text(amount.excl_vat), "incl_vat": money_text(amount.incl_vat)}


def quantity_text(value: Decimal) -> str:
    """A quantity without trailing zeros or exponent: ``12.345000 -> "12.345"``, ``0E-6 -> "0"``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def totals_json(totals: Totals) -> dict[str, Any]:
    """The OCPI CDR totals: Price objects (money as strings), kWh and hours."""
    return {
        "currency": totals.currency,
        "total_cost": amount_json(totals.total_cost),
        "total_energy_cost": amount_json(totals.total_energy_cost),
        "total_time_cost": amount_json(totals.total_time_cost),
        "total_parking_cost": amount_json(totals.total_parking_cost),
        "total_fixed_cost": amount_json(totals.total_fixed_cost),
        "total_energy": quantity_text(totals.total_energy),
        "total_time": quantity_text(totals.total_time),
        "total_parking_time": quantity_text(totals.total_parking_time),
    }
