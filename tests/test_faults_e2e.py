"""Fault announcement end to end (issue 4), on real processes and a real mosquitto.

Each way a pile or a collector fails: a silent pile, a pile Zigbee2MQTT marks offline, a
dead Zigbee2MQTT bridge, a collector killed (its last will) or hung (keep-alive), a pile's
own ground fault, a flapping link. For each: exactly the right bulletin, with the fault
catalogue's causes and remedies in English and Chinese; withdrawn when the fault clears and
kept in the history with its duration; only the right piles out of service; and a car
charging on another pile charges on and is billed exactly.

Restarting the broker has its own module, since it takes the broker from every test here.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from decimal import Decimal

import aiomqtt
import httpx
import pytest

from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.channels import ZigbeeChannels
from station_protocol.faults import PILE_ERROR_CODES, FaultCode
from station_protocol.messages import ServiceStatus
from station_protocol.zigbee import BridgeState, ChargePointErrorCode, OnlineState, encode
from station_tools.bulletins import BulletinFeed
from station_tools.fault_steps import (
    active_faults,
    assert_catalogued,
    assert_cleared_in_history,
    assert_the_only_fault,
    assert_undisturbed,
    bystander,
    every_pile_back,
    past_hold_down,
    piles_down,
)
from station_tools.mosquitto import Mosquitto
from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import (
    REPEAT_WINDOW,
    billed_exactly,
    charge_and_stop,
    completed,
    new_card,
    sessions,
    shown,
    start_charge,
)

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

PRICE = Decimal("1.20")
MISSES, T1 = 3, 1.0
KEEPALIVE = 2
"""The collectors' MQTT keep-alive here: a hung collector's last will fires after 3 s (and,
mosquitto 2.0 checking keep-alives only every 5 s or so, within about 9 s)."""
HOLD_DOWN = 10.0
"""The faults service's default: a fault back within it continues its episode."""
UNREACHABLE = FaultCode.PILE_UNREACHABLE.value
OFFLINE = FaultCode.COLLECTOR_OFFLINE.value
BRIDGE_OFFLINE = FaultCode.ZIGBEE_BRIDGE_OFFLINE.value


@pytest.fixture(scope="module")
def station_env(station_env: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    collector = {**station_env.get("collector", {}), "keepalive": str(KEEPALIVE)}
    return {**station_env, "collector": collector}


@pytest.fixture(scope="module", autouse=True)
async def settled(piles: Simulator, faults_api: httpx.AsyncClient) -> None:
    """Past the start-up (the piles answered later than the collectors began)."""
    await past_hold_down(faults_api, HOLD_DOWN)


@pytest.fixture(autouse=True)
async def nothing_left_up(
    piles: Simulator, bulletins: BulletinFeed, faults_api: httpx.AsyncClient
) -> AsyncIterator[None]:
    """Each test starts and ends on a station without a fault."""
    assert bulletins.shown() == {}
    yield
    assert bulletins.shown() == {}
    assert await active_faults(faults_api) == []


async def publish_availability(broker: Mosquitto, pile: str, state: OnlineState) -> None:
    """What Zigbee2MQTT's availability check publishes for a device (retained)."""
    topics = ZigbeeChannels.for_charger(pile.split("-")[0])
    async with aiomqtt.Client("127.0.0.1", broker.port) as zigbee2mqtt:
        await zigbee2mqtt.publish(
            topics.pile_availability.topic(pile=pile),
            encode(BridgeState(state=state)),
            qos=1,
            retain=True,
        )


async def publish_bridge_state(broker: Mosquitto, charger: str, state: OnlineState) -> None:
    """What a Zigbee2MQTT bridge's last will (or its start) publishes (retained)."""
    topics = ZigbeeChannels.for_charger(charger)
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        payload = encode(BridgeState(state=state))
        await client.publish(topics.bridge_state.topic(), payload, qos=1, retain=True)


async def collector_status_goes(broker: Mosquitto, charger: str, state: OnlineState) -> None:
    """Wait until the collector's retained status (its last will when it dies) says ``state``."""
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.subscribe(channels.COLLECTOR_STATUS.topic(charger=charger), qos=1)
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if payload and ServiceStatus.model_validate_json(payload).state is state:
                return


# -- the faults ---------------------------------------------------------------------------------


async def test_a_silent_pile_is_announced_and_cleared_and_no_other_pile_notices(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p01")
    pile = "c2-p01"
    mark = bulletins.mark()
    await piles.silence(pile)
    raised = await bulletins.raised(pile, UNREACHABLE, after=mark)
    bulletin = assert_catalogued(raised.bulletin, UNREACHABLE, pile, charger="c2", pile_id=pile)
    assert bulletin.detail.get("cause") == "no_breath_answer"
    # Not declared before misses x T1 without an answer (``since`` is its last answer).
    assert (bulletin.detected_at - bulletin.since).total_seconds() >= MISSES * T1 - 0.05
    await assert_the_only_fault(faults_api, bulletin)
    assert await piles_down(station) == {pile}

    await piles.revive(pile)
    await bulletins.withdrawn(pile, UNREACHABLE, after=mark)
    episode = await assert_cleared_in_history(faults_api, bulletin)
    assert episode["duration_seconds"] >= MISSES * T1 - 0.05
    await every_pile_back(station)
    assert bulletins.keys_since(mark) == {(pile, UNREACHABLE)}
    await assert_undisturbed(piles, billing, driver, PRICE)


async def test_a_pile_zigbee2mqtt_marks_offline_is_announced_at_once_and_cleared(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    station_broker: Mosquitto,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p02")
    pile = "c2-p02"
    mark = bulletins.mark()
    await piles.silence(pile)
    await publish_availability(station_broker, pile, OnlineState.OFFLINE)
    raised = await bulletins.raised(pile, UNREACHABLE, after=mark)
    bulletin = assert_catalogued(raised.bulletin, UNREACHABLE, pile, charger="c2", pile_id=pile)
    # Zigbee2MQTT's word decided it, not the breath deadline that came later.
    assert bulletin.detail.get("cause") == "zigbee2mqtt_availability"
    await assert_the_only_fault(faults_api, bulletin)
    assert await piles_down(station) == {pile}

    await piles.revive(pile)
    await publish_availability(station_broker, pile, OnlineState.ONLINE)
    await bulletins.withdrawn(pile, UNREACHABLE, after=mark)
    await assert_cleared_in_history(faults_api, bulletin)
    await every_pile_back(station)
    assert bulletins.keys_since(mark) == {(pile, UNREACHABLE)}
    await assert_undisturbed(piles, billing, driver, PRICE)


async def test_a_dead_zigbee2mqtt_bridge_is_one_bulletin_for_its_charger_not_one_per_pile(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p01")
    mark = bulletins.mark()
    await piles.kill_bridge("c2")
    raised = await bulletins.raised("c2", BRIDGE_OFFLINE, after=mark)
    bulletin = assert_catalogued(raised.bulletin, BRIDGE_OFFLINE, "c2", charger="c2", pile_id=None)
    await assert_the_only_fault(faults_api, bulletin)
    assert await piles_down(station) == set(station.layout.piles_of("c2"))

    await piles.start_bridge("c2")
    await bulletins.withdrawn("c2", BRIDGE_OFFLINE, after=mark)
    await assert_cleared_in_history(faults_api, bulletin)
    await every_pile_back(station)
    await asyncio.sleep(MISSES * T1)  # a pile deadline that survived the outage would fire now
    assert bulletins.keys_since(mark) == {("c2", BRIDGE_OFFLINE)}
    await assert_undisturbed(piles, billing, driver, PRICE)


async def test_a_late_bridge_will_is_overruled_by_the_piles_answering_through_it(
    piles: Simulator,
    station: StationRig,
    station_broker: Mosquitto,
    bulletins: BulletinFeed,
) -> None:
    """A last will of an earlier connection of the bridge, delivered while the bridge is
    back (it happens around a broker restart): the piles' answers come through the bridge,
    so it is online; the charger is not left out of service."""
    mark = bulletins.mark()
    await publish_bridge_state(station_broker, "c2", OnlineState.OFFLINE)
    await bulletins.raised("c2", BRIDGE_OFFLINE, after=mark)
    await bulletins.withdrawn("c2", BRIDGE_OFFLINE, after=mark)
    await every_pile_back(station)
    assert bulletins.keys_since(mark) == {("c2", BRIDGE_OFFLINE)}
    # What Zigbee2MQTT says when it next connects: the broker's retained state is right again.
    await publish_bridge_state(station_broker, "c2", OnlineState.ONLINE)


async def test_a_killed_collector_is_seen_by_its_last_will_and_cleared_when_it_returns(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p02")
    collector = station["collector-c2"]
    mark = bulletins.mark()
    await asyncio.to_thread(collector.kill)
    raised = await bulletins.raised("c2", OFFLINE, after=mark)
    bulletin = assert_catalogued(raised.bulletin, OFFLINE, "c2", charger="c2", pile_id=None)
    assert bulletin.detail.get("reason") == "last_will"
    await assert_the_only_fault(faults_api, bulletin)

    await asyncio.to_thread(collector.start, 30)
    await bulletins.withdrawn("c2", OFFLINE, after=mark)
    await assert_cleared_in_history(faults_api, bulletin)
    await every_pile_back(station)
    await asyncio.sleep(MISSES * T1)
    assert bulletins.keys_since(mark) == {("c2", OFFLINE)}
    await assert_undisturbed(piles, billing, driver, PRICE)

    # The collector that came back starts and bills a charge again.
    card = new_card(verification)
    await start_charge(piles, billing, "c2-p01", card)
    record = await charge_and_stop(piles, billing, "c2-p01", card)
    billed_exactly(record, PRICE)
    await piles.unplug("c2-p01")


async def test_a_hung_collector_is_seen_by_keep_alive_and_cleared_when_it_wakes(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    station_broker: Mosquitto,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c2-p02")
    collector = station["collector-c1"]
    mark = bulletins.mark()
    collector.signal(signal.SIGSTOP)
    try:
        # Hung, its socket open: only the broker's keep-alive check fires its last will.
        await asyncio.wait_for(
            collector_status_goes(station_broker, "c1", OnlineState.OFFLINE), 1.5 * KEEPALIVE + 8
        )
        raised = await bulletins.raised("c1", OFFLINE, after=mark)
        bulletin = assert_catalogued(raised.bulletin, OFFLINE, "c1", charger="c1", pile_id=None)
        # Its breaths stopped too; whichever evidence came first named the reason.
        assert bulletin.detail.get("reason") in ("last_will", "breaths_missed")
        await assert_the_only_fault(faults_api, bulletin)
    finally:
        collector.signal(signal.SIGCONT)

    await bulletins.withdrawn("c1", OFFLINE, after=mark)
    await assert_cleared_in_history(faults_api, bulletin)
    await every_pile_back(station)
    await asyncio.sleep(MISSES * T1)
    # A collector that could not hear its piles while it hung does not blame them.
    assert bulletins.keys_since(mark) == {("c1", OFFLINE)}
    await assert_undisturbed(piles, billing, driver, PRICE)

    card = new_card(verification)
    await start_charge(piles, billing, "c1-p03", card)
    record = await charge_and_stop(piles, billing, "c1-p03", card)
    billed_exactly(record, PRICE)
    await piles.unplug("c1-p03")


async def test_a_ground_failure_ends_the_charge_on_that_pile_only_and_clears_with_no_error(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p03")
    pile, card = "c2-p03", new_card(verification)
    await start_charge(piles, billing, pile, card)
    code = PILE_ERROR_CODES[ChargePointErrorCode.GROUND_FAILURE]
    mark = bulletins.mark()
    await piles.set_error(pile, ChargePointErrorCode.GROUND_FAILURE)
    raised = await bulletins.raised(pile, code, after=mark)
    bulletin = assert_catalogued(raised.bulletin, code, pile, charger="c2", pile_id=pile)
    assert bulletin.detail.get("error_code") == "GroundFailure"
    await assert_the_only_fault(faults_api, bulletin)

    # The pile's own charge ends and is billed for what it delivered.
    record = await completed(billing, pile, card)
    assert record["stop_reason"] == "pile_fault"
    billed_exactly(record, PRICE)
    # Out of service while the fault stands: the next driver starts nothing there.
    await piles.unplug(pile)
    other_card = new_card(verification)
    await piles.plug(pile)
    await piles.swipe(pile, other_card)
    await piles.wait_for(lambda: "Out of service" in shown(piles, pile))
    assert not piles.pile(pile).charging
    assert sessions(billing, card_uid=other_card) == []

    await piles.set_error(pile, ChargePointErrorCode.NO_ERROR)
    await bulletins.withdrawn(pile, code, after=mark)
    await assert_cleared_in_history(faults_api, bulletin)
    assert bulletins.keys_since(mark) == {(pile, code)}
    assert await piles_down(station) == set()
    await assert_undisturbed(piles, billing, driver, PRICE)

    # Back in service: the same pile charges and bills again.
    await piles.unplug(pile)
    await asyncio.sleep(REPEAT_WINDOW)
    await start_charge(piles, billing, pile, other_card)
    record = await charge_and_stop(piles, billing, pile, other_card)
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


async def test_a_flapping_link_is_one_bulletin_that_comes_back_with_its_flaps_counted(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    driver = await bystander(piles, verification, billing, "c1-p04")
    pile = "c2-p04"
    mark = bulletins.mark()
    seen: list[Bulletin] = []
    for _ in range(3):
        at = bulletins.mark()
        await piles.silence(pile)
        raised = await bulletins.raised(pile, UNREACHABLE, after=at)
        seen.append(
            assert_catalogued(raised.bulletin, UNREACHABLE, pile, charger="c2", pile_id=pile)
        )
        await assert_the_only_fault(faults_api, seen[-1])
        await piles.revive(pile)
        await bulletins.withdrawn(pile, UNREACHABLE, after=at)

    first = seen[0]
    assert [b.id for b in seen] == [first.id] * 3
    assert [b.flaps for b in seen] == [first.flaps, first.flaps + 1, first.flaps + 2]
    assert [b.raised_at for b in seen] == [first.raised_at] * 3
    episode = await assert_cleared_in_history(faults_api, seen[-1])
    assert episode["flaps"] == first.flaps + 2
    await every_pile_back(station)
    assert bulletins.keys_since(mark) == {(pile, UNREACHABLE)}
    await assert_undisturbed(piles, billing, driver, PRICE)
