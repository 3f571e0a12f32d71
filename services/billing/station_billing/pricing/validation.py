"""Is this OCPI tariff one the engine can price without guessing? Each problem names its field.

Pydantic (``station_protocol.ocpi.Tariff``) checks shapes and types; these are the checks of
meaning that OCPI states in prose, and ours where a tariff would otherwise be ambiguous:

* a ``Price`` (``min_price``, ``max_price``) has ``incl_vat >= excl_vat`` (VAT is never
  negative), and ``min_price`` does not exceed ``max_price``;
* ``vat`` is a percentage of at most 100;
* an element has at most one component per dimension (OCPI: one component per dimension
  active at a time; two in one element would need a tie-break nobody agreed on);
* times are ``HH:MM`` (OCPI's format, no seconds); ``start_time`` differs from ``end_time``
  (equal would be either an empty band or a whole day: omit both for a whole day);
* dates are real calendar dates, ``start_date`` before ``end_date``;
* every ``min_*`` is below its ``max_*``;
* ``reservation`` is ``RESERVATION`` or ``RESERVATION_EXPIRES``;
* ``start_date_time`` before ``end_date_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from station_protocol.ocpi import Price, PriceComponent, Tariff, TariffRestrictions

Location = tuple[str | int, ...]
RESERVATION_TYPES = frozenset({"RESERVATION", "RESERVATION_EXPIRES"})
MAX_VAT = Decimal(100)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a tariff: where (a JSON path) and why."""

    loc: Location
    msg: str

    @property
    def path(self) -> str:
        """``elements[1].restrictions.max_kwh``."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "tariff"

    def __str__(self) -> str:
        return f"{self.path}: {self.msg}"


class InvalidTariff(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


def read_tariff(data: Any) -> Tariff:
    """Parse and check an OCPI tariff (a ``dict`` from JSON); raises :class:`InvalidTariff`."""
    try:
        tariff = Tariff.model_validate(data)
    except ValidationError as exc:
        raise InvalidTariff(
            [
                Problem(tuple(error["loc"]), str(error["msg"]))
                for error in exc.errors(include_url=False)
            ]
        ) from None
    problems = tariff_problems(tariff)
    if problems:
        raise InvalidTariff(problems)
    return tariff


def tariff_problems(tariff: Tariff) -> list[Problem]:
    problems: list[Problem] = []
    for name in ("min_price", "max_price"):
        bound = getattr(tariff, name)
        if bound is not None and bound.incl_vat < bound.excl_vat:
            problems.append(Problem((name, "incl_vat"), "must not be less than excl_vat"))
    problems += _bounds_order(tariff.min_price, tariff.max_price)
    if (
        tariff.start_date_time is not None
        and tariff.end_date_time is not None
        and tariff.end_date_time <= tariff.start_date_time
    ):
        problems.append(Problem(("end_date_time",), "must be after start_date_time"))
    for number, element in enumerate(tariff.elements):
        where: Location = ("elements", number)
        problems += _components(element.price_components, where)
        if element.restrictions is not None:
            problems += _restrictions(element.restrictions, (*where, "restrictions"))
    return problems


def _bounds_order(low: Price | None, high: Price | None) -> list[Problem]:
    if low is None or high is None:
        return []
    return [
        Problem(("min_price", side), f"must not exceed max_price.{side}")
        for side in ("excl_vat", "incl_vat")
        if getattr(low, side) > getattr(high, side)
    ]


def _components(components: list[PriceComponent], where: Location) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for number, component in enumerate(components):
        at = (*where, "price_components", number)
        if component.type.value in seen:
            problems.append(
                Problem((*at, "type"), f"a second {component.type.value} component in one element")
            )
        seen.add(component.type.value)
        if component.vat is not None and component.vat > MAX_VAT:
            problems.append(Problem((*at, "vat"), "a percentage of at most 100"))
    return problems


def _restrictions(restrictions: TariffRestrictions, where: Location) -> list[Problem]:
    problems = []
    for name in ("start_time", "end_time"):
        moment = getattr(restrictions, name)
        if moment is not None and (moment.second or moment.microsecond or moment.tzinfo):
            problems.append(Problem((*where, name), "OCPI times are HH:MM (no seconds or zone)"))
    if restrictions.start_time is not None and restrictions.start_time == restrictions.end_time:
        problems.append(
            Problem(
                (*where, "end_time"),
                "equals start_time (an empty or whole-day band): omit both for a whole day",
            )
        )
    days: dict[str, date] = {}
    for name in ("start_date", "end_date"):
        text = getattr(restrictions, name)
        if text is not None:
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                problems.append(Problem((*where, name), f"not a calendar date: {text!r}"))
    if len(days) == 2 and days["end_date"] <= days["start_date"]:
        problems.append(Problem((*where, "end_date"), "must be after start_date"))
    for low, high in (
        ("min_kwh", "max_kwh"),
        ("min_current", "max_current"),
        ("min_power", "max_power"),
        ("min_duration", "max_duration"),
    ):
        low_value, high_value = getattr(restrictions, low), getattr(restrictions, high)
        if low_value is not None and high_value is not None and high_value <= low_value:
            problems.append(Problem((*where, high), f"must be greater than {low} ({low_value})"))
    if restrictions.reservation is not None and restrictions.reservation not in RESERVATION_TYPES:
        problems.append(
            Problem((*where, "reservation"), "must be RESERVATION or RESERVATION_EXPIRES")
        )
    return problems
