"""From meter readings to charging periods: a new period wherever the price could change."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from station_billing.metering import MeterSample, build_cdr
from station_billing.pricing import (
    compile_tariff,
    price_session,
    read_tariff,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone

D = Decimal
SHANGHAI = StationZone.named("Asia/Shanghai")
BERLIN = StationZone.named("Europe/Berlin")


def tariff(*elements: dict[str, Any]) -> Any:
    return compile_tariff(
        read_tariff(
            {
                "id": "t",
                "currency": "CNY",
                "elements": list(elements),
                "last_updated": "2026-01-01T00:00:00Z",
            }
        )
    )


def energy(price: str, **restrictions: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "price_components": [{"type": "ENERGY", "price": D(price), "step_size": 0}]
    }
    if restrictions:
        found["restrictions"] = restrictions
    return found


def parking(price: str) -> dict[str, Any]:
    return {"price_components": [{"type": "PARKING_TIME", "price": D(price), "step_size": 0}]}


FLAT_RATE = tariff(energy("1.00"), parking("6.00"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def build(
    compiled: Any,
    start: str,
    end: str,
    meter_start: str,
    meter_end: str,
    samples: list[MeterSample] | None = None,
    zone: StationZone = SHANGHAI,
) -> dict[str, Any]:
    return build_cdr(
        started_at=at(start),
        meter_start=D(meter_start),
        samples=samples or [],
        ended_at=at(end),
        meter_end=D(meter_end),
        tariff=compiled,
        zone=zone,
    )


def periods(cdr: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [
        (p["start_date_time"], {d["type"]: d["volume"] for d in p["dimensions"]})
        for p in cdr["charging_periods"]
    ]


def cost(compiled: Any, cdr: dict[str, Any], zone: StationZone = SHANGHAI) -> str:
    totals = totals_json(price_session(compiled, session_from_cdr(cdr, zone)))
    return str(totals["total_cost"]["incl_vat"])


def test_one_period_when_nothing_changes_the_price() -> None:
    cdr = build(
        FLAT_RATE, "2026-03-02T10:00:00+00:00", "2026-03-02T10:42:10+00:00", "1234.567", "1246.912"
    )
    assert periods(cdr) == [
        ("2026-03-02T10:00:00Z", {"ENERGY": "12.345", "TIME": "0.702778"}),
    ]
    assert cost(FLAT_RATE, cdr) == "12.35"


def test_the_pile_stopping_to_draw_power_starts_a_parking_period() -> None:
    samples = [
        MeterSample(at("2026-03-02T10:10:00+00:00"), D("3"), charging=True),
        MeterSample(at("2026-03-02T10:30:00+00:00"), D("10"), charging=False),
        MeterSample(at("2026-03-02T10:45:00+00:00"), D("10"), charging=None),
    ]
    cdr = build(
        FLAT_RATE, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "0", "10", samples
    )
    assert periods(cdr) == [
        ("2026-03-02T10:00:00Z", {"ENERGY": "10", "TIME": "0.5"}),
        ("2026-03-02T10:30:00Z", {"PARKING_TIME": "0.5"}),
    ]
    assert cost(FLAT_RATE, cdr) == "13.00"  # 10 kWh + 0.5 h parking at 6.00


def test_a_time_band_boundary_splits_the_energy_between_readings_by_time() -> None:
    night = tariff(energy("0.30", start_time="22:00", end_time="06:00"), energy("1.00"))
    cdr = build(night, "2026-03-02T21:30:00+08:00", "2026-03-02T22:30:00+08:00", "0", "10")
    assert periods(cdr) == [
        ("2026-03-02T13:30:00Z", {"ENERGY": "5", "TIME": "0.5"}),
        ("2026-03-02T14:00:00Z", {"ENERGY": "5", "TIME": "0.5"}),
    ]
    assert cost(night, cdr) == "6.50"


def test_a_kwh_limit_is_placed_exactly_where_the_energy_reaches_it() -> None:
    tiered = tariff(energy("0.50", max_kwh=D(20)), energy("0.30"))
    cdr = build(tiered, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "100", "130")
    assert periods(cdr) == [
        ("2026-03-02T10:00:00Z", {"ENERGY": "20", "TIME": "0.666667"}),
        ("2026-03-02T10:40:00Z", {"ENERGY": "10", "TIME": "0.333333"}),
    ]
    assert cost(tiered, cdr) == "13.00"


def test_a_duration_limit_starts_a_period_at_that_instant() -> None:
    later = tariff(energy("2.00", min_duration=1800), energy("1.00"))
    cdr = build(later, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "0", "6")
    assert [p[0] for p in periods(cdr)] == ["2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z"]
    assert cost(later, cdr) == "9.00"


def test_readings_priced_alike_merge_into_one_period() -> None:
    samples = [
        MeterSample(at("2026-03-02T10:00:00+00:00") + timedelta(minutes=m), D(m) / 10)
        for m in range(1, 60)
    ]
    cdr = build(
        FLAT_RATE, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "0", "6", samples
    )
    assert periods(cdr) == [("2026-03-02T10:00:00Z", {"ENERGY": "6", "TIME": "1"})]


def test_a_current_crossing_a_tariff_limit_starts_a_period_at_that_reading() -> None:
    by_current = tariff(energy("0.40", max_current=D(32)), energy("0.80"))
    samples = [
        MeterSample(at("2026-03-02T10:00:00+00:00"), D(0), current=D(16)),
        MeterSample(at("2026-03-02T10:20:00+00:00"), D(2), current=D(16)),
        MeterSample(at("2026-03-02T10:30:00+00:00"), D(3), current=D(63)),
        MeterSample(at("2026-03-02T10:50:00+00:00"), D(13), current=D(60)),
    ]
    cdr = build(
        by_current, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "0", "18", samples
    )
    assert periods(cdr) == [
        (
            "2026-03-02T10:00:00Z",
            {"ENERGY": "3", "TIME": "0.5", "MIN_CURRENT": "16", "MAX_CURRENT": "16"},
        ),
        (
            "2026-03-02T10:30:00Z",
            {"ENERGY": "15", "TIME": "0.5", "MIN_CURRENT": "60", "MAX_CURRENT": "63"},
        ),
    ]
    assert cost(by_current, cdr) == "13.20"  # 3 x 0.40 + 15 x 0.80


def test_a_band_starting_in_the_spring_forward_gap_starts_its_period_at_the_jump() -> None:
    # Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST at 01:00Z; a band at 02:30 starts then
    late = tariff(energy("0.10", start_time="02:30"), energy("1.00"))
    cdr = build(
        late, "2024-03-31T00:30:00+00:00", "2024-03-31T01:30:00+00:00", "0", "2", zone=BERLIN
    )
    assert [p[0] for p in periods(cdr)] == ["2024-03-31T00:30:00Z", "2024-03-31T01:00:00Z"]
    assert cost(late, cdr, BERLIN) == "1.10"


def test_the_periods_hours_add_up_to_the_session_length_exactly() -> None:
    night = tariff(energy("0.30", start_time="22:00", end_time="06:00"), energy("1.00"))
    samples = [
        MeterSample(at("2026-03-02T21:17:13.123456+08:00"), D("2.5"), charging=True),
        MeterSample(at("2026-03-02T23:01:59.999999+08:00"), D("9.1"), charging=False),
        MeterSample(at("2026-03-03T05:59:00.5+08:00"), D("9.1"), charging=True),
    ]
    cdr = build(
        night,
        "2026-03-02T21:00:00.000001+08:00",
        "2026-03-03T07:13:14.7+08:00",
        "0",
        "12.3",
        samples,
    )
    totals = totals_json(price_session(night, session_from_cdr(cdr, SHANGHAI)))
    hours = sum(
        (
            D(v)
            for _, dims in periods(cdr)
            for k, v in dims.items()
            if k in ("TIME", "PARKING_TIME")
        ),
        D(0),
    )
    assert str(hours.normalize()) == totals["total_time"]
    assert sum((D(dims.get("ENERGY", "0")) for _, dims in periods(cdr)), D(0)) == D("12.3")


def test_readings_outside_the_session_or_running_backwards_are_held_to_their_neighbours() -> None:
    samples = [
        MeterSample(at("2026-03-02T09:00:00+00:00"), D("1")),  # before the session
        MeterSample(at("2026-03-02T10:20:00+00:00"), D("8")),
        MeterSample(at("2026-03-02T10:40:00+00:00"), D("4")),  # backwards: held at 8
        MeterSample(at("2026-03-02T12:00:00+00:00"), D("50")),  # after the end
    ]
    cdr = build(
        FLAT_RATE, "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "5", "9", samples
    )
    assert periods(cdr) == [("2026-03-02T10:00:00Z", {"ENERGY": "4", "TIME": "1"})]


def test_a_session_of_no_time_at_all_is_one_period() -> None:
    cdr = build(FLAT_RATE, "2026-03-02T10:00:00+00:00", "2026-03-02T10:00:00+00:00", "7", "7")
    assert periods(cdr) == [("2026-03-02T10:00:00Z", {"TIME": "0"})]
    assert cost(FLAT_RATE, cdr) == "0.00"
