"""A card at the console's kiosk: a swipe at the pile, answered with what came of it.

The console's side asks on ``station/v1/collectors/<charger>/kiosk`` as the console does;
the answer, the pile's commands and display, and the collector's metrics are what a driver
at the kiosk and an operator would check.
"""

from __future__ import annotations

from typing import Any

from station_protocol.messages import (
    KioskIntent,
    KioskOutcome,
    KioskRefusal,
    PileBoardState,
    StopReason,
)
from station_protocol.zigbee import ChargeCommand

Rig = Any
"""The ``rig`` fixture (see conftest)."""

START, STOP = KioskIntent.START, KioskIntent.STOP


async def test_a_kiosk_start_charges_the_plugged_pile_and_a_kiosk_stop_ends_it(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: "Gun connected" in device.shown)

    started = await rig.console.kiosk(pile, rig.good_card, START)

    [opening] = rig.station.openings
    assert (started.outcome, started.reason, started.session_id) == (
        KioskOutcome.STARTED,
        None,
        opening.session_id,
    )
    assert device.commands == [
        ChargeCommand(charge="start", session_id=opening.session_id, max_current=32)
    ]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.CHARGING))

    stopping = await rig.console.kiosk(pile, rig.good_card, STOP)

    assert (stopping.outcome, stopping.session_id) == (KioskOutcome.STOPPING, opening.session_id)
    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == (opening.session_id, StopReason.LOCAL)
    for outcome in ("started", "stopping"):
        counted = await rig.metric(
            "station_collector_kiosk_requests_total",
            charger=rig.charger,
            outcome=outcome,
            reason="",
        )
        assert counted == 1, outcome


async def test_a_kiosk_start_before_the_gun_waits_for_it_as_a_swipe_does(rig: Rig) -> None:
    pile = rig.piles[1]
    device = rig.zigbee.pile(pile)

    waiting = await rig.console.kiosk(pile, rig.good_card, START)

    assert (waiting.outcome, waiting.session_id) == (KioskOutcome.WAITING_FOR_GUN, None)
    assert device.shown[:1] == ["Card read"]
    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: bool(device.commands) and device.shown[0] == "Charging")
    [opening] = rig.station.openings
    assert opening.card_uid == rig.good_card


async def test_an_unknown_card_at_the_kiosk_is_refused_in_verifications_words(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: "Gun connected" in device.shown)

    reply = await rig.console.kiosk(pile, rig.unknown_card, START)

    assert (reply.outcome, reply.reason) == (KioskOutcome.REFUSED, KioskRefusal.UNKNOWN)
    assert device.shown[-1] == "reason: unknown"
    assert device.commands == [] and rig.station.openings == []
    counted = await rig.metric(
        "station_collector_kiosk_requests_total",
        charger=rig.charger,
        outcome="refused",
        reason="unknown",
    )
    assert counted == 1


async def test_the_kiosk_cannot_start_stop_or_restart_another_cards_session(rig: Rig) -> None:
    pile = rig.piles[0]
    start = await rig.start_charge(pile)

    other_start = await rig.console.kiosk(pile, rig.other_card, START)
    other_stop = await rig.console.kiosk(pile, rig.other_card, STOP)
    again = await rig.console.kiosk(pile, rig.good_card, START)

    assert (other_start.outcome, other_start.reason) == (KioskOutcome.REFUSED, KioskRefusal.BUSY)
    assert (other_stop.outcome, other_stop.reason) == (KioskOutcome.REFUSED, KioskRefusal.BUSY)
    assert (again.outcome, again.reason) == (KioskOutcome.REFUSED, KioskRefusal.ALREADY_CHARGING)
    assert rig.zigbee.pile(pile).commands == [start]
    assert rig.console.shows(pile, PileBoardState.CHARGING)


async def test_a_kiosk_stop_with_no_session_on_the_pile_is_refused(rig: Rig) -> None:
    reply = await rig.console.kiosk(rig.piles[1], rig.good_card, STOP)

    assert (reply.outcome, reply.reason) == (KioskOutcome.REFUSED, KioskRefusal.NO_SESSION)
    assert rig.zigbee.pile(rig.piles[1]).commands == []


async def test_the_kiosk_is_refused_on_a_pile_in_maintenance_offline_or_not_this_chargers(
    rig: Rig,
) -> None:
    in_maintenance, silent = rig.piles
    await rig.console.maintenance(in_maintenance, True)
    await rig.eventually(lambda: rig.console.shows(in_maintenance, PileBoardState.MAINTENANCE))
    rig.zigbee.silent.add(silent)
    await rig.eventually(lambda: rig.console.shows(silent, PileBoardState.OFFLINE))
    beyond = f"{rig.charger}-p{len(rig.piles) + 1:02d}"

    maintenance = await rig.console.kiosk(in_maintenance, rig.good_card, START)
    offline = await rig.console.kiosk(silent, rig.good_card, START)
    elsewhere = await rig.console.kiosk(beyond, rig.good_card, START)

    assert maintenance.reason is KioskRefusal.MAINTENANCE
    assert rig.zigbee.pile(in_maintenance).shown[-1] == "reason: maintenance"
    assert offline.reason is KioskRefusal.OUT_OF_SERVICE
    assert elsewhere.reason is KioskRefusal.OUT_OF_SERVICE
    for reply in (maintenance, offline, elsewhere):
        assert reply.outcome is KioskOutcome.REFUSED
    assert rig.station.verifications == []
