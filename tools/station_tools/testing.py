"""The test rig as a pytest plugin: a private mosquitto per test session, and helpers.

Every test that needs a broker gets one the run started itself on a free loopback port, so
that it can be killed and restarted without touching the machine's own services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from station_tools.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker shared by the tests of a run that do not kill it."""
    with Mosquitto(data_dir=tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test, which it may stop, kill and restart."""
    with Mosquitto(data_dir=tmp_path / "mosquitto") as broker:
        yield broker


@asynccontextmanager
async def served(app: FastAPI, name: str, bus: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A service's app in this process, lifespan and all, and an HTTP client to it.

    With ``bus`` it yields once the service's broker connection is up (its handlers are
    registered before it connects, so it is subscribed too): a message a test publishes
    next is heard. Central has no bus.
    """
    async with app.router.lifespan_context(app):
        if bus:
            await app.state.service.bus.wait_connected(10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as http:
            yield http
