"""From the pile's meter readings to OCPI charging periods, each with one price.

Billing times every reading with its own clock (a pile's clock is never trusted for money)
and keeps some as samples (see :mod:`station_billing.meter_feed`). A session is then the
readings between its opening reading (``meter_start``, at the session's start) and its
closing one (``meter_stop`` at checkout, or the latest reading for the running cost).

Rule 2 of ``docs/pricing.md``: a session built from meter readings starts a
new charging period at every instant where the price could change, so that each period has
one price. The instants are:

* every sample where the pile's state changes (charging <-> parking) or its current or
  power crosses a tariff limit: the pile's state holds from one reading until the next
  (sample and hold), since billing never guesses what a pile did between two readings;
* every local time-band boundary of the frozen tariff, and local midnight when an element
  depends on the date or the weekday (daylight-saving jumps included: a band that starts
  at a wall time the clocks skip starts at the jump);
* every ``min_duration``/``max_duration`` instant since the session started;
* every instant the session's energy reaches a ``min_kwh``/``max_kwh`` limit.

Energy between two readings is spread linearly over time to place a boundary that falls
between them (to the micro-kWh; a kWh limit itself is placed exactly). Adjacent pieces that
the tariff prices alike (same state, same component for every dimension) are merged into
one period, so a record holds as many periods as the price needs, not one per reading.

Time volumes are hours to the micro-hour (3.6 ms), measured as the difference of the
session's elapsed time at the period's two ends, so the periods' hours add up exactly to
the session's. The record's periods are then priced like any CDR
(:func:`station_billing.pricing.session_from_cdr`): the service and the offline CLI price
the same periods the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

from station_billing.pricing.cdr import quantity_text
from station_billing.pricing.localtime import (
    HOUR_US,
    StationZone,
    from_us,
    instants_of_wall_time,
    offset_changes,
    to_us,
    wall_time,
)
from station_billing.pricing.money import ZERO
from station_billing.pricing.tariff import CompiledTariff, Selection

HOURS_QUANTUM = Decimal("0.000001")
ENERGY_QUANTUM = Decimal("0.000001")
MIDNIGHT_US = 0


@dataclass(frozen=True)
class MeterSample:
    """A reading as billing keeps it: when billing saw it, and what the pile said."""

    at: datetime
    energy: Decimal
    charging: bool | None = None
    current: Decimal | None = None
    power: Decimal | None = None


@dataclass
class _Point:
    at: int
    energy: Decimal
    charging: bool
    current: Decimal | None
    power: Decimal | None


@dataclass
class _Piece:
    """A stretch of the session with one state, before merging into periods."""

    start: int
    end: int
    energy_start: Decimal
    energy_end: Decimal
    charging: bool
    current: Decimal | None
    power: Decimal | None


@dataclass
class _Period:
    start: int
    end: int
    energy_start: Decimal
    energy_end: Decimal
    charging: bool
    key: tuple[bool, Selection]
    currents: list[Decimal] = field(default_factory=list)
    powers: list[Decimal] = field(default_factory=list)


def build_cdr(
    *,
    started_at: datetime,
    meter_start: Decimal,
    samples: Sequence[MeterSample],
    ended_at: datetime,
    meter_end: Decimal,
    tariff: CompiledTariff,
    zone: StationZone,
) -> dict[str, Any]:
    """The session as an OCPI CDR (start, end, charging periods) ready to be priced.

    ``meter_end`` is the reading that ends the session (already checked: never below
    ``meter_start``). Samples outside the session, or whose energy runs backwards or past
    ``meter_end``, are held to the readings around them.
    """
    start = to_us(started_at)
    end = max(to_us(ended_at), start)
    points = _points(start, meter_start, samples, end, meter_end)
    pieces = _pieces(points)
    pieces = _split(pieces, _time_cuts(tariff, zone, start, end), tariff, meter_start)
    periods = _merge(pieces, tariff, zone, start, meter_start)
    return {
        "start_date_time": instant_text(start),
        "end_date_time": instant_text(end),
        "charging_periods": [_ocpi_period(period, start) for period in periods],
    }


def instant_text(us: int) -> str:
    """RFC 3339 in UTC, to the microsecond (exact, as billing's clock gave it)."""
    return from_us(us).isoformat().replace("+00:00", "Z")


def _points(
    start: int, meter_start: Decimal, samples: Sequence[MeterSample], end: int, meter_end: Decimal
) -> list[_Point]:
    first = _Point(start, meter_start, True, None, None)
    points = [first]
    for sample in sorted(samples, key=lambda s: s.at):
        at = to_us(sample.at)
        if at >= end:
            break
        last = points[-1]
        energy = min(max(sample.energy, last.energy), meter_end)
        charging = last.charging if sample.charging is None else sample.charging
        if at <= last.at:
            # A reading in the same instant as the last point updates it.
            last.energy, last.charging = energy, charging
            last.current, last.power = sample.current, sample.power
            continue
        points.append(_Point(at, energy, charging, sample.current, sample.power))
    points.append(_Point(end, max(meter_end, points[-1].energy), False, None, None))
    return points


def _pieces(points: list[_Point]) -> list[_Piece]:
    return [
        _Piece(a.at, b.at, a.energy, b.energy, a.charging, a.current, a.power)
        for a, b in pairwise(points)
    ]


def _time_cuts(tariff: CompiledTariff, zone: StationZone, start: int, end: int) -> list[int]:
    """Instants inside the session where a time band, a day or a duration limit turns."""
    cuts = tariff.cuts
    found: set[int] = {start + limit for limit in cuts.durations}
    times = set(cuts.times_of_day)
    if cuts.calendar:
        times.add(MIDNIGHT_US)
    if times:
        first_day = from_us(zone.local(start)).date() - timedelta(days=1)
        last_day = from_us(zone.local(end)).date() + timedelta(days=1)
        day = first_day
        while day <= last_day:
            for moment in times:
                found.update(instants_of_wall_time(zone.tz, day, wall_time(moment)))
            day += timedelta(days=1)
        found.update(offset_changes(zone.tz, start, end))
    return sorted(at for at in found if start < at < end)


def _split(
    pieces: list[_Piece], time_cuts: list[int], tariff: CompiledTariff, meter_start: Decimal
) -> list[_Piece]:
    limits = sorted(tariff.cuts.energies)
    split: list[_Piece] = []
    for piece in pieces:
        cuts: dict[int, Decimal | None] = {}
        low = bisect_right(time_cuts, piece.start)
        for at in time_cuts[low:]:
            if at >= piece.end:
                break
            cuts[at] = None
        for limit in limits:
            reached = meter_start + limit
            if piece.energy_start < reached < piece.energy_end:
                cuts[_instant_of_energy(piece, reached)] = reached
        split.extend(_cut(piece, cuts))
    return split


def _instant_of_energy(piece: _Piece, energy: Decimal) -> int:
    """When the session's energy reached ``energy`` inside ``piece`` (linear in time)."""
    share = (energy - piece.energy_start) / (piece.energy_end - piece.energy_start)
    offset = int((share * (piece.end - piece.start)).to_integral_value(rounding=ROUND_CEILING))
    return min(max(piece.start + offset, piece.start + 1), piece.end - 1)


def _cut(piece: _Piece, cuts: dict[int, Decimal | None]) -> list[_Piece]:
    if not cuts:
        return [piece]
    result = []
    start, energy = piece.start, piece.energy_start
    for at in sorted(cuts):
        if not piece.start < at < piece.end:
            continue
        reached = cuts[at]
        if reached is None:
            reached = _energy_at(piece, at)
        reached = min(max(reached, energy), piece.energy_end)
        result.append(
            _Piece(start, at, energy, reached, piece.charging, piece.current, piece.power)
        )
        start, energy = at, reached
    result.append(
        _Piece(
            start, piece.end, energy, piece.energy_end, piece.charging, piece.current, piece.power
        )
    )
    return result


def _energy_at(piece: _Piece, at: int) -> Decimal:
    delivered = piece.energy_end - piece.energy_start
    if not delivered:
        return piece.energy_start
    share = Decimal(at - piece.start) / Decimal(piece.end - piece.start)
    return (piece.energy_start + delivered * share).quantize(ENERGY_QUANTUM, rounding=ROUND_HALF_UP)


def _merge(
    pieces: list[_Piece],
    tariff: CompiledTariff,
    zone: StationZone,
    start: int,
    meter_start: Decimal,
) -> list[_Period]:
    periods: list[_Period] = []
    for piece in pieces:
        if (
            piece.end == piece.start
            and piece.energy_end == piece.energy_start
            and (periods or piece is not pieces[-1])
        ):
            continue
        local = zone.local(piece.start) if tariff.uses_local_time else 0
        selection = tariff.select(
            local,
            piece.energy_start - meter_start,
            piece.start - start,
            piece.current,
            piece.current,
            piece.power,
            piece.power,
        )
        key = (piece.charging, selection)
        last = periods[-1] if periods else None
        if last is not None and last.key == key:
            last.end, last.energy_end = piece.end, piece.energy_end
        else:
            last = _Period(
                piece.start, piece.end, piece.energy_start, piece.energy_end, piece.charging, key
            )
            periods.append(last)
        if piece.current is not None:
            last.currents.append(piece.current)
        if piece.power is not None:
            last.powers.append(piece.power)
    if not periods:
        periods.append(_Period(start, start, meter_start, meter_start, True, (True, (-1,) * 4)))
    return periods


def _elapsed_hours(at: int, start: int) -> Decimal:
    return (Decimal(at - start) / HOUR_US).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_UP)


def _ocpi_period(period: _Period, start: int) -> dict[str, Any]:
    hours = _elapsed_hours(period.end, start) - _elapsed_hours(period.start, start)
    energy = period.energy_end - period.energy_start
    dimensions = []
    if energy > ZERO:
        dimensions.append({"type": "ENERGY", "volume": _text(energy)})
    dimensions.append(
        {"type": "TIME" if period.charging else "PARKING_TIME", "volume": _text(hours)}
    )
    for values, low, high in (
        (period.currents, "MIN_CURRENT", "MAX_CURRENT"),
        (period.powers, "MIN_POWER", "MAX_POWER"),
    ):
        if values:
            dimensions.append({"type": low, "volume": _text(min(values))})
            dimensions.append({"type": high, "volume": _text(max(values))})
    return {"start_date_time": instant_text(period.start), "dimensions": dimensions}


def _text(value: Decimal) -> str:
    """Exact, without trailing zeros (``5.000000`` -> ``5``)."""
    return quantity_text(value)
