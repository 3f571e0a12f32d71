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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from station_protocol import channels
from station_protocol.messages import (
    DebitReply,
    DebitRequest,
    PileSession,
    SessionAnswer,
    SessionQuery,
    SessionStatus,
    VerificationReply,
    VerificationRequest,
)
from station_protocol.ocpi import Price
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Delivery
from station_tools.mosquitto import Mosquitto
from station_tools.testing import served
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
        async with served(app, "verification") as http:
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


@dataclass
class Billing:
    """Billing's seat: it asks for debits, and answers verification's question whether the
    session has a record (``billed``: the records it has, by session id)."""

    bus: Bus
    billed: dict[str, PileSession] = field(default_factory=dict)
    silent: bool = False

    async def on_query(self, delivery: Delivery[SessionQuery]) -> SessionAnswer | None:
        if self.silent:
            return None
        session_id = delivery.body.session_id
        return SessionAnswer(session=self.billed.get(session_id) if session_id else None)

    def bill(self, session_id: str, card: str, amount: str, pile: str = "c1-p01") -> None:
        now = datetime.now(UTC)
        self.billed[session_id] = PileSession(
            session_id=session_id,
            pile_id=pile,
            card_uid=card,
            status=SessionStatus.COMPLETED,
            started_at=now,
            stopped_at=now,
            total_cost=Price(excl_vat=Decimal(amount), incl_vat=Decimal(amount)),
        )

    async def debit(
        self,
        card: str,
        amount: str,
        session_id: str | None = None,
        pile: str = "c1-p01",
        *,
        billed: str | None = "",
    ) -> DebitReply:
        """Ask for a debit; by default of a session billing has a record of ``amount``
        (``billed=None``: no record; ``billed="x"``: a record of ``x``)."""
        session_id = session_id or str(uuid.uuid4())
        if billed is not None and session_id not in self.billed:
            self.bill(session_id, card, billed or amount, pile)
        request = DebitRequest(
            session_id=session_id, card_uid=card, pile_id=pile, amount=Decimal(amount)
        )
        answer = await self.bus.request(channels.DEBIT.topic(), request, timeout=5)
        return DebitReply.model_validate_json(answer)


@pytest.fixture
async def billing(mosquitto: Mosquitto) -> AsyncIterator[Billing]:
    name = f"test-billing-{uuid.uuid4().hex[:8]}"
    options = BusOptions(BrokerAddress.parse(mosquitto.url), client_id=name, service=name)
    bus = Bus(options)
    seat = Billing(bus)
    bus.serve(channels.SESSION_QUERY, seat.on_query, share="billing")
    async with bus:
        await bus.wait_connected(5)
        yield seat


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
