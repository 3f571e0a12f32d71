"""Tariff restrictions, compiled once into small Python predicates (rules 2 and 3).

Rules of ``docs/pricing.md`` applied here, and ours where OCPI is silent:

* **Rule 2, when.** Restrictions are evaluated at the start of each charging period, in the
  station's local time (see :mod:`.localtime`). The predicates below see the period's start
  as local wall-clock microseconds (``tod`` since local midnight, ``day`` as a local day
  number, ``wd`` Monday=0), the energy consumed before the period (``kwh``) and the time
  since the session started (``dur``, microseconds).
* **Rule 3, boundaries.** ``start_time`` and ``start_date`` inclusive, ``end_time`` and
  ``end_date`` exclusive; an ``end_time`` earlier than ``start_time`` wraps past midnight
  (22:00-06:00 holds from 22:00 until 06:00 the next morning). ``min_*`` inclusive,
  ``max_*`` exclusive. ``min_kwh``/``max_kwh`` compare the energy consumed before the
  period; ``min_duration``/``max_duration`` the time since the session started (the CDR's
  ``start_date_time``), in seconds.
* **Current and power (ours).** ``min_current`` compares the period's lowest current,
  ``max_current`` its highest: ``MIN_CURRENT`` and ``MAX_CURRENT``, each falling back to
  ``CURRENT`` and then to the other one (a period that never went below 43 A did not stay
  below 32 A either); likewise ``min_power``/``max_power`` with ``MIN_POWER``/``POWER``/
  ``MAX_POWER``. The element applies only if the current stayed on its side of the limit
  for the whole period. A current or power restriction whose dimension the CDR lacks
  altogether counts as satisfied (rule 3).
* **day_of_week (ours).** The local weekday at the period's start; an empty list restricts
  nothing, as an absent one.
* **reservation (ours).** An element with a ``reservation`` restriction prices a
  reservation, and this station takes none: such an element never applies to a charging
  session.

Each element becomes one boolean expression over those variables, with its limits bound as
constants, so that choosing an element costs a few integer and Decimal comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from station_billing.pricing.localtime import SECOND_US, day_number, time_of_day_us
from station_protocol.ocpi import DayOfWeek, TariffRestrictions

WEEKDAYS = {day: index for index, day in enumerate(DayOfWeek)}
"""DayOfWeek -> Monday 0 .. Sunday 6 (the enum lists Monday first)."""

LOCAL_VARIABLES = frozenset({"tod", "day", "wd"})


@dataclass
class Cuts:
    """Where a session must start a new charging period so each period has one price.

    The station builds periods from meter readings; rule 2 says a new one starts at every
    instant where the price could change. These are those instants' sources.
    """

    times_of_day: set[int] = field(default_factory=set)
    """Local times of day (microseconds since midnight) where a time band begins or ends."""
    calendar: bool = False
    """Some element depends on the local date or weekday: local midnight is a boundary."""
    durations: set[int] = field(default_factory=set)
    """Microseconds since the session started."""
    energies: set[Decimal] = field(default_factory=set)
    """kWh consumed in the session."""
    currents: set[Decimal] = field(default_factory=set)
    powers: set[Decimal] = field(default_factory=set)


@dataclass(frozen=True)
class Predicate:
    """One element's restrictions as a Python expression and the constants it names."""

    expression: str
    constants: dict[str, object]
    variables: frozenset[str]
    never: bool = False

    @property
    def always(self) -> bool:
        return not self.never and self.expression == "True"


class _Builder:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.terms: list[str] = []
        self.constants: dict[str, object] = {}
        self.variables: set[str] = set()

    def constant(self, value: object) -> str:
        name = f"{self.prefix}_{len(self.constants)}"
        self.constants[name] = value
        return name

    def add(self, term: str, *variables: str) -> None:
        self.terms.append(term)
        self.variables.update(variables)


def compile_restrictions(
    restrictions: TariffRestrictions | None, prefix: str, cuts: Cuts
) -> Predicate:
    """The element's predicate; its limits are added to ``cuts``."""
    if restrictions is None:
        return Predicate("True", {}, frozenset())
    if restrictions.reservation is not None:
        return Predicate("False", {}, frozenset(), never=True)
    built = _Builder(prefix)
    _time_band(restrictions, built, cuts)
    _dates(restrictions, built, cuts)
    _weekdays(restrictions, built, cuts)
    _bounded(built, "kwh", restrictions.min_kwh, restrictions.max_kwh)
    cuts.energies.update(v for v in (restrictions.min_kwh, restrictions.max_kwh) if v is not None)
    _durations(restrictions, built, cuts)
    _measured(built, "imin", "imax", restrictions.min_current, restrictions.max_current)
    cuts.currents.update(
        v for v in (restrictions.min_current, restrictions.max_current) if v is not None
    )
    _measured(built, "pmin", "pmax", restrictions.min_power, restrictions.max_power)
    cuts.powers.update(v for v in (restrictions.min_power, restrictions.max_power) if v is not None)
    expression = " and ".join(f"({term})" for term in built.terms) or "True"
    return Predicate(expression, built.constants, frozenset(built.variables))


def _time_band(restrictions: TariffRestrictions, built: _Builder, cuts: Cuts) -> None:
    start = restrictions.start_time
    end = restrictions.end_time
    if start is not None and end is not None and start == end:
        raise ValueError("start_time equals end_time")
    start_us = time_of_day_us(start) if start is not None else None
    end_us = time_of_day_us(end) if end is not None else None
    cuts.times_of_day.update(v for v in (start_us, end_us) if v is not None)
    if start_us is not None and end_us is not None and end_us < start_us:
        built.add(f"tod >= {start_us} or tod < {end_us}", "tod")
        return
    if start_us is not None:
        built.add(f"tod >= {start_us}", "tod")
    if end_us is not None:
        built.add(f"tod < {end_us}", "tod")


def _dates(restrictions: TariffRestrictions, built: _Builder, cuts: Cuts) -> None:
    for text, operator in ((restrictions.start_date, ">="), (restrictions.end_date, "<")):
        if text is not None:
            built.add(f"day {operator} {day_number(date.fromisoformat(text))}", "day")
            cuts.calendar = True


def _weekdays(restrictions: TariffRestrictions, built: _Builder, cuts: Cuts) -> None:
    if not restrictions.day_of_week:
        return
    days = frozenset(WEEKDAYS[day] for day in restrictions.day_of_week)
    built.add(f"wd in {built.constant(days)}", "wd")
    cuts.calendar = True


def _durations(restrictions: TariffRestrictions, built: _Builder, cuts: Cuts) -> None:
    if restrictions.min_duration is not None:
        limit = restrictions.min_duration * SECOND_US
        built.add(f"dur >= {limit}", "dur")
        cuts.durations.add(limit)
    if restrictions.max_duration is not None:
        limit = restrictions.max_duration * SECOND_US
        built.add(f"dur < {limit}", "dur")
        cuts.durations.add(limit)


def _bounded(built: _Builder, variable: str, low: Decimal | None, high: Decimal | None) -> None:
    if low is not None:
        built.add(f"{variable} >= {built.constant(low)}", variable)
    if high is not None:
        built.add(f"{variable} < {built.constant(high)}", variable)


def _measured(
    built: _Builder,
    low_variable: str,
    high_variable: str,
    low: Decimal | None,
    high: Decimal | None,
) -> None:
    """A limit on a measured dimension: satisfied when the period did not measure it."""
    if low is not None:
        name = built.constant(low)
        built.add(f"{low_variable} is None or {low_variable} >= {name}", low_variable)
    if high is not None:
        name = built.constant(high)
        built.add(f"{high_variable} is None or {high_variable} < {name}", high_variable)
