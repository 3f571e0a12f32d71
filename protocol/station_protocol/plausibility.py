"""What a pile's meter can physically have counted: the one rule, used by collector and billing.

A meter register is a cumulative count of kWh. A reading is believed only if

* it is a finite number within the register's range (``0`` .. :data:`METER_MAX`), and
* it is not below the last believed reading (a register never runs backwards), and
* the energy since the last believed reading is at most what the pile's rated power could
  have delivered since then, with :data:`POWER_SLACK` over the rating and
  :data:`ENERGY_TOLERANCE` for the register's rounding.

Readings are timed by their arrival, and arrivals bunch: after a Zigbee2MQTT or broker
outage the readings queued meanwhile arrive within milliseconds of each other. So the time
since the last reading is not spent reading by reading but kept as a *credit* of energy the
pile could have delivered (a token bucket): it grows at the rated power, is spent by each
believed rise, and is capped at ``burst`` seconds' worth; when a silence longer than that
ends, the readings of the next ``burst`` seconds may spend what the whole silence allowed
(a pile silent for ten minutes may have charged for ten minutes, and its queued readings
arrive at once). A
steady pile can therefore never make a jump larger than ``burst`` seconds at rated power
look plausible; billing bounds a whole session by rated power x its duration as well.

Everything here is pure: callers pass the time (seconds, any monotonic origin).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

METER_MAX = Decimal(100_000_000)
"""kWh. A register beyond this is no meter reading (real registers stop at 8 or 9 digits)."""

DEFAULT_RATED_POWER = Decimal(350)
"""kW: the most any pile of the station is assumed to deliver unless set per pile."""

POWER_SLACK = Decimal("1.05")
"""A pile may run 5 % over its rating (meter class and supply tolerance)."""

ENERGY_TOLERANCE = Decimal("0.05")
"""kWh a rise may exceed the credit by: registers count in steps of 0.01 kWh or coarser."""

DEFAULT_BURST = 60.0
"""Seconds of rated-power credit a pile keeps while it reports steadily."""

SECONDS_PER_HOUR = Decimal(3600)


class Verdict(StrEnum):
    """What the rule says of a reading; the non-accepted values are the drop reasons."""

    BELIEVED = "believed"
    OUT_OF_RANGE = "out_of_range"
    BACKWARDS = "backwards"
    TOO_FAST = "too_fast"


def in_range(energy: Decimal) -> bool:
    """A finite register value a real meter can show."""
    return energy.is_finite() and Decimal(0) <= energy <= METER_MAX


def deliverable(rated_power: Decimal, seconds: float) -> Decimal:
    """kWh a pile rated ``rated_power`` kW could deliver in ``seconds`` (with the slack)."""
    if seconds <= 0:
        return Decimal(0)
    return rated_power * POWER_SLACK * Decimal(repr(seconds)) / SECONDS_PER_HOUR


def within_rating(rise: Decimal, seconds: float, rated_power: Decimal) -> bool:
    """Could ``rise`` kWh have been delivered in ``seconds``? (The whole-session check.)"""
    return rise <= deliverable(rated_power, seconds) + ENERGY_TOLERANCE


@dataclass
class MeterCredit:
    """One pile's meter as the rule believes it: the last believed reading and the credit.

    ``judge`` is the only way in; a reading it does not believe changes nothing but the
    credit's clock, so one bad reading never poisons the readings after it.
    """

    rated_power: Decimal = DEFAULT_RATED_POWER
    burst: float = DEFAULT_BURST
    energy: Decimal | None = None
    """The last believed reading."""
    credit: Decimal = Decimal(0)
    """kWh the pile could have delivered since ``energy`` was read and not yet accounted for."""
    at: float | None = None
    """When the credit was last brought up to date."""
    surplus_until: float = 0.0
    """Until when a credit above ``burst`` seconds' worth (a long silence's) may be spent."""

    def judge(self, energy: Decimal, now: float) -> Verdict:
        """Believe ``energy`` (read at ``now``) or say why not; believed readings are kept."""
        if not in_range(energy):
            return Verdict.OUT_OF_RANGE
        self._accrue(now)
        if self.energy is None:
            self.energy = energy
            return Verdict.BELIEVED
        rise = energy - self.energy
        if rise < 0:
            return Verdict.BACKWARDS
        if rise > self.credit + ENERGY_TOLERANCE:
            return Verdict.TOO_FAST
        self.energy = energy
        self.credit = max(self.credit - rise, Decimal(0))
        return Verdict.BELIEVED

    def _accrue(self, now: float) -> None:
        if self.at is None:
            self.at = now
            return
        silence = now - self.at
        gained = deliverable(self.rated_power, silence)
        cap = deliverable(self.rated_power, self.burst)
        if silence > self.burst:
            # The readings queued during the silence may follow in a bunch: they may spend
            # what the whole silence allowed, for as long as a burst lasts.
            self.credit = max(self.credit, gained)
            self.surplus_until = now + self.burst
        elif now <= self.surplus_until:
            self.credit += gained
        else:
            self.credit = min(self.credit + gained, cap)
        self.at = max(self.at, now)


@dataclass(frozen=True)
class RatedPowers:
    """Each pile's rated power in kW: a station-wide default and per-pile exceptions."""

    default: Decimal = DEFAULT_RATED_POWER
    piles: tuple[tuple[str, Decimal], ...] = ()

    def of(self, pile_id: str) -> Decimal:
        return dict(self.piles).get(pile_id, self.default)
