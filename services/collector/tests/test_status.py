"""The piles' board statuses, as the console reads them from the broker.

Each test runs the collector (``rig``, see conftest) and reads what a console subscribed to
``station/v1/piles/+/status`` sees: the retained status at the start, every change of state
within a moment, telemetry at most about once a second with its last value kept.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from station_protocol import channels
from station_protocol.messages import PileBoardState, PileStatus
from station_protocol.zigbee import ChargePointErrorCode
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Delivery
from station_tools.mosquitto import Mosquitto

Rig = Any
"""The ``rig`` fixture (see conftest)."""

SOON = 1.5
"""Seconds within which a change of state is on the board (published at once, in fact)."""


async def retained_statuses(broker: Mosquitto, charger: str) -> dict[str, PileStatus]:
    """What a console that connects now is sent: the retained status of each pile."""
    found: dict[str, PileStatus] = {}

    async def keep(delivery: Delivery[PileStatus]) -> None:
        if delivery.retained and delivery.body.charger == charger:
            found[delivery.body.pile_id] = delivery.body

    options = BusOptions(
        BrokerAddress.parse(broker.url),
        client_id=f"late-console-{charger}",
        service="late-console",
        status_topic=f"test/late-console-{charger}/status",
    )
    bus = Bus(options)
    bus.subscribe(channels.PILE_STATUS, keep)
    async with bus:
        await bus.wait_connected(5)
        await asyncio.sleep(0.3)
    return found


async def test_every_pile_has_a_retained_status_from_the_start(
    rig: Rig, mosquitto: Mosquitto
) -> None:
    for pile in rig.piles:
        first = rig.console.of(pile)[0]
        # Said at once, before the pile was heard: offline, not yet seen.
        assert (first.state, first.last_seen, first.session_id) == (
            PileBoardState.OFFLINE,
            None,
            None,
        )
        await rig.eventually(lambda pile=pile: rig.console.shows(pile, PileBoardState.AVAILABLE))

    retained = await retained_statuses(mosquitto, rig.charger)

    assert sorted(retained) == rig.piles
    for status in retained.values():
        assert status.state is PileBoardState.AVAILABLE
        assert status.energy == rig.start_meter
        assert status.linkquality == 120
        assert status.last_seen is not None and status.faults == []


async def test_plug_swipe_and_second_swipe_show_as_plugged_charging_finishing_available(
    rig: Rig,
) -> None:
    pile = rig.piles[0]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))

    await rig.zigbee.plug(pile)
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.PLUGGED), SOON)
    await rig.zigbee.swipe(pile, rig.good_card)
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.CHARGING), SOON)
    charging = rig.console.last(pile)
    [opening] = rig.station.openings
    assert charging is not None and charging.session_id == opening.session_id
    assert charging.session_energy == 0

    await rig.zigbee.meter(pile, rig.start_meter + Decimal("0.25"))
    await rig.eventually(lambda: _last(rig, pile).session_energy == Decimal("0.25"))
    assert _last(rig, pile).power == Decimal("7.2")
    await rig.zigbee.swipe(pile, rig.good_card)
    # Checked out, the gun still in: plugged again, with no session; unplugged: available.
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.PLUGGED), 5)

    states = _states(rig, pile)
    finishing = states.index(PileBoardState.FINISHING)
    assert PileBoardState.CHARGING in states[:finishing]
    ended = _last(rig, pile)
    assert (ended.session_id, ended.session_energy) == (None, None)
    await rig.zigbee.report(pile, gun="unplugged")
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE), SOON)


async def test_a_pile_error_shows_as_faulted_with_its_code_until_it_clears(rig: Rig) -> None:
    pile = rig.piles[1]
    await rig.zigbee.report(pile, error_code=ChargePointErrorCode.GROUND_FAILURE)

    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.FAULTED), SOON)
    assert _last(rig, pile).faults == ["pile_ground_failure"]

    await rig.zigbee.report(pile, error_code=ChargePointErrorCode.NO_ERROR)
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE), SOON)
    assert _last(rig, pile).faults == []


async def test_a_silent_pile_shows_as_offline_with_pile_unreachable(rig: Rig) -> None:
    pile = rig.piles[0]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))

    rig.zigbee.silent.add(pile)

    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.OFFLINE), SOON)
    await rig.eventually(lambda: "pile_unreachable" in _last(rig, pile).faults, SOON)
    assert rig.console.shows(rig.piles[1], PileBoardState.AVAILABLE)
    rig.zigbee.silent.clear()
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE), SOON)


async def test_telemetry_is_coalesced_to_about_one_status_a_second_keeping_the_last_value(
    rig: Rig,
) -> None:
    pile = rig.piles[0]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))
    await asyncio.sleep(1.2)  # past the start's statuses
    before = len(rig.console.of(pile))
    final = rig.start_meter + Decimal("0.30")

    for step in range(1, 31):  # thirty readings in about 0.6 s
        await rig.zigbee.meter(pile, rig.start_meter + Decimal("0.01") * step)
        await asyncio.sleep(0.02)
    await rig.eventually(lambda: _last(rig, pile).energy == final, 3)

    burst = rig.console.of(pile)[before:]
    # One a second at most for telemetry (the sweep), not one per reading.
    assert len(burst) <= 3, [status.energy for status in burst]
    await asyncio.sleep(1.2)
    assert _last(rig, pile).energy == final
    assert _last(rig, pile).power == Decimal("7.2")


async def test_a_status_someone_else_wrote_or_deleted_is_said_again(rig: Rig) -> None:
    pile = rig.piles[1]
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE))
    ours = _last(rig, pile)
    forged = ours.model_copy(update={"state": PileBoardState.FAULTED, "faults": ["forged"]})
    topic = channels.PILE_STATUS.topic(pile=pile)

    await rig.station.bus.publish(topic, forged, qos=1, retain=True)
    await rig.eventually(lambda: _last(rig, pile).faults == ["forged"])
    await rig.eventually(lambda: rig.console.shows(pile, PileBoardState.AVAILABLE), SOON)

    said = len(rig.console.of(pile))
    await rig.station.bus.publish(topic, b"", qos=1, retain=True)
    await rig.eventually(lambda: len(rig.console.of(pile)) > said, SOON)
    assert rig.console.shows(pile, PileBoardState.AVAILABLE)
    assert _last(rig, pile).faults == []


def _last(rig: Rig, pile: str) -> PileStatus:
    status: PileStatus | None = rig.console.last(pile)
    assert status is not None
    return status


def _states(rig: Rig, pile: str) -> list[PileBoardState]:
    return [status.state for status in rig.console.of(pile)]
