"""Breath frames and disconnect detection (the heart of the station specification).

Every T1 the collector sends ``{"breath": seq}`` to each pile and a CollectorBreath to the
local server. A pile is disconnected when no ``breath_ack`` has come for ``misses x T1``
since its last one (or since watching began), or when Zigbee2MQTT marks it offline; it is
reconnected at its next answer. The deadline is a timer per pile (``loop.call_at``), not a
check at the next tick, so that the bulletin goes out within milliseconds of the deadline.

While the collector's own broker link is down it hears nothing from anyone: detection is
suspended (a dead broker is not 48 dead piles) and every deadline starts afresh on reconnect.
The local server's deadline gets ``rejoin`` seconds more then: after a broker restart every
client comes back on its own backoff, and a local server that reconnects a few seconds after
this collector was never unreachable from it.
While the charger's Zigbee2MQTT bridge is offline, its piles are down because of the bridge:
one ``zigbee_bridge_offline`` fault, not one per pile.

Nor is a collector that was not running (SIGSTOP, a stalled event loop, a suspended VM) a
collector whose piles died: the answers that came meanwhile wait unread in its socket, and
the deadlines that passed meanwhile fire before they are read. The breath loop notes each
time it runs; a deadline that finds the loop silent for longer than ``DEAF_AFTER`` periods
starts afresh instead of blaming the pile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from station_collector.faults import FaultBoard
from station_collector.metrics import CollectorMetrics
from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.faults import FaultCode
from station_protocol.messages import CollectorBreath
from station_protocol.zigbee import BreathCommand
from station_runtime.bus import Bus, BusUnavailable

log = logging.getLogger("station.collector.watch")

Spawn = Callable[[Coroutine[Any, Any, object]], None]

DEAF_AFTER = 1.5
"""Breath periods without the breath loop running after which this process was not running."""


@dataclass
class PileWatch:
    pile_id: str
    last_seq: int | None = None
    last_ack: float | None = None
    last_ack_wall: datetime | None = None
    watching_since: datetime = field(default_factory=lambda: datetime.now(UTC))
    breath_missing: bool = False
    zigbee_offline: bool = False
    timer: asyncio.TimerHandle | None = None

    @property
    def down(self) -> bool:
        return self.breath_missing or self.zigbee_offline

    @property
    def answered(self) -> bool:
        """Has it answered a breath of this collector's? Until then it is not known to be up."""
        return self.last_seq is not None


@dataclass
class Watch:
    """Breathes to the piles and the local server, and decides who is disconnected."""

    charger: str
    t1: float
    misses: int
    bus: Bus
    zigbee: ZigbeeChannels
    board: FaultBoard
    metrics: CollectorMetrics
    spawn: Spawn
    piles: dict[str, PileWatch] = field(default_factory=dict)
    seq: int = 0
    sent: dict[int, float] = field(default_factory=dict)
    bridge_online: bool = True
    suspended: bool = True
    server_last_ack: float | None = None
    server_timer: asyncio.TimerHandle | None = None
    awake_at: float | None = None
    """When the breath loop last ran (loop time)."""
    rejoin: float = 0.0
    """How long other clients may take to reconnect after the broker comes back (seconds)."""

    @classmethod
    def of(cls, piles: list[str], **kwargs: Any) -> Watch:
        watch = cls(**kwargs)
        watch.piles = {pile: PileWatch(pile) for pile in piles}
        return watch

    @property
    def grace(self) -> float:
        return self.misses * self.t1

    def is_up(self, pile_id: str) -> bool:
        """Answers breath frames: it has answered, none is overdue, and its bridge is online.

        A pile this collector has not heard yet (just started, or the piles came up later)
        is not up: a charge never starts on a pile that may be dead.
        """
        pile = self.piles.get(pile_id)
        return pile is not None and self._up(pile)

    def _up(self, pile: PileWatch) -> bool:
        return pile.answered and not pile.down and self.bridge_online

    # -- the breath loop -------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        while True:
            try:
                await self._tick(loop.time())
            except Exception:
                # The heart of the station never stops beating over one bad breath.
                log.exception("breath failed", extra={"collector": self.charger})
            tick += self.t1
            now = loop.time()
            if tick < now:
                # After a stall, skip the breaths that were not sent rather than burst them.
                tick += math.ceil((now - tick) / self.t1) * self.t1
            await asyncio.sleep(tick - now)

    async def _tick(self, now: float) -> None:
        deaf = self._deaf(now)
        self.awake_at = now
        if self.bus.connected:
            self._resume(force=deaf, rejoining=self.suspended)
            await self._breathe(now)
        else:
            self._suspend()

    def _deaf(self, now: float) -> bool:
        """Has this process not been running lately (so it could not hear anyone)?"""
        return self.awake_at is not None and now - self.awake_at > DEAF_AFTER * self.t1

    async def _breathe(self, now: float) -> None:
        self.seq += 1
        self.sent[self.seq] = now
        self.sent.pop(self.seq - self.misses - 2, None)
        breath = BreathCommand(breath=self.seq)
        for pile in self.piles:
            with contextlib.suppress(BusUnavailable):
                # QoS 0: a breath that is lost is a miss, which is what the watch measures.
                await self.bus.send(self.zigbee.pile_set, breath, qos=0, wait=self.t1, pile=pile)
        self.spawn(self._breathe_server(self.seq, now))

    async def _breathe_server(self, seq: int, sent: float) -> None:
        breath = CollectorBreath(
            charger=self.charger, seq=seq, sent_at=datetime.now(UTC), t1=self.t1
        )
        ack = await self.bus.ask(
            channels.COLLECTOR_BREATH, breath, timeout=self.grace, quiet=True, charger=self.charger
        )
        if ack is None:
            return
        loop = asyncio.get_running_loop()
        self.metrics.breath_rtt.labels(self.charger, "server").observe(loop.time() - sent)
        self.server_last_ack = loop.time()
        self._arm_server(loop)
        await self.board.clear_fault(self.charger, FaultCode.LOCAL_SERVER_UNREACHABLE)

    # -- what the piles say ----------------------------------------------------------------

    def acked(self, pile_id: str, seq: int) -> None:
        """A pile answered breath ``seq``: it is alive, whatever Zigbee2MQTT last said.

        Zigbee2MQTT sends a device's whole cached state with every message, so a plug or a
        meter reading repeats the last ``breath_ack``: only an answer to a breath we sent
        recently, and not the one we already had, counts.

        Such an answer came through the charger's Zigbee2MQTT, so its bridge is online, whatever
        its retained state says: a last will of an earlier connection of the bridge, delivered
        late (around a broker restart), must not keep the whole charger down.
        """
        pile = self.piles.get(pile_id)
        sent = self.sent.get(seq)
        if pile is None or sent is None or seq == pile.last_seq:
            return
        first = not pile.answered
        if not self.bridge_online:
            log.warning(
                "a pile answered through a bridge said to be offline: the bridge is online",
                extra={"collector": self.charger, "pile_id": pile_id},
            )
            self.bridge(True)
        pile.last_seq = seq
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.metrics.breath_rtt.labels(self.charger, "pile").observe(now - sent)
        pile.last_ack = now
        pile.last_ack_wall = datetime.now(UTC)
        if not self.suspended:
            self._arm(pile, loop)
        if pile.down:
            pile.breath_missing = pile.zigbee_offline = False
            self._changed(pile)
        elif first:
            self._gauge(pile)

    def availability(self, pile_id: str, online: bool) -> None:
        pile = self.piles.get(pile_id)
        if pile is None or pile.zigbee_offline == (not online):
            return
        pile.zigbee_offline = not online
        self._changed(pile, cause="zigbee2mqtt_availability")

    def bridge(self, online: bool) -> None:
        if online == self.bridge_online:
            return
        self.bridge_online = online
        if online:
            self.spawn(self.board.clear_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_OFFLINE))
            self._resume(force=True)
        else:
            self.spawn(self.board.raise_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_OFFLINE))
            for pile in self.piles.values():
                self._cancel(pile)
        for pile in self.piles.values():
            self._gauge(pile)

    # -- deadlines -------------------------------------------------------------------------

    def _arm(self, pile: PileWatch, loop: asyncio.AbstractEventLoop) -> None:
        self._cancel(pile)
        base = pile.last_ack if pile.last_ack is not None else loop.time()
        pile.timer = loop.call_at(base + self.grace, self._expired, pile, base + self.grace)

    def _cancel(self, pile: PileWatch) -> None:
        if pile.timer is not None:
            pile.timer.cancel()
            pile.timer = None

    def _expired(self, pile: PileWatch, deadline: float) -> None:
        pile.timer = None
        if not self.bus.connected or not self.bridge_online or self.suspended:
            return
        loop = asyncio.get_running_loop()
        if self._deaf(loop.time()):
            pile.last_ack = loop.time()
            self._arm(pile, loop)
            return
        self.metrics.detection_latency.labels(self.charger, "breath").observe(
            loop.time() - deadline
        )
        pile.breath_missing = True
        self._changed(pile, cause="no_breath_answer")

    def _changed(self, pile: PileWatch, cause: str = "") -> None:
        self._gauge(pile)
        if pile.down and self.bridge_online:
            since = pile.last_ack_wall or pile.watching_since
            detail = {"cause": cause} if cause else {}
            self.spawn(
                self.board.raise_fault(
                    pile.pile_id, FaultCode.PILE_UNREACHABLE, since=since, detail=detail
                )
            )
        elif not pile.down:
            self.spawn(self.board.clear_fault(pile.pile_id, FaultCode.PILE_UNREACHABLE))

    def _gauge(self, pile: PileWatch) -> None:
        self.metrics.pile_up.labels(self.charger, pile.pile_id).set(1 if self._up(pile) else 0)

    def _suspend(self) -> None:
        if self.suspended:
            return
        self.suspended = True
        for pile in self.piles.values():
            self._cancel(pile)
        if self.server_timer is not None:
            self.server_timer.cancel()

    def _resume(self, force: bool = False, rejoining: bool = False) -> None:
        """Start every deadline afresh: we could not hear anyone while we were cut off.

        ``rejoining``: our own broker link just came back, and the local server's may come
        back up to ``rejoin`` seconds later.
        """
        if not self.suspended and not force:
            return
        self.suspended = False
        loop = asyncio.get_running_loop()
        now = loop.time()
        for pile in self.piles.values():
            if pile.last_ack is None:
                pile.watching_since = datetime.now(UTC)
            pile.last_ack = now
            if self.bridge_online:
                self._arm(pile, loop)
            self._gauge(pile)
        self.server_last_ack = now
        self._arm_server(loop, extra=self.rejoin if rejoining else 0.0)

    def _arm_server(self, loop: asyncio.AbstractEventLoop, extra: float = 0.0) -> None:
        if self.server_timer is not None:
            self.server_timer.cancel()
        base = self.server_last_ack if self.server_last_ack is not None else loop.time()
        self.server_timer = loop.call_at(base + self.grace + extra, self._server_expired)

    def _server_expired(self) -> None:
        if not self.bus.connected or self.suspended:
            return
        loop = asyncio.get_running_loop()
        if self._deaf(loop.time()):
            self.server_last_ack = loop.time()
            self._arm_server(loop)
            return
        self.spawn(
            self.board.raise_fault(
                self.charger,
                FaultCode.LOCAL_SERVER_UNREACHABLE,
                detail={"misses": str(self.misses), "t1": str(self.t1)},
            )
        )

    def close(self) -> None:
        for pile in self.piles.values():
            self._cancel(pile)
        if self.server_timer is not None:
            self.server_timer.cancel()
