"""Meter readings over the bus: timed by billing, made into periods, watched against the balance."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

from station_protocol import channels
from station_protocol.ids import charger_of
from station_protocol.messages import StopReason, StopRequest

EUROPEAN = {
    "currency": "CNY",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": "1.00", "step_size": 0},
                {"type": "PARKING_TIME", "price": "6.00", "step_size": 0},
            ]
        }
    ],
}


def sid() -> str:
    return str(uuid.uuid4())


async def use_tariff(billing: Any, pile: str, body: dict[str, Any], tariff_id: str) -> None:
    answer = await billing.http.put(f"/api/v1/tariffs/{tariff_id}", content=json.dumps(body))
    assert answer.status_code in (200, 201), answer.text
    assigned = await billing.http.post(
        "/api/v1/tariff-assignments", json={"tariff_id": tariff_id, "pile_id": pile}
    )
    assert assigned.status_code == 201, assigned.text


async def test_readings_become_charging_then_parking_periods_billed_as_such(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await use_tariff(billing, pile, EUROPEAN, "european")
    await collector.open(session, pile, "CARD-1", meter_start="100")
    steps = ((10, "103", True), (20, "110", False), (10, "110", False))
    for seen, (minutes, energy, charging) in enumerate(steps, start=1):
        billing.clock.advance(minutes=minutes)
        await collector.reading(pile, session, energy=energy, charging=charging)
        await billing.readings_seen(seen)
    billing.clock.advance(minutes=20)
    reply = await collector.checkout(session, pile, meter_stop="110")

    record = await billing.session(session)
    assert [
        {d["type"]: d["volume"] for d in period["dimensions"]}
        for period in record["charging_periods"]
    ] == [{"ENERGY": "10", "TIME": "0.5"}, {"PARKING_TIME": "0.5"}]
    assert record["total_energy_cost"] == {"excl_vat": "10.00", "incl_vat": "10.00"}
    assert record["total_parking_cost"] == {"excl_vat": "3.00", "incl_vat": "3.00"}
    assert record["total_parking_time"] == "0.5" and record["total_time"] == "1"
    assert reply.receipt is not None
    assert "Parking cost 3.00 CNY" in reply.receipt.lines
    assert reply.receipt.total_cost.incl_vat == Decimal("13.00")


async def test_the_running_cost_comes_from_the_readings_so_far(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="50")
    billing.clock.advance(minutes=15)
    await collector.reading(pile, session, energy="55.5", charging=True)
    await billing.readings_seen(1)

    running = (await billing.http.get(f"/api/v1/sessions/{session}/cdr")).json()
    assert running["status"] == "active"
    assert running["total_energy"] == "5.5"
    assert running["total_cost"] == {"excl_vat": "6.60", "incl_vat": "6.60"}
    assert running["total_time"] == "0.25"

    reply = await collector.checkout(session, pile, meter_stop="55.5")
    assert reply.receipt is not None
    assert reply.receipt.total_cost.incl_vat == Decimal("6.60")  # the same function, same cost


async def test_the_charge_is_stopped_when_the_running_cost_reaches_the_balance(
    billing: Any, collector: Any, new_pile: Any, listen: Any
) -> None:
    pile, session = new_pile(), sid()
    async with listen(channels.COLLECTOR_STOP.topic(charger=charger_of(pile))) as heard:
        await collector.open(session, pile, "CARD-1", meter_start="0", balance="5.00")
        # Each reading is timed when billing gets it: the clock moves once it has.
        billing.clock.advance(minutes=5)
        await collector.reading(pile, session, energy="4.1", charging=True)  # 4.92 < 5.00
        await billing.readings_seen(1)
        billing.clock.advance(minutes=1)
        await collector.reading(pile, session, energy="4.2", charging=True)  # 5.04
        await billing.readings_seen(2)
        billing.clock.advance(seconds=30)
        await collector.reading(pile, session, energy="4.3", charging=True)  # asked already
        await billing.readings_seen(3)
        stops = await heard.eventually(1)
    assert len(stops) == 1
    request = StopRequest.model_validate_json(stops[0][1])
    assert (request.session_id, request.pile_id, request.reason) == (
        session,
        pile,
        StopReason.INSUFFICIENT_BALANCE,
    )
    assert await billing.metric("station_billing_stop_requests_total") == 1
    reply = await collector.checkout(
        session, pile, meter_stop="4.3", stop_reason=StopReason.INSUFFICIENT_BALANCE
    )
    assert reply.ok
    assert (await billing.session(session))["stop_reason"] == "insufficient_balance"


async def test_without_a_balance_in_the_open_billing_asks_verification(
    billing: Any, collector: Any, ledger: Any, new_pile: Any, listen: Any
) -> None:
    pile, session = new_pile(), sid()
    ledger.balances["THIN-CARD"] = Decimal("2.00")
    async with listen(channels.COLLECTOR_STOP.topic(charger=charger_of(pile))) as heard:
        await collector.open(session, pile, "THIN-CARD", meter_start="0")
        await balance_known(billing, session)
        billing.clock.advance(minutes=5)
        await collector.reading(pile, session, energy="2", charging=True)  # 2.40
        stops = await heard.eventually(1)
    assert StopRequest.model_validate_json(stops[0][1]).session_id == session


async def balance_known(billing: Any, session_id: str) -> None:
    """Billing has heard the card's balance from verification (it asks after the open)."""
    store = billing.app.state.service.state.sessions
    for _ in range(250):
        found = await asyncio.to_thread(store.get, session_id)
        if found is not None and found.balance_at_start == Decimal("2.00"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("billing never learnt the balance")


async def test_readings_without_a_session_backwards_or_malformed_are_counted_and_dropped(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, idle, session = new_pile(), new_pile(), sid()
    await collector.reading(idle, None, energy="10")
    await collector.open(session, pile, "CARD-1", meter_start="20")
    await collector.reading(pile, session, energy="19.5")
    await collector.bus.publish(channels.PILE_METER.topic(pile=pile), b'{"energy": "lots"}')
    await billing.readings_seen(2)
    billing.clock.advance(minutes=1)  # 1 kWh in a minute: a 60 kW pile could
    await collector.reading(pile, None, energy="21")
    await billing.readings_seen(3)
    await billing.settled("station_billing_dropped_messages_total", 1, 'kind="meter"')

    assert await billing.metric("station_billing_meter_readings_total", 'outcome="no_session"') == 1
    assert await billing.metric("station_billing_meter_readings_total", 'outcome="backwards"') == 1
    assert await billing.metric("station_billing_meter_readings_total", 'outcome="sampled"') == 1
    assert await billing.metric("station_bus_handler_errors_total") == 0


async def test_a_reading_naming_another_piles_session_is_not_billed_to_it(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, other, session = new_pile(), new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="0")
    await collector.reading(other, session, energy="99")
    await billing.readings_seen(1)
    assert await billing.metric("station_billing_meter_readings_total", 'outcome="no_session"') == 1
    await collector.checkout(session, pile, meter_stop="1")
    assert (await billing.session(session))["total_energy"] == "1"
