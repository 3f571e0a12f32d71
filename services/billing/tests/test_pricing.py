"""The tariff engine, one price component and one restriction at a time, with worked examples.

Tariffs and CDRs are written as OCPI JSON, as an operator or the CLI gives them. The OCPI
2.2.1 examples (``mod_tariffs``) are priced as their text says, except where the bug-fix
text of rule 5 (step_size: when TIME and PARKING_TIME are both priced only parking is
rounded) changed the figure; those tests say so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from station_billing.ocpi_tariffs import Band, tariff_json, time_of_use_tariff
from station_billing.pricing import (
    CdrError,
    InvalidTariff,
    compile_tariff,
    price_session,
    read_tariff,
    round_money,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone

D = Decimal


def component(kind: str, price: str, vat: str | None = None, step: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        found["vat"] = D(vat)
    return found


def element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        found["restrictions"] = restrictions
    return found


def tariff(*elements: dict[str, Any], currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    return {
        "id": "t",
        "currency": currency,
        "elements": list(elements),
        "last_updated": "2026-01-01T00:00:00Z",
        **extra,
    }


def price_of(excl: str, incl: str | None = None) -> dict[str, Any]:
    return {"excl_vat": D(excl), "incl_vat": D(incl if incl is not None else excl)}


class Session:
    """A CDR built period by period: ``charge(kwh, minutes)``, ``park(minutes)``..."""

    def __init__(self, start: str) -> None:
        self.start = datetime.fromisoformat(start)
        self.at = self.start
        self.periods: list[dict[str, Any]] = []

    def period(self, minutes: float, **dimensions: Any) -> Session:
        self.periods.append(
            {
                "start_date_time": self.at.isoformat(),
                "dimensions": [
                    {"type": kind.upper(), "volume": D(str(volume))}
                    for kind, volume in dimensions.items()
                ],
            }
        )
        self.at += timedelta(minutes=minutes)
        return self

    def charge(self, kwh: str | float, minutes: float, **more: Any) -> Session:
        hours = D(str(minutes)) / 60
        return self.period(minutes, energy=kwh, time=hours, **more)

    def park(self, minutes: float) -> Session:
        return self.period(minutes, parking_time=D(str(minutes)) / 60)

    def cdr(self) -> dict[str, Any]:
        return {
            "start_date_time": self.start.isoformat(),
            "end_date_time": self.at.isoformat(),
            "charging_periods": self.periods,
        }


def priced(data: dict[str, Any], cdr: dict[str, Any], tz: str = "Europe/Berlin") -> dict[str, Any]:
    """The CDR totals as the CLI prints them, read back as Decimals."""
    compiled = compile_tariff(read_tariff(json.loads(json.dumps(data, default=str))))
    totals = totals_json(price_session(compiled, session_from_cdr(cdr, StationZone.named(tz))))
    return json.loads(json.dumps(totals), parse_float=D, parse_constant=D, object_hook=_decimals)


def _decimals(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: D(v) if k in ("excl_vat", "incl_vat") else v for k, v in obj.items()}


def total(data: dict[str, Any], cdr: dict[str, Any], tz: str = "Europe/Berlin") -> dict[str, Any]:
    return priced(data, cdr, tz)["total_cost"]  # type: ignore[no-any-return]


# --- price components ------------------------------------------------------------------------


def test_energy_0_25_per_kwh_10pct_vat_20_kwh_costs_5_00_excl_5_50_incl() -> None:
    simple = tariff(element(component("ENERGY", "0.25", "10", 1)))
    assert total(simple, Session("2026-03-02T10:00Z").charge(20, 60).cdr()) == price_of(
        "5.00", "5.50"
    )


def test_start_fee_0_50_20pct_plus_energy_20_kwh_costs_5_50_excl_6_10_incl() -> None:
    started = tariff(
        element(component("FLAT", "0.50", "20")), element(component("ENERGY", "0.25", "10", 1))
    )
    result = priced(started, Session("2026-03-02T10:00Z").charge(20, 60).cdr())
    assert result["total_cost"] == price_of("5.50", "6.10")
    assert result["total_fixed_cost"] == price_of("0.50", "0.60")
    assert result["total_energy_cost"] == price_of("5.00", "5.50")


def test_flat_is_charged_once_per_session_however_many_periods() -> None:
    fee = tariff(element(component("FLAT", "1.00"), component("ENERGY", "0.10")))
    cdr = Session("2026-03-02T10:00Z").charge(5, 10).charge(5, 10).park(10).charge(5, 10).cdr()
    assert total(fee, cdr) == price_of("2.50")


def test_time_2_euro_per_hour_for_2_5_hours_costs_5_00_excl_5_50_incl() -> None:
    hourly = tariff(element(component("TIME", "2.00", "10", 60)))
    assert total(hourly, Session("2026-03-02T10:00Z").charge(15, 150).cdr()) == price_of(
        "5.00", "5.50"
    )


def test_time_only_tariff_does_not_bill_parking_time() -> None:
    hourly = tariff(element(component("TIME", "2.00", "10", 60)))
    cdr = Session("2026-03-02T10:00Z").charge(15, 150).park(60).cdr()
    result = priced(hourly, cdr)
    assert result["total_cost"] == price_of("5.00", "5.50")
    assert result["total_parking_time"] == "1"
    assert result["total_time"] == "3.5"


def test_charging_3_per_h_parking_5_per_h_150_plus_42_min_costs_11_25_excl_12_75_incl() -> None:
    both = tariff(
        element(component("TIME", "3.00", "10", 60), component("PARKING_TIME", "5.00", "20", 300))
    )
    result = priced(both, Session("2026-03-02T10:00Z").charge(30, 150).park(42).cdr())
    assert result["total_time_cost"] == price_of("7.50", "8.25")
    assert result["total_parking_cost"] == price_of("3.75", "4.50")  # 42 min billed as 45
    assert result["total_cost"] == price_of("11.25", "12.75")


def test_energy_parking_and_start_fee_20_kwh_parked_40_min_costs_7_00_excl_7_90_incl() -> None:
    tariff_10 = tariff(
        element(component("FLAT", "0.50", "20")),
        element(component("ENERGY", "0.25", "10", 1)),
        element(component("PARKING_TIME", "2.00", "20", 900)),
    )
    cdr = Session("2026-03-02T10:00Z").charge(20, 60).park(40).cdr()
    assert total(tariff_10, cdr) == price_of("7.00", "7.90")


def test_ad_hoc_1_9_per_hour_5_2pct_vat_for_2_5_hours_costs_4_75_excl_5_00_incl() -> None:
    alt_text = tariff(element(component("TIME", "1.90", "5.2", 300)))
    assert total(alt_text, Session("2026-03-02T10:00Z").charge(10, 150).cdr()) == price_of(
        "4.75", "5.00"
    )


def test_a_dimension_without_component_is_free() -> None:
    energy_only = tariff(element(component("ENERGY", "0.30")))
    result = priced(energy_only, Session("2026-03-02T10:00Z").charge(10, 60).park(60).cdr())
    assert result["total_time_cost"] == result["total_parking_cost"] == price_of("0.00")
    assert result["total_cost"] == price_of("3.00")


def test_free_of_charge_tariff_is_a_flat_price_of_zero() -> None:
    free = tariff(element(component("FLAT", "0.00")))
    assert total(free, Session("2026-03-02T10:00Z").charge(40, 120).park(30).cdr()) == price_of(
        "0.00"
    )


# --- step_size (rule 5) ----------------------------------------------------------------------


def test_energy_step_100_wh_bills_20_45_kwh_as_20_5_kwh() -> None:
    stepped = tariff(element(component("ENERGY", "0.25", "10", 100)))
    assert total(stepped, Session("2026-03-02T10:00Z").charge("20.45", 60).cdr()) == price_of(
        "5.13", "5.64"
    )


def test_energy_step_is_taken_once_on_the_session_total_4_3_plus_1_1_kwh_billed_as_5_5() -> None:
    two_prices = tariff(
        element(component("ENERGY", "0.20", step=500), end_time="17:00"),
        element(component("ENERGY", "0.27", step=500)),
    )
    cdr = Session("2026-03-02T15:00Z").charge("4.3", 60).charge("1.1", 30).cdr()  # 16:00 CET
    # 4.3 x 0.20 + (1.1 + 0.1) x 0.27 (the extra 0.1 kWh at the last period's price)
    assert total(two_prices, cdr) == price_of("1.18")


def test_time_step_rounds_the_session_total_6_plus_22_min_billed_as_30() -> None:
    two_prices = tariff(
        element(component("TIME", "5.00", step=600), end_time="17:00"),
        element(component("TIME", "7.00", step=600)),
    )
    cdr = Session("2026-03-02T15:54Z").charge(1, 6).charge(4, 22).cdr()
    # 6 min x 5/h + 24 min x 7/h (not 30 min after 17:00)
    assert total(two_prices, cdr) == price_of("3.30")


STEP_SIZE_TARIFF = tariff(
    element(component("TIME", "1.20", step=1800), end_time="17:00"),
    element(component("TIME", "2.40", step=900), start_time="17:00"),
    element(component("PARKING_TIME", "1.00", step=900), end_time="20:00"),
)


def test_step_size_switching_example_2_from_16_35_charging_35_min_costs_1_30() -> None:
    cdr = Session("2019-06-03T14:35Z").charge(5, 25).charge(2, 10).cdr()  # 16:35 CEST
    assert total(STEP_SIZE_TARIFF, cdr) == price_of("1.30")


def test_step_size_switching_example_1_costs_0_55_under_the_bug_fix_rule() -> None:
    """16:55, 10 min charging then 2 min parking: only parking is rounded (to 15 min).

    5 min x 1.20/h + 5 min x 2.40/h + 15 min x 1.00/h = 0.10 + 0.20 + 0.25. (The example's
    0.50 predates the 2.2.1 bug-fix text of rule 5.)
    """
    cdr = Session("2019-06-03T14:55Z").charge(1, 5).charge(1, 5).park(2).cdr()
    assert total(STEP_SIZE_TARIFF, cdr) == price_of("0.55")


def test_step_size_switching_to_free_parking_example_3_from_19_55_costs_0_60() -> None:
    cdr = Session("2019-06-03T17:55Z").charge(1, 5).charge(1, 5).park(2).cdr()
    # parking after 20:00 is free, so charging is rounded: 10 -> 15 min at 2.40/h
    assert total(STEP_SIZE_TARIFF, cdr) == price_of("0.60")


def test_time_step_when_both_time_and_parking_are_priced_only_parking_is_rounded() -> None:
    both = tariff(
        element(component("TIME", "1.00", step=600), component("PARKING_TIME", "2.00", step=600))
    )
    result = priced(both, Session("2026-03-02T10:00Z").charge(3, 21).park(16).cdr())
    assert result["total_time_cost"] == price_of("0.35")  # 21 min, not rounded
    assert result["total_parking_cost"] == price_of("0.67")  # 16 -> 20 min


def test_step_size_zero_means_no_rounding() -> None:
    exact = tariff(element(component("TIME", "6.00", step=0)))
    assert total(exact, Session("2026-03-02T10:00Z").charge(1, 1).cdr()) == price_of("0.10")


def test_a_step_of_7_seconds_is_exact_to_the_cent() -> None:
    odd = tariff(element(component("TIME", "3.60", step=7)))
    # 60 s -> 63 s (9 steps) at 3.60/h = 0.063 -> 0.06
    assert total(odd, Session("2026-03-02T10:00Z").charge(1, 1).cdr()) == price_of("0.06")


# --- min / max price (rule 8) ----------------------------------------------------------------


def test_min_price_0_50_applies_below_2_kwh_and_not_at_20_kwh() -> None:
    floor = tariff(
        element(component("ENERGY", "0.25", "10", 1)),
        min_price={"excl_vat": D("0.50"), "incl_vat": D("0.55")},
    )
    assert total(floor, Session("2026-03-02T10:00Z").charge(1, 10).cdr()) == price_of(
        "0.50", "0.55"
    )
    assert total(floor, Session("2026-03-02T10:00Z").charge(20, 60).cdr()) == price_of(
        "5.00", "5.50"
    )


def test_max_price_10_caps_50_kwh_and_not_30_kwh_8_00_excl_8_85_incl() -> None:
    capped = tariff(
        element(component("FLAT", "0.50", "20")),
        element(component("ENERGY", "0.25", "10", 1)),
        max_price={"excl_vat": D("10.00"), "incl_vat": D("11.00")},
    )
    assert total(capped, Session("2026-03-02T10:00Z").charge(50, 120).cdr()) == price_of(
        "10.00", "11.00"
    )
    assert total(capped, Session("2026-03-02T10:00Z").charge(30, 90).cdr()) == price_of(
        "8.00", "8.85"
    )


def test_min_and_max_price_bound_excl_and_incl_vat_each_on_its_own() -> None:
    bounded = tariff(
        element(component("ENERGY", "1.00", "10")),
        max_price={"excl_vat": D("50.00"), "incl_vat": D("54.00")},
    )
    assert total(bounded, Session("2026-03-02T10:00Z").charge("49.5", 60).cdr()) == price_of(
        "49.50", "54.00"
    )


def test_a_bound_finer_than_the_currency_is_never_crossed_by_rounding() -> None:
    fine = tariff(
        element(component("ENERGY", "1.00")),
        max_price={"excl_vat": D("0.555"), "incl_vat": D("0.555")},
    )
    assert total(fine, Session("2026-03-02T10:00Z").charge(1, 10).cdr()) == price_of("0.55")


# --- VAT and money (rules 7, 9) --------------------------------------------------------------


def test_omitted_vat_is_no_vat_and_vat_zero_adds_nothing_either() -> None:
    cdr = Session("2026-03-02T10:00Z").charge("1.5", 30).cdr()
    assert total(tariff(element(component("ENERGY", "1.20"))), cdr) == price_of("1.80")
    assert total(tariff(element(component("ENERGY", "1.20", "0"))), cdr) == price_of("1.80")


def test_vat_is_per_component_13pct_on_energy_6pct_on_service_time() -> None:
    mixed = tariff(element(component("ENERGY", "1.00", "13"), component("TIME", "2.00", "6")))
    # energy 10.00 -> 11.30; time 1 h 2.00 -> 2.12
    assert total(mixed, Session("2026-03-02T10:00Z").charge(10, 60).cdr()) == price_of(
        "12.00", "13.42"
    )


def test_incl_vat_is_rounded_from_the_exact_excl_not_from_the_rounded_one() -> None:
    # exact: 0.115 -> 0.12, and 0.115 x 1.13 = 0.12995 -> 0.13 (0.12 x 1.13 would be 0.14)
    vat = tariff(element(component("ENERGY", "0.115", "13")))
    assert total(vat, Session("2026-03-02T10:00Z").charge(1, 10).cdr()) == price_of("0.12", "0.13")


def test_half_up_not_bankers_rounding_0_125_is_0_13() -> None:
    one = tariff(element(component("ENERGY", "1.00")))
    assert total(one, Session("2026-03-02T10:00Z").charge("0.125", 1).cdr()) == price_of("0.13")
    assert total(one, Session("2026-03-02T10:00Z").charge("0.135", 1).cdr()) == price_of("0.14")
    assert total(one, Session("2026-03-02T10:00Z").charge("0.1249", 1).cdr()) == price_of("0.12")


def test_no_float_error_0_1_kwh_times_3_is_0_30() -> None:
    tenth = tariff(element(component("ENERGY", "0.1")))
    assert total(tenth, Session("2026-03-02T10:00Z").charge(3, 10).cdr()) == price_of("0.30")
    one = tariff(element(component("ENERGY", "1.0")))
    assert total(one, Session("2026-03-02T10:00Z").charge("1.005", 10).cdr()) == price_of("1.01")


def test_each_total_is_rounded_once_so_three_thirds_make_one() -> None:
    third = tariff(element(component("ENERGY", "0.333")))
    cdr = Session("2026-03-02T10:00Z").charge(1, 5).charge(1, 5).charge(1, 5).cdr()
    assert total(third, cdr) == price_of("1.00")  # 0.999, not 3 x 0.33


def test_currency_minor_units_jpy_has_none_eur_two() -> None:
    yen = tariff(element(component("ENERGY", "31")), currency="JPY")
    assert total(yen, Session("2026-03-02T10:00Z").charge("1.5", 10).cdr()) == price_of("47")
    assert round_money(D("2.5"), "JPY") == D("3")
    assert round_money(D("1.005"), "EUR") == D("1.01")


def test_big_readings_stay_exact() -> None:
    fine = tariff(element(component("ENERGY", "1.2345678")))
    cdr = Session("2026-03-02T10:00Z").charge("12.223", 10).cdr()
    assert total(fine, cdr) == price_of("15.09")


# --- restrictions (rules 1, 2, 3) ------------------------------------------------------------


def day_and_night(**night: Any) -> dict[str, Any]:
    return tariff(
        element(component("ENERGY", "0.10"), **night), element(component("ENERGY", "1.00"))
    )


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-02T21:59:59", "1.00"),
        ("2026-03-02T22:00:00", "0.10"),  # start_time inclusive
        ("2026-03-02T23:59:00", "0.10"),
        ("2026-03-03T00:00:00", "0.10"),  # across midnight
        ("2026-03-03T05:59:59", "0.10"),
        ("2026-03-03T06:00:00", "1.00"),  # end_time exclusive
    ],
)
def test_night_band_22_00_to_06_00_wraps_past_midnight(local: str, expected: str) -> None:
    night = day_and_night(start_time="22:00", end_time="06:00")
    cdr = Session(f"{local}+08:00").charge(1, 1).cdr()
    assert total(night, cdr, "Asia/Shanghai") == price_of(expected)


def test_only_start_time_or_only_end_time_bounds_one_side() -> None:
    after = day_and_night(start_time="18:00")
    before = day_and_night(end_time="07:00")
    assert total(after, Session("2026-03-02T18:00+08:00").charge(1, 1).cdr(), "Asia/Shanghai") == (
        price_of("0.10")
    )
    assert total(after, Session("2026-03-02T17:59+08:00").charge(1, 1).cdr(), "Asia/Shanghai") == (
        price_of("1.00")
    )
    assert total(before, Session("2026-03-02T06:59+08:00").charge(1, 1).cdr(), "Asia/Shanghai") == (
        price_of("0.10")
    )
    assert total(before, Session("2026-03-02T07:00+08:00").charge(1, 1).cdr(), "Asia/Shanghai") == (
        price_of("1.00")
    )


def test_restrictions_are_evaluated_in_the_station_time_zone() -> None:
    night = day_and_night(start_time="22:00", end_time="06:00")
    cdr = Session("2026-03-02T15:00Z").charge(1, 1).cdr()  # 23:00 in Shanghai, 16:00 in Berlin
    assert total(night, cdr, "Asia/Shanghai") == price_of("0.10")
    assert total(night, cdr, "Europe/Berlin") == price_of("1.00")


def test_each_period_is_priced_by_the_band_at_its_start() -> None:
    peak = day_and_night(end_time="17:00")
    cdr = Session("2026-03-02T16:30+01:00").charge(2, 30).charge(3, 30).cdr()
    assert total(peak, cdr) == price_of("3.20")  # 2 x 0.10 + 3 x 1.00


def test_a_band_starting_in_the_spring_forward_gap_starts_at_the_jump() -> None:
    # Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 never happens
    late = day_and_night(start_time="02:30")
    before = Session("2024-03-31T00:59Z").charge(1, 1).cdr()  # 01:59 CET
    at_jump = Session("2024-03-31T01:00Z").charge(1, 1).cdr()  # 03:00 CEST
    assert total(late, before) == price_of("1.00")
    assert total(late, at_jump) == price_of("0.10")


def test_a_band_in_the_fall_back_hour_holds_both_times_the_clock_reads_it() -> None:
    # Berlin 2024-10-27: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:00-03:00 twice
    band = day_and_night(start_time="02:00", end_time="03:00")
    for utc, expected in (
        ("00:30", "0.10"),
        ("01:00", "0.10"),
        ("01:30", "0.10"),
        ("02:00", "1.00"),
    ):
        cdr = Session(f"2024-10-27T{utc}Z").charge(1, 1).cdr()
        assert total(band, cdr) == price_of(expected), utc


def test_a_session_across_a_dst_change_prices_each_period_at_its_own_offset() -> None:
    evening = day_and_night(start_time="20:00", end_time="23:00")
    # Berlin 2024-10-26 19:30 CEST .. 2024-10-27 21:30 CET: periods at 19:30 and 21:30 next day
    cdr = Session("2024-10-26T17:30Z").charge(1, 26 * 60).charge(1, 1).cdr()
    assert total(evening, cdr) == price_of("1.10")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-03-06", "1.00"),
        ("2026-03-07", "0.10"),
        ("2026-03-08", "0.10"),
        ("2026-03-09", "1.00"),
    ],
)
def test_day_of_week_saturday_and_sunday_at_the_period_start(day: str, expected: str) -> None:
    weekend = day_and_night(day_of_week=["SATURDAY", "SUNDAY"])
    cdr = Session(f"{day}T12:00+08:00").charge(1, 1).cdr()
    assert total(weekend, cdr, "Asia/Shanghai") == price_of(expected)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-02-28", "1.00"),
        ("2026-03-01", "0.10"),
        ("2026-03-31", "0.10"),
        ("2026-04-01", "1.00"),
    ],
)
def test_start_date_inclusive_end_date_exclusive(day: str, expected: str) -> None:
    march = day_and_night(start_date="2026-03-01", end_date="2026-04-01")
    cdr = Session(f"{day}T00:00+08:00").charge(1, 1).cdr()
    assert total(march, cdr, "Asia/Shanghai") == price_of(expected)


def test_first_kwh_free_then_0_20_and_first_hour_parking_free_costs_7_30() -> None:
    """OCPI's "first hour free energy" example: 20 kWh, then parked 2.75 hours."""
    first_free = tariff(
        element(component("PARKING_TIME", "0.00", step=60), min_duration=0, max_duration=3600),
        element(component("PARKING_TIME", "2.00", step=60), min_duration=3600, max_duration=10800),
        element(component("PARKING_TIME", "3.00", step=60), min_duration=10800),
        element(component("ENERGY", "0.00", step=1), max_kwh=D("1.0")),
        element(component("ENERGY", "0.20", step=1), min_kwh=D("1.0")),
    )
    cdr = (
        Session("2026-03-02T10:00Z")
        .period(0, energy=1, time=0)
        .period(0, energy=19, time=0)
        .park(60)
        .park(105)
        .cdr()
    )
    assert total(first_free, cdr) == price_of("7.30")


@pytest.mark.parametrize(
    ("before", "expected"),
    [("19.999", "0.00"), ("20", "1.00"), ("25", "1.00")],
)
def test_min_kwh_inclusive_compares_the_energy_before_the_period(
    before: str, expected: str
) -> None:
    bulk = tariff(
        element(component("ENERGY", "0.10"), min_kwh=D(20)), element(component("ENERGY", "0"))
    )
    cdr = Session("2026-03-02T10:00Z").charge(before, 60).charge(10, 30).cdr()
    assert priced(bulk, cdr)["total_energy_cost"] == price_of(expected)


def test_max_kwh_exclusive_first_20_kwh_at_one_price() -> None:
    tiered = tariff(
        element(component("ENERGY", "0.50"), max_kwh=D(20)), element(component("ENERGY", "0.30"))
    )
    exactly = Session("2026-03-02T10:00Z").charge(20, 60).charge(10, 30).cdr()
    assert total(tiered, exactly) == price_of("13.00")  # 20 x 0.50 + 10 x 0.30


def test_max_duration_first_30_min_free_then_0_25_40_min_session_costs_0_30() -> None:
    supermarket = tariff(
        element(component("ENERGY", "0.00", "20", 1), max_duration=1800),
        element(component("ENERGY", "0.25", "20", 1), max_duration=3600),
        element(component("ENERGY", "0.40", "20", 1)),
    )
    cdr = Session("2026-03-02T10:00Z").charge(5, 30).charge("1.2", 10).cdr()
    assert priced(supermarket, cdr)["total_cost"] == price_of("0.30", "0.36")


def test_min_duration_is_inclusive_and_counts_from_the_session_start() -> None:
    later = tariff(
        element(component("TIME", "6.00"), min_duration=600), element(component("TIME", "0"))
    )
    cdr = Session("2026-03-02T10:00Z").park(10).charge(1, 10).cdr()
    assert total(later, cdr) == price_of("1.00")  # the charging period starts at 600 s


def test_max_power_20_30_euro_for_1_kwh_at_6_kw_40_at_48_kw_0_5_at_4_kw() -> None:
    by_power = tariff(
        element(component("ENERGY", "0.20"), max_power=D(16)),
        element(component("ENERGY", "0.35"), max_power=D(32)),
        element(component("ENERGY", "0.50")),
    )
    cdr = (
        Session("2026-03-02T10:00Z")
        .charge(1, 10, max_power=6, min_power=6)
        .charge(40, 50, max_power=48, min_power=48)
        .charge("0.5", 7, power=4)
        .cdr()
    )
    assert total(by_power, cdr) == price_of("20.30")


def test_min_power_50_kw_fast_charging_costs_more_only_while_at_or_above_it() -> None:
    fast = tariff(
        element(component("ENERGY", "0.60"), min_power=D(50)),
        element(component("ENERGY", "0.40")),
    )
    cdr = (
        Session("2026-03-02T10:00Z")
        .charge(30, 30, min_power=50, max_power=120)  # never below 50 kW: fast
        .charge(10, 30, min_power=11, max_power=60)  # dropped below 50 kW
        .charge(5, 30, power=49)
        .cdr()
    )
    assert total(fast, cdr) == price_of("24.00")  # 30 x 0.60 + 15 x 0.40


def test_current_limits_min_inclusive_max_exclusive_and_missing_current_satisfies() -> None:
    by_current = tariff(
        element(component("TIME", "1.00"), max_current=D(32)),
        element(component("TIME", "2.00"), min_current=D(32)),
    )
    start = "2026-03-02T10:00Z"
    assert total(by_current, Session(start).charge(1, 60, max_current=16).cdr()) == price_of("1.00")
    assert total(by_current, Session(start).charge(1, 60, current=32).cdr()) == price_of("2.00")
    assert total(by_current, Session(start).charge(1, 60, min_current=32).cdr()) == price_of("2.00")
    assert total(by_current, Session(start).charge(1, 60, max_current=31).cdr()) == price_of("1.00")
    assert total(by_current, Session(start).charge(1, 60).cdr()) == price_of("1.00")


def test_complex_tariff_monday_09_30_charging_147_min_16a_parking_42_min_8_70_excl() -> None:
    """OCPI's complex example; 8.70/9.94 under rule 5 (only parking rounded), not 8.75/10."""
    complex_tariff = tariff(
        element(component("FLAT", "2.50", "15", 1)),
        element(component("TIME", "1.00", "20", 900), max_current=D("32.00")),
        element(
            component("TIME", "2.00", "20", 600),
            min_current=D("32.00"),
            day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        ),
        element(
            component("TIME", "1.25", "20", 600),
            min_current=D("32.00"),
            day_of_week=["SATURDAY", "SUNDAY"],
        ),
        element(
            component("PARKING_TIME", "5.00", "10", 300),
            start_time="09:00",
            end_time="18:00",
            day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        ),
        element(
            component("PARKING_TIME", "6.00", "10", 300),
            start_time="10:00",
            end_time="17:00",
            day_of_week=["SATURDAY"],
        ),
    )
    monday = Session("2024-01-15T09:30+01:00").charge(10, 147, max_current=16).park(42).cdr()
    assert total(complex_tariff, monday) == price_of("8.70", "9.94")
    saturday = Session("2024-01-20T13:30+01:00").charge(30, 114, min_current=43).park(71).cdr()
    assert total(complex_tariff, saturday) == price_of("12.38", "13.98")  # 12.375, 13.975


def test_reservation_elements_never_price_a_charging_session() -> None:
    reserved = tariff(
        element(component("TIME", "5.00", "20", 60), reservation="RESERVATION"),
        element(component("FLAT", "0.50", "20")),
        element(component("ENERGY", "0.25", "10", 1)),
    )
    assert total(reserved, Session("2026-03-02T10:00Z").charge(20, 60).cdr()) == price_of(
        "5.50", "6.10"
    )


def test_first_matching_element_in_list_order_prices_each_dimension() -> None:
    ordered = tariff(
        element(component("TIME", "5.00")),
        element(component("ENERGY", "0.80")),
        element(component("ENERGY", "9.99")),
    )
    result = priced(ordered, Session("2026-03-02T10:00Z").charge(10, 0).cdr())
    assert result["total_energy_cost"] == price_of("8.00")


def test_chinese_time_of_use_peak_flat_valley_plus_service_fee_per_kwh() -> None:
    """Rule 10: electricity + service fee is one ENERGY price per band."""
    bands = [
        Band(_t("23:00"), _t("07:00"), D("0.30")),
        Band(_t("07:00"), _t("10:00"), D("0.65")),
        Band(_t("10:00"), _t("15:00"), D("1.05")),
        Band(_t("15:00"), _t("18:00"), D("0.65")),
        Band(_t("18:00"), _t("21:00"), D("1.05")),
        Band(_t("21:00"), _t("23:00"), D("0.65")),
    ]
    tou = time_of_use_tariff("tou", "CNY", bands, D("0.80"), datetime(2026, 1, 1, tzinfo=UTC))
    cdr = Session("2026-03-02T22:30+08:00").charge(10, 30).charge(10, 30).cdr()
    # 10 kWh flat (0.65 + 0.80) + 10 kWh valley (0.30 + 0.80)
    assert total(tariff_json(tou), cdr, "Asia/Shanghai") == price_of("25.50")


def _t(text: str) -> Any:
    return datetime.strptime(text, "%H:%M").time()  # noqa: DTZ007


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"start_date_time": "yesterday"}, "start_date_time"),
        ({"end_date_time": "2026-03-02T09:00Z"}, "end_date_time"),
        ({"charging_periods": []}, "charging_periods"),
        ({"charging_periods": [{"dimensions": []}]}, "charging_periods[0].start_date_time"),
    ],
)
def test_a_cdr_that_cannot_be_priced_names_the_field(change: dict[str, Any], where: str) -> None:
    cdr = {**Session("2026-03-02T10:00Z").charge(1, 10).cdr(), **change}
    with pytest.raises(CdrError, match=rf"^{__import__('re').escape(where)}"):
        session_from_cdr(cdr, StationZone.named("UTC"))


def test_a_misspelt_or_negative_dimension_is_refused() -> None:
    cdr = Session("2026-03-02T10:00Z").period(10, enrgy=1).cdr()
    with pytest.raises(CdrError, match=r"dimensions\[0\]\.type"):
        session_from_cdr(cdr, StationZone.named("UTC"))
    cdr = Session("2026-03-02T10:00Z").period(10, energy=-1).cdr()
    with pytest.raises(CdrError, match=r"dimensions\[0\]\.volume"):
        session_from_cdr(cdr, StationZone.named("UTC"))


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (tariff(element(component("ENERGY", "-1"))), "elements[0].price_components[0].price"),
        (tariff(element(component("ENERGY", "1", "101"))), "elements[0].price_components[0].vat"),
        (
            tariff(element(component("ENERGY", "1"), component("ENERGY", "2"))),
            "elements[0].price_components[1].type",
        ),
        (tariff(element(component("ENERGY", "1"), min_kwh=5, max_kwh=5)), "max_kwh"),
        (
            tariff(element(component("ENERGY", "1"), start_time="10:00", end_time="10:00")),
            "end_time",
        ),
        (tariff(element(component("ENERGY", "1"), start_time="10:00:30")), "start_time"),
        (tariff(element(component("ENERGY", "1"), start_date="2026-02-30")), "start_date"),
        (tariff(element(component("ENERGY", "1"), reservation="MAYBE")), "reservation"),
        (tariff(element(component("ENERGY", "1")), currency="yuan"), "currency"),
        (tariff(), "elements"),
        (
            tariff(
                element(component("ENERGY", "1")),
                min_price={"excl_vat": D(2), "incl_vat": D(1)},
            ),
            "min_price.incl_vat",
        ),
        (
            tariff(
                element(component("ENERGY", "1")),
                min_price={"excl_vat": D(5), "incl_vat": D(5)},
                max_price={"excl_vat": D(4), "incl_vat": D(6)},
            ),
            "min_price.excl_vat",
        ),
    ],
)
def test_an_invalid_tariff_is_refused_naming_the_field(data: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidTariff) as refused:
        read_tariff(json.loads(json.dumps(data, default=str)))
    assert any(problem.path.endswith(path) for problem in refused.value.problems), str(
        refused.value
    )
