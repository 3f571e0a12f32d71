"""Properties of the engine over generated tariffs and sessions (hypothesis).

* For a tariff without restrictions, step sizes or min/max price, splitting a charging
  period at any instant (its volumes shared between the two parts) leaves every total
  unchanged: the price is linear in the volumes.
* Totals never decrease as the session grows: appending a period, under any tariff without
  step sizes (restrictions and bounds included); making any volume larger, under an
  unrestricted tariff with step sizes. (With several elements, a step size is the last
  priced period's, so a longer session may legitimately cost less: OCPI's rule 5.)
* min_price and max_price always hold, excl and incl VAT.
* incl_vat >= excl_vat, for the session and for every component.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station_billing.pricing import (
    compile_tariff,
    price_session,
    read_tariff,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone

ZONE = StationZone.named("Europe/Berlin")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
MONEY_SIDES = ("excl_vat", "incl_vat")
COST_KEYS = (
    "total_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_fixed_cost",
)


def decimals(high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, high * 10**places).map(lambda n: Decimal(n).scaleb(-places))


vats = st.one_of(st.none(), st.integers(0, 250).map(lambda n: Decimal(n) / 10))


@st.composite
def components(draw: st.DrawFn, steps: bool) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True))
    return [
        {
            "type": kind,
            "price": draw(decimals(5, 3)),
            "vat": draw(vats),
            "step_size": draw(st.sampled_from([0, 1, 60, 300, 900, 7, 100, 500])) if steps else 0,
        }
        for kind in kinds
    ]


def times() -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(
        lambda t: f"{t[0]:02d}:{t[1]:02d}"
    )


@st.composite
def restrictions(draw: st.DrawFn) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    if draw(st.booleans()):
        start, end = draw(times()), draw(times())
        if start != end:
            found.update(start_time=start, end_time=end)
    if draw(st.booleans()):
        found["day_of_week"] = draw(
            st.lists(
                st.sampled_from(["MONDAY", "TUESDAY", "SATURDAY", "SUNDAY"]),
                min_size=1,
                unique=True,
            )
        )
    if draw(st.booleans()):
        low = draw(st.integers(0, 30))
        found.update(min_kwh=Decimal(low), max_kwh=Decimal(low + draw(st.integers(1, 30))))
    if draw(st.booleans()):
        found["min_duration"] = draw(st.integers(0, 7200))
    return found or None


@st.composite
def bounds(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {}
    low = draw(decimals(20, 2))
    high = low + draw(decimals(40, 3)) + Decimal("0.01")
    if draw(st.booleans()):
        found["min_price"] = {"excl_vat": low, "incl_vat": low + draw(decimals(5, 2))}
    if draw(st.booleans()):
        found["max_price"] = {"excl_vat": high, "incl_vat": high + draw(decimals(5, 2))}
    if "min_price" in found and "max_price" in found:
        found["max_price"]["incl_vat"] = max(
            found["max_price"]["incl_vat"], found["min_price"]["incl_vat"]
        )
    return found


@st.composite
def tariffs(
    draw: st.DrawFn, *, restricted: bool, steps: bool, bounded: bool, elements: int = 4
) -> dict[str, Any]:
    count = draw(st.integers(1, elements)) if restricted else 1
    found_elements = []
    for _ in range(count):
        element: dict[str, Any] = {"price_components": draw(components(steps))}
        if restricted:
            element["restrictions"] = draw(restrictions())
        found_elements.append(element)
    return {
        "id": "generated",
        "currency": "EUR",
        "elements": found_elements,
        "last_updated": "2026-01-01T00:00:00Z",
        **(draw(bounds()) if bounded else {}),
    }


@st.composite
def periods(draw: st.DrawFn) -> dict[str, Any]:
    """A period's length (seconds) and volumes; a period either charges or parks."""
    seconds = draw(st.integers(0, 4 * 3600))
    hours = (Decimal(seconds) / 3600).quantize(Decimal("0.000001"))
    charging = draw(st.booleans())
    volumes: dict[str, Decimal] = {"TIME" if charging else "PARKING_TIME": hours}
    if charging:
        volumes["ENERGY"] = draw(decimals(40, 3))
    return {"seconds": seconds, "volumes": volumes}


START = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def cdr_of(start_offset: int, raw: list[dict[str, Any]]) -> dict[str, Any]:
    at = START + timedelta(minutes=start_offset)
    start = at
    charging_periods = []
    for period in raw:
        charging_periods.append(
            {
                "start_date_time": at.isoformat(),
                "dimensions": [{"type": k, "volume": v} for k, v in period["volumes"].items()],
            }
        )
        at += timedelta(seconds=period["seconds"])
    return {
        "start_date_time": start.isoformat(),
        "end_date_time": at.isoformat(),
        "charging_periods": charging_periods,
    }


def price(data: dict[str, Any], cdr: dict[str, Any]) -> dict[str, Any]:
    compiled = compile_tariff(read_tariff(data))
    return totals_json(price_session(compiled, session_from_cdr(cdr, ZONE)))


def money(totals: dict[str, Any], key: str, side: str) -> Decimal:
    return Decimal(totals[key][side])


sessions = st.tuples(st.integers(0, 14 * 24 * 60), st.lists(periods(), min_size=1, max_size=8))


@PROPERTY
@given(
    data=tariffs(restricted=False, steps=False, bounded=False),
    session=sessions,
    which=st.integers(0, 7),
    share=st.fractions(0, 1),
)
def test_splitting_a_period_at_any_instant_leaves_every_total_unchanged(
    data: dict[str, Any], session: tuple[int, list[dict[str, Any]]], which: int, share: Any
) -> None:
    offset, raw = session
    index = which % len(raw)
    period = raw[index]
    first_seconds = int(period["seconds"] * share)
    first: dict[str, Any] = {"seconds": first_seconds, "volumes": {}}
    second: dict[str, Any] = {"seconds": period["seconds"] - first_seconds, "volumes": {}}
    for kind, volume in period["volumes"].items():
        part = (volume * Decimal(share.numerator) / Decimal(share.denominator or 1)).quantize(
            Decimal("0.000001")
        )
        part = min(part, volume)
        first["volumes"][kind] = part
        second["volumes"][kind] = volume - part
    split = [*raw[:index], first, second, *raw[index + 1 :]]
    assert price(data, cdr_of(offset, split)) == price(data, cdr_of(offset, raw))


@PROPERTY
@given(
    data=tariffs(restricted=True, steps=False, bounded=True),
    session=sessions,
    extra=periods(),
)
def test_appending_a_period_never_lowers_a_total(
    data: dict[str, Any], session: tuple[int, list[dict[str, Any]]], extra: dict[str, Any]
) -> None:
    offset, raw = session
    before = price(data, cdr_of(offset, raw))
    after = price(data, cdr_of(offset, [*raw, extra]))
    for side in MONEY_SIDES:
        assert money(after, "total_cost", side) >= money(before, "total_cost", side)
    assert Decimal(after["total_energy"]) >= Decimal(before["total_energy"])


@PROPERTY
@given(
    data=tariffs(restricted=False, steps=True, bounded=True),
    session=sessions,
    which=st.integers(0, 7),
    more=decimals(10, 3),
)
def test_more_energy_or_time_never_lowers_a_total_even_with_step_sizes(
    data: dict[str, Any],
    session: tuple[int, list[dict[str, Any]]],
    which: int,
    more: Decimal,
) -> None:
    offset, raw = session
    index = which % len(raw)
    grown = [dict(period, volumes=dict(period["volumes"])) for period in raw]
    kind = sorted(grown[index]["volumes"])[0]
    grown[index]["volumes"][kind] += more
    before = price(data, cdr_of(offset, raw))
    after = price(data, cdr_of(offset, grown))
    for side in MONEY_SIDES:
        assert money(after, "total_cost", side) >= money(before, "total_cost", side)


@PROPERTY
@given(data=tariffs(restricted=True, steps=True, bounded=True), session=sessions)
def test_min_and_max_price_always_hold_and_incl_vat_is_never_below_excl_vat(
    data: dict[str, Any], session: tuple[int, list[dict[str, Any]]]
) -> None:
    totals = price(data, cdr_of(*session))
    for side in MONEY_SIDES:
        if "min_price" in data:
            assert money(totals, "total_cost", side) >= data["min_price"][side]
        if "max_price" in data:
            assert money(totals, "total_cost", side) <= data["max_price"][side]
    for key in COST_KEYS:
        assert money(totals, key, "incl_vat") >= money(totals, key, "excl_vat") >= 0
        assert money(totals, key, "excl_vat") == money(totals, key, "excl_vat").quantize(
            Decimal("0.01")
        )
