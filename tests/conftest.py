"""End-to-end rig: a real mosquitto, every service as a real process, simulated piles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from station_protocol.ids import Layout
from station_tools.bulletins import BulletinFeed
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import eventually

LAYOUT = Layout(2, 4)
T2 = 1.0
"""Seconds after storage that a record goes to central (60 s in a real station)."""
SPEEDUP = Decimal(100)
"""Simulated seconds per real second: a 7 kW pile's meter runs as fast as a 700 kW one."""
RATED_POWER = Decimal(7) * SPEEDUP * 2
"""kW the collectors and billing rate the sped-up piles at (twice what they draw)."""


@pytest.fixture(scope="module")
def station_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(data_dir=tmp_path_factory.mktemp("broker")) as broker:
        yield broker


@pytest.fixture(scope="module")
def station_env() -> dict[str, dict[str, str]]:
    """Extra settings per service; a test module overrides this fixture to tune its station."""
    return {"collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}}


@pytest.fixture(scope="module")
def station(
    station_broker: Mosquitto,
    station_env: dict[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StationRig]:
    rig = StationRig(
        broker_url=station_broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("station")),
        ports=Ports.free(LAYOUT.chargers),
        t2=T2,
        rated_power=RATED_POWER,
        env=station_env,
    )
    try:
        yield rig.start()
    finally:
        rig.stop()


@pytest.fixture(scope="module")
async def piles(station: StationRig, station_broker: Mosquitto) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=0.1, speedup=SPEEDUP)
    async with Simulator(station_broker.url, LAYOUT, options) as simulator:
        await every_pile_up(station)
        yield simulator


async def every_pile_up(station: StationRig, timeout: float = 15) -> None:
    """A station is ready for drivers once each collector hears every one of its piles."""

    def up() -> bool:
        for charger in station.layout.charger_ids():
            response = httpx.get(f"{station.collector_url(charger)}/api/v1/piles", timeout=5)
            if not all(pile["up"] for pile in response.json()):
                return False
        return True

    await eventually(up, timeout=timeout)


@pytest.fixture(scope="module")
def verification(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("verification"), timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def billing(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("billing"), timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def bulletins(station: StationRig, station_broker: Mosquitto) -> AsyncIterator[BulletinFeed]:
    """Every fault bulletin on the station's broker, as a board connected all along sees it."""
    async with BulletinFeed(station_broker.url) as feed:
        yield feed


@pytest.fixture(scope="module")
async def faults_api(station: StationRig) -> AsyncIterator[httpx.AsyncClient]:
    """The faults REST API; async, so that waiting on it never stalls the simulated piles."""
    async with httpx.AsyncClient(base_url=station.url("faults"), timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def central(station: StationRig) -> Iterator[httpx.Client]:
    """Central's API as an operator reads it (admin token)."""
    headers = {"Authorization": f"Bearer {station.admin_token}"}
    with httpx.Client(base_url=station.url("central"), headers=headers, timeout=5) as client:
        yield client
