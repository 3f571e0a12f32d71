"""End-to-end rig: a real mosquitto, every service as a real process, simulated piles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from station_protocol.ids import Layout
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import eventually

LAYOUT = Layout(2, 4)


@pytest.fixture(scope="module")
def station_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(data_dir=tmp_path_factory.mktemp("broker")) as broker:
        yield broker


@pytest.fixture(scope="module")
def station(
    station_broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StationRig]:
    rig = StationRig(
        broker_url=station_broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("station")),
        ports=Ports.free(LAYOUT.chargers),
        env={"collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}},
    )
    try:
        yield rig.start()
    finally:
        rig.stop()


@pytest.fixture(scope="module")
async def piles(station: StationRig, station_broker: Mosquitto) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=0.1, speedup=Decimal(100))
    async with Simulator(station_broker.url, LAYOUT, options) as simulator:
        await every_pile_up(station)
        yield simulator


async def every_pile_up(station: StationRig) -> None:
    """A station is ready for drivers once each collector hears every one of its piles."""

    def up() -> bool:
        for charger in LAYOUT.charger_ids():
            response = httpx.get(f"{station.collector_url(charger)}/api/v1/piles", timeout=5)
            if not all(pile["up"] for pile in response.json()):
                return False
        return True

    await eventually(up, timeout=15)


@pytest.fixture(scope="module")
def verification(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("verification"), timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def billing(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("billing"), timeout=5) as client:
        yield client
