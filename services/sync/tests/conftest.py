"""Sync under test: billing's outbox in a temporary SQLite file, a real central process.

The outbox table is created from its protocol definition and filled the way billing fills
it (``write_outbox_row``); central runs as its own process (SQLite), so that a test can
stop it, start it again, and read what it really holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from station_protocol.messages import ServiceFaultReport
from station_protocol.records import ChargingRecord
from station_runtime.migrations import make_engine
from station_runtime.outbox import OUTBOX_METADATA, billing_outbox
from station_sync.core.config import Settings
from station_sync.main import create_app
from station_tools.central import CentralApi, prometheus_sample
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.processes import ServiceProcess
from station_tools.records import queue_records
from station_tools.testing import served

ADMIN_TOKEN = "admin-token-of-the-sync-tests-0123"


@dataclass
class CentralServer:
    """Central as a real process: stop it for an outage, start it again to end one."""

    process: ServiceProcess
    url: str

    def api(self, http: httpx.AsyncClient) -> CentralApi:
        return CentralApi(http, ADMIN_TOKEN)


def central_server(tmp_path: Path, name: str = "central") -> CentralServer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        name=name,
        module="station_central",
        env={
            "STATION_CENTRAL_DATABASE_URL": f"sqlite:///{tmp_path / f'{name}.db'}",
            "STATION_CENTRAL_PORT": str(port),
            "STATION_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
        },
        log_dir=tmp_path / "logs",
        health_url=f"{url}/ready",
    )
    return CentralServer(process, url)


@pytest.fixture(scope="session")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralServer]:
    """One central for the tests that do not stop it; each test registers its own station."""
    server = central_server(tmp_path_factory.mktemp("central"))
    server.process.start(30)
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
def own_central(tmp_path: Path) -> Iterator[CentralServer]:
    """A central for one test, which it may stop and start (not started yet)."""
    server = central_server(tmp_path, "own-central")
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
async def central_http(central: CentralServer) -> AsyncIterator[CentralApi]:
    async with httpx.AsyncClient(base_url=central.url) as http:
        yield central.api(http)


@dataclass
class BillingOutbox:
    """Billing's outbox table in billing's (temporary) SQLite database."""

    url: str
    engine: Engine

    def queue(self, records: list[ChargingRecord], stored_at: datetime | None = None) -> None:
        queue_records(self.engine, records, stored_at)

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(select(billing_outbox).order_by(billing_outbox.c.id))
            return [dict(row._mapping) for row in result]

    def sent(self) -> int:
        return sum(1 for row in self.rows() if row["sent_at"] is not None)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[BillingOutbox]:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    engine = make_engine(url)
    OUTBOX_METADATA.create_all(engine)
    try:
        yield BillingOutbox(url, engine)
    finally:
        engine.dispose()


@pytest.fixture
def make_settings(mosquitto: Mosquitto, outbox: BillingOutbox, tmp_path: Path) -> Any:
    """``make_settings(central_url, station, token, **more)``: sync on this test's outbox,
    its data (an installed central token) in the test's own folder."""

    def make(central_url: str, station: str, token: str, **more: Any) -> Settings:
        values: dict[str, Any] = {
            "broker": mosquitto.url,
            "data_dir": tmp_path / "sync",
            "client_id": f"sync-test-{uuid.uuid4().hex[:8]}",
            "database_url": outbox.url,
            "station_id": station,
            "central_url": central_url,
            "central_token": token,
            "t2": 0.0,
            "poll_interval": 0.1,
            "retry_min": 0.05,
            "retry_max": 0.4,
            "stats_interval": 0.1,
            **more,
        }
        return Settings(**values)

    return make


@dataclass
class RunningSync:
    app: FastAPI
    http: httpx.AsyncClient

    async def metric(self, name: str, labels: str | None = None) -> float:
        return prometheus_sample((await self.http.get("/metrics")).text, name, labels)

    async def status(self) -> dict[str, Any]:
        response = await self.http.get("/api/v1/sync")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def running_sync(settings: Settings) -> AsyncIterator[RunningSync]:
    """Sync in this process, lifespan and all (relay loop, fault announcer, bus)."""
    app = create_app(settings)
    async with served(app, "sync") as http:
        yield RunningSync(app, http)


@pytest.fixture
def start_sync() -> Any:
    """``async with start_sync(settings) as sync``: sync in this process."""
    return running_sync


async def until(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    """Poll the async ``check`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def poll() -> Any:
    """``await poll(async_check, timeout)``: wait until an async check holds."""
    return until


@dataclass
class RetainedFaults:
    """Reads a retained fault report as a newcomer (the faults service) would."""

    broker: Mosquitto

    async def now(self, topic: str) -> ServiceFaultReport | None:
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
            await client.subscribe(topic, qos=1)
            try:
                async with asyncio.timeout(0.3):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        return ServiceFaultReport.model_validate_json(message.payload)
            except TimeoutError:
                return None
        return None

    async def eventually(
        self, topic: str, active: bool, timeout: float = 10.0
    ) -> ServiceFaultReport:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await self.now(topic)
            if seen is not None and seen.active == active:
                return seen
            if loop.time() > deadline:
                raise AssertionError(f"retained fault on {topic} never active={active}: {seen}")
            await asyncio.sleep(0.05)


@pytest.fixture
def retained(mosquitto: Mosquitto) -> RetainedFaults:
    return RetainedFaults(mosquitto)
