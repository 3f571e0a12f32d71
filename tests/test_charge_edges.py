"""Every edge of the charge flow (issue 3), end to end on real processes.

Repeats, redelivery, busy piles, unplugging, an operator stop, and hostile pile messages.
Restarts have their own module (they kill services).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiomqtt
import httpx
import pytest

from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.messages import CheckoutReply, CheckoutRequest, StopReason
from station_tools.mosquitto import Mosquitto
from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import (
    REPEAT_WINDOW,
    billed_exactly,
    charge_and_stop,
    charging,
    completed,
    eventually,
    metric,
    new_card,
    sessions,
    shown,
    start_charge,
)

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

PRICE = Decimal("1.20")
PAIRING_WINDOW = 4.0


async def test_a_reader_repeating_itself_is_one_swipe_and_one_session(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c1-p01"
    await piles.plug(pile)
    for _ in range(3):
        await piles.swipe(pile, card)
        await asyncio.sleep(0.1)
    await charging(piles, billing, pile, card)
    await piles.swipe(pile, card)  # within the repeat window of the last read: not a stop
    await asyncio.sleep(0.5)
    assert piles.pile(pile).charging
    assert len(sessions(billing, pile_id=pile, card_uid=card)) == 1
    record = await charge_and_stop(piles, billing, pile, card)
    billed_exactly(record, PRICE)
    assert len(sessions(billing, card_uid=card)) == 1
    await piles.unplug(pile)


async def test_a_redelivered_checkout_bills_once_with_the_same_receipt(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station_broker: Mosquitto
) -> None:
    card, pile = new_card(verification), "c1-p02"
    await start_charge(piles, billing, pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    request = CheckoutRequest(
        session_id=record["id"],
        pile_id=pile,
        meter_stop=Decimal(record["meter_stop"]) + 5,
        stop_reason=StopReason.LOCAL,
    )
    from station_runtime.bus import BrokerAddress, Bus, BusOptions

    options = BusOptions(BrokerAddress.parse(station_broker.url), "replayer", "replayer")
    async with Bus(options) as bus:
        await bus.wait_connected(5)
        replies = [
            CheckoutReply.model_validate_json(
                await bus.request(channels.CHECKOUT.topic(), request, timeout=5)
            )
            for _ in range(2)
        ]
    again = billing.get(f"/api/v1/sessions/{record['id']}").json()
    assert again["total_cost"] == record["total_cost"]
    assert again["meter_stop"] == record["meter_stop"]
    for reply in replies:
        assert reply.receipt is not None
        assert str(reply.receipt.total_cost.incl_vat) == record["total_cost"]["incl_vat"]
    assert len(sessions(billing, card_uid=card)) == 1
    await piles.unplug(pile)


async def test_another_card_on_a_charging_pile_is_refused_on_its_display(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    owner, stranger, pile = new_card(verification), new_card(verification), "c1-p03"
    await start_charge(piles, billing, pile, owner)
    await piles.swipe(pile, stranger)
    await eventually(lambda: "in use by another card" in shown(piles, pile))
    assert piles.pile(pile).charging
    assert sessions(billing, card_uid=stranger) == []
    record = await charge_and_stop(piles, billing, pile, owner)
    assert record["card_uid"] == owner
    await piles.unplug(pile)


async def test_unplugging_mid_charge_ends_and_bills_with_ev_disconnected(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c1-p04"
    await start_charge(piles, billing, pile, card)
    await asyncio.sleep(0.5)
    await piles.unplug(pile)
    record = await completed(billing, pile, card)
    assert record["stop_reason"] == "ev_disconnected"
    billed_exactly(record, PRICE)
    assert not piles.pile(pile).charging


async def test_a_swipe_older_than_the_pairing_window_does_not_pair_with_a_later_plug(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p01"
    await piles.swipe(pile, card)
    await asyncio.sleep(PAIRING_WINDOW + 0.5)
    await piles.plug(pile)
    await asyncio.sleep(1.5)
    assert not piles.pile(pile).charging
    assert sessions(billing, pile_id=pile) == []
    await piles.swipe(pile, card)  # a fresh swipe with the gun in: it charges
    record = await charge_and_stop(piles, billing, pile, card)
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


async def test_an_operator_stops_a_session_without_the_card(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p02"
    session = await start_charge(piles, billing, pile, card)
    await asyncio.sleep(REPEAT_WINDOW)
    # In a thread: the simulated piles share this event loop and must act on the stop.
    response = await asyncio.to_thread(
        billing.post, f"/api/v1/sessions/{session['id']}/stop", timeout=30
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["status"] == "completed"
    assert record["stop_reason"] == "operator"
    billed_exactly(record, PRICE)
    await eventually(lambda: not piles.pile(pile).charging)
    assert Decimal(record["meter_stop"]) == piles.pile(pile).energy
    again = billing.post(f"/api/v1/sessions/{session['id']}/stop")
    assert again.status_code == 200
    assert again.json()["total_cost"] == record["total_cost"]
    assert billing.post("/api/v1/sessions/no-such-session/stop").status_code == 404
    await piles.unplug(pile)


HOSTILE: dict[str, bytes] = {
    "bad_json": b'{"gun": "plugged",',
    "wrong_type": b'{"energy": "lots", "gun": 7}',
    "oversized": b'{"padding": "' + b"x" * 40_000 + b'"}',
    "swipe_without_card": b'{"action": "card_swipe"}',
}


async def test_hostile_pile_messages_are_counted_and_change_nothing(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    station_broker: Mosquitto,
) -> None:
    card, pile = new_card(verification), "c2-p03"
    session = await start_charge(piles, billing, pile, card)
    topics = ZigbeeChannels.for_charger("c2")
    last_good = piles.pile(pile).energy
    backwards = json.dumps({"energy": float(last_good - 50), "vendor_field": {"x": 1}})
    async with aiomqtt.Client("127.0.0.1", station_broker.port) as raw:
        for payload in HOSTILE.values():
            await raw.publish(topics.pile_state.topic(pile=pile), payload, qos=1)
        await raw.publish(topics.pile_state.topic(pile=pile), backwards.encode(), qos=1)
        await raw.publish(topics.pile_state.topic(pile="c2-p99"), b'{"gun": "plugged"}', qos=1)
    collector = station.collector_url("c2")

    def dropped(kind: str) -> float:
        text = httpx.get(f"{collector}/metrics", timeout=5).text
        return metric(text, "station_collector_dropped_messages_total", kind=kind)

    for kind in (*HOSTILE, "energy_backwards", "unknown_pile"):
        await eventually(lambda kind=kind: dropped(kind) >= 1)
    assert httpx.get(f"{collector}/ready", timeout=5).status_code == 200
    assert piles.pile(pile).charging
    active = sessions(billing, pile_id=pile, status="active")
    assert [s["id"] for s in active] == [session["id"]]
    record = await charge_and_stop(piles, billing, pile, card)
    assert Decimal(record["meter_stop"]) >= last_good  # billed from consistent readings only
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


async def test_a_pile_reporting_a_fault_shows_out_of_service_and_refuses_to_start(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p04"
    await piles.set_error(pile, "GroundFailure")
    await eventually(lambda: "Out of service" in shown(piles, pile))
    await piles.plug(pile)
    await piles.swipe(pile, card)
    await asyncio.sleep(1.5)
    assert not piles.pile(pile).charging
    assert sessions(billing, pile_id=pile, card_uid=card) == []
    await piles.unplug(pile)
    await piles.set_error(pile, "NoError")
    await eventually(lambda: "Ready" in shown(piles, pile))
    await piles.plug(pile)
    await piles.swipe(pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


async def test_forged_and_absurd_messages_neither_bill_nor_wedge_a_pile(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station_broker: Mosquitto,
) -> None:
    """Findings 1-4 on a running station: an absurd reading, a +100 kWh jump, a forged
    retained end of the session and a forged debit change nothing a driver pays or sees."""
    card, pile = new_card(verification), "c1-p01"  # its first test left it unplugged
    session = await start_charge(piles, billing, pile, card)
    topics = ZigbeeChannels.for_charger("c1")
    last_good = piles.pile(pile).energy
    forged_end = {
        "v": "v1",
        "session_id": session["id"],
        "pile_id": pile,
        "card_uid": card,
        "status": "completed",
        "started_at": session["started_at"],
    }
    forged_debit = {"v": "v1", "session_id": "never-billed", "card_uid": card}
    async with aiomqtt.Client("127.0.0.1", station_broker.port) as raw:
        state = topics.pile_state.topic(pile=pile)
        await raw.publish(state, b'{"energy": 1E+308}', qos=1)
        await raw.publish(state, json.dumps({"energy": float(last_good + 100)}).encode(), qos=1)
        await raw.publish(
            channels.PILE_SESSION.topic(pile=pile), json.dumps(forged_end).encode(), qos=1
        )
        debit = {**forged_debit, "pile_id": pile, "amount": "100000"}
        await raw.publish(channels.DEBIT.topic(), json.dumps(debit).encode(), qos=1)
    await asyncio.sleep(1.0)

    assert piles.pile(pile).charging  # the forged end was not obeyed
    record = await charge_and_stop(piles, billing, pile, card)
    assert (record["id"], record["anomaly"]) == (session["id"], None)
    assert Decimal(record["meter_stop"]) < last_good + 100
    billed_exactly(record, PRICE)

    def debited() -> list[str]:
        ledger = verification.get(f"/api/v1/cards/{card}/ledger").json()
        debits = [entry for entry in ledger["entries"] if entry["kind"] == "session_debit"]
        return [entry["session_id"] for entry in debits]

    await eventually(debited)  # billing settles the debit after the record is stored
    await asyncio.sleep(0.5)  # room for a forged second debit, were one ever booked
    assert debited() == [session["id"]]
    await piles.unplug(pile)
    # Neither the pile nor the card is held: the next charge of the card starts there.
    await eventually(lambda: not sessions(billing, pile_id=pile, status="active"))
    await asyncio.sleep(REPEAT_WINDOW)
    again = await start_charge(piles, billing, pile, card)
    await charge_and_stop(piles, billing, pile, card)
    assert again["id"] != session["id"]
    await piles.unplug(pile)
