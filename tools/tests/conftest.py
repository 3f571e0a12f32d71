"""Fixtures for the simulator and launcher tests: a recorder of what a collector would see."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest

from station_tools import children
from station_tools.mosquitto import Mosquitto
from station_tools.simulator import SimulatorOptions


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        assert isinstance(value, dict)
        return value


@dataclass
class Recorder(children.Opened):
    """Subscribes to ``filters`` on a broker and keeps every message, in arrival order."""

    port: int
    filters: tuple[str, ...]
    messages: list[Seen] = field(default_factory=list)
    _client: aiomqtt.Client | None = None
    _task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._client = aiomqtt.Client("127.0.0.1", self.port, identifier=f"rec-{uuid.uuid4()}")
        await self._client.__aenter__()
        for topic_filter in self.filters:
            await self._client.subscribe(topic_filter, qos=1)
        self._task = asyncio.create_task(self._collect())

    async def aclose(self) -> None:
        await children.cancel(self._task, aiomqtt.MqttError)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append(Seen(message.topic.value, payload, bool(message.retain)))

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        assert self._client is not None
        await self._client.publish(topic, payload, qos=qos)

    def mark(self) -> int:
        """A bookmark: ``next(..., since=mark)`` looks only at messages after it."""
        return len(self.messages)

    def on(self, topic: str, since: int = 0) -> list[Seen]:
        return [m for m in self.messages[since:] if m.topic == topic]

    async def next(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        since: int = 0,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first JSON message on ``topic`` after ``since`` for which ``match`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            for seen in self.on(topic, since):
                body = seen.json()
                if match(body):
                    return body
            if time.monotonic() > deadline:
                got = [m.payload for m in self.on(topic, since)]
                raise AssertionError(f"no matching message on {topic} within {timeout} s: {got}")
            await asyncio.sleep(0.01)

    async def settle(self, seconds: float) -> None:
        """Let messages that are on their way arrive (for asserting that none came)."""
        await asyncio.sleep(seconds)


RecorderFactory = Callable[..., Recorder]


@pytest.fixture
def root() -> str:
    """A Zigbee2MQTT root of this test's own, so retained messages of others never mix in."""
    return f"z2m-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def options(root: str) -> SimulatorOptions:
    """Fast meters (0.05 s) and an hour of charging per real second."""
    return SimulatorOptions(
        root=root,
        meter_interval=0.05,
        speedup=Decimal(3600),
        initial_energy=Decimal("1000.000"),
        qos=1,
    )


@pytest.fixture
def record(mosquitto: Mosquitto) -> RecorderFactory:
    def make(*filters: str, broker: Mosquitto | int = mosquitto) -> Recorder:
        """A recorder on the session broker, another ``Mosquitto``, or a port."""
        return Recorder(broker if isinstance(broker, int) else broker.port, filters)

    return make
