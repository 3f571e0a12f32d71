"""Registering a pile against the simulated Zigbee2MQTT 2.x bridge API, on a real mosquitto:
open joining, a new device joins, it is renamed to a pile id and answers as a pile, removed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from station_protocol.channels import BridgeCall, ZigbeeChannels
from station_protocol.ids import Layout
from station_protocol.zigbee import (
    BreathCommand,
    BridgeEvent,
    BridgeInfo,
    ChargeCommand,
    DeviceRemoveRequest,
    DeviceRenameRequest,
    PermitJoinRequest,
    encode,
    new_transaction,
)
from station_tools.simulator import Simulator
from station_tools.simulator.bridge import JoiningClosed

IEEE = "0x00124b00deadbeef"


async def ask(rec: Any, call: BridgeCall[Any, Any], request: BaseModel) -> dict[str, Any]:
    """Send a bridge request and wait for the answer that carries its transaction."""
    transaction = getattr(request, "transaction", None)
    assert transaction is not None
    mark = rec.mark()
    await rec.publish(call.request.topic(), call.request.encode(request))
    answer: dict[str, Any] = await rec.next(
        call.response.topic(), lambda r: r.get("transaction") == transaction, since=mark
    )
    return answer


def permit(seconds: int) -> PermitJoinRequest:
    return PermitJoinRequest(time=seconds, transaction=new_transaction())


def rename(old: str, new: str) -> DeviceRenameRequest:
    return DeviceRenameRequest(from_=old, to=new, transaction=new_transaction())


def remove(device: str, *, force: bool | None = None) -> DeviceRemoveRequest:
    return DeviceRemoveRequest(id=device, force=force, transaction=new_transaction())


def breath(seq: int) -> bytes:
    return encode(BreathCommand(breath=seq))


async def test_permit_join_opens_and_closes_the_window_and_bridge_info_says_so(
    mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    info = topics.bridge_info.topic()
    async with (
        Simulator(mosquitto.url, Layout.parse("2x1"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        closed = BridgeInfo.model_validate(await rec.next(info))
        assert not closed.permit_join and closed.permit_join_end is None
        assert not sim.joining_open("c1")

        request = permit(120)
        answer = await ask(rec, topics.permit_join, request)
        assert answer == {"data": {"time": 120}, "status": "ok", "transaction": request.transaction}
        assert sim.joining_open("c1") and not sim.joining_open("c2"), "one charger at a time"
        opened = BridgeInfo.model_validate(await rec.next(info, lambda i: i["permit_join"]))
        assert opened.permit_join_end is not None and opened.permit_join_end > 0

        answer = await ask(rec, topics.permit_join, permit(0))
        assert answer["status"] == "ok" and answer["data"] == {"time": 0}
        assert not sim.joining_open("c1")
        async with record(info) as late:
            assert (await late.next(info)) == {"permit_join": False}, "retained, and closed"

        await ask(rec, topics.permit_join, permit(1))
        mark = rec.mark()
        await sim.wait_for(lambda: not sim.joining_open("c1"), timeout=3)
        await rec.next(info, lambda i: not i["permit_join"], since=mark, timeout=3)


async def test_a_request_not_understood_is_refused_with_its_transaction(
    mosquitto, options, record, root
):
    topics = ZigbeeChannels.for_charger("c1", root)
    async with (
        Simulator(mosquitto.url, Layout.parse("1x1"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        mark = rec.mark()
        await rec.publish(
            topics.permit_join.request.topic(), b'{"value": true, "transaction": "x1"}'
        )
        answer = await rec.next(topics.permit_join.response.topic(), since=mark)
        assert answer["status"] == "error" and answer["data"] == {}
        assert answer["transaction"] == "x1" and "Invalid payload" in answer["error"]
        assert not sim.joining_open("c1"), "the 1.x form opens nothing"

        unknown_router = PermitJoinRequest(time=10, device="router-9", transaction="x2")
        answer = await ask(rec, topics.permit_join, unknown_router)
        assert answer == {
            "data": {},
            "status": "error",
            "error": "Device 'router-9' does not exist",
            "transaction": "x2",
        }


async def test_a_device_joins_only_while_joining_is_open(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    events = topics.bridge_event.topic()
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        with pytest.raises(JoiningClosed, match="c1"):
            await sim.new_device("c1", IEEE)
        await rec.settle(0.1)
        assert rec.on(events) == [] and not sim.has_pile(IEEE)

        await ask(rec, topics.permit_join, permit(60))
        device = await sim.new_device("c1", IEEE)
        assert (device.pile_id, device.ieee_address) == (IEEE, IEEE)
        await rec.next(events, lambda e: e["data"].get("status") == "successful")
        seen = [BridgeEvent.model_validate(m.json()) for m in rec.on(events)]
        assert [(e.type, e.data.status) for e in seen] == [
            ("device_joined", None),
            ("device_interview", "started"),
            ("device_interview", "successful"),
        ]
        assert {(e.data.friendly_name, e.data.ieee_address) for e in seen} == {(IEEE, IEEE)}
        definition = seen[-1].data.definition
        assert definition is not None and seen[-1].data.supported is True
        assert (definition.model, definition.vendor) == ("EVSE-22", "Station Sim")

        stranger = await rec.next(topics.device_state.topic(device=IEEE))
        assert stranger["gun"] == "unplugged" and stranger["charging"] is False
        assert topics.pile_state.parse(topics.device_state.topic(device=IEEE)) is None

        fresh = await sim.new_device("c1")
        assert fresh.ieee_address != IEEE and len(fresh.ieee_address) == 18
        assert fresh.pile_id == fresh.ieee_address
        with pytest.raises(ValueError, match="already"):
            await sim.new_device("c1", IEEE)


async def test_a_renamed_device_is_a_pile_under_its_new_name(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    new = topics.pile_state.topic(pile="c1-p03")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x2"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        await ask(rec, topics.permit_join, permit(60))
        await sim.new_device("c1", IEEE)

        request = rename(IEEE, "c1-p03")
        answer = await ask(rec, topics.device_rename, request)
        assert answer == {
            "data": {"from": IEEE, "to": "c1-p03", "homeassistant_rename": False},
            "status": "ok",
            "transaction": request.transaction,
        }
        assert sim.pile("c1-p03") is sim.pile(IEEE), "still found by its IEEE address"
        availability = topics.pile_availability.topic(pile="c1-p03")
        assert await rec.next(availability) == {"state": "online"}
        await rec.next(new)

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p03"), breath(41))
        assert (await rec.next(new, lambda s: "breath_ack" in s, since=mark))["breath_ack"] == 41
        await rec.publish(topics.device_set.topic(device=IEEE), breath(42))
        await sim.plug("c1-p03")
        start = ChargeCommand(charge="start", session_id="s-new", max_current=32)
        await rec.publish(topics.pile_set.topic(pile="c1-p03"), encode(start))
        charging = await rec.next(new, lambda s: s["charging"], since=mark)
        assert charging["session_id"] == "s-new"
        assert charging["breath_ack"] == 42, "commands by IEEE address reach it too"
        assert rec.on(topics.device_state.topic(device=IEEE), mark) == [], "old name is silent"

        again = await ask(rec, topics.device_rename, rename("c1-p03", "c1-p04"))
        assert again["status"] == "ok" and again["data"]["from"] == "c1-p03"
        async with record(availability) as late:
            await late.settle(0.2)
            assert late.messages == [], "the old name's retained availability is gone"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (IEEE, "c1-p01", "Friendly name 'c1-p01' is already in use"),
        ("0x00124b0000000000", "c1-p05", "Device '0x00124b0000000000' does not exist"),
        ("c1-p09", "c1-p05", "Device 'c1-p09' does not exist"),
        (IEEE, "c2-p01", "a simulated pile of c1 is named c1-p<jj>, not 'c2-p01'"),
        (IEEE, "kitchen", "a simulated pile of c1 is named c1-p<jj>, not 'kitchen'"),
    ],
)
async def test_a_rename_is_refused_for_a_name_taken_or_a_device_unknown(
    mosquitto, options, record, root, old, new, error
):
    topics = ZigbeeChannels.for_charger("c1", root)
    async with (
        Simulator(mosquitto.url, Layout.parse("2x2"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        await ask(rec, topics.permit_join, permit(60))
        await sim.new_device("c1", IEEE)
        request = rename(old, new)
        answer = await ask(rec, topics.device_rename, request)
        assert answer == {
            "data": {},
            "status": "error",
            "error": error,
            "transaction": request.transaction,
        }
        assert sim.pile(IEEE).pile_id == IEEE and sim.pile("c1-p01").ieee_address != IEEE


async def test_a_removed_device_leaves_and_is_heard_no_more(mosquitto, options, record, root):
    topics = ZigbeeChannels.for_charger("c1", root)
    events = topics.bridge_event.topic()
    state = topics.pile_state.topic(pile="c1-p02")
    async with (
        Simulator(mosquitto.url, Layout.parse("1x3"), options) as sim,
        record(f"{root}/#") as rec,
    ):
        ieee = sim.pile("c1-p02").ieee_address
        request = remove(ieee)
        answer = await ask(rec, topics.device_remove, request)
        assert answer == {
            "data": {"id": ieee, "force": False, "block": False},
            "status": "ok",
            "transaction": request.transaction,
        }
        left = BridgeEvent.model_validate(await rec.next(events))
        assert left.type == "device_leave"
        assert (left.data.friendly_name, left.data.ieee_address) == ("c1-p02", ieee)
        assert not sim.has_pile("c1-p02")

        mark = rec.mark()
        await rec.publish(topics.pile_set.topic(pile="c1-p02"), breath(7))
        await rec.settle(0.2)
        assert rec.on(state, mark) == []

        forced = await ask(rec, topics.device_remove, remove("c1-p03", force=True))
        assert forced["status"] == "ok" and forced["data"]["force"] is True
        unknown = await ask(rec, topics.device_remove, remove("c1-p02"))
        assert unknown["status"] == "error" and unknown["error"] == "Device 'c1-p02' does not exist"
        await rec.settle(0.1)
        assert [m.json()["type"] for m in rec.on(events)] == ["device_leave"], "forced: no leave"
        assert [p.pile_id for p in sim.piles] == ["c1-p01"]

        await rec.publish(topics.pile_set.topic(pile="c1-p01"), breath(8))
        await rec.next(topics.pile_state.topic(pile="c1-p01"), lambda s: s.get("breath_ack") == 8)
