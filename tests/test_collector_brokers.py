"""A collector behind its own broker (issue 14, the topology): charger c1's collector and
its Zigbee2MQTT use a mosquitto of their own, bridged to the station broker with the
contracts' topic list; charger c2 uses the station broker directly.

Charging, billing and the breath work across the bridge exactly as without it (request and
reply properties cross unchanged), and the collector knows when its link to the station is
down and when it is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_tools.mosquitto import Mosquitto, collector_bridge
from station_tools.rig import Ports, StationRig, collector_client_id
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import (
    billed_exactly,
    charge_and_stop,
    eventually,
    metric,
    new_card,
    start_charge,
)

from .conftest import every_pile_up

pytestmark = pytest.mark.slow
"""End to end on real processes: skipped by ``-m 'not slow'``."""

LAYOUT = Layout(2, 2)
SPEEDUP = Decimal(100)
RATED_POWER = Decimal(7) * SPEEDUP * 2
PRICE = Decimal("1.20")
LINK = "station_collector_station_link_up"


@pytest.fixture(scope="module")
def c1_broker(
    station_broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mosquitto]:
    """Charger c1's own broker, bridged to the station broker."""
    bridge = collector_bridge(
        "c1", BrokerAddress.parse(station_broker.url), collector_client_id("c1")
    )
    with Mosquitto(data_dir=tmp_path_factory.mktemp("c1-broker"), extra_config=bridge) as own:
        yield own


@pytest.fixture(scope="module")
def station(
    station_broker: Mosquitto, c1_broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StationRig]:
    rig = StationRig(
        broker_url=station_broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("station")),
        ports=Ports.free(LAYOUT.chargers),
        t2=1.0,
        rated_power=RATED_POWER,
        env={"collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}},
        collector_brokers={"c1": c1_broker.url},
    )
    try:
        yield rig.start()
    finally:
        rig.stop()


@pytest.fixture(scope="module")
async def piles(
    station: StationRig, station_broker: Mosquitto, c1_broker: Mosquitto
) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=0.1, speedup=SPEEDUP)
    brokers = {"c1": c1_broker.url}
    async with Simulator(station_broker.url, LAYOUT, options, brokers) as simulator:
        await every_pile_up(station, timeout=20)
        yield simulator


def link_up(station: StationRig) -> float:
    text = httpx.get(f"{station.collector_url('c1')}/metrics", timeout=5).text
    return metric(text, LINK, charger="c1")


async def test_piles_behind_their_own_broker_charge_and_bill_like_the_others(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    assert link_up(station) == 1
    for pile in ("c1-p01", "c2-p01"):
        card = new_card(verification)
        await start_charge(piles, billing, pile, card)
        record = await charge_and_stop(piles, billing, pile, card)
        billed_exactly(record, PRICE)
        await piles.unplug(pile)


async def test_the_collector_knows_when_its_link_is_down_and_back(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
    station_broker: Mosquitto,
) -> None:
    station_broker.stop()
    try:
        await eventually(lambda: link_up(station) == 0, timeout=15)
    finally:
        station_broker.start()
    await eventually(lambda: link_up(station) == 1, timeout=30)

    card = new_card(verification)
    await start_charge(piles, billing, "c1-p02", card)
    record = await charge_and_stop(piles, billing, "c1-p02", card)
    billed_exactly(record, PRICE)
    await piles.unplug("c1-p02")
