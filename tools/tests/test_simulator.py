"""The simulated piles against a real mosquitto, seen as a collector would see them."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import pytest

from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import Layout
from station_protocol.zigbee import (
    BreathCommand,
    BridgeEvent,
    BridgeState,
    ChargeCommand,
    Display,
    DisplayCommand,
    OnlineState,
    PileState,
    encode,
)
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.simulator import Simulator, SimulatorOptions

FULL_STATE = {
    "gun",
    "energy",
    "power",
    "current",
    "voltage",
    "charging",
    "error_code",
    "linkquality",
}


def start(session: str) -> bytes:
    return encode(ChargeCommand(charge="start", session_id=session, max_current=32))


def stop(session: str) -> bytes:
    return encode(ChargeCommand(charge="stop", session_id=session))


def breath(seq: int) -> bytes:
    return encode(BreathCommand(breath=seq))


async def test_bridges_are_online_retained_and_the_last_will_says_offline_after_a_kill(
    mosquitto, options, record, root
):
    layout = Layout.parse("2x2")
    c1, c2 = (ZigbeeChannels.for_charger(c, root) for c in ("c1", "c2"))
    async with Simulator(mosquitto.url, layout, options) as sim:
        async with record(f"{root}/#") as late:
            await late.next(c2.pile_availability.topic(pile="c2-p02"))
            await late.next(c1.bridge_state.topic())
            await late.next(c2.bridge_state.topic())
            retained = {m.topic: m for m in late.messages if m.retain}
        for topics in (c1, c2):
            assert (
                BridgeState.parse(retained[topics.bridge_state.topic()].payload).state == "online"
            )
        for pile in layout.pile_ids():
            topics = c1 if pile.startswith("c1") else c2
            availability = retained[topics.pile_availability.topic(pile=pile)].payload
            assert BridgeState.parse(availability).state == OnlineState.ONLINE

        await sim.kill_bridge("c1")
        assert not sim.bridge_online("c1")
        async with record(c1.bridge_state.topic(), c2.bridge_state.topic()) as late:
            will = await late.next(c1.bridge_state.topic())
            other = await late.next(c2.bridge_state.topic())
        assert will == {"state": "offline"}
        assert other == {"state": "online"}

        async with record(c2.pile_state.topic(pile="c2-p01")) as rec:
            await rec.publish(c2.pile_set.topic(pile="c2-p01"), breath(3))
            assert (await rec.next(c2.pile_state.topic(pile="c2-p01")))["breath_ack"] == 3

        await sim.start_bridge("c1")
        async with record(c1.bridge_state.topic()) as late:
            assert await late.next(c1.bridge_state.topic()) == {"state": "online"}


async def test_every_change_publishes_the_full_state(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options) as sim,
        record(pile) as rec,
    ):
        await sim.plug("c1-p01")
        plugged = await rec.next(pile, lambda s: s["gun"] == "plugged")
        assert set(plugged) == FULL_STATE
        assert plugged["energy"] == 1000.0
        assert plugged["charging"] is False and plugged["power"] == 0
        assert plugged["error_code"] == "NoError"
        assert 0 <= plugged["linkquality"] <= 255

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(5))
        acked = await rec.next(pile, since=mark)
        assert set(acked) == FULL_STATE | {"breath_ack"}
        assert acked["breath_ack"] == 5

        mark = rec.mark()
        await sim.set_error("c1-p01", "GroundFailure")
        faulted = await rec.next(pile, since=mark)
        assert faulted["error_code"] == "GroundFailure"
        assert faulted["breath_ack"] == 5, "the state cache keeps what the pile reported"
        assert set(faulted) == FULL_STATE | {"breath_ack"}
        PileState.model_validate(faulted)


async def test_a_swipe_carries_action_and_card_uid_once(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        mark = rec.mark()
        await sim.plug("c1-p01")
        await sim.swipe("c1-p01", "CARD-1")
        swiped = await rec.next(pile, lambda s: "action" in s, since=mark)
        assert swiped["action"] == "card_swipe"
        assert swiped["card_uid"] == "CARD-1"
        assert set(swiped) >= FULL_STATE

        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(1))
        await sim.unplug("c1-p01")
        after = await rec.next(pile, lambda s: s["gun"] == "unplugged", since=mark)
        assert "action" not in after and "card_uid" not in after
        states = [m.json() for m in rec.on(pile, mark)]
        assert [s.get("card_uid") for s in states].count("CARD-1") == 1
        assert not any("action" in s for s in states if s.get("breath_ack") == 1)


async def test_a_charge_starts_only_when_the_gun_is_plugged(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-without-car"))
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(1))
        await rec.next(pile, lambda s: s.get("breath_ack") == 1, since=mark)
        answers = [m.json() for m in rec.on(pile, mark)]
        assert len(answers) == 2, "the refused start is answered with the state"
        assert all(a["charging"] is False and a["power"] == 0 for a in answers)
        assert all("session_id" not in a for a in answers)
        assert not sim.pile("c1-p01").charging

        await sim.plug("c1-p01")
        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-1"))
        started = await rec.next(pile, lambda s: s["charging"], since=mark)
        assert started["session_id"] == "s-1"
        assert started["power"] == 7.0
        assert started["current"] == 30.4
        assert sim.pile("c1-p01").session_id == "s-1"


async def test_the_meter_advances_only_while_charging_and_never_backwards(
    mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        await sim.plug("c1-p01")
        await rec.next(pile, lambda s: s["gun"] == "plugged")
        idle = rec.mark()
        await asyncio.sleep(6 * options.meter_interval)
        assert rec.on(pile, idle) == [], "an idle pile publishes no meter readings"
        assert sim.pile("c1-p01").energy == Decimal("1000.000")

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-meter"))
        await rec.next(pile, lambda s: s["energy"] >= 1001.0, since=mark)
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), stop("s-meter"))
        stopped = await rec.next(pile, lambda s: not s["charging"], since=mark)
        readings = [Decimal(str(m.json()["energy"])) for m in rec.on(pile, mark)]
        assert readings == sorted(readings)
        assert readings[-1] > Decimal("1001.000")
        assert all(r == r.quantize(Decimal("0.001")) for r in readings)
        assert Decimal(str(stopped["energy"])) == sim.pile("c1-p01").energy
        assert stopped["power"] == 0

        frozen = sim.pile("c1-p01").energy
        after_stop = rec.mark()
        await asyncio.sleep(6 * options.meter_interval)
        assert sim.pile("c1-p01").energy == frozen
        assert rec.on(pile, after_stop) == []


async def test_breaths_are_answered_with_their_sequence(mosquitto, record, root):
    options = SimulatorOptions(root=root)
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p02")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options),
        record(pile) as rec,
    ):
        for seq in (41, 42, 42):
            mark = rec.mark()
            await rec.publish(topics.pile_set.topic(pile="c1-p02"), breath(seq))
            answer = await rec.next(pile, lambda s: "breath_ack" in s, since=mark)
            assert answer["breath_ack"] == seq
        assert rec.on(topics.pile_state.topic(pile="c1-p01")) == []


async def test_the_display_is_remembered(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    first = Display(lines=["Card accepted", "Charging"])
    second = Display(lines=["12.345 kWh", "EUR 4.20"], qr="https://station.example/r/1")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record() as rec,
    ):
        pile = sim.pile("c1-p01")
        assert pile.display is None
        for display in (first, second):
            await rec.publish(
                topics.pile_set.topic(pile="c1-p01"), encode(DisplayCommand(display=display))
            )
        await sim.wait_for(lambda: len(pile.displays) == 2)
        assert pile.displays == [first, second]
        assert pile.display == second


async def test_malformed_commands_are_ignored(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        await sim.plug("c1-p01")
        await rec.next(pile, lambda s: s["gun"] == "plugged")
        mark = rec.mark()
        for payload in (
            b"not json",
            b"[]",
            b'{"charge": "launch", "session_id": "x"}',
            b'{"charge": "start"}',
            b'{"breath": -1}',
            b'{"breath": "soon"}',
            b'{"display": {"lines": "not a list"}}',
            b'{"reboot": true}',
            b'{"breath": 1, "pad": "' + b"x" * 20_000 + b'"}',
            b"\xff\xfe",
        ):
            await rec.publish(topics.pile_set.topic(pile="c1-p01"), payload)
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(7))
        answer = await rec.next(pile, since=mark)
        assert answer["breath_ack"] == 7, "only the well-formed breath was answered"
        assert len(rec.on(pile, mark)) == 1
        assert not sim.pile("c1-p01").charging
        assert sim.pile("c1-p01").displays == []


async def test_stop_ends_only_the_named_session_and_unplugging_ends_a_charge(
    mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        await sim.plug("c1-p01")
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-1"))
        await rec.next(pile, lambda s: s["charging"])

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), stop("s-other"))
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-2"))
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(9))
        await rec.next(pile, lambda s: s.get("breath_ack") == 9, since=mark)
        assert sim.pile("c1-p01").charging
        assert sim.pile("c1-p01").session_id == "s-1", "a running charge keeps its session"

        await rec.publish(topics.pile_set.topic(pile="c1-p01"), stop("s-1"))
        stopped = await rec.next(pile, lambda s: not s["charging"], since=mark)
        assert stopped["session_id"] == "s-1" and stopped["power"] == 0

        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-3"))
        await rec.next(pile, lambda s: s["charging"] and s["session_id"] == "s-3", since=mark)
        mark = rec.mark()
        await sim.unplug("c1-p01")
        unplugged = await rec.next(pile, lambda s: s["gun"] == "unplugged", since=mark)
        assert unplugged["charging"] is False and unplugged["power"] == 0


async def test_a_silenced_pile_neither_answers_nor_publishes_until_revived(
    mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    quiet, other = topics.pile_state.topic(pile="c1-p01"), topics.pile_state.topic(pile="c1-p02")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options) as sim,
        record(quiet, other) as rec,
    ):
        await sim.silence("c1-p01")
        mark = rec.mark()
        await sim.plug("c1-p01")
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(1))
        await rec.publish(topics.pile_set.topic(pile="c1-p02"), breath(1))
        await rec.next(other, since=mark)
        await rec.settle(0.1)
        assert rec.on(quiet, mark) == []

        await sim.revive("c1-p01")
        revived = await rec.next(quiet, since=mark)
        assert revived["gun"] == "plugged"
        assert "breath_ack" not in revived, "the silenced pile never heard breath 1"
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(2))
        assert (await rec.next(quiet, lambda s: "breath_ack" in s, since=mark))["breath_ack"] == 2


async def test_a_fault_stops_the_charge_and_refuses_a_new_one(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(pile) as rec,
    ):
        await sim.plug("c1-p01")
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-1"))
        await rec.next(pile, lambda s: s["charging"])
        mark = rec.mark()
        await sim.set_error("c1-p01", "GroundFailure")
        faulted = await rec.next(pile, lambda s: s["error_code"] == "GroundFailure", since=mark)
        assert faulted["charging"] is False and faulted["power"] == 0

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-2"))
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(2))
        await rec.next(pile, lambda s: s.get("breath_ack") == 2, since=mark)
        assert all(m.json()["charging"] is False for m in rec.on(pile, mark))
        assert sim.pile("c1-p01").session_id == "s-1"

        await sim.set_error("c1-p01", "NoError")
        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p01"), start("s-3"))
        resumed = await rec.next(pile, lambda s: s["charging"], since=mark)
        assert resumed["session_id"] == "s-3" and resumed["error_code"] == "NoError"


async def test_piles_leave_and_join_with_bridge_events(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options) as sim,
        record(
            topics.bridge_event.topic(),
            topics.pile_state.topic(pile="c1-p02"),
            topics.pile_availability.topic(pile="c1-p02"),
        ) as rec,
    ):
        await sim.leave("c1-p02")
        left = BridgeEvent.model_validate(await rec.next(topics.bridge_event.topic()))
        assert left.type == "device_leave" and left.data.friendly_name == "c1-p02"

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p02"), breath(1))
        await sim.plug("c1-p02")
        await rec.settle(0.1)
        assert rec.on(topics.pile_state.topic(pile="c1-p02"), mark) == []

        await sim.join("c1-p02")
        events = [
            BridgeEvent.model_validate(
                await rec.next(topics.bridge_event.topic(), lambda e, t=t: e["type"] == t)
            )
            for t in ("device_joined", "device_interview")
        ]
        assert {e.data.friendly_name for e in events} == {"c1-p02"}
        assert events[1].data.status == "successful"
        state = await rec.next(topics.pile_state.topic(pile="c1-p02"), since=mark)
        assert state["gun"] == "plugged"
        availability = await rec.next(topics.pile_availability.topic(pile="c1-p02"), since=mark)
        assert availability == {"state": "online"}


async def test_bridges_come_back_after_the_broker_restarts(
    own_mosquitto: Mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    async with Simulator(own_mosquitto.url, Layout.parse("1x1"), options) as sim:
        await sim.plug("c1-p01")
        own_mosquitto.restart()
        await sim.wait_for(lambda: not sim.bridge_online("c1"), timeout=5)
        await sim.wait_for(lambda: sim.bridge_online("c1"), timeout=15)
        async with record(topics.pile_state.topic(pile="c1-p01"), broker=own_mosquitto) as rec:
            await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(11))
            answer = await rec.next(topics.pile_state.topic(pile="c1-p01"))
        assert answer["breath_ack"] == 11 and answer["gun"] == "plugged"


async def test_unknown_piles_and_chargers_are_named_in_the_error(mosquitto, options):
    async with Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim:
        with pytest.raises(KeyError, match="c9-p01"):
            await sim.plug("c9-p01")
        with pytest.raises(KeyError, match="c4"):
            await sim.kill_bridge("c4")


async def test_entering_fails_clearly_without_a_broker(options):
    quick = dataclasses.replace(options, connect_timeout=0.5)
    with pytest.raises(ConnectionError, match="not online"):
        async with Simulator(f"mqtt://127.0.0.1:{free_port()}", Layout.parse("1x1"), quick):
            pass
