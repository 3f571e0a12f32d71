"""What a session costs: the one function every price of the station comes from.

The final cost of a charging record, the running cost shown while a session charges, the
offline CLI (``station-billing price``) and the benchmark all call :func:`price_session`
with charging periods; they differ only in where the periods come from. Rules of
``docs/pricing.md`` applied here (rule 1 in :mod:`.tariff`, rules 2 and 3 in
:mod:`.restrictions`, rules 7 and 9 in :mod:`.money`):

* **Rule 4, TIME vs PARKING_TIME.** Both come from the CDR's dimensions: ``TIME`` hours
  charging, ``PARKING_TIME`` hours plugged in and not drawing power. Time is billed from the
  dimension volumes (hours), not from the period timestamps. ``total_time`` is the session's
  length (end minus start); ``total_parking_time`` the sum of the PARKING_TIME volumes.
* **Rule 5, step_size.** Once per session, on the session total: once for ENERGY (the total
  energy of every period, in Wh), once for TIME and PARKING_TIME together (in seconds),
  each rounded up to whole steps of the step size of the last period that used that
  dimension (it had a volume and an active component), and the extra volume billed at that
  period's price. When both TIME and PARKING_TIME are priced in a session, only parking is
  rounded. A step size of 0 means no rounding. (This is the OCPI 2.2.1 bug-fix text: the
  tariff module's "switching" example #1 predates it; with it that session costs 0.55
  euro, with only the 2 parking minutes rounded up to 15.)
* **Rule 6, FLAT.** Charged once per session: the FLAT component active in the first
  period that has one (list order and restrictions as for the other dimensions).
* **Rule 8, min_price / max_price.** They bound the session total, excluding and including
  VAT each on its own. The per-dimension totals are what the components cost before the
  bound; a receipt says when a bound applied. (Ours:) a bound finer than the currency's
  minor unit is rounded inward (a maximum down, a minimum up), so the rounded total never
  crosses it.
* **Rule 9, money.** Exact decimals in :data:`.money.CONTEXT`; every total (the session's
  and each dimension's) is rounded half-up to the minor unit once, here, at the end. The
  rounded dimension totals may therefore differ from the rounded session total by a
  minor unit; each is the exact amount rounded once.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from station_billing.pricing.localtime import HOUR_US, StationZone
from station_billing.pricing.money import (
    CONTEXT,
    ZERO,
    Amount,
    ceil_money,
    floor_money,
)
from station_billing.pricing.tariff import (
    ENERGY_SLOT,
    FLAT_SLOT,
    PARKING_SLOT,
    TIME_SLOT,
    CompiledTariff,
    Component,
    Period,
)

SLOTS = range(4)
WH_PER_KWH = Decimal(1000)
SECONDS_PER_HOUR = Decimal(3600)
HOURS_QUANTUM = Decimal("0.000001")
"""``total_time`` is shown to the micro-hour (3.6 ms); it prices nothing (rule 4)."""


@dataclass(frozen=True, slots=True)
class SessionInput:
    """A session to price: its start and end (microseconds since the epoch), its periods."""

    start_us: int
    end_us: int
    periods: Sequence[Period]
    zone: StationZone


class Totals(NamedTuple):
    """The OCPI CDR totals of one session (money rounded once, quantities exact)."""

    currency: str
    total_cost: Amount
    total_energy_cost: Amount
    total_time_cost: Amount
    total_parking_cost: Amount
    total_fixed_cost: Amount
    total_energy: Decimal
    """kWh."""
    duration_us: int
    """The session's length, end minus start."""
    total_parking_time: Decimal
    """Hours, the PARKING_TIME volumes."""
    total_charging_time: Decimal
    """Hours, the TIME volumes."""
    min_price_applied: bool = False
    max_price_applied: bool = False

    @property
    def total_time(self) -> Decimal:
        """Hours, to the micro-hour: shown, never priced (rule 4)."""
        with decimal.localcontext(CONTEXT):
            return (Decimal(self.duration_us) / HOUR_US).quantize(
                HOURS_QUANTUM, rounding=ROUND_HALF_UP
            )


def _no_local(us: int) -> int:
    return us


def price_session(compiled: CompiledTariff, session: SessionInput) -> Totals:
    """Price ``session`` under ``compiled``: the one computation behind every amount."""
    with decimal.localcontext(CONTEXT):
        offset = (
            session.zone.steady_offset(session.start_us, session.end_us)
            if compiled.uses_local_time
            else 0
        )
        if offset is None:
            accumulated = compiled.accumulate_zoned(
                session.periods, session.start_us, 0, session.zone.local
            )
        else:
            accumulated = compiled.accumulate(session.periods, session.start_us, offset, _no_local)
        vols, energy, time_h, parking_h, last_e, last_t, last_p, flat = accumulated
        components = compiled.components
        if last_e >= 0:
            _step_energy(vols, components[last_e], energy)
        if last_p >= 0:
            _step_time(vols, components[last_p], parking_h)
        elif last_t >= 0:
            _step_time(vols, components[last_t], time_h)
        return _totals(compiled, vols, flat, energy, time_h, parking_h, session)


def _step_energy(vols: list[Decimal], component: Component, total_kwh: Decimal) -> None:
    """Rule 5 for ENERGY: the session's Wh rounded up to whole steps, extra at the last price."""
    if component.step_size <= 0:
        return
    steps, rest = divmod(total_kwh * WH_PER_KWH, component.step_size)
    if rest > 0:
        extra_wh = (steps + 1) * component.step_size - total_kwh * WH_PER_KWH
        vols[component.index] += extra_wh / WH_PER_KWH


def _step_time(vols: list[Decimal], component: Component, total_hours: Decimal) -> None:
    """Rule 5 for time: the session's seconds rounded up to whole steps, extra at the last price."""
    if component.step_size <= 0:
        return
    seconds = total_hours * SECONDS_PER_HOUR
    steps, rest = divmod(seconds, component.step_size)
    if rest > 0:
        extra_seconds = (steps + 1) * component.step_size - seconds
        vols[component.index] += extra_seconds / SECONDS_PER_HOUR


def _totals(
    compiled: CompiledTariff,
    vols: list[Decimal],
    flat: int,
    energy: Decimal,
    time_h: Decimal,
    parking_h: Decimal,
    session: SessionInput,
) -> Totals:
    excl = [ZERO, ZERO, ZERO, ZERO]
    incl = [ZERO, ZERO, ZERO, ZERO]
    for component, volume in zip(compiled.components, vols, strict=True):
        if volume:
            slot = component.slot
            cost = volume * component.price
            excl[slot] += cost
            incl[slot] += cost * component.factor
    if flat >= 0:
        component = compiled.components[flat]
        excl[FLAT_SLOT] = component.price
        incl[FLAT_SLOT] = component.price * component.factor
    quantum = compiled.minor_unit
    nothing = compiled.nothing
    rounded = [nothing, nothing, nothing, nothing]
    for slot in SLOTS:
        if excl[slot] or incl[slot]:
            rounded[slot] = Amount(
                excl[slot].quantize(quantum, rounding=ROUND_HALF_UP),
                incl[slot].quantize(quantum, rounding=ROUND_HALF_UP),
            )
    total, low, high = _bounded(
        compiled, excl[0] + excl[1] + excl[2] + excl[3], incl[0] + incl[1] + incl[2] + incl[3]
    )
    return Totals(
        compiled.currency,
        total,
        rounded[ENERGY_SLOT],
        rounded[TIME_SLOT],
        rounded[PARKING_SLOT],
        rounded[FLAT_SLOT],
        energy,
        session.end_us - session.start_us,
        parking_h,
        time_h,
        low,
        high,
    )


def _bounded(compiled: CompiledTariff, excl: Decimal, incl: Decimal) -> tuple[Amount, bool, bool]:
    """Rule 8 then rule 9: bound the exact totals, round once, keep within the bounds."""
    quantum, currency = compiled.minor_unit, compiled.currency
    minimum, maximum = compiled.min_price, compiled.max_price
    if minimum is None and maximum is None:
        return (
            Amount(
                excl.quantize(quantum, rounding=ROUND_HALF_UP),
                incl.quantize(quantum, rounding=ROUND_HALF_UP),
            ),
            False,
            False,
        )
    low = high = False
    if minimum is not None and (excl < minimum.excl_vat or incl < minimum.incl_vat):
        low = True
        excl, incl = max(excl, minimum.excl_vat), max(incl, minimum.incl_vat)
    if maximum is not None and (excl > maximum.excl_vat or incl > maximum.incl_vat):
        high = True
        excl, incl = min(excl, maximum.excl_vat), min(incl, maximum.incl_vat)
    rounded_excl = excl.quantize(quantum, rounding=ROUND_HALF_UP)
    rounded_incl = incl.quantize(quantum, rounding=ROUND_HALF_UP)
    if minimum is not None:
        rounded_excl = max(rounded_excl, ceil_money(minimum.excl_vat, currency))
        rounded_incl = max(rounded_incl, ceil_money(minimum.incl_vat, currency))
    if maximum is not None:
        rounded_excl = min(rounded_excl, floor_money(maximum.excl_vat, currency))
        rounded_incl = min(rounded_incl, floor_money(maximum.incl_vat, currency))
    return Amount(rounded_excl, rounded_incl), low, high
