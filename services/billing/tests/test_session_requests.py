"""Sessions over the real broker: open, checkout, redeliveries, a busy pile, retained state."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from station_protocol import channels
from station_protocol.messages import StopReason


def sid() -> str:
    return str(uuid.uuid4())


async def test_open_then_checkout_bills_the_metered_energy(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    opened = await collector.open(session, pile, "CARD-1", meter_start="1234.567")
    assert opened.opened is True
    started = billing.clock.now
    billing.clock.advance(minutes=42, seconds=10)

    reply = await collector.checkout(session, pile, meter_stop="1246.912")

    assert reply.ok is True
    receipt = reply.receipt
    assert receipt is not None
    assert receipt.total_energy == Decimal("12.345")
    assert (receipt.total_cost.excl_vat, receipt.total_cost.incl_vat) == (
        Decimal("14.81"),
        Decimal("14.81"),
    )
    assert receipt.lines == [
        "Charge complete",
        "Energy 12.345 kWh",
        "Duration 0:42:10",
        "Energy cost 14.81 CNY",
        "Total 14.81 CNY",
        "Balance 85.19 CNY",
    ]
    assert receipt.qr == f"station://receipt/{session}?total=14.81&currency=CNY&station=station-1"
    record = await billing.session(session)
    assert record == {
        "id": session,
        "pile_id": pile,
        "card_uid": "CARD-1",
        "status": "completed",
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "stopped_at": billing.clock.now.isoformat().replace("+00:00", "Z"),
        "stop_reason": "local",
        "meter_start": "1234.567",
        "meter_stop": "1246.912",
        "total_energy": "12.345",
        "total_cost": {"excl_vat": "14.81", "incl_vat": "14.81"},
        "tariff_id": "default",
        "tariff_version": None,
        "currency": "CNY",
        "anomaly": None,
        "total_energy_cost": {"excl_vat": "14.81", "incl_vat": "14.81"},
        "total_time_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_parking_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_fixed_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_time": "0.702778",
        "total_parking_time": "0",
        "charging_periods": [
            {
                "start_date_time": started.isoformat().replace("+00:00", "Z"),
                "dimensions": [
                    {"type": "ENERGY", "volume": "12.345"},
                    {"type": "TIME", "volume": "0.702778"},
                ],
            }
        ],
    }
    stored = (await billing.http.get(f"/api/v1/sessions/{session}/receipt")).json()
    assert stored == receipt.model_dump(mode="json")
    assert await billing.metric("station_billing_sessions_opened_total") == 1
    assert await billing.metric("station_billing_sessions_completed_total") == 1


async def test_energy_is_exact_where_a_float_is_not(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="0.1")
    reply = await collector.checkout(session, pile, meter_stop="0.3")
    assert reply.receipt is not None
    assert reply.receipt.total_energy == Decimal("0.2")  # 0.3 - 0.1 is 0.19999999999999998
    record = await billing.session(session)
    assert record["total_energy"] == "0.2"
    assert record["total_cost"] == {"excl_vat": "0.24", "incl_vat": "0.24"}


async def test_checkout_redelivered_twice_bills_once_with_the_same_receipt(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="10")
    billing.clock.advance(minutes=5)
    first = await collector.checkout_raw(session, pile, meter_stop="20")
    billing.clock.advance(minutes=5)
    again = await collector.checkout_raw(session, pile, meter_stop="20")
    billing.clock.advance(minutes=5)
    # even a redelivery with another reading cannot bill the session a second time
    late = await collector.checkout_raw(session, pile, meter_stop="25")

    assert first == again == late
    records = await billing.sessions(pile_id=pile)
    assert len(records) == 1
    assert records[0]["total_energy"] == "10"
    assert records[0]["total_cost"] == {"excl_vat": "12.00", "incl_vat": "12.00"}
    assert await billing.metric("station_billing_sessions_completed_total") == 1


async def test_open_redelivered_is_idempotent(billing: Any, collector: Any, new_pile: Any) -> None:
    pile, session = new_pile(), sid()
    first = await collector.open(session, pile, "CARD-1", meter_start="5.5")
    opened_at = billing.clock.now
    billing.clock.advance(seconds=30)
    again = await collector.open(session, pile, "CARD-1", meter_start="5.5")

    assert first.opened is True and again.opened is True
    assert again.error is None
    records = await billing.sessions(pile_id=pile)
    assert len(records) == 1
    assert records[0]["started_at"] == opened_at.isoformat().replace("+00:00", "Z")
    assert records[0]["status"] == "active"
    assert await billing.metric("station_billing_sessions_opened_total") == 1


async def test_second_open_on_a_busy_pile_is_refused(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, first, second = new_pile(), sid(), sid()
    assert (await collector.open(first, pile, "CARD-1", meter_start="0")).opened is True

    refused = await collector.open(second, pile, "CARD-2", meter_start="0")

    assert refused.opened is False
    assert refused.error is not None and pile in refused.error
    assert (await billing.http.get(f"/api/v1/sessions/{second}")).status_code == 404
    await collector.checkout(first, pile, meter_stop="1")
    assert (await collector.open(second, pile, "CARD-2", meter_start="1")).opened is True


async def test_a_session_id_is_never_reused_for_another_charge(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, other_pile, session = new_pile(), new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="0")
    clash = await collector.open(session, other_pile, "CARD-9", meter_start="0")
    assert clash.opened is False
    await collector.checkout(session, pile, meter_stop="1")
    reopened = await collector.open(session, pile, "CARD-1", meter_start="0")
    assert reopened.opened is False
    assert (await billing.session(session))["status"] == "completed"


async def test_retained_pile_session_is_active_then_completed(
    billing: Any, collector: Any, retained: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="0")
    active = await retained.eventually(pile, "active")
    assert (active.session_id, active.card_uid) == (session, "CARD-1")
    assert active.started_at == billing.clock.now
    assert active.stopped_at is None

    billing.clock.advance(minutes=1)
    await collector.checkout(session, pile, meter_stop="3", stop_reason=StopReason.EV_DISCONNECTED)

    completed = await retained.eventually(pile, "completed")
    assert completed.session_id == session
    assert completed.stopped_at == billing.clock.now
    assert completed.stop_reason == StopReason.EV_DISCONNECTED


async def test_a_late_checkout_redelivery_does_not_hide_the_next_session(
    billing: Any, collector: Any, retained: Any, new_pile: Any
) -> None:
    pile, first, second = new_pile(), sid(), sid()
    await collector.open(first, pile, "CARD-1", meter_start="0")
    await collector.checkout(first, pile, meter_stop="1")
    billing.clock.advance(minutes=1)
    await collector.open(second, pile, "CARD-2", meter_start="1")
    await retained.eventually(pile, "active")

    replay = await collector.checkout(first, pile, meter_stop="1")
    # billing handles requests in order: once this is answered, the replay's publish is done
    await collector.checkout(sid(), pile, meter_stop="1")

    assert replay.ok is True
    now = await retained.now(pile)
    assert now is not None and (now.session_id, now.status) == (second, "active")


async def test_checkout_of_an_unknown_session_is_refused(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    reply = await collector.checkout(sid(), new_pile(), meter_stop="1")
    assert reply.ok is False
    assert reply.error == "unknown session"
    assert reply.receipt is None


async def test_missing_or_backwards_reading_bills_no_energy(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, silent, backwards = new_pile(), sid(), sid()
    await collector.open(silent, pile, "CARD-1", meter_start="100.5")
    reply = await collector.checkout(silent, pile, meter_stop=None)
    assert reply.receipt is not None and reply.receipt.total_energy == 0

    await collector.open(backwards, pile, "CARD-1", meter_start="100.5")
    await collector.checkout(backwards, pile, meter_stop="7")
    record = await billing.session(backwards)
    assert record["meter_stop"] == "100.5"
    assert Decimal(record["total_energy"]) == 0
    assert record["total_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}


async def test_malformed_messages_are_counted_and_dropped(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    await collector.bus.publish(channels.SESSION_OPEN.topic(), b"{not json")
    await collector.bus.publish(
        channels.SESSION_OPEN.topic(),
        b'{"session_id": "x", "pile_id": "nowhere", "card_uid": "C", "meter_start": "-1"}',
    )
    await collector.bus.publish(channels.CHECKOUT.topic(), b'{"session_id": 5}')

    pile, session = new_pile(), sid()
    assert (await collector.open(session, pile, "CARD-1", meter_start="0")).opened is True
    # the bus handles messages in order: the drops are counted by the time the open is answered
    dropped = "station_billing_dropped_messages_total"
    assert await billing.metric(dropped, 'kind="session_open"') == 2
    assert await billing.metric(dropped, 'kind="checkout"') == 1
    assert await billing.metric("station_bus_handler_errors_total") == 0
    assert (await billing.http.get("/api/v1/sessions/x")).status_code == 404


async def test_the_tariff_is_frozen_when_the_session_opens(
    settings: Any, clock: Any, start_billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, before, after = new_pile(), sid(), sid()
    async with start_billing(settings, clock):
        await collector.open(before, pile, "CARD-1", meter_start="0")

    dearer = settings.model_copy(update={"price_per_kwh": Decimal("2.00")})
    async with start_billing(dearer, clock) as billing:
        old = await collector.checkout(before, pile, meter_stop="10")
        await collector.open(after, pile, "CARD-1", meter_start="10")
        new = await collector.checkout(after, pile, meter_stop="20")
        assert (await billing.session(before))["total_cost"]["incl_vat"] == "12.00"

    assert old.receipt is not None and old.receipt.total_cost.incl_vat == Decimal("12.00")
    assert new.receipt is not None and new.receipt.total_cost.incl_vat == Decimal("20.00")


async def test_vat_on_top_of_the_price_when_configured(
    settings: Any, clock: Any, start_billing: Any, collector: Any, new_pile: Any
) -> None:
    with_vat = settings.model_copy(update={"vat_percent": Decimal("13")})
    pile, session = new_pile(), sid()
    async with start_billing(with_vat, clock) as billing:
        await collector.open(session, pile, "CARD-1", meter_start="0")
        reply = await collector.checkout(session, pile, meter_stop="12.345")
        record = await billing.session(session)

    assert record["total_cost"] == {"excl_vat": "14.81", "incl_vat": "16.74"}
    assert reply.receipt is not None
    assert reply.receipt.lines[-3:-1] == ["VAT 1.93 CNY", "Total 16.74 CNY"]
