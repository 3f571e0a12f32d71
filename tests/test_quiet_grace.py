"""What is still not seen when the start-up grace is over is announced (issue 10): one
bulletin for a charger none of whose piles ever answered, one per pile otherwise.

Its own module, with its own station: a short grace, and piles that never come. The station
has 2 chargers of 4 piles; the simulated Zigbee2MQTT has only charger c1, with 3 piles. So
c1-p04 never answers (a pile of its own: ``pile_unreachable``), and no pile of c2 does (the
whole charger: one ``zigbee_bridge_unseen``, not four bulletins). Neither is announced before
the grace; every pile that answered is up and quiet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from station_protocol.faults import FaultCode
from station_protocol.ids import Layout
from station_tools.bulletins import BulletinFeed
from station_tools.fault_steps import active_faults, assert_catalogued
from station_tools.mosquitto import Mosquitto
from station_tools.rig import StationRig
from station_tools.simulator import Simulator, SimulatorOptions

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

GRACE = 8.0
"""The start-up grace of the collectors and the faults service here (120 s by default)."""
MISSES, T1 = 3, 1.0
SIMULATED = Layout(1, 3)
"""What answers: c1-p01..c1-p03. The station is 2 x 4 (the shared fixtures' layout)."""
UNREACHABLE = FaultCode.PILE_UNREACHABLE.value
UNSEEN = FaultCode.ZIGBEE_BRIDGE_UNSEEN.value


@pytest.fixture(scope="module")
def station_env(station_env: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    collector = {**station_env.get("collector", {}), "startup_grace": str(GRACE)}
    faults = {**station_env.get("faults", {}), "startup_grace": str(GRACE)}
    return {**station_env, "collector": collector, "faults": faults}


@pytest.fixture(scope="module")
async def some_piles(station: StationRig, station_broker: Mosquitto) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=0.1, speedup=Decimal(100))
    async with Simulator(station_broker.url, SIMULATED, options) as simulator:
        yield simulator


async def pile_views(station: StationRig) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for charger in station.layout.charger_ids():
            response = await client.get(f"{station.collector_url(charger)}/api/v1/piles")
            assert response.status_code == 200, response.text
            views |= {view["pile_id"]: view for view in response.json()}
    return views


async def test_what_is_not_seen_after_the_grace_is_one_bulletin_per_charger_or_per_pile(
    some_piles: Simulator,
    station: StationRig,
    bulletins: BulletinFeed,
    faults_api: httpx.AsyncClient,
) -> None:
    pile = await bulletins.raised("c1-p04", UNREACHABLE, timeout=GRACE + 20)
    bridge = await bulletins.raised("c2", UNSEEN, timeout=GRACE + 20)

    alone = assert_catalogued(pile.bulletin, UNREACHABLE, "c1-p04", charger="c1", pile_id="c1-p04")
    assert alone.detail.get("cause") == "never_answered"
    whole = assert_catalogued(bridge.bulletin, UNSEEN, "c2", charger="c2", pile_id=None)
    # ``since`` is when its collector began watching: nothing was said within the grace.
    for bulletin in (alone, whole):
        assert (bulletin.detected_at - bulletin.since).total_seconds() >= GRACE - 0.1

    await asyncio.sleep(MISSES * T1 + 1)
    assert bulletins.keys_since(0) == {("c1-p04", UNREACHABLE), ("c2", UNSEEN)}
    shown = {(fault["source"], fault["code"]) for fault in await active_faults(faults_api)}
    assert shown == {("c1-p04", UNREACHABLE), ("c2", UNSEEN)}

    views = await pile_views(station)
    unseen = {pile for pile, view in views.items() if not view["seen"]}
    assert unseen == {"c1-p04", "c2-p01", "c2-p02", "c2-p03", "c2-p04"}
    assert {pile for pile, view in views.items() if view["up"]} == set(SIMULATED.pile_ids())
