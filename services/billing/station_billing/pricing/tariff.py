"""A tariff compiled once for pricing many sessions: rule 1, which element prices what.

Rule of ``docs/pricing.md`` applied here:

* **Rule 1, which element.** Per dimension (ENERGY, TIME, PARKING_TIME, FLAT) separately:
  the first element in list order that has a component of that dimension and whose
  restrictions all hold (see :mod:`.restrictions`) at the start of the period. A dimension
  with no active component is free in that period (its volume still counts in the session's
  totals). FLAT is chosen the same way, in the first period where some FLAT component is
  active, and charged once (rule 6, see :mod:`.engine`).

Why generated code: a station reprices a month of sessions in one go, and a session has
tens of periods. Compiling the elements into one Python function with the restrictions
inlined as comparisons against constants, and the component choice as a chain of
conditional expressions, makes choosing the elements of a period cost a handful of
comparisons instead of walking pydantic models. The generated source is kept
(:attr:`CompiledTariff.source`) so that what runs can be read.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from station_billing.pricing.localtime import DAY_US, EPOCH_WEEKDAY
from station_billing.pricing.money import ZERO, Amount, minor_unit, vat_factor
from station_billing.pricing.restrictions import (
    LOCAL_VARIABLES,
    Cuts,
    Predicate,
    compile_restrictions,
)
from station_protocol.ocpi import Price, Tariff, TariffDimensionType

DIMENSIONS = (
    TariffDimensionType.ENERGY,
    TariffDimensionType.TIME,
    TariffDimensionType.PARKING_TIME,
    TariffDimensionType.FLAT,
)
ENERGY_SLOT, TIME_SLOT, PARKING_SLOT, FLAT_SLOT = range(4)
"""Where each dimension's cost is summed (the order of :data:`DIMENSIONS`)."""

Period = tuple[
    int, Decimal, Decimal, Decimal, Decimal | None, Decimal | None, Decimal | None, Decimal | None
]
"""One charging period as the engine reads it, a plain tuple so the hot loop unpacks it:
``(start_us, energy_kwh, time_hours, parking_hours, min_current, max_current, min_power,
max_power)``; absent volumes are 0, absent measurements ``None``."""

Accumulated = tuple[list[Decimal], Decimal, Decimal, Decimal, int, int, int, int]
"""``(volume per component, total energy, total TIME, total PARKING_TIME, index of the last
component that priced ENERGY, TIME, PARKING_TIME (or -1), FLAT component (or -1))``."""

Selection = tuple[int, int, int, int]
"""The component (index, or -1) pricing ENERGY, TIME, PARKING_TIME and FLAT in a period."""


@dataclass(frozen=True)
class Component:
    """One price component, with its VAT factor worked out once."""

    index: int
    element: int
    dimension: TariffDimensionType
    price: Decimal
    vat: Decimal | None
    factor: Decimal
    step_size: int
    slot: int

    @property
    def price_incl_vat(self) -> Decimal:
        return self.price * self.factor


@dataclass(frozen=True)
class CompiledTariff:
    tariff: Tariff
    components: tuple[Component, ...]
    cuts: Cuts
    uses_local_time: bool
    accumulate: Callable[[Sequence[Period], int, int, Callable[[int], int]], Accumulated]
    """``accumulate(periods, session_start_us, offset_us, _)``: every period at one offset."""
    accumulate_zoned: Callable[[Sequence[Period], int, int, Callable[[int], int]], Accumulated]
    """``accumulate_zoned(periods, session_start_us, _, local_of)``: an offset per period."""
    select: Callable[..., Selection]
    """``select(local_us, kwh, dur, imin, imax, pmin, pmax)`` for one period."""
    source: str = field(repr=False)
    minor_unit: Decimal = field(default=Decimal("0.01"))
    min_price: Price | None = None
    max_price: Price | None = None
    nothing: Amount = field(default_factory=lambda: Amount(ZERO, ZERO))
    """A zero amount in the currency's minor unit."""

    @property
    def currency(self) -> str:
        return self.tariff.currency


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Compile ``tariff``; raises ``ValueError`` for restrictions it cannot evaluate."""
    cuts = Cuts()
    components: list[Component] = []
    predicates: list[Predicate] = []
    for number, element in enumerate(tariff.elements):
        predicates.append(compile_restrictions(element.restrictions, f"R{number}", cuts))
        for part in element.price_components:
            components.append(
                Component(
                    index=len(components),
                    element=number,
                    dimension=part.type,
                    price=part.price,
                    vat=part.vat,
                    factor=vat_factor(part.vat),
                    step_size=part.step_size,
                    slot=DIMENSIONS.index(part.type),
                )
            )
    chains = {dimension: _chain(components, predicates, dimension) for dimension in DIMENSIONS}
    source, namespace = _generate(predicates, chains, len(components), sorted(cuts.times_of_day))
    exec(compile(source, f"<tariff {tariff.id}>", "exec"), namespace)
    variables = frozenset().union(*(p.variables for p in predicates if not p.never))
    return CompiledTariff(
        tariff=tariff,
        components=tuple(components),
        cuts=cuts,
        uses_local_time=bool(variables & LOCAL_VARIABLES),
        accumulate=namespace["accumulate"],
        accumulate_zoned=namespace["accumulate_zoned"],
        select=namespace["select"],
        source=source,
        minor_unit=minor_unit(tariff.currency),
        nothing=Amount(
            ZERO.quantize(minor_unit(tariff.currency)), ZERO.quantize(minor_unit(tariff.currency))
        ),
        min_price=tariff.min_price,
        max_price=tariff.max_price,
    )


@dataclass(frozen=True)
class _Candidate:
    element: int
    component: int
    predicate: Predicate


def _chain(
    components: list[Component], predicates: list[Predicate], dimension: TariffDimensionType
) -> list[_Candidate]:
    """The elements that may price ``dimension``, in list order, up to the first always-on.

    Only the first component of the dimension in an element counts (validation refuses an
    element with two of the same dimension; a CDR priced from an outside tariff still gets
    one answer).
    """
    chain: list[_Candidate] = []
    seen: set[int] = set()
    for component in components:
        if component.dimension != dimension or component.element in seen:
            continue
        seen.add(component.element)
        predicate = predicates[component.element]
        if predicate.never:
            continue
        chain.append(_Candidate(component.element, component.index, predicate))
        if predicate.always:
            break
    return chain


def _choice(chain: list[_Candidate], inline: bool) -> str:
    """``c0 if <restrictions of e0> else (c1 if ... else -1)``: the first element that holds.

    ``inline`` writes each element's restrictions into the chain (evaluated only as far as
    the chain goes); otherwise they are the precomputed ``m<element>`` flags.
    """
    expression = "-1"
    for candidate in reversed(chain):
        if candidate.predicate.always:
            expression = str(candidate.component)
            continue
        test = candidate.predicate.expression if inline else f"m{candidate.element}"
        expression = f"({candidate.component} if ({test}) else {expression})"
    return expression


def _generate(
    predicates: list[Predicate],
    chains: dict[TariffDimensionType, list[_Candidate]],
    count: int,
    cuts: list[int],
) -> tuple[str, dict[str, Any]]:
    namespace: dict[str, Any] = {"ZERO": ZERO}
    used = sorted({c.element for chain in chains.values() for c in chain if not c.predicate.always})
    variables: set[str] = set()
    for number in used:
        namespace.update(predicates[number].constants)
        variables |= predicates[number].variables
    local_lines = _local_lines(variables)
    match_lines = [f"m{number} = {predicates[number].expression}" for number in used]
    select = (
        "def select(local, kwh, dur, imin, imax, pmin, pmax):\n"
        + _block(local_lines + match_lines, 1)
        + "    return ("
        + ", ".join(_choice(chains[dimension], inline=False) for dimension in DIMENSIONS)
        + ")\n"
    )
    sources = [select]
    namespace["CUTS"] = tuple(cuts)
    namespace["bisect_right"] = bisect_right
    for name, local in (("accumulate", "start + offset"), ("accumulate_zoned", "local_of(start)")):
        sources.append(
            _accumulate(
                name, local, local_lines, "dur" in variables, chains, count, namespace, cuts
            )
        )
    return "\n\n".join(sources), namespace


def _band_table(chain: list[_Candidate], cuts: list[int]) -> list[int] | None:
    """For a choice that depends on the time of day only: the component in each band.

    The bands are the stretches between consecutive time-of-day cut points, where every
    restriction of the chain keeps its value, so the choice at a band's start is its choice
    throughout; ``table[bisect_right(cuts, tod)]`` then replaces the comparisons.
    """
    if not cuts or any(c.predicate.variables - {"tod"} for c in chain):
        return None
    table = []
    for start in [0, *cuts]:
        chosen = -1
        for candidate in chain:
            if candidate.predicate.always or eval(
                candidate.predicate.expression, {**candidate.predicate.constants, "tod": start}
            ):
                chosen = candidate.component
                break
        table.append(chosen)
    return table


def _accumulate(
    name: str,
    local: str,
    local_lines: list[str],
    needs_duration: bool,
    chains: dict[TariffDimensionType, list[_Candidate]],
    count: int,
    namespace: dict[str, Any],
    cuts: list[int],
) -> str:
    """The loop over a session's periods; the restrictions are inlined into the choices."""
    flat = _choice(chains[TariffDimensionType.FLAT], inline=True)
    for dimension in (
        TariffDimensionType.ENERGY,
        TariffDimensionType.TIME,
        TariffDimensionType.PARKING_TIME,
    ):
        table = _band_table(chains[dimension], cuts)
        if table is not None:
            namespace[f"BANDS_{dimension.value}"] = tuple(table)
    return (
        f"def {name}(periods, start_us, offset, local_of):\n"
        f"    vols = [ZERO] * {count}\n"
        "    kwh = time_total = parking_total = ZERO\n"
        "    last_e = last_t = last_p = flat = -1\n"
        "    for start, energy, time_h, parking_h, imin, imax, pmin, pmax in periods:\n"
        + _block(([f"local = {local}"] if local_lines else []) + local_lines, 2)
        + _block(["dur = start - start_us"] if needs_duration else [], 2)
        + _volume_block("energy", "last_e", chains[TariffDimensionType.ENERGY], "kwh", namespace)
        + _volume_block(
            "time_h", "last_t", chains[TariffDimensionType.TIME], "time_total", namespace
        )
        + _volume_block(
            "parking_h",
            "last_p",
            chains[TariffDimensionType.PARKING_TIME],
            "parking_total",
            namespace,
        )
        + (f"        if flat < 0:\n            flat = {flat}\n" if flat != "-1" else "")
        + "    return vols, kwh, time_total, parking_total, last_e, last_t, last_p, flat\n"
    )


def _block(lines: list[str], depth: int) -> str:
    return "".join(f"{'    ' * depth}{line}\n" for line in lines)


def _local_lines(variables: set[str]) -> list[str]:
    if not variables & LOCAL_VARIABLES:
        return []
    lines = []
    if variables & {"day", "wd"}:
        lines.append(f"day = local // {DAY_US}")
    if "tod" in variables:
        lines.append(f"tod = local % {DAY_US}")
    if "wd" in variables:
        lines.append(f"wd = (day + {EPOCH_WEEKDAY}) % 7")
    return lines


def _volume_block(
    volume: str, last: str, chain: list[_Candidate], total: str, namespace: dict[str, Any]
) -> str:
    """Add a period's volume to the component that prices it, and to the session's total.

    The energy before the period (``kwh``) is read by the choice before it is added to.
    """
    dimension = {"energy": "ENERGY", "time_h": "TIME", "parking_h": "PARKING_TIME"}[volume]
    table = namespace.get(f"BANDS_{dimension}")
    if table is not None and len(set(table)) == 1:
        choice, maybe_none = str(table[0]), table[0] < 0
    elif table is not None:
        choice, maybe_none = f"BANDS_{dimension}[bisect_right(CUTS, tod)]", min(table) < 0
    else:
        choice = _choice(chain, inline=True)
        maybe_none = not chain or not chain[-1].predicate.always
    if choice == "-1":
        return f"        if {volume}:\n            {total} += {volume}\n"
    if choice.isdigit():
        return (
            f"        if {volume}:\n"
            f"            vols[{choice}] += {volume}\n"
            f"            {last} = {choice}\n"
            f"            {total} += {volume}\n"
        )
    if maybe_none:
        return (
            f"        if {volume}:\n"
            f"            c = {choice}\n"
            "            if c >= 0:\n"
            f"                vols[c] += {volume}\n"
            f"                {last} = c\n"
            f"            {total} += {volume}\n"
        )
    return (
        f"        if {volume}:\n"
        f"            c = {choice}\n"
        f"            vols[c] += {volume}\n"
        f"            {last} = c\n"
        f"            {total} += {volume}\n"
    )


def period_selection(
    compiled: CompiledTariff,
    local_of: Callable[[int], int],
    period: Period,
    kwh_before: Decimal,
    session_start_us: int,
) -> Selection:
    """Which components price one period (the same choice :attr:`accumulate` makes)."""
    start, _energy, _time, _parking, imin, imax, pmin, pmax = period
    local = local_of(start) if compiled.uses_local_time else 0
    return compiled.select(local, kwh_before, start - session_start_us, imin, imax, pmin, pmax)
