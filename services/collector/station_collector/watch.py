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

Nor is a start a storm (quiet starts): a pile, the Zigbee2MQTT bridge or the local server not
heard since this collector started is "not yet seen" for ``startup_grace`` seconds. It is not
up (a pile refuses charges), but it is not reported either: the piles' bridges, the faults
service and the collector come up in any order, and a station starts in up to a minute. Once
the grace is over, what is still unseen is reported: one ``zigbee_bridge_unseen`` for the
charger when none of its piles has answered (or ``zigbee_bridge_offline`` when its bridge says
so), one ``pile_unreachable`` per pile otherwise. A pile that was seen and falls silent is
judged as always, ``misses x T1`` after its last answer (invariant 4 of
``docs/invariants.md``). A local server that says it stopped on purpose (its status
``stopped``: a restart) is not yet seen again, and gets the same grace to come back.

The piles watched are the console's pile set (:meth:`Watch.add`, :meth:`Watch.remove`). A
pile added while the collector runs is not yet seen, and gets ``startup_grace`` of its own
from the moment it was added: an approved pile may still be joining. A removed one is
breathed to no more, and nothing of it is judged again.

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
from station_runtime.tasks import stop_if_cancelled

log = logging.getLogger("station.collector.watch")

Spawn = Callable[[Coroutine[Any, Any, object]], None]


def _unchanged(pile_id: str) -> None:
    """The default listener: nobody to tell."""


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
    quiet_until: float | None = None
    """For a pile added after the start: not reported unseen before this (loop time)."""

    @property
    def down(self) -> bool:
        return self.breath_missing or self.zigbee_offline

    @property
    def answered(self) -> bool:
        """Has it answered a breath of this collector's? Until then it is not known to be up:
        it is "not yet seen"."""
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
    startup_grace: float = 0.0
    """Seconds from the start in which what has not been heard yet is not reported."""
    quiet_until: float | None = None
    """When the start-up grace ends (loop time); ``None`` until the breath loop runs."""
    started_at: datetime | None = None
    bridge_seen: bool = False
    """The bridge said it is online, or a pile answered through it, since the start."""
    server_seen: bool = False
    """The local server answered a breath since the start."""
    server_quiet_until: float = 0.0
    """A local server that said it stopped on purpose is not reported before this (loop time)."""
    grace_timer: asyncio.TimerHandle | None = None
    on_change: Callable[[str], None] = _unchanged
    """Told a pile whose up or seen may have changed (its board status shows it)."""

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

    def seen(self, pile_id: str) -> bool:
        """Has the pile answered since this collector started? If not, it is not yet seen."""
        pile = self.piles.get(pile_id)
        return pile is not None and pile.answered

    def _quiet(self) -> bool:
        """Within the start-up grace: what has not been heard yet is not yet seen, not missing."""
        if self.quiet_until is None:
            return self.startup_grace > 0
        return asyncio.get_running_loop().time() < self.quiet_until

    def _pile_quiet(self, pile: PileWatch) -> bool:
        """A pile added lately, within its own grace: not yet seen, not missing."""
        if pile.quiet_until is None:
            return False
        return asyncio.get_running_loop().time() < pile.quiet_until

    def _unseen_until(self, pile: PileWatch) -> float | None:
        """When a pile not yet seen may first be reported (loop time), if its grace is known."""
        graces = [end for end in (self.quiet_until, pile.quiet_until) if end is not None]
        return max(graces) if graces else None

    def _whole_bridge_unseen(self) -> bool:
        return not any(pile.answered for pile in self.piles.values())

    # -- the breath loop -------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        if self.quiet_until is None:
            self.quiet_until = tick + self.startup_grace
            self.started_at = datetime.now(UTC)
            self.grace_timer = loop.call_at(self.quiet_until, self._grace_over)
        while True:
            try:
                await self._tick(loop.time())
            except Exception:
                # The heart of the station never stops beating over one bad breath.
                log.exception("breath failed", extra={"collector": self.charger})
            # A cancellation a publish's wait_for swallowed (Python 3.11) ends the loop here,
            # or the breath would beat on and hold its owner's shutdown for ever.
            stop_if_cancelled()
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
        # A snapshot: the pile set may change while a breath is being sent.
        for pile in list(self.piles):
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
        self.server_seen = True
        self.server_quiet_until = 0.0
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
        first_of_charger = first and self._whole_bridge_unseen()
        if not self.bridge_seen:
            self._bridge_seen()
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
            # An earlier run's report (adopted from the broker) that this answer disproves.
            self.spawn(self.board.clear_fault(pile_id, FaultCode.PILE_UNREACHABLE))
        if first_of_charger:
            # The charger's Zigbee link is up after all: each pile still silent is its own news.
            self.spawn(self.board.clear_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_UNSEEN))
            for other in self.piles.values():
                if not other.answered and other.down:
                    self._changed(other, cause="never_answered")

    def availability(self, pile_id: str, online: bool) -> None:
        pile = self.piles.get(pile_id)
        if pile is None or pile.zigbee_offline == (not online):
            return
        pile.zigbee_offline = not online
        self._changed(pile, cause="zigbee2mqtt_availability")

    def bridge(self, online: bool) -> None:
        if online and not self.bridge_seen:
            self._bridge_seen()
        if online == self.bridge_online:
            return
        self.bridge_online = online
        if online:
            self.spawn(self.board.clear_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_OFFLINE))
            self._resume(force=True)
        else:
            if self.bridge_seen or not self._quiet():
                self._bridge_offline()
            else:
                # Most likely the last will of the bridge's earlier life, retained: it may
                # be starting. Said after the start-up grace if it is still offline then.
                log.info(
                    "Zigbee2MQTT bridge not yet seen online",
                    extra={"collector": self.charger},
                )
            for pile in self.piles.values():
                self._cancel(pile)
        for pile in self.piles.values():
            self._gauge(pile)

    def _bridge_seen(self) -> None:
        self.bridge_seen = True
        if self.bridge_online:
            # An earlier run's report (adopted from the broker) that the bridge disproves.
            self.spawn(self.board.clear_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_OFFLINE))

    def _bridge_offline(self) -> None:
        """One fault for the charger, which also says why its piles are unseen."""
        self.spawn(self.board.clear_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_UNSEEN))
        self.spawn(self.board.raise_fault(self.charger, FaultCode.ZIGBEE_BRIDGE_OFFLINE))

    def _grace_over(self) -> None:
        """The start-up grace is over: a bridge that has said only ``offline`` since the start
        is reported now (the piles not yet seen are, by their own deadlines)."""
        self.grace_timer = None
        if self.bridge_online:
            return
        loop = asyncio.get_running_loop()
        if not self.bus.connected or self.suspended or self._deaf(loop.time()):
            # Deaf or cut off: it may have said online meanwhile; look again a little later.
            self.grace_timer = loop.call_later(self.grace, self._grace_over)
            return
        self._bridge_offline()

    def local_server_status(self, online: bool, stopped: bool) -> None:
        """The local server's own status: stopped on purpose (a restart, an update), it is
        not yet seen again, and its breaths are not missed for ``startup_grace`` seconds."""
        if online or not stopped:
            return  # a crash is its missing answers' news, judged as always
        loop = asyncio.get_running_loop()
        self.server_quiet_until = loop.time() + self.startup_grace
        log.info("local server stopped on purpose", extra={"collector": self.charger})
        if not self.suspended:
            self._arm_server(loop)

    # -- deadlines -------------------------------------------------------------------------

    def _arm(self, pile: PileWatch, loop: asyncio.AbstractEventLoop) -> None:
        self._cancel(pile)
        base = pile.last_ack if pile.last_ack is not None else loop.time()
        deadline = base + self.grace
        unseen_until = self._unseen_until(pile)
        if not pile.answered and unseen_until is not None:
            deadline = max(deadline, unseen_until)  # not yet seen: not missed in the grace
        pile.timer = loop.call_at(deadline, self._expired, pile, deadline)

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
            if not pile.answered:
                self._unseen(pile, cause)
                return
            since = pile.last_ack_wall or pile.watching_since
            detail = {"cause": cause} if cause else {}
            self.spawn(
                self.board.raise_fault(
                    pile.pile_id, FaultCode.PILE_UNREACHABLE, since=since, detail=detail
                )
            )
        elif not pile.down:
            self.spawn(self.board.clear_fault(pile.pile_id, FaultCode.PILE_UNREACHABLE))

    def _unseen(self, pile: PileWatch, cause: str) -> None:
        """A pile not heard since the start is down: nothing during the start-up grace; after
        it, one bulletin for the charger when none of its piles was heard, else its own."""
        if self._quiet() or self._pile_quiet(pile):
            return
        if self._whole_bridge_unseen():
            self.spawn(
                self.board.raise_fault(
                    self.charger,
                    FaultCode.ZIGBEE_BRIDGE_UNSEEN,
                    since=self.started_at or pile.watching_since,
                    detail={"piles": str(len(self.piles))},
                )
            )
            return
        detail = {"cause": "never_answered" if cause == "no_breath_answer" else cause}
        since = pile.watching_since if pile.quiet_until is not None else self.started_at
        self.spawn(
            self.board.raise_fault(
                pile.pile_id,
                FaultCode.PILE_UNREACHABLE,
                since=since or pile.watching_since,
                detail={key: value for key, value in detail.items() if value},
            )
        )

    def _gauge(self, pile: PileWatch) -> None:
        self.metrics.pile_up.labels(self.charger, pile.pile_id).set(1 if self._up(pile) else 0)
        self.metrics.pile_seen.labels(self.charger, pile.pile_id).set(1 if pile.answered else 0)
        self.on_change(pile.pile_id)

    def add(self, pile_id: str) -> None:
        """Watch a pile the console added: breathed to from the next breath on, not yet seen,
        and not reported unseen within ``startup_grace`` of now."""
        if pile_id in self.piles:
            return
        pile = PileWatch(pile_id)
        self.piles[pile_id] = pile
        if self.quiet_until is None:
            return  # not started yet: it is one of the piles the start's grace covers
        loop = asyncio.get_running_loop()
        pile.quiet_until = loop.time() + self.startup_grace
        if not self.suspended and self.bridge_online:
            self._arm(pile, loop)
        self._gauge(pile)

    def remove(self, pile_id: str) -> None:
        """Watch a pile no more: no breath, no deadline, no judgement, no gauges."""
        pile = self.piles.pop(pile_id, None)
        if pile is None:
            return
        self._cancel(pile)
        for gauge in (self.metrics.pile_up, self.metrics.pile_seen):
            with contextlib.suppress(KeyError):
                gauge.remove(self.charger, pile_id)

    def recheck(self, pile_id: str) -> None:
        """Say again whether the pile is down (back from maintenance, where its collector
        did not report it): a pile still switched off is reported now."""
        pile = self.piles.get(pile_id)
        if pile is not None and pile.down and not self.suspended:
            cause = "no_breath_answer" if pile.breath_missing else "zigbee2mqtt_availability"
            self._changed(pile, cause=cause)

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
        deadline = max(base + self.grace + extra, self.server_quiet_until)
        if not self.server_seen and self.quiet_until is not None:
            deadline = max(deadline, self.quiet_until)  # not yet seen since the start
        self.server_timer = loop.call_at(deadline, self._server_expired)

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
        if self.grace_timer is not None:
            self.grace_timer.cancel()
