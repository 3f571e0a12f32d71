"""Is each collector alive? Its breath frames and its last will say so.

Two kinds of evidence, each raising ``collector_offline`` for the charger:

* **Breaths.** A collector sends a breath every T1 (MQTT v5 request); this service answers
  each with a :class:`BreathAck` and re-arms a timer for ``misses x T1`` (T1 as the breath
  says). When the timer fires the collector has gone silent: hung (SIGSTOP), cut off, or
  its breaths lost on the way. The bulletin clears at the next breath.
* **Its last will.** The collector's retained status goes ``offline`` when its connection
  dies: at once when the socket closes (killed, crashed), at 1.5 x keep-alive when it hangs.
  The bulletin clears when the status says ``online`` again, or at the next breath.

Breaths come through a shared subscription, so each replica hears only some of them. The
last breath is therefore kept in the database, and a timer that fires checks it there
before raising: another replica may have heard a breath this one did not.

While this service's own broker link is down it hears no breath from anyone: a dead broker
is not every collector dead. The deadlines are not decided then, and start afresh when the
link comes back, plus ``rejoin`` seconds: after a broker restart each collector comes back
on its own reconnection backoff, and one that reconnects a few seconds after this service
was never silent. (Not on the first connection: collectors already connected then.)

Nor is a start or a restart a storm (quiet starts). A collector not heard (no breath, no
``online`` status) since this service started is "not yet seen": its missing breaths and its
``offline`` status are not announced before ``startup_grace`` has passed since the start, so
that a station whose parts start in any order, or a restart of this service, raises nothing.
A collector that says ``offline`` with ``stopped`` stopped on purpose (SIGTERM: an update, a
restart): it is not yet seen again, and ``collector_offline`` (reason ``stopped``) waits the
same grace for it to come back. A collector seen since the start that dies is announced as
always: at once by its last will, after ``misses x T1`` by its breaths (invariant 4 of
``docs/invariants.md``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from station_faults.announcer import FaultAnnouncer
from station_faults.board import ActiveBulletins
from station_faults.episodes import EpisodeStore, Sighting
from station_faults.metrics import DropRefusal, FaultMetrics, MessageKind
from station_faults.models import CollectorLink
from station_protocol import channels
from station_protocol.catalogue import Catalogue
from station_protocol.faults import FaultCode
from station_protocol.messages import BreathAck, CollectorBreath, ServiceStatus
from station_protocol.zigbee import OnlineState
from station_runtime.bus import Bus, by_topic
from station_runtime.clock import Clock
from station_runtime.deliveries import Delivery
from station_runtime.tasks import cancel_until_done

log = logging.getLogger("station.faults.liveness")

SHARE_GROUP = "faults"
OFFLINE = FaultCode.COLLECTOR_OFFLINE.value
BY_LAST_WILL = "last_will"
BY_MISSED_BREATHS = "breaths_missed"
BY_STOP = "stopped"
EARLY = timedelta(milliseconds=5)
"""A timer that fires this much before the shared deadline still counts as on time."""


@dataclass
class CollectorLiveness:
    bus: Bus
    store: EpisodeStore
    announcer: FaultAnnouncer
    board: ActiveBulletins
    catalogue: Catalogue
    metrics: FaultMetrics
    clock: Clock
    misses: int
    forget_after: timedelta
    """A collector silent for longer than this when the service starts is not watched."""
    rejoin: timedelta = timedelta(0)
    """How long collectors may take to reconnect after the broker comes back."""
    startup_grace: timedelta = timedelta(0)
    """How long a collector not yet seen (since the start, or since it stopped on purpose)
    may stay silent before it is announced offline."""
    _started_at: datetime | None = None
    _seen: set[str] = field(default_factory=set)
    """Chargers whose collector breathed or said ``online`` since this process started."""
    _stopped_at: dict[str, datetime] = field(default_factory=dict)
    """When each collector said it stopped on purpose, until it is back."""
    _held: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """An ``offline`` status not announced yet (its reason, when it came): not yet seen."""
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _heard: set[str] = field(default_factory=set)
    """Chargers that breathed since this process started."""
    _raised: set[str] = field(default_factory=set)
    """Chargers this process said are offline, whether or not the bulletin reached the broker."""
    _unwritten: dict[str, tuple[CollectorBreath, datetime]] = field(default_factory=dict)
    """The newest breath of each collector not yet in the database, and when it came."""
    _writers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _online_at: dict[str, datetime] = field(default_factory=dict)
    """When each collector's status last said ``online``: a new life, to be heard from anew."""
    _listening_since: datetime | None = None
    """When the broker link last came up, plus the allowance for collectors to rejoin."""

    def register(self) -> None:
        self._started_at = self.clock()
        # A lane per collector's topic: its breaths are answered in order, without waiting
        # for anyone's database write (a breath is recorded off the lane, see _record).
        self.bus.serve(
            channels.COLLECTOR_BREATH,
            self.on_breath,
            share=SHARE_GROUP,
            lane=by_topic,
            kind=MessageKind.BREATH,
            after_reply=self.after_breath,
        )
        # A deleted status is no news about the collector: no on_clear.
        self.bus.subscribe(
            channels.COLLECTOR_STATUS, self.on_status, lane=by_topic, kind=MessageKind.STATUS
        )
        self.bus.on_connect(self.listening)

    async def listening(self) -> None:
        """A bus hook: the link is (back) up, so every breath deadline starts afresh now."""
        rejoining = self._listening_since is not None
        self._listening_since = self.clock() + (self.rejoin if rejoining else timedelta(0))
        await self.watch_known()

    async def watch_known(self) -> None:
        """After a restart: expect a breath from every collector that breathed lately."""
        now = self.clock()
        allowance = max(self._listening_since or now, now) - now
        for link in await asyncio.to_thread(self.store.links):
            if now - link.last_breath_at <= self.forget_after:
                self._arm(link.charger, self.misses * link.t1 + allowance.total_seconds())

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await cancel_until_done([*self._tasks, *self._writers.values()])

    # ------------------------------------------------------------------ breaths

    async def on_breath(self, delivery: Delivery[CollectorBreath]) -> BreathAck | None:
        """The answer to a breath, which the bus sends before :meth:`after_breath` runs."""
        breath = delivery.body
        if breath.charger != delivery.params["charger"]:
            self.bus.drop(delivery, DropRefusal.TOPIC_MISMATCH, MessageKind.BREATH)
            return None
        # Counted before it goes, so that whoever has the answer sees it counted.
        self.metrics.breaths_answered.labels(breath.charger).inc()
        return BreathAck(charger=breath.charger, seq=breath.seq)

    async def after_breath(self, delivery: Delivery[CollectorBreath], _: BreathAck) -> None:
        """The breath answered: the collector's deadline starts afresh, every replica learns
        of the breath, and a bulletin saying the collector is offline goes."""
        breath = delivery.body
        self._arm(breath.charger, self.misses * breath.t1)
        self._record(breath)
        # Not the end of a stop it said (only its ``online`` is): its last breath and that
        # ``offline`` come in different lanes, in either order.
        self._seen.add(breath.charger)
        first = breath.charger not in self._heard
        self._heard.add(breath.charger)
        raised = breath.charger in self._raised
        if first or raised or self.board.get(breath.charger, OFFLINE) is not None:
            self._raised.discard(breath.charger)
            await self.announcer.clear_fault(breath.charger, OFFLINE)

    def _record(self, breath: CollectorBreath) -> None:
        """Keep the breath in the database for the other replicas, off the breath's lane: the
        next breath is answered without waiting for this write, and under a slow database
        only the newest breath of each collector waits to be written."""
        self._unwritten[breath.charger] = (breath, self.clock())
        if breath.charger not in self._writers:
            task = asyncio.create_task(self._write(breath.charger), name="breath-writer")
            self._writers[breath.charger] = task

    async def _write(self, charger: str) -> None:
        try:
            while (unwritten := self._unwritten.pop(charger, None)) is not None:
                breath, at = unwritten
                await asyncio.to_thread(
                    self.store.record_breath, charger, breath.seq, breath.t1, at
                )
        finally:
            self._writers.pop(charger, None)

    def _arm(self, charger: str, delay: float) -> None:
        previous = self._timers.pop(charger, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._timers[charger] = loop.call_later(delay, self._on_timer, charger)

    def _quiet_until(self, charger: str) -> datetime | None:
        """Until when a collector not yet seen (since the start, or since it said it stopped on
        purpose) is not announced; ``None`` for one seen since."""
        bounds = [
            stopped + self.startup_grace for stopped in [self._stopped_at.get(charger)] if stopped
        ]
        if charger not in self._seen and self._started_at is not None:
            bounds.append(self._started_at + self.startup_grace)
        return max(bounds, default=None)

    def _on_timer(self, charger: str) -> None:
        self._timers.pop(charger, None)
        task = asyncio.create_task(self._overdue(charger), name=f"breath-overdue-{charger}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _overdue(self, charger: str) -> None:
        try:
            if not self.bus.connected:
                return  # cut off, we hear nobody: the deadline starts afresh on reconnection
            link = await asyncio.to_thread(self.store.link, charger)
            if charger in self._timers:
                return  # a breath came while we looked
            now = self.clock()
            quiet = self._quiet_until(charger)
            if charger in self._held:
                await self._offline_held(charger, quiet, now, link)
                return
            if link is None:
                return
            heard_from = max(
                link.last_breath_at,
                self._listening_since or link.last_breath_at,
                self._online_at.get(charger, link.last_breath_at),
            )
            deadline = heard_from + timedelta(seconds=self.misses * link.t1)
            if quiet is not None:
                deadline = max(deadline, quiet)  # not yet seen: within its grace
            if deadline - now > EARLY:
                # Another replica heard a breath this one did not: wait for the real deadline.
                self._arm(charger, (deadline - now).total_seconds())
                return
            sighting = Sighting(
                code=OFFLINE,
                severity=self.catalogue[OFFLINE].severity.value,
                source=charger,
                charger=charger,
                pile_id=None,
                since=link.last_breath_at,
                detected_at=now,
                detail={
                    "reason": BY_MISSED_BREATHS,
                    "last_seq": str(link.last_seq),
                    "t1": f"{link.t1:g}",
                    "misses": str(self.misses),
                },
            )
            log.warning("collector stopped breathing", extra={"charger": charger})
            self._raised.add(charger)
            await self.announcer.raise_fault(sighting, due=deadline)
        except Exception:
            log.exception("breath check failed", extra={"charger": charger})

    async def _expect_breaths(self, charger: str) -> None:
        """A collector whose connection is (back) up must breathe: watch it from now on.

        Even before its first breath: one that hangs right after (re)connecting would
        otherwise be seen only by its last will, at 1.5 x keep-alive and later. From now, not
        from the deadline its earlier life left: a restarted collector has ``misses x T1``
        to breathe, and is not called silent a moment after it said it is back.
        """
        link = await asyncio.to_thread(self.store.link, charger)
        if link is not None:
            self._arm(charger, self.misses * link.t1)

    # ------------------------------------------------------------------ last will

    async def _offline_held(
        self, charger: str, quiet: datetime | None, now: datetime, link: CollectorLink | None
    ) -> None:
        """The grace of a collector that said ``offline`` while not yet seen has passed."""
        if quiet is not None and quiet - now > EARLY:
            self._arm(charger, (quiet - now).total_seconds())
            return
        reason, since = self._held.pop(charger)
        self._stopped_at.pop(charger, None)
        if link is not None and link.last_breath_at > since + timedelta(seconds=link.t1):
            # It breathed since it said so: alive after all, and judged by its breaths.
            self._arm(charger, self.misses * link.t1)
            return
        await self._announce_offline(charger, reason, since, due=quiet or now)

    async def on_status(self, delivery: Delivery[ServiceStatus]) -> None:
        charger = delivery.params["charger"]
        status = delivery.body
        if status.state is OnlineState.ONLINE:
            self._seen.add(charger)
            self._stopped_at.pop(charger, None)
            self._held.pop(charger, None)
            # Only the fault its status raised: missed breaths clear at the next breath.
            self._online_at[charger] = self.clock()
            for reason in (BY_LAST_WILL, BY_STOP):
                await self.announcer.clear_fault(charger, OFFLINE, only_reason=reason)
            await self._expect_breaths(charger)
            return
        now = self.clock()
        reason = BY_STOP if status.stopped else BY_LAST_WILL
        if status.stopped:
            self._stopped_at[charger] = now
        quiet = self._quiet_until(charger)
        if quiet is not None and quiet > now:
            # Not yet seen (this service just started), or stopped on purpose: it has the
            # start-up grace to come back before it is announced.
            log.info(
                "collector offline, not yet seen: announced if still offline after the grace",
                extra={"charger": charger, "reason": reason},
            )
            self._held[charger] = (reason, now)
            self._arm(charger, (quiet - now).total_seconds())
            return
        await self._announce_offline(charger, reason, now, due=now)

    async def _announce_offline(
        self, charger: str, reason: str, since: datetime, due: datetime
    ) -> None:
        now = self.clock()
        sighting = Sighting(
            code=OFFLINE,
            severity=self.catalogue[OFFLINE].severity.value,
            source=charger,
            charger=charger,
            pile_id=None,
            since=since,
            detected_at=now,
            detail={"reason": reason},
        )
        log.warning("collector connection lost", extra={"charger": charger, "reason": reason})
        self._raised.add(charger)
        await self.announcer.raise_fault(sighting, due=due)
