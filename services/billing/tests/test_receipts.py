"""What the pile display shows when a charge ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from station_billing.receipts import build_receipt, format_duration
from station_protocol.ocpi import Price

STARTED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def receipt(cost: Price, duration: timedelta) -> list[str]:
    return build_receipt(
        session_id="s-1",
        pile_id="c1-p01",
        card_uid="CARD",
        started_at=STARTED,
        stopped_at=STARTED + duration,
        total_energy=Decimal("12.345"),
        total_cost=cost,
        currency="CNY",
        station_id="station-1",
    ).lines


def test_lines_without_vat() -> None:
    cost = Price(excl_vat=Decimal("14.81"), incl_vat=Decimal("14.81"))
    assert receipt(cost, timedelta(minutes=42, seconds=10, microseconds=900)) == [
        "Charge complete",
        "Energy 12.345 kWh",
        "Duration 0:42:10",
        "Energy cost 14.81 CNY",
        "Total 14.81 CNY",
    ]


def test_lines_with_vat_show_it_and_add_up() -> None:
    cost = Price(excl_vat=Decimal("14.81"), incl_vat=Decimal("16.74"))
    assert receipt(cost, timedelta(hours=1)) == [
        "Charge complete",
        "Energy 12.345 kWh",
        "Duration 1:00:00",
        "Energy cost 14.81 CNY",
        "VAT 1.93 CNY",
        "Total 16.74 CNY",
    ]


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
        total_cost=Price(excl_vat=Decimal("0.00"), incl_vat=Decimal("0.00")),
        currency="CNY",
        station_id="station-1",
    )
    assert made.qr == "station://receipt/a%20b%2Fc?total=0.00&currency=CNY&station=station-1"
