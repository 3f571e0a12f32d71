"""The faults service under test: the real app (lifespan, bus, SQLite) against a real mosquitto.

The tests play the collectors and the services: they publish retained fault reports and
statuses and send breath requests exactly as a collector does, and they read what the
station sees: the retained bulletins on the broker (as a display board that connects at any
moment), the REST API, and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from station_faults.core.config import Settings
from station_faults.main import create_app
from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.messages import (
    BreathAck,
    CollectorBreath,
    FaultReport,
    ServiceFaultReport,
    ServiceStatus,
)
from station_protocol.zigbee import OnlineState
from station_runtime.bus import BrokerAddress, Bus, BusOptions
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
class Faults:
    """The running faults service, seen through its REST API and ``/metrics``."""

    app: FastAPI
    http: httpx.AsyncClient

    async def active(self, lang: str | None = None, **query: str) -> list[dict[str, Any]]:
        params = dict(query, **({"lang": lang} if lang else {}))
        response = await self.http.get("/api/v1/faults", params=params)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def active_on(self, source: str, code: str, lang: str | None = None) -> dict[str, Any]:
        for fault in await self.active(lang):
            if (fault["source"], fault["code"]) == (source, code):
                return fault
        raise AssertionError(f"{code} on {source} is not active")

    async def is_active(self, source: str, code: str) -> bool:
        return any((f["source"], f["code"]) == (source, code) for f in await self.active())

    async def history(self, **query: str) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/faults/history", params=query)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of ``/metrics`` (summed over label sets that match ``labels``); 0 if none."""
        return metric_value((await self.http.get("/metrics")).text, name, **labels)


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        if all(found.get(key, "").strip('"') == wanted for key, wanted in labels.items()):
            total += float(value)
    return total


@dataclass
class StationSide:
    """The collectors' and services' side of the faults contract, on one bus connection."""

    bus: Bus

    async def report(
        self,
        charger: str,
        source: str,
        code: str,
        *,
        active: bool = True,
        since: datetime | None = None,
        detected_at: datetime | None = None,
        pile_id: str | None = None,
        detail: dict[str, str] | None = None,
    ) -> None:
        at = now()
        report = FaultReport(
            charger=charger,
            source=source,
            pile_id=pile_id,
            code=code,
            active=active,
            since=since or at,
            detected_at=detected_at or at,
            detail=detail or {},
        )
        await self.raw_report(
            channels.COLLECTOR_FAULT.topic(charger=charger, source=source, code=code), report
        )

    async def raw_report(self, topic: str, payload: FaultReport | bytes) -> None:
        await self.bus.publish(topic, payload, qos=1, retain=True)

    async def service_report(self, service: str, source: str, code: str, active: bool) -> None:
        at = now()
        report = ServiceFaultReport(
            service=service, source=source, code=code, active=active, since=at, detected_at=at
        )
        topic = channels.SERVICE_FAULT.topic(service=service, source=source, code=code)
        await self.bus.publish(topic, report, qos=1, retain=True)

    async def status(self, charger: str, state: OnlineState, stopped: bool | None = None) -> None:
        """What a collector's bus (online), its last will (offline) or its bus as it stops on
        purpose (offline, ``stopped``) writes."""
        status = ServiceStatus(state=state, service="collector", charger=charger, stopped=stopped)
        await self.bus.publish(
            channels.COLLECTOR_STATUS.topic(charger=charger), status, retain=True
        )

    async def breathe(self, charger: str, seq: int, t1: float, timeout: float = 5.0) -> BreathAck:
        breath = CollectorBreath(charger=charger, seq=seq, sent_at=now(), t1=t1)
        answer = await self.bus.request(
            channels.COLLECTOR_BREATH.topic(charger=charger), breath, timeout=timeout
        )
        return BreathAck.model_validate_json(answer)


@dataclass
class BulletinBoard:
    """Every bulletin message on the broker, as a display board connected all along sees it."""

    broker: Mosquitto
    seen: list[tuple[str, bytes, float]] = field(default_factory=list)

    def messages(self, source: str, code: str) -> list[Bulletin | None]:
        """What arrived on the bulletin topic, in order; ``None`` for a withdrawal."""
        topic = channels.FAULT_BULLETIN.topic(source=source, code=code)
        return [
            Bulletin.model_validate_json(payload) if payload else None
            for seen_topic, payload, _ in self.seen
            if seen_topic == topic
        ]

    async def retained(self, source: str, code: str) -> Bulletin | None:
        """What a board connecting now gets for this fault (fresh client, retained only)."""
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
            await client.subscribe(channels.FAULT_BULLETIN.topic(source=source, code=code), qos=1)
            try:
                async with asyncio.timeout(0.3):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        return Bulletin.model_validate_json(message.payload)
            except TimeoutError:
                return None
        return None

    async def shown(self, source: str, code: str, timeout: float = 5.0) -> Bulletin:
        async def up() -> Bulletin | None:
            return await self.retained(source, code)

        found: Bulletin = await eventually(up, timeout, f"bulletin {code} on {source}")
        return found

    async def withdrawn(self, source: str, code: str, timeout: float = 5.0) -> None:
        async def gone() -> bool:
            return await self.retained(source, code) is None

        await eventually(gone, timeout, f"bulletin {code} on {source} withdrawn")


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    """``await eventually(check, timeout, what)``: poll until ``check`` is truthy."""
    return eventually


@pytest.fixture
def settings(own_mosquitto: Mosquitto, tmp_path: Path) -> Settings:
    return Settings(
        broker=own_mosquitto.url,
        data_dir=tmp_path / "faults",
        client_id=f"faults-test-{uuid.uuid4().hex[:8]}",
        layout="2x4",
        hold_down=1.0,
    )


@asynccontextmanager
async def running_faults(settings: Settings) -> AsyncIterator[Faults]:
    """The faults service in this process, lifespan and all, subscribed when it yields."""
    app = create_app(settings)
    async with served(app, "faults") as http:
        yield Faults(app, http)


@pytest.fixture
def start_faults() -> Any:
    """``async with start_faults(settings)``: a faults service with settings of the test's own."""
    return running_faults


@pytest.fixture
async def faults(settings: Settings) -> AsyncIterator[Faults]:
    async with running_faults(settings) as running:
        yield running


@asynccontextmanager
async def station_side_on(broker_url: str) -> AsyncIterator[StationSide]:
    name = f"test-station-{uuid.uuid4().hex[:8]}"
    options = BusOptions(broker=BrokerAddress.parse(broker_url), client_id=name, service=name)
    async with Bus(options) as bus:
        await bus.wait_connected(10)
        yield StationSide(bus)


@pytest.fixture
async def station(own_mosquitto: Mosquitto) -> AsyncIterator[StationSide]:
    async with station_side_on(own_mosquitto.url) as side:
        yield side


@pytest.fixture
async def board(own_mosquitto: Mosquitto) -> AsyncIterator[BulletinBoard]:
    watcher = BulletinBoard(own_mosquitto)
    ready = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", own_mosquitto.port) as client:
            await client.subscribe(channels.FAULT_BULLETIN.filter(), qos=1)
            ready.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                watcher.seen.append(
                    (message.topic.value, payload, asyncio.get_running_loop().time())
                )

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
