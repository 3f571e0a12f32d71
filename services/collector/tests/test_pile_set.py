"""The collector follows the console's word on the station's piles, and acts on no stranger.

A pile the console adds (``c<i>-p13`` on a charger configured with two) is breathed to and
charges as any pile; a pile it removes is breathed to no more, never reported again, and its
retained fault reports and status leave the broker, unless a session runs on it: then it is
served until that session checks out. A device on the charger's Zigbee2MQTT that is no pile
served here (named by its IEEE address, another charger's pile, a pile not in the set) is a
stranger: nothing it says starts anything, and it is counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from station_protocol import channels
from station_protocol.ids import pile_id
from station_protocol.messages import KioskIntent, KioskOutcome, StopReason

Rig = Any
"""The ``rig`` and ``quick_rig`` fixtures (see conftest)."""

T1 = 0.1
GRACE = 1.5
"""``quick_rig``'s start-up grace (conftest's ``QUICK_GRACE``)."""
IEEE = "0x00124b0012345678"


def beyond(rig: Rig, number: int = 13) -> str:
    """A pile of the rig's charger past its configured two (approved since)."""
    return str(pile_id(int(rig.charger[1:]), number))


async def breathed_after(rig: Rig, pile: str, count: int) -> None:
    """Until ``pile`` has been sent ``count`` more breaths than it has now."""
    device = rig.zigbee.pile(pile)
    target = len(device.breaths) + count
    await rig.eventually(lambda: len(device.breaths) >= target)


async def served(rig: Rig, pile: str) -> bool:
    return (await rig.http.get(f"/api/v1/piles/{pile}")).status_code == 200


async def gone(rig: Rig, pile: str) -> bool:
    return (await rig.http.get(f"/api/v1/piles/{pile}")).status_code == 404


# -- a pile added ---------------------------------------------------------------------------


async def test_a_pile_the_console_adds_is_breathed_to_and_charges_as_any_pile(rig: Rig) -> None:
    new = beyond(rig)
    assert await gone(rig, new)
    assert rig.zigbee.pile(new).breaths == []

    await rig.console.pile_set([*rig.piles, new], revision=1)

    await rig.eventually(lambda: bool(rig.zigbee.pile(new).breaths))
    await rig.eventually(lambda: rig.up(new))
    assert await rig.metric("station_collector_piles", charger=rig.charger) == 3
    command = await rig.start_charge(new)
    [asked] = rig.station.verifications
    assert (asked.pile_id, asked.card_uid) == (new, rig.good_card)
    assert command.session_id == asked.session_id
    [opening] = rig.station.openings
    assert opening.pile_id == new
    assert rig.console.last(new) is not None  # the board shows it
    assert await rig.strangers() == 0


async def test_a_freshly_added_pile_not_heard_yet_gets_the_start_up_grace(
    quick_rig: Rig,
) -> None:
    """Added long after the collector's own start, and silent: not reported before its own
    grace is over (an approved pile may still be joining), then reported as any pile never
    heard. Without a grace of its own it would be reported ``misses x T1`` after it came."""
    rig = quick_rig
    new = beyond(rig)
    rig.zigbee.silent.add(new)
    await breathed_after(rig, rig.piles[0], int(GRACE / T1) + 2)  # the start's grace is over
    loop = asyncio.get_running_loop()

    added = loop.time()
    await rig.console.pile_set([*rig.piles, new], revision=1)

    await rig.eventually(lambda: "pile_unreachable" in rig.faults.active(new), timeout=10)
    assert loop.time() - added >= GRACE - 0.05
    assert rig.zigbee.pile(new).breaths  # breathed to all along, never answering
    assert not await rig.up(new)
    assert [said.code for said in rig.faults.of(new)] == ["pile_unreachable"]
    for pile in rig.piles:
        assert await rig.up(pile)


# -- a pile removed --------------------------------------------------------------------------


async def test_a_pile_the_console_removes_is_forgotten_with_its_reports_and_status(
    rig: Rig,
) -> None:
    kept, removed = rig.piles
    await rig.zigbee.report(removed, linkquality=10)  # a weak link: a retained report
    await rig.eventually(lambda: "weak_zigbee_link" in rig.faults.active(removed))
    root = channels.STATION_ROOT
    status_topic = channels.PILE_STATUS.topic(pile=removed)
    reports = f"{root}/collectors/{rig.charger}/faults/{removed}/#"
    assert status_topic in await rig.retained(status_topic)

    await rig.console.pile_set([kept], revision=1)

    await rig.eventually(lambda: gone(rig, removed))
    await rig.eventually(lambda: rig.faults.active(removed) == set())
    sent = len(rig.zigbee.pile(removed).breaths)
    rig.zigbee.silent.add(removed)  # switched off: it would be unreachable if still served
    await breathed_after(rig, kept, 10)  # well past misses x T1
    # One breath may have been on its way as the word came; none after it.
    assert len(rig.zigbee.pile(removed).breaths) <= sent + 1
    assert rig.faults.active(removed) == set()
    # Withdrawn: the report deleted from the broker, which the faults service takes as a clear.
    deleted = [said.code for said in rig.faults.of(removed) if said.active is None]
    assert deleted == ["weak_zigbee_link"]
    assert await rig.retained(status_topic, reports) == set()
    assert await rig.metric("station_collector_piles", charger=rig.charger) == 1
    assert await rig.up(kept)


async def test_a_removed_pile_that_is_charging_keeps_its_session_until_its_stop(
    rig: Rig,
) -> None:
    pile, other = rig.piles
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)

    await rig.console.pile_set([other], revision=1)

    await rig.eventually(lambda: _retiring(rig, pile))
    assert await rig.metric("station_collector_piles", charger=rig.charger) == 2
    # Still served: breathed to, metered for billing, up; and its session charges on.
    await breathed_after(rig, pile, 5)
    assert await rig.up(pile)
    assert (await rig.pile_view(pile))["phase"] == "charging"
    await rig.zigbee.meter(pile, rig.start_meter + 1)
    await rig.eventually(lambda: any(m.energy == rig.start_meter + 1 for m in rig.station.meters))
    # A new start (another card at the kiosk) is refused; the driver's stop goes through.
    refused = await rig.console.kiosk(pile, rig.other_card, KioskIntent.START)
    assert refused.outcome is KioskOutcome.REFUSED
    assert device.commands == [start]

    await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: device.shown[:1] == ["Thank you"])
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == (start.session_id, StopReason.LOCAL)
    assert checkout.meter_stop == rig.start_meter + 1
    await rig.eventually(lambda: gone(rig, pile))
    sent = len(device.breaths)
    await breathed_after(rig, other, 5)
    assert len(device.breaths) <= sent + 1
    assert await rig.metric("station_collector_piles", charger=rig.charger) == 1
    status_topic = channels.PILE_STATUS.topic(pile=pile)
    await rig.eventually(lambda: _not_retained(rig, status_topic))


async def _retiring(rig: Rig, pile: str) -> bool:
    return bool((await rig.pile_view(pile))["retiring"])


async def _not_retained(rig: Rig, topic: str) -> bool:
    return not await rig.retained(topic)


# -- strangers -------------------------------------------------------------------------------


async def test_a_device_named_by_its_ieee_address_swiping_a_card_is_a_stranger(
    rig: Rig,
) -> None:
    topic = rig.zigbee.zigbee.device_state.topic(device=IEEE)
    await rig.zigbee.bus.publish(topic, b'{"gun": "plugged"}', qos=1)
    swipe = b'{"action": "card_swipe", "card_uid": "' + rig.good_card.encode() + b'"}'
    await rig.zigbee.bus.publish(topic, swipe, qos=1)

    await rig.eventually(lambda: _strangers(rig, 2))
    # Then a served pile's swipe: had the stranger's started anything, it would show first.
    await rig.start_charge(rig.piles[0])
    assert [asked.pile_id for asked in rig.station.verifications] == [rig.piles[0]]
    assert [opening.pile_id for opening in rig.station.openings] == [rig.piles[0]]
    assert rig.faults.of(IEEE) == []


async def test_another_chargers_pile_and_a_pile_not_in_the_set_are_strangers(rig: Rig) -> None:
    others = [f"c{int(rig.charger[1:]) + 500}-p01", beyond(rig)]
    for pile in others:
        await rig.zigbee.plug(pile)
        await rig.zigbee.swipe(pile, rig.good_card)

    await rig.eventually(lambda: _strangers(rig, 4))
    await rig.start_charge(rig.piles[1])
    assert [asked.pile_id for asked in rig.station.verifications] == [rig.piles[1]]
    for pile in others:
        assert rig.zigbee.pile(pile).screens == []
        assert rig.zigbee.pile(pile).breaths == []


async def test_a_decommissioned_pile_is_a_stranger_and_bridge_news_is_not(rig: Rig) -> None:
    kept, removed = rig.piles
    await rig.console.pile_set([kept], revision=1)
    await rig.eventually(lambda: gone(rig, removed))

    await rig.zigbee.plug(removed)
    await rig.zigbee.swipe(removed, rig.good_card)
    await rig.zigbee.bridge_online()

    await rig.eventually(lambda: _strangers(rig, 2))
    await rig.start_charge(kept)
    assert [asked.pile_id for asked in rig.station.verifications] == [kept]
    assert await rig.strangers() == 2  # the bridge's own word is no stranger's


async def _strangers(rig: Rig, count: int) -> bool:
    return await rig.strangers() == count
