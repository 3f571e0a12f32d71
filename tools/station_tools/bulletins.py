"""The fault bulletins as a display board connected all along sees them.

Shared by the end-to-end fault tests and the detection benchmark: every message on the
retained bulletin topics, in arrival order, timestamped on arrival (``time.monotonic``), so
that a test can say "this bulletin went up and came down, and nothing else did", and a
benchmark can say when a bulletin was on the broker. The feed reconnects when the broker
restarts, as a real board does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
from pydantic import ValidationError

from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_runtime.bus import BrokerAddress
from station_tools import children

log = logging.getLogger("station.tools.bulletins")

FaultKey = tuple[str, str]
"""``(source, code)``"""

RECONNECT_DELAY = 0.2


@dataclass(frozen=True)
class BulletinEvent:
    """One message on a bulletin topic; ``bulletin`` is ``None`` for a withdrawal."""

    at: float
    """``time.monotonic()`` when it arrived here."""
    source: str
    code: str
    bulletin: Bulletin | None
    retained: bool
    """Delivered because it was retained when the feed (re)subscribed, not as news."""

    @property
    def key(self) -> FaultKey:
        return (self.source, self.code)


class BulletinFeed(children.Opened):
    """``async with BulletinFeed(broker_url) as feed``: subscribed once it is entered."""

    def __init__(self, broker_url: str) -> None:
        self.broker = BrokerAddress.parse(broker_url)
        self.events: list[BulletinEvent] = []
        self.unreadable = 0
        self._change = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="bulletin-feed")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def aclose(self) -> None:
        await children.cancel(self._task)

    # -- reading what was seen ---------------------------------------------------------------

    def mark(self) -> int:
        """A point in the feed: ``since(mark)`` is everything that arrived after it."""
        return len(self.events)

    def since(self, mark: int = 0) -> list[BulletinEvent]:
        return self.events[mark:]

    def news_since(self, mark: int = 0) -> list[BulletinEvent]:
        """What arrived after ``mark`` as news (not a retained replay after a reconnect)."""
        return [event for event in self.since(mark) if not event.retained]

    def keys_since(self, mark: int = 0) -> set[FaultKey]:
        """Every fault whose bulletin went up (or changed) after ``mark``."""
        return {event.key for event in self.news_since(mark) if event.bulletin is not None}

    def shown(self) -> dict[FaultKey, Bulletin]:
        """The bulletins up now, as the last message of each topic says."""
        state: dict[FaultKey, Bulletin] = {}
        for event in self.events:
            if event.bulletin is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.bulletin
        return state

    async def raised(
        self, source: str, code: str, *, after: int = 0, timeout: float = 10.0
    ) -> BulletinEvent:
        """The first bulletin of (source, code) that arrived after ``after``."""
        return await self._wait(
            lambda e: e.key == (source, code) and e.bulletin is not None, after, timeout
        )

    async def withdrawn(
        self, source: str, code: str, *, after: int = 0, timeout: float = 10.0
    ) -> BulletinEvent:
        """The first withdrawal of (source, code) that arrived after ``after``."""
        return await self._wait(
            lambda e: e.key == (source, code) and e.bulletin is None, after, timeout
        )

    async def _wait(
        self, match: Callable[[BulletinEvent], bool], after: int, timeout: float
    ) -> BulletinEvent:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if match(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(e.key, e.bulletin is not None) for e in self.events[after:]]
                raise AssertionError(f"no such bulletin message within {timeout} s; saw {seen}")
            change = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), remaining)

    # -- listening ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host, self.broker.port, protocol=aiomqtt.ProtocolVersion.V5
                ) as client:
                    await client.subscribe(channels.FAULT_BULLETIN.filter(), qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        self._record(message, time.monotonic())
            except aiomqtt.MqttError as exc:
                log.info("bulletin feed lost the broker, retrying", extra={"error": str(exc)})
            await asyncio.sleep(RECONNECT_DELAY)

    def _record(self, message: aiomqtt.Message, at: float) -> None:
        found = channels.FAULT_BULLETIN.parse(message.topic.value)
        if found is None:
            return
        key = (found["source"], found["code"])
        payload = message.payload if isinstance(message.payload, bytes) else b""
        bulletin: Bulletin | None = None
        if payload:
            try:
                bulletin = Bulletin.model_validate_json(payload)
            except ValidationError:
                self.unreadable += 1
                return
        self.events.append(BulletinEvent(at, *key, bulletin, bool(message.retain)))
        self._change.set()
        self._change = asyncio.Event()
