"""The contracts billing added: debits, balances, the tariff display, the open's balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from station_protocol import channels
from station_protocol.messages import (
    DebitReply,
    DebitResult,
    SessionOpenRequest,
    TariffDisplay,
)
from station_protocol.ocpi import CdrDimension, CdrDimensionType, ChargingPeriod


def test_billing_topics_live_under_station_v1() -> None:
    assert channels.DEBIT.topic() == "station/v1/verification/debits"
    assert channels.BALANCE.topic() == "station/v1/verification/balances"
    assert channels.PILE_TARIFF.topic(pile="c1-p01") == "station/v1/piles/c1-p01/tariff"
    assert channels.PILE_TARIFF.filter() == "station/v1/piles/+/tariff"
    assert channels.PILE_TARIFF.param("station/v1/piles/c2-p12/tariff", "pile") == "c2-p12"
    assert channels.PILE_TARIFF.param("station/v1/piles/c2-p12/meter", "pile") is None
    assert channels.PILE_TARIFF.param("station/v1/piles/oops/tariff", "pile") is None


def test_an_open_without_a_balance_is_still_valid_for_old_collectors() -> None:
    old = SessionOpenRequest.model_validate_json(
        b'{"v": "v1", "session_id": "s", "pile_id": "c1-p01", "card_uid": "C", '
        b'"meter_start": "1.5"}'
    )
    assert old.balance is None
    new = SessionOpenRequest.model_validate_json(
        b'{"session_id": "s", "pile_id": "c1-p01", "card_uid": "C", "meter_start": "1.5", '
        b'"balance": "12.30"}'
    )
    assert new.balance == Decimal("12.30")


def test_a_debit_is_settled_when_booked_now_or_before_and_only_then() -> None:
    def reply(result: DebitResult) -> DebitReply:
        return DebitReply(session_id="s", card_uid="C", result=result)

    assert [r for r in DebitResult if reply(r).settled] == [
        DebitResult.BOOKED,
        DebitResult.ALREADY_BOOKED,
    ]


def test_a_tariff_display_carries_money_as_decimal_strings() -> None:
    display = TariffDisplay(
        pile_id="c1-p01",
        tariff_id="tou",
        currency="CNY",
        energy_price=Decimal("1.0735"),
        lines=["Price now", "Energy 1.0735 CNY/kWh"],
        published_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert '"energy_price":"1.0735"' in display.model_dump_json()


def test_an_ocpi_charging_period_reads_its_dimensions() -> None:
    period = ChargingPeriod.model_validate(
        {
            "start_date_time": "2026-11-30T06:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": "12.345"}, {"type": "TIME", "volume": 1}],
        }
    )
    assert period.dimensions[0] == CdrDimension(
        type=CdrDimensionType.ENERGY, volume=Decimal("12.345")
    )
