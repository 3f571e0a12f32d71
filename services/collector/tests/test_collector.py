"""The collector's I/O shell against a real broker: what a driver, a pile and billing see.

The rig (the collector app with its real lifespan, and the rest of the station played over
the broker) is the ``rig`` fixture of ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from station_protocol import channels
from station_protocol.ids import pile_id
from station_protocol.messages import (
    AuthorizationWithdrawal,
    PileSession,
    SessionStatus,
    StopReason,
    StopRequest,
)
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
    BridgeState,
    ChargeCommand,
    Display,
    OnlineState,
    PileAction,
    PileState,
)
from station_tools.mosquitto import Mosquitto

Rig = Any
"""The ``rig`` fixture (see conftest)."""


# -- the charge flow -----------------------------------------------------------------------


async def test_plug_and_swipe_verify_open_the_session_then_start_the_pile(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)

    command = await rig.start_charge(pile)

    [asked] = rig.station.verifications
    assert (asked.pile_id, asked.card_uid) == (pile, rig.good_card)
    [opening] = rig.station.openings
    assert (opening.session_id, opening.pile_id, opening.card_uid) == (
        asked.session_id,
        pile,
        rig.good_card,
    )
    assert opening.meter_start == rig.start_meter
    assert opening.balance == rig.balance
    # No energy before a verified card and an open session (docs/invariants.md, 1).
    assert rig.events == ["verify", "open", "charge start"]
    assert command == ChargeCommand(charge="start", session_id=asked.session_id, max_current=32)
    shown = [screen.lines[0] for screen in device.screens]
    assert shown == ["Gun connected", "Checking card...", "Charging"]
    view = await rig.pile_view(pile)
    assert (view["phase"], view["session_id"], view["card_uid"]) == (
        "charging",
        asked.session_id,
        rig.good_card,
    )
    assert await rig.metric("station_collector_sessions_started_total", charger=rig.charger) == 1
    verified = await rig.metric(
        "station_collector_verifications_total", charger=rig.charger, result="accepted"
    )
    assert verified == 1


async def test_an_unknown_card_is_refused_and_the_display_says_why(rig: Rig) -> None:
    pile = rig.piles[1]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: "Gun connected" in device.shown)

    await rig.zigbee.swipe(pile, rig.unknown_card)

    await rig.eventually(lambda: device.shown[:1] == ["Charge refused"])
    assert device.shown == [
        "Charge refused",
        "Card not recognised",
        "卡片无法识别",
        "reason: unknown",
    ]
    [asked] = rig.station.verifications
    assert asked.card_uid == rig.unknown_card
    assert rig.station.openings == []
    assert device.commands == []
    assert rig.events == ["verify"]
    assert (await rig.pile_view(pile))["phase"] == "idle"
    refused = await rig.metric(
        "station_collector_verifications_total", charger=rig.charger, result="unknown"
    )
    assert refused == 1


async def test_a_second_swipe_stops_the_pile_checks_out_and_shows_the_receipt(
    rig: Rig,
) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)
    final = Decimal("12.75")
    await rig.zigbee.meter(pile, final)
    await rig.eventually(lambda: any(m.energy == final for m in rig.station.meters))

    await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    assert device.commands[1:] == [ChargeCommand(charge="stop", session_id=start.session_id)]
    [checkout] = rig.station.checkouts
    assert checkout.session_id == start.session_id
    assert checkout.meter_stop == final
    assert checkout.stop_reason is StopReason.LOCAL
    assert device.screens[-1] == Display(
        lines=["Thank you", "0.25 kWh", "EUR 1.10"],
        qr=f"https://receipts.example/{start.session_id}",
    )
    assert "Finishing..." in [screen.lines[0] for screen in device.screens]
    assert rig.events == ["verify", "open", "charge start", "charge stop", "checkout"]
    # Billing was sent the pile's readings as they came, with the session they belong to.
    metered = [m for m in rig.station.meters if m.energy == final]
    assert metered[0].session_id == start.session_id
    assert metered[0].pile_id == pile
    assert (await rig.pile_view(pile))["phase"] == "idle"
    stopped = await rig.metric(
        "station_collector_sessions_stopped_total", charger=rig.charger, reason="local"
    )
    assert stopped == 1


async def test_a_stop_request_from_billing_stops_the_active_session(
    rig: Rig, mosquitto: Mosquitto
) -> None:
    pile = rig.piles[1]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)
    stop = StopRequest(session_id=start.session_id, pile_id=pile, reason=StopReason.OPERATOR)
    stranger = stop.model_copy(update={"session_id": "not-this-session"})

    await rig.station.bus.send(channels.COLLECTOR_STOP, stranger, charger=rig.charger)
    await rig.station.bus.send(channels.COLLECTOR_STOP, stop, charger=rig.charger)

    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    assert device.commands == [start, ChargeCommand(charge="stop", session_id=start.session_id)]
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == (start.session_id, StopReason.OPERATOR)
    assert checkout.meter_stop == rig.start_meter
    stopped = await rig.metric(
        "station_collector_sessions_stopped_total", charger=rig.charger, reason="operator"
    )
    assert stopped == 1


async def test_an_operator_stop_while_the_session_starts_stops_it_once_it_charges(
    rig: Rig,
) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    rig.station.open_delay = 1.5
    await rig.zigbee.report(pile, gun="plugged")
    await rig.zigbee.swipe(pile, rig.good_card)
    await rig.eventually(lambda: bool(rig.station.openings))
    [opening] = rig.station.openings
    stop = StopRequest(session_id=opening.session_id, pile_id=pile, reason=StopReason.OPERATOR)

    await rig.station.bus.send(channels.COLLECTOR_STOP, stop, charger=rig.charger)

    await rig.eventually(lambda: bool(rig.station.checkouts), timeout=10)
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == (opening.session_id, StopReason.OPERATOR)
    assert device.commands[-1] == ChargeCommand(charge="stop", session_id=opening.session_id)


async def test_a_forged_retained_end_of_the_charging_session_is_not_obeyed(rig: Rig) -> None:
    """Finding 3: a retained ``completed`` made the collector stop a session billing kept."""
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)
    forged = PileSession(
        session_id=start.session_id,
        pile_id=pile,
        card_uid=rig.good_card,
        status=SessionStatus.COMPLETED,
        started_at=datetime.now(UTC),
    )
    await rig.station.bus.publish(channels.PILE_SESSION.topic(pile=pile), forged, qos=1)

    await rig.eventually(lambda: "query" in rig.events)  # it asked billing, which says active
    await asyncio.sleep(0.3)
    assert device.commands == [start]
    assert (await rig.pile_view(pile))["phase"] == "charging"
    await rig.zigbee.swipe(pile, rig.good_card)  # the driver ends it as usual
    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    assert [c.session_id for c in rig.station.checkouts] == [start.session_id]


async def test_a_forged_retained_active_session_is_not_resumed(rig: Rig) -> None:
    """Finding 3: a retained ``active`` for a session that does not exist blocked the pile."""
    pile = rig.piles[0]
    forged = PileSession(
        session_id="no-such-session",
        pile_id=pile,
        card_uid=rig.good_card,
        status=SessionStatus.ACTIVE,
        started_at=datetime.now(UTC),
    )
    topic = channels.PILE_SESSION.topic(pile=pile)
    await rig.station.bus.publish(topic, forged, qos=1, retain=True)
    try:
        await rig.eventually(lambda: "query" in rig.events)
        await asyncio.sleep(0.3)
        assert (await rig.pile_view(pile))["phase"] == "idle"
        await rig.start_charge(pile)  # the pile is free for the next driver
    finally:
        await rig.station.bus.publish(topic, b"", qos=1, retain=True)


async def test_a_start_billing_refuses_frees_the_card_at_verification(rig: Rig) -> None:
    """Finding 3/4: every failed start locked the card for verification's whole TTL."""
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    rig.station.refuse_openings = True
    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: "Gun connected" in device.shown)
    await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: len(rig.station.withdrawals) == 1)
    [verified] = rig.station.verifications
    assert rig.station.withdrawals == [
        AuthorizationWithdrawal(
            session_id=verified.session_id, pile_id=pile, card_uid=rig.good_card
        )
    ]
    assert device.commands == []
    assert (await rig.pile_view(pile))["phase"] == "idle"


async def test_every_swipe_is_counted_by_what_came_of_it(rig: Rig) -> None:
    """Finding 5: swipes of unknown cards appeared in no counter."""
    pile, other = rig.piles
    device = rig.zigbee.pile(pile)
    for n in range(3):  # no gun plugged: each waits for one
        await rig.zigbee.swipe(other, f"{rig.unknown_card}-{n}")
    await rig.start_charge(pile)
    await rig.zigbee.swipe(pile, rig.unknown_card)  # another card on a charging pile
    await rig.zigbee.swipe(pile, rig.good_card)  # the driver's second swipe
    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])

    counted = {
        outcome: await rig.metric(
            "station_collector_swipes_total", charger=rig.charger, outcome=outcome
        )
        for outcome in ("waiting_for_gun", "verify", "busy", "stop", "repeated")
    }
    assert counted == {"waiting_for_gun": 3, "verify": 1, "busy": 1, "stop": 1, "repeated": 0}


async def test_an_operator_stop_ends_a_session_the_collector_does_not_know(rig: Rig) -> None:
    """Billing has a session on an idle pile (the collector lost it): the stop checks it out."""
    pile = rig.piles[0]
    stop = StopRequest(session_id="lost-session", pile_id=pile, reason=StopReason.OPERATOR)

    await rig.station.bus.send(channels.COLLECTOR_STOP, stop, charger=rig.charger)

    await rig.eventually(lambda: len(rig.station.checkouts) == 1)
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == ("lost-session", StopReason.OPERATOR)
    assert checkout.meter_stop == rig.start_meter
    assert rig.zigbee.pile(pile).commands == [
        ChargeCommand(charge="stop", session_id="lost-session")
    ]


async def test_a_pile_charging_for_a_session_billing_closed_is_stopped(rig: Rig) -> None:
    """An operator stop billing carried out alone while this collector was away: the pile
    still charges when the collector is back, and billing's word stops it (nothing billed
    twice: the collector does not check out a session billing closed)."""
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)

    await rig.zigbee.report(pile, charging=True, session_id="closed-while-away")

    stop = ChargeCommand(charge="stop", session_id="closed-while-away")
    await rig.eventually(lambda: device.commands == [stop])
    assert "query" in rig.events
    await rig.zigbee.report(pile, charging=False)
    await asyncio.sleep(0.3)
    assert device.commands == [stop]
    assert rig.station.checkouts == []
    assert (await rig.pile_view(pile))["phase"] == "idle"


# -- what the collector refuses -------------------------------------------------------------


async def test_malformed_and_oversized_pile_states_are_counted_by_kind(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.raw(pile, b'{"gun": "plugged",')
    await rig.zigbee.raw(pile, b'{"energy": "lots", "gun": 7}')
    await rig.zigbee.raw(pile, b'{"padding": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}')
    await rig.zigbee.report(pile, energy=rig.start_meter - 1)  # the meter going backwards
    await rig.zigbee.report(pile, action=PileAction.CARD_SWIPE)  # a swipe with no card

    for kind in ("bad_json", "wrong_type", "oversized", "energy_backwards", "swipe_without_card"):
        await rig.eventually(lambda kind=kind: _dropped_once(rig, kind))
    assert await rig.dropped("unknown_pile") == 0
    # None of it changed the pile: still up, not plugged, its last good meter reading kept.
    view = await rig.pile_view(pile)
    assert (view["up"], view["gun"], Decimal(str(view["energy"]))) == (
        True,
        "unplugged",
        rig.start_meter,
    )
    assert device.commands == []


async def test_a_reading_the_pile_cannot_have_counted_is_dropped_raised_and_blocks_starts(
    rig: Rig,
) -> None:
    """Finding 1 and 2: ``1E+308`` and a jump of 100 kWh never reach billing."""
    pile = rig.piles[1]  # rated 22 kW
    device = rig.zigbee.pile(pile)
    await rig.zigbee.raw(pile, b'{"energy": 1E+308}')
    await rig.zigbee.report(pile, energy=rig.start_meter + 100)

    await rig.eventually(lambda: _dropped(rig, "meter_implausible", 2))
    view = await rig.pile_view(pile)
    assert "meter_implausible" in view["faults"]
    assert Decimal(str(view["energy"])) == rig.start_meter
    assert all(m.energy == rig.start_meter for m in rig.station.meters if m.pile_id == pile)
    # While the meter cannot be believed, a driver gets no charge on this pile.
    await rig.zigbee.report(pile, gun="plugged")
    await rig.zigbee.swipe(pile, rig.good_card)
    await rig.eventually(lambda: device.shown[:1] == ["Out of service"])
    assert device.commands == [] and rig.station.openings == []

    # A reading the pile could have counted clears the fault; the next driver charges.
    device.energy = rig.start_meter + Decimal("0.01")
    await rig.zigbee.report(pile, energy=device.energy, gun="unplugged")
    await rig.eventually(lambda: _no_fault(rig, pile, "meter_implausible"))
    await rig.start_charge(pile)


async def _no_fault(rig: Rig, pile: str, code: str) -> bool:
    return code not in (await rig.pile_view(pile))["faults"]


async def _dropped_once(rig: Rig, kind: str) -> bool:
    return await rig.dropped(kind) == 1


async def test_a_pile_that_is_not_this_chargers_is_an_unknown_pile(rig: Rig) -> None:
    other_charger = f"c{int(rig.charger[1:]) + 500}-p01"
    beyond = pile_id(int(rig.charger[1:]), len(rig.piles) + 1)
    plugged = PileState(gun="plugged")
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_state, plugged, pile=other_charger)
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_state, plugged, pile=beyond)
    await rig.zigbee.raw("not-a-pile", b'{"gun": "plugged"}')
    # A pile of another charger is unknown here before its payload is even read.
    await rig.zigbee.raw(other_charger, b'{"gun": ')

    await rig.eventually(lambda: _dropped(rig, "unknown_pile", 4))
    assert await rig.dropped("bad_json") == 0
    for pile in rig.piles:
        assert (await rig.pile_view(pile))["gun"] == "unplugged"
    assert (await rig.http.get(f"/api/v1/piles/{beyond}")).status_code == 404


async def _dropped(rig: Rig, kind: str, count: int) -> bool:
    return await rig.dropped(kind) == count


# -- who is up ----------------------------------------------------------------------------


async def test_zigbee2mqtt_offline_in_its_bare_1x_word_takes_the_piles_down(rig: Rig) -> None:
    bridge = rig.zigbee.zigbee.bridge_state.topic()
    rig.zigbee.silent.update(rig.piles)  # a bridge that is down passes nothing on

    await rig.zigbee.bus.publish(bridge, b"offline", qos=1, retain=True)

    for pile in rig.piles:
        await rig.eventually(lambda pile=pile: rig.down(pile))
        up = await rig.metric("station_collector_pile_up", charger=rig.charger, pile=pile)
        assert up == 0
    rig.zigbee.silent.clear()
    await rig.zigbee.bus.publish(bridge, b"online", qos=1, retain=True)
    for pile in rig.piles:
        await rig.eventually(lambda pile=pile: rig.up(pile))
    # The bare words are Zigbee2MQTT 1.x, not malformed messages.
    assert await rig.dropped("bad_json") == 0
    assert await rig.dropped("wrong_type") == 0


async def test_a_pile_zigbee2mqtt_marks_offline_starts_no_charge(rig: Rig) -> None:
    pile, other = rig.piles
    device = rig.zigbee.pile(pile)
    rig.zigbee.silent.add(pile)
    offline = BridgeState(state=OnlineState.OFFLINE)

    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_availability, offline, pile=pile)

    await rig.eventually(lambda: rig.down(pile))
    assert await rig.up(other)
    assert "pile_unreachable" in (await rig.pile_view(pile))["faults"]
    await rig.zigbee.plug(pile)
    await rig.zigbee.swipe(pile, rig.good_card)
    await rig.eventually(lambda: device.shown[:1] == ["Out of service"])
    assert device.shown == ["Out of service", "暂停服务", "pile_unreachable"]
    assert rig.station.verifications == []
    assert device.commands == []

    rig.zigbee.silent.discard(pile)
    online = BridgeState(state=OnlineState.ONLINE)
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_availability, online, pile=pile)
    await rig.eventually(lambda: rig.up(pile))
