"""The console under test: the real app (lifespan, bus, SQLite) against a real mosquitto.

The tests play the owners on the bus: they publish retained pile statuses as a collector
does, sessions and prices as billing does, bulletins as faults does, and read what a person
sees: ``/api/v1/piles``, the board's live events, the history.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from station_console.core.config import Settings
from station_console.main import create_app
from station_console.state import ConsoleState
from station_protocol import channels
from station_protocol.messages import (
    PileBoardState,
    PileSession,
    PileStatus,
    ServiceStatus,
    SessionAnswer,
    SessionQuery,
)
from station_protocol.zigbee import OnlineState
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Delivery
from station_tools.mosquitto import Mosquitto
from station_tools.testing import served

POLL = 0.02


def now() -> datetime:
    return datetime.now(UTC)


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check}")
        await asyncio.sleep(POLL)


@dataclass
class Console:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def state(self) -> ConsoleState:
        state: ConsoleState = self.app.state.service.state
        return state

    async def pile(self, pile_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/piles/{pile_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def piles(self) -> dict[str, dict[str, Any]]:
        response = await self.http.get("/api/v1/piles")
        assert response.status_code == 200, response.text
        return {pile["id"]: pile for pile in response.json()}


@dataclass
class Owners:
    """The tests' side of the bus: what collectors, billing and faults publish."""

    bus: Bus

    async def send(self, channel: Any, message: BaseModel, **params: str) -> None:
        await self.bus.send(channel, message, **params)

    async def status(self, pile_id: str, state: PileBoardState, **fields: Any) -> PileStatus:
        status = PileStatus(
            pile_id=pile_id,
            charger=pile_id.split("-")[0],
            state=state,
            updated_at=now(),
            last_seen=now(),
            **fields,
        )
        await self.send(channels.PILE_STATUS, status, pile=pile_id)
        return status

    async def collector(self, charger: str, online: bool) -> None:
        status = ServiceStatus(
            state=OnlineState.ONLINE if online else OnlineState.OFFLINE,
            service="collector",
            charger=charger,
        )
        await self.send(channels.COLLECTOR_STATUS, status, charger=charger)

    async def raw(self, topic: str, payload: bytes, retain: bool = True) -> None:
        await self.bus.publish(topic, payload, qos=1, retain=retain)


@pytest.fixture
def settings(own_mosquitto: Mosquitto, tmp_path: Path) -> Settings:
    return Settings(
        broker=own_mosquitto.url,
        data_dir=tmp_path / "console",
        client_id=f"console-test-{uuid.uuid4().hex[:8]}",
        layout="2x3",
        link_bucket=60.0,
    )


@asynccontextmanager
async def running_console(settings: Settings) -> AsyncIterator[Console]:
    """The console in this process, lifespan and all, subscribed when it yields."""
    app = create_app(settings)
    async with served(app, "console") as http:
        yield Console(app, http)


@pytest.fixture
def start_console() -> Any:
    return running_console


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async with running_console(settings) as running:
        yield running


@pytest.fixture
async def owners(own_mosquitto: Mosquitto) -> AsyncIterator[Owners]:
    name = f"test-owners-{uuid.uuid4().hex[:8]}"
    options = BusOptions(
        broker=BrokerAddress.parse(own_mosquitto.url), client_id=name, service=name
    )
    async with Bus(options) as bus:
        await bus.wait_connected(10)
        yield Owners(bus)


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    """``await eventually(check, timeout, what)``: poll until ``check`` is truthy."""
    return eventually


@asynccontextmanager
async def billing_answering(
    broker: Mosquitto, sessions: dict[str, PileSession]
) -> AsyncIterator[None]:
    """Billing's side of the session query: these sessions, by pile."""

    async def answer(delivery: Delivery[SessionQuery]) -> SessionAnswer:
        return SessionAnswer(session=sessions.get(delivery.body.pile_id or ""))

    name = f"test-billing-{uuid.uuid4().hex[:8]}"
    options = BusOptions(broker=BrokerAddress.parse(broker.url), client_id=name, service=name)
    bus = Bus(options)
    bus.serve(channels.SESSION_QUERY, answer)
    async with bus:
        await bus.wait_connected(10)
        yield
