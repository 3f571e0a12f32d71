"""What the pile display shows when a charge ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from station_billing.receipts import Costs, build_receipt, format_duration, with_balance
from station_protocol.ocpi import Price

STARTED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def price(excl: str, incl: str) -> Price:
    return Price(excl_vat=Decimal(excl), incl_vat=Decimal(incl))


def receipt(costs: Costs, duration: timedelta, balance: str | None = None) -> list[str]:
    return build_receipt(
        session_id="s-1",
        pile_id="c1-p01",
        card_uid="CARD",
        started_at=STARTED,
        stopped_at=STARTED + duration,
        total_energy=Decimal("12.345"),
        costs=costs,
        currency="CNY",
        station_id="station-1",
        balance=Decimal(balance) if balance is not None else None,
    ).lines


def test_lines_without_vat_and_the_balance_after_the_debit() -> None:
    costs = Costs(total=price("14.81", "14.81"), energy=Decimal("14.81"))
    assert receipt(costs, timedelta(minutes=42, seconds=10, microseconds=900), "85.19") == [
        "Charge complete",
        "Energy 12.345 kWh",
        "Duration 0:42:10",
        "Energy cost 14.81 CNY",
        "Total 14.81 CNY",
        "Balance 85.19 CNY",
    ]


def test_lines_with_vat_show_it_and_add_up() -> None:
    costs = Costs(total=price("14.81", "16.74"), energy=Decimal("14.81"))
    lines = receipt(costs, timedelta(hours=1), "3.26")
    assert lines == [
        "Charge complete",
        "Energy 12.345 kWh",
        "Duration 1:00:00",
        "Energy cost 14.81 CNY",
        "VAT 1.93 CNY",
        "Total 16.74 CNY",
        "Balance 3.26 CNY",
    ]


def test_every_cost_component_gets_a_line_and_a_bound_says_it_applied() -> None:
    costs = Costs(
        total=price("10.00", "11.00"),
        energy=Decimal("6.25"),
        time=Decimal("2.50"),
        parking=Decimal("1.75"),
        fixed=Decimal("0.50"),
        max_price_applied=True,
    )
    assert receipt(costs, timedelta(hours=2))[3:] == [
        "Energy cost 6.25 CNY",
        "Time cost 2.50 CNY",
        "Parking cost 1.75 CNY",
        "Start fee 0.50 CNY",
        "Maximum price applied",
        "VAT 1.00 CNY",
        "Total 11.00 CNY",
        "Balance pending",
    ]


def test_the_balance_line_is_pending_until_the_debit_is_answered() -> None:
    made = build_receipt(
        session_id="s-1",
        pile_id="c1-p01",
        card_uid="CARD",
        started_at=STARTED,
        stopped_at=STARTED,
        total_energy=Decimal("1"),
        costs=Costs(total=price("1.20", "1.20"), energy=Decimal("1.20")),
        currency="CNY",
        station_id="station-1",
    )
    assert made.lines[-1] == "Balance pending"
    assert with_balance(made, Decimal("8.80")).lines == [*made.lines[:-1], "Balance 8.80 CNY"]
    assert with_balance(made, None).lines == made.lines


def test_duration_keeps_hours_past_a_day() -> None:
    assert format_duration(timedelta(days=1, hours=2, minutes=3, seconds=4)) == "26:03:04"
    assert format_duration(timedelta(seconds=-5)) == "0:00:00"


def test_qr_names_the_session_total_and_station() -> None:
    made = build_receipt(
        session_id="a b/c",
        pile_id="c1-p01",
        card_uid="CARD",
        started_at=STARTED,
        stopped_at=STARTED,
        total_energy=Decimal("0"),
        costs=Costs(total=price("0.00", "0.00")),
        currency="CNY",
        station_id="station-1",
    )
    assert made.qr == "station://receipt/a%20b%2Fc?total=0.00&currency=CNY&station=station-1"
