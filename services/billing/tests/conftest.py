"""Billing under test: the real app (lifespan, bus, SQLite) against the test mosquitto.

The test plays the collector: it sends open and checkout requests over the bus exactly as a
collector does, and reads what billing stored through its REST API. It also plays
verification's side of the debit and balance contracts (:class:`Ledger`) where a test needs
a card's ledger without the verification service; the tests that run verification itself
start it as a process.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from station_billing.core.config import Settings
from station_billing.main import create_app
from station_protocol import channels
from station_protocol.channels import shared
from station_protocol.messages import (
    BalanceReply,
    BalanceRequest,
    CheckoutReply,
    CheckoutRequest,
    DebitReply,
    DebitRequest,
    DebitResult,
    MeterReading,
    PileSession,
    SessionOpenReply,
    SessionOpenRequest,
    StopReason,
)
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Incoming
from station_tools.mosquitto import Mosquitto
from station_tools.testing import served


@dataclass
class StationClock:
    """The billing service's clock, moved by the test (charging takes minutes, tests don't)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 6, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


CHARGE_TIME = timedelta(hours=1)
"""How long a test's charge takes when the test does not move the clock itself: billing
believes no energy a pile could not have delivered in the time (docs/pricing.md)."""


@dataclass
class Collector:
    """The collector's side of the billing bus."""

    bus: Bus
    clock: StationClock | None = None
    """Billing's clock, moved by :data:`CHARGE_TIME` at a checkout if the test did not move
    it since the opening."""
    _opened: dict[str, datetime] = field(default_factory=dict)

    def _charged(self, session_id: str) -> None:
        if self.clock is not None and self._opened.pop(session_id, None) == self.clock.now:
            self.clock.now += CHARGE_TIME

    async def open(
        self,
        session_id: str,
        pile_id: str,
        card_uid: str,
        meter_start: str,
        balance: str | None = None,
    ) -> SessionOpenReply:
        request = SessionOpenRequest(
            session_id=session_id,
            pile_id=pile_id,
            card_uid=card_uid,
            meter_start=Decimal(meter_start),
            balance=Decimal(balance) if balance is not None else None,
        )
        if self.clock is not None:
            self._opened[session_id] = self.clock.now
        answer = await self.bus.request(channels.SESSION_OPEN.topic(), request)
        return SessionOpenReply.model_validate_json(answer)

    async def checkout(
        self,
        session_id: str,
        pile_id: str,
        meter_stop: str | None,
        stop_reason: StopReason = StopReason.LOCAL,
    ) -> CheckoutReply:
        request = CheckoutRequest(
            session_id=session_id,
            pile_id=pile_id,
            meter_stop=Decimal(meter_stop) if meter_stop is not None else None,
            stop_reason=stop_reason,
        )
        self._charged(session_id)
        answer = await self.bus.request(channels.CHECKOUT.topic(), request)
        return CheckoutReply.model_validate_json(answer)

    async def reading(self, pile_id: str, session_id: str | None = None, **fields: Any) -> None:
        """Forward a pile's meter reading as the collector does (``energy="12.5"``...)."""
        values = {k: Decimal(v) if isinstance(v, str) else v for k, v in fields.items()}
        reading = MeterReading(pile_id=pile_id, session_id=session_id, **values)
        await self.bus.publish(channels.PILE_METER.topic(pile=pile_id), reading, qos=1)

    async def checkout_raw(self, session_id: str, pile_id: str, meter_stop: str) -> bytes:
        request = CheckoutRequest(
            session_id=session_id,
            pile_id=pile_id,
            meter_stop=Decimal(meter_stop),
            stop_reason=StopReason.LOCAL,
        )
        self._charged(session_id)
        return await self.bus.request(channels.CHECKOUT.topic(), request)


@dataclass
class Billing:
    app: FastAPI
    http: httpx.AsyncClient
    clock: StationClock

    async def session(self, session_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def sessions(self, **query: str) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/sessions", params=query)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def settled(self, name: str, value: float, labels: str | None = None) -> None:
        """Wait until ``/metrics`` shows ``name`` at ``value`` or more (billing caught up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while await self.metric(name, labels) < value:
            if loop.time() > deadline:
                raise AssertionError(f"{name} never reached {value}")
            await asyncio.sleep(0.02)

    async def readings_seen(self, count: int) -> None:
        """Wait until billing has handled ``count`` meter readings in all."""
        await self.settled("station_billing_meter_readings_total", count)

    async def metric(self, name: str, labels: str | None = None) -> float:
        """A sample of ``/metrics`` (all label sets summed unless ``labels``); 0 if unwritten."""
        text = (await self.http.get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, label_text = series.partition("{")
            if metric == name and (labels is None or label_text.rstrip("}") == labels):
                total += float(value)
        return total


@pytest.fixture(scope="session")
def pile_numbers() -> Iterator[int]:
    """Every test charges on piles of its own: retained session states outlive a test."""
    return itertools.count(1)


@pytest.fixture
def new_pile(pile_numbers: Iterator[int]) -> Any:
    def make() -> str:
        number = next(pile_numbers)
        return f"c{100 + number // 100}-p{number % 100:02d}"

    return make


@pytest.fixture
def clock() -> StationClock:
    return StationClock()


@pytest.fixture
def settings(mosquitto: Mosquitto, tmp_path: Path) -> Settings:
    return Settings(
        broker=mosquitto.url,
        data_dir=tmp_path / "billing",
        client_id=f"billing-test-{uuid.uuid4().hex[:8]}",
        debit_timeout=0.5,
        debit_retry_interval=0.2,
        balance_timeout=0.5,
        running_cost_interval=0,
        stop_repeat_interval=60,
    )


@dataclass
class Ledger:
    """Verification's side of the debit and balance contracts, played by the test.

    Books each session once (idempotent by session id, as verification does) on cards that
    start with ``balance``; ``refuse`` makes it answer nothing at all (verification down).
    """

    bus: Bus
    balance: Decimal = Decimal("100.00")
    balances: dict[str, Decimal] = field(default_factory=dict)
    booked: dict[str, Decimal] = field(default_factory=dict)
    requests: list[DebitRequest] = field(default_factory=list)
    silent: bool = False
    stranger: bool = False
    """Answer as a stranger on the bus would: "booked" for another amount, booking nothing."""

    async def on_debit(self, message: Incoming) -> None:
        request = DebitRequest.model_validate_json(message.payload)
        self.requests.append(request)
        if self.silent:
            return
        if self.stranger:
            forged = DebitReply(
                session_id=request.session_id,
                card_uid=request.card_uid,
                result=DebitResult.BOOKED,
                amount=request.amount + 1,
                balance=Decimal("999.00"),
            )
            await self.bus.reply(message, forged)
            return
        balance = self.balances.setdefault(request.card_uid, self.balance)
        result = DebitResult.ALREADY_BOOKED
        if request.session_id not in self.booked:
            self.booked[request.session_id] = request.amount
            balance = self.balances[request.card_uid] = balance - request.amount
            result = DebitResult.BOOKED
        reply = DebitReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=result,
            amount=self.booked[request.session_id],
            balance=balance,
        )
        await self.bus.reply(message, reply)

    async def on_balance(self, message: Incoming) -> None:
        request = BalanceRequest.model_validate_json(message.payload)
        if self.silent:
            return
        balance = self.balances.setdefault(request.card_uid, self.balance)
        await self.bus.reply(
            message, BalanceReply(card_uid=request.card_uid, known=True, balance=balance)
        )


@asynccontextmanager
async def ledger_on(broker_url: str) -> AsyncIterator[Ledger]:
    name = f"test-ledger-{uuid.uuid4().hex[:8]}"
    options = BusOptions(broker=BrokerAddress.parse(broker_url), client_id=name, service=name)
    bus = Bus(options)
    ledger = Ledger(bus)
    bus.add_route(shared("verification", channels.DEBIT.topic()), ledger.on_debit)
    bus.add_route(shared("verification", channels.BALANCE.topic()), ledger.on_balance)
    async with bus:
        await bus.wait_connected(10)
        yield ledger


@pytest.fixture
def ledger_for() -> Any:
    """``async with ledger_for(broker_url)``: verification's ledger on a broker of your choice."""
    return ledger_on


@pytest.fixture
async def ledger(mosquitto: Mosquitto) -> AsyncIterator[Ledger]:
    async with ledger_on(mosquitto.url) as running:
        yield running


@asynccontextmanager
async def running_billing(settings: Settings, clock: StationClock) -> AsyncIterator[Billing]:
    """Billing in this process, lifespan and all, connected and subscribed when it yields."""
    app = create_app(settings, clock=clock)
    async with served(app, "billing") as http:
        yield Billing(app, http, clock)


@pytest.fixture
async def billing(
    settings: Settings, clock: StationClock, ledger: Ledger
) -> AsyncIterator[Billing]:
    """Billing with verification's ledger answering its debits."""
    async with running_billing(settings, clock) as running:
        yield running


@asynccontextmanager
async def collector_on(
    broker_url: str, clock: StationClock | None = None
) -> AsyncIterator[Collector]:
    name = f"test-collector-{uuid.uuid4().hex[:8]}"
    options = BusOptions(broker=BrokerAddress.parse(broker_url), client_id=name, service=name)
    async with Bus(options) as bus:
        await bus.wait_connected(10)
        yield Collector(bus, clock)


@pytest.fixture
def collector_for() -> Any:
    """``async with collector_for(broker_url)``: a collector on a broker of the test's choice."""
    return collector_on


@pytest.fixture
async def collector(mosquitto: Mosquitto, clock: StationClock) -> AsyncIterator[Collector]:
    async with collector_on(mosquitto.url, clock) as running:
        yield running


@dataclass
class Listener:
    """Every message on one topic filter, as a collector or display board would see them."""

    client: aiomqtt.Client
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    async def eventually(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages) < count:
            if loop.time() > deadline:
                raise AssertionError(f"{len(self.messages)} messages, wanted {count}")
            await asyncio.sleep(0.02)
        return self.messages


@asynccontextmanager
async def listening(broker: Mosquitto, topic: str) -> AsyncIterator[Listener]:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        listener = Listener(client)
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                listener.messages.append((message.topic.value, payload))

        task = asyncio.create_task(collect())
        try:
            yield listener
        finally:
            task.cancel()


@pytest.fixture
def listen(mosquitto: Mosquitto) -> Any:
    """``async with listen(topic) as heard``: what billing publishes there from now on."""
    return lambda topic: listening(mosquitto, topic)


@dataclass
class RetainedSessions:
    """Reads the retained per-pile session topic as a newcomer (a display board) would."""

    broker: Mosquitto

    async def now(self, pile_id: str) -> PileSession | None:
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
            await client.subscribe(channels.PILE_SESSION.topic(pile=pile_id), qos=1)
            try:
                async with asyncio.timeout(0.5):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        return PileSession.model_validate_json(message.payload)
            except TimeoutError:
                return None
        return None

    async def eventually(self, pile_id: str, status: str, timeout: float = 5.0) -> PileSession:
        """The retained session of ``pile_id`` once its status is ``status``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await self.now(pile_id)
            if seen is not None and seen.status == status:
                return seen
            if loop.time() > deadline:
                raise AssertionError(f"retained session of {pile_id} never {status}: {seen}")
            await asyncio.sleep(0.05)


@pytest.fixture
def retained(mosquitto: Mosquitto) -> RetainedSessions:
    return RetainedSessions(mosquitto)


@pytest.fixture
def start_billing() -> Any:
    """``async with start_billing(settings, clock)``: another billing life on the same data."""
    return running_billing
