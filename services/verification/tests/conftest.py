"""Fixtures: the verification app in-process against the test run's real mosquitto.

The app runs its real lifespan (migrations on a fresh SQLite file, the bus connected to
the broker); REST calls go through httpx, verification requests through a second bus
client playing the collector, exactly as on the station.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from station_protocol import channels
from station_protocol.messages import (
    PileSession,
    SessionStatus,
    VerificationReply,
    VerificationRequest,
)
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_tools.mosquitto import Mosquitto
from station_verification.core.config import Settings
from station_verification.main import create_app


@dataclass
class RunningService:
    app: FastAPI
    http: httpx.AsyncClient
    engine: Engine

    async def metric(self, name: str, **labels: str) -> float:
        """A sample from ``/metrics``, as Prometheus would scrape it."""
        text = (await self.http.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        raise AssertionError(f"no sample {name}{labels} in /metrics")

    async def issue(self, uid: str, balance: str = "20.00", **fields: Any) -> dict[str, Any]:
        answer = await self.http.post(
            "/api/v1/cards", json={"uid": uid, "holder": "Ada", "balance": balance, **fields}
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body


ServiceFactory = Callable[..., AbstractAsyncContextManager[RunningService]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_settings(mosquitto: Mosquitto, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "broker": mosquitto.url,
            "data_dir": data_dir,
            "client_id": f"verification-{uuid.uuid4().hex[:8]}",
            "port": 0,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def start_service(make_settings: Callable[..., Settings]) -> ServiceFactory:
    """``async with start_service(**settings) as service``: the app, its lifespan running."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[RunningService]:
        app = create_app(make_settings(**overrides))
        async with app.router.lifespan_context(app):
            await app.state.service.bus.wait_connected(5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://verification"
            ) as http:
                yield RunningService(app, http, app.state.service.engine)

    return start


@pytest.fixture
async def service(start_service: ServiceFactory) -> AsyncIterator[RunningService]:
    async with start_service() as running:
        yield running


@pytest.fixture
async def collector(mosquitto: Mosquitto) -> AsyncIterator[Bus]:
    """A bus client in the collector's seat: it asks, the service answers."""
    name = f"test-collector-{uuid.uuid4().hex[:8]}"
    options = BusOptions(BrokerAddress.parse(mosquitto.url), client_id=name, service=name)
    async with Bus(options) as bus:
        await bus.wait_connected(5)
        yield bus


Verify = Callable[..., Awaitable[VerificationReply]]


@pytest.fixture
def verify(collector: Bus) -> Verify:
    async def ask(
        card_uid: str, pile_id: str = "c1-p01", session_id: str | None = None
    ) -> VerificationReply:
        request = VerificationRequest(
            session_id=session_id or str(uuid.uuid4()), pile_id=pile_id, card_uid=card_uid
        )
        answer = await collector.request(channels.VERIFICATION.topic(), request, timeout=5)
        return VerificationReply.model_validate_json(answer)

    return ask


Announce = Callable[..., Awaitable[None]]


@pytest.fixture
async def announce(collector: Bus) -> AsyncIterator[Announce]:
    """Publish a pile's retained session as billing does; cleared again after the test."""
    topics: set[str] = set()

    async def publish(session_id: str, pile_id: str, card_uid: str, status: SessionStatus) -> None:
        now = datetime.now(UTC)
        session = PileSession(
            session_id=session_id,
            pile_id=pile_id,
            card_uid=card_uid,
            status=status,
            started_at=now,
            stopped_at=now if status == SessionStatus.COMPLETED else None,
        )
        topic = channels.PILE_SESSION.topic(pile=pile_id)
        topics.add(topic)
        await collector.publish(topic, session, retain=True)

    yield publish
    for topic in topics:
        await collector.publish(topic, b"", retain=True)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds; the deadline is a safety net, not a speed target."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def poll() -> Callable[..., Awaitable[None]]:
    return eventually
