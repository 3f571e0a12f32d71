"""Requests to the chargers' Zigbee2MQTT bridges, each answered or given up on in time.

Zigbee2MQTT answers every asker on one ``bridge/response/<name>`` topic, so the console
subscribes to the answers of every charger's bridge once, puts a fresh ``transaction`` in
each request, and hands the answer with that transaction to the one who asked. An answer
nobody waits for (another asker's, or one that came after its asker gave up) is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from station_protocol.channels import BridgeCall, ZigbeeChannels
from station_protocol.zigbee import BridgeRequest, BridgeResponse, new_transaction
from station_runtime.bus import Bus
from station_runtime.deliveries import Delivery

log = logging.getLogger("station.console.bridge")

Q = TypeVar("Q", bound=BridgeRequest)
D = TypeVar("D", bound=BaseModel)


class BridgeSilent(Exception):
    """The charger's Zigbee2MQTT did not answer in time: nothing is known to have changed."""

    def __init__(self, charger: str, name: str, timeout: float) -> None:
        super().__init__(f"the Zigbee2MQTT of {charger} did not answer {name} in {timeout} s")
        self.charger = charger


class BridgeRefused(Exception):
    """Zigbee2MQTT answered with an error; ``str()`` is its own words."""

    def __init__(self, charger: str, name: str, error: str) -> None:
        super().__init__(f"the Zigbee2MQTT bridge of {charger} refused {name}: {error}")
        self.charger = charger
        self.error = error


Key = tuple[str, str, str]
"""Charger, request name, transaction."""


@dataclass
class BridgeClient:
    bus: Bus
    zigbee: dict[str, ZigbeeChannels]
    """Each charger's Zigbee2MQTT."""
    timeout: float
    _waiting: dict[Key, asyncio.Future[BridgeResponse[Any]]] = field(default_factory=dict)

    def register(self) -> None:
        for charger, zigbee in self.zigbee.items():
            for call in zigbee.bridge_calls:
                self.bus.subscribe(call.response, self._answer_for(charger, call.name))

    async def call(self, charger: str, call: BridgeCall[Q, D], request: Q) -> D | None:
        """Zigbee2MQTT's answer's data; raises :class:`BridgeSilent` or :class:`BridgeRefused`.

        ``BusUnavailable`` (no broker) goes to the caller as it is.
        """
        transaction = new_transaction()
        asked = request.model_copy(update={"transaction": transaction})
        key = (charger, call.name, transaction)
        future: asyncio.Future[BridgeResponse[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            await self.bus.send(call.request, asked, wait=self.timeout)
            async with asyncio.timeout(self.timeout):
                response = await future
        except TimeoutError as exc:
            raise BridgeSilent(charger, call.name, self.timeout) from exc
        finally:
            self._waiting.pop(key, None)
        if not response.ok:
            raise BridgeRefused(charger, call.name, response.error or "no reason given")
        log.info("bridge answered", extra={"charger": charger, "request": call.name})
        data: D | None = response.data
        return data

    def _answer_for(
        self, charger: str, name: str
    ) -> Callable[[Delivery[BridgeResponse[Any]]], Awaitable[None]]:
        async def answer(delivery: Delivery[BridgeResponse[Any]]) -> None:
            transaction = delivery.body.transaction
            future = self._waiting.get((charger, name, str(transaction)))
            if future is not None and not future.done():
                future.set_result(delivery.body)

        return answer
