"""Quiet starts and restarts (issue 10): starting a station, or restarting one of its
services, raises no bulletin.

Its own module, with its own broker and station: the station must be watched from before it
starts, and its services are stopped and started again.

The start is the one that used to raise a storm: the broker still holds what an earlier run
left (each Zigbee2MQTT bridge's last will, ``offline``, and each collector's), the services
start, and the simulated bridges come up last, well past every deadline the collectors and
the faults service keep. Until a pile answers it is "not yet seen": not up (no charge starts
on it), and not announced before the start-up grace (120 s by default), by which time every
pile here has answered. A board connected all along must see no bulletin at all, and the
history must hold none.

Then each service is stopped (SIGTERM, as an update or an operator does) for longer than
every deadline and started again: a collector, the faults service (which answers the
collectors' breaths), billing, verification and sync. None of it is a fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import Layout
from station_protocol.messages import ServiceStatus
from station_protocol.zigbee import BridgeState, OnlineState, encode
from station_tools.bulletins import BulletinFeed
from station_tools.fault_steps import active_faults, every_pile_back, fault_history
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

LAYOUT = Layout(2, 4)
T2 = 1.0
MISSES, T1 = 3, 1.0
LATE = MISSES * T1 + 3.0
"""The simulated bridges come up this long after every service is ready: past the deadline a
collector keeps for a pile (and the faults service for a collector), misses x T1."""
RESTARTED = ("collector-c1", "faults", "billing", "verification", "sync")


@dataclass(frozen=True)
class LateStart:
    simulator: Simulator
    before: list[dict[str, Any]]
    """What the collectors said of their piles just before the bridges came up."""


@pytest.fixture(scope="module")
async def feed(station_broker: Mosquitto) -> AsyncIterator[BulletinFeed]:
    """Every bulletin message, from before the station starts."""
    async with BulletinFeed(station_broker.url) as feed:
        yield feed


@pytest.fixture(scope="module")
async def earlier_run(station_broker: Mosquitto) -> None:
    """What an earlier run of the station leaves retained on the broker: every bridge's and
    every collector's last will (``offline``)."""
    async with aiomqtt.Client("127.0.0.1", station_broker.port) as client:
        for charger in LAYOUT.charger_ids():
            bridge = ZigbeeChannels.for_charger(charger).bridge_state.topic()
            await client.publish(
                bridge, encode(BridgeState(state=OnlineState.OFFLINE)), qos=1, retain=True
            )
            will = ServiceStatus(state=OnlineState.OFFLINE, service="collector", charger=charger)
            await client.publish(
                channels.COLLECTOR_STATUS.topic(charger=charger),
                will.model_dump_json(exclude_none=True),
                qos=1,
                retain=True,
            )


@pytest.fixture(scope="module")
def station(
    feed: BulletinFeed,
    earlier_run: None,
    station_broker: Mosquitto,
    station_env: dict[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StationRig]:
    """The station, started once the feed listens and the earlier run's leftovers are there."""
    rig = StationRig(
        broker_url=station_broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("station")),
        ports=Ports.free(LAYOUT.chargers),
        t2=T2,
        env=station_env,
    )
    try:
        yield rig.start()
    finally:
        rig.stop()


async def pile_views(station: StationRig) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=5) as client:
        for charger in LAYOUT.charger_ids():
            response = await client.get(f"{station.collector_url(charger)}/api/v1/piles")
            assert response.status_code == 200, response.text
            views.extend(response.json())
    return views


@pytest.fixture(scope="module")
async def late_piles(station: StationRig, station_broker: Mosquitto) -> AsyncIterator[LateStart]:
    """The simulated bridges come up last, ``LATE`` after every service is ready."""
    await asyncio.sleep(LATE)
    before = await pile_views(station)
    options = SimulatorOptions(meter_interval=0.1, speedup=Decimal(100))
    async with Simulator(station_broker.url, LAYOUT, options) as simulator:
        await every_pile_back(station, timeout=20)
        yield LateStart(simulator, before)


def said(feed: BulletinFeed, mark: int = 0) -> list[tuple[tuple[str, str], bool]]:
    """Every bulletin message since ``mark``: (source, code), and whether it raised."""
    return [(event.key, event.bulletin is not None) for event in feed.since(mark)]


async def test_a_station_whose_piles_come_up_last_starts_without_a_bulletin(
    late_piles: LateStart,
    station: StationRig,
    feed: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    await asyncio.sleep(MISSES * T1 + 1)  # past every deadline of the piles just heard

    assert said(feed) == []
    assert await fault_history(faults_api) == []
    # Before the bridges came up every pile was not yet seen, so not up: nobody was told.
    assert {view["pile_id"] for view in late_piles.before} == set(LAYOUT.pile_ids())
    assert not [view["pile_id"] for view in late_piles.before if view["seen"] or view["up"]]
    views = await pile_views(station)
    assert all(view["seen"] and view["up"] for view in views)


@pytest.mark.parametrize("name", RESTARTED)
async def test_restarting_a_service_raises_no_bulletin(
    name: str,
    late_piles: LateStart,
    station: StationRig,
    feed: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    mark = feed.mark()
    service = station[name]
    await asyncio.to_thread(service.stop)  # SIGTERM: stopped on purpose
    await asyncio.sleep(MISSES * T1 + 2)  # away past every deadline of whoever watches it
    await asyncio.to_thread(service.start, 60)
    await every_pile_back(station, timeout=20)
    await asyncio.sleep(MISSES * T1 + 1)  # and past every deadline since it came back

    assert said(feed, mark) == []
    assert await fault_history(faults_api) == []
    assert await active_faults(faults_api) == []
