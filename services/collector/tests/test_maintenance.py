"""A pile in maintenance, as the console puts it there (its retained word on the broker).

What a driver sees at the pile (a refusal that says why), what an operator sees on the
board (``maintenance``), and what nobody gets paged for (a pile switched off).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from station_protocol import channels
from station_protocol.messages import PileBoardState, PileMaintenance

Rig = Any
"""The ``rig`` fixture (see conftest)."""

MAINTENANCE_SCREEN = ["In maintenance", "Please use another pile", "维护中，请使用其他充电桩"]
REFUSED_SCREEN = ["Charge refused", "Pile in maintenance", "充电桩维护中", "reason: maintenance"]


async def into_maintenance(rig: Rig, pile: str) -> None:
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))
    await rig.console.maintenance(pile, True, "replacing the cable")
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.MAINTENANCE))


async def test_a_pile_in_maintenance_refuses_a_swipe_and_its_display_says_why(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)

    await into_maintenance(rig, pile)
    await rig.eventually(lambda: device.shown == MAINTENANCE_SCREEN)
    await rig.zigbee.plug(pile)
    await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: device.shown == REFUSED_SCREEN)
    assert rig.station.verifications == [] and device.commands == []
    refused = await rig.metric(
        "station_collector_swipes_total", charger=rig.charger, outcome="maintenance"
    )
    assert refused == 1
    assert rig.console.shows(pile, PileBoardState.MAINTENANCE)
    # The other pile is not in maintenance.
    await rig.start_charge(rig.piles[1])


async def test_a_charge_running_when_maintenance_begins_finishes_normally(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)

    await rig.console.maintenance(pile, True)
    await asyncio.sleep(0.5)
    assert rig.console.shows(pile, PileBoardState.CHARGING)
    assert device.shown[0] == "Charging"
    await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    [checkout] = rig.station.checkouts
    assert checkout.session_id == start.session_id
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.MAINTENANCE))


async def test_a_pile_switched_off_in_maintenance_is_not_reported_until_it_is_lifted(
    rig: Rig,
) -> None:
    pile = rig.piles[1]
    await into_maintenance(rig, pile)

    rig.zigbee.silent.add(pile)  # the operator switched it off
    await rig.eventually(lambda: rig.down(pile))
    await asyncio.sleep(0.5)  # well past misses x T1
    assert "pile_unreachable" not in (await rig.pile_view(pile))["faults"]
    assert rig.console.shows(pile, PileBoardState.MAINTENANCE)
    assert all("pile_unreachable" not in status.faults for status in rig.console.of(pile))

    await rig.console.maintenance(pile, False)  # lifted while it is still off: reported now

    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.OFFLINE))
    await rig.eventually(lambda: "pile_unreachable" in rig.console.of(pile)[-1].faults)
    rig.zigbee.silent.clear()
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))


async def test_a_pile_unreachable_when_maintenance_begins_is_cleared(rig: Rig) -> None:
    pile = rig.piles[0]
    rig.zigbee.silent.add(pile)
    await rig.eventually(lambda: _reported_unreachable(rig, pile))

    await rig.console.maintenance(pile, True)

    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.MAINTENANCE))
    await rig.eventually(lambda: _not_reported(rig, pile))


async def test_maintenance_is_lifted_by_deleting_its_retained_word(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    await into_maintenance(rig, pile)

    await rig.console.delete_maintenance(pile)

    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))
    assert device.shown[0] == "Ready"
    await rig.start_charge(pile)


async def test_a_malformed_or_unretained_maintenance_word_changes_nothing(rig: Rig) -> None:
    pile = rig.piles[1]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))
    topic = channels.PILE_MAINTENANCE.topic(pile=pile)
    word = PileMaintenance(pile_id=pile, active=True, since=datetime.now(UTC))
    other = word.model_copy(update={"pile_id": rig.piles[0]})

    # A forger's word, not retained: the broker holds no maintenance for the pile.
    await rig.station.bus.publish(topic, word, qos=1, retain=False)
    await asyncio.sleep(0.5)
    assert rig.console.shows(pile, PileBoardState.AVAILABLE)

    await rig.station.bus.publish(topic, b'{"active": true}', qos=1, retain=True)
    await rig.eventually(lambda: _refused(rig, "invalid", 1))
    await rig.station.bus.publish(topic, other, qos=1, retain=True)  # another pile's word
    await rig.eventually(lambda: _refused(rig, "topic_mismatch", 1))
    await asyncio.sleep(0.5)
    assert rig.console.shows(pile, PileBoardState.AVAILABLE)
    await rig.start_charge(pile)


async def _reported_unreachable(rig: Rig, pile: str) -> bool:
    return "pile_unreachable" in (await rig.pile_view(pile))["faults"]


async def _not_reported(rig: Rig, pile: str) -> bool:
    return not await _reported_unreachable(rig, pile)


async def _refused(rig: Rig, reason: str, count: int) -> bool:
    refused = await rig.metric(
        "station_collector_refused_messages_total",
        charger=rig.charger,
        channel="maintenance",
        reason=reason,
    )
    return refused == count
