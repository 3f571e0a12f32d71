"""Fault announcement: episodes in the database, bulletins on the broker, in that order.

Order within a raise: store the episode, then publish the bulletin, so that nobody reads a
bulletin the history does not hold. A publish while the broker is away is not attempted (nor
waited for, which would hold the lock and, worse, publish what may be stale by then): the
reconciliation puts the broker back in step with the open episodes shortly after it returns,
once the retained reports and statuses have been read again and have cleared what ended
meanwhile.

One lock per fault (source, code) serialises its raise, clear, acknowledgement and
reconciliation, so that a reconciliation never republishes a bulletin whose fault was
cleared while it looked; different faults go side by side, so that twelve piles falling
silent at once do not each wait for the others' database writes. Two replicas are kept apart
by the database (see :mod:`.episodes`) and the next reconciliation.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from station_faults.board import ActiveBulletins
from station_faults.episodes import (
    EpisodeStore,
    RaiseOutcome,
    Sighting,
    episode_detail,
)
from station_faults.metrics import FaultMetrics, LatencyStage
from station_faults.models import FaultEpisode
from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import Catalogue
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.clock import Clock

log = logging.getLogger("station.faults.announcer")


def bulletin_of(episode: FaultEpisode, catalogue: Catalogue) -> Bulletin | None:
    """The bulletin of an episode; ``None`` if its code left the catalogue since."""
    entry = catalogue.get(episode.code)
    if entry is None:
        return None
    return Bulletin.expand(
        entry,
        id=episode.id,
        source=episode.source,
        charger=episode.charger,
        pile_id=episode.pile_id,
        since=episode.since,
        detected_at=episode.detected_at,
        raised_at=episode.raised_at,
        flaps=episode.flaps,
        acked_by=episode.acked_by,
        acked_at=episode.acked_at,
        detail=episode_detail(episode),
    )


@dataclass
class FaultAnnouncer:
    bus: Bus
    store: EpisodeStore
    catalogue: Catalogue
    board: ActiveBulletins
    metrics: FaultMetrics
    clock: Clock
    hold_down: timedelta
    _locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    """A lock per fault while anyone holds or awaits it."""
    _reconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def raise_fault(self, sighting: Sighting, due: datetime) -> FaultEpisode:
        """Announce a fault; ``due`` is when it should have been announced (for latency)."""
        async with self._lock(sighting.source, sighting.code):
            result = await asyncio.to_thread(
                self.store.raise_fault, sighting, self.clock(), self.hold_down
            )
            episode = result.episode
            bulletin = bulletin_of(episode, self.catalogue)
            shown = self.board.get(episode.source, episode.code)
            if bulletin is not None and shown != bulletin:
                await self._publish(bulletin)
            if result.outcome is RaiseOutcome.OPENED:
                self._count_new(episode, due)
            elif result.outcome is RaiseOutcome.REOPENED:
                self.metrics.bulletins_reopened.labels(episode.code).inc()
        if result.outcome is not RaiseOutcome.ALREADY_OPEN:
            log.info(
                "fault raised",
                extra={**_ids(episode), "outcome": result.outcome.value, "flaps": episode.flaps},
            )
        return episode

    async def clear_fault(
        self, source: str, code: str, *, only_reason: str | None = None
    ) -> FaultEpisode | None:
        async with self._lock(source, code):
            episode = await asyncio.to_thread(
                self.store.clear_fault, source, code, self.clock(), only_reason=only_reason
            )
            # With no open episode, a bulletin still up is stale (unless the clear was
            # only for one reason: then the fault stands for another).
            stale = only_reason is None and self.board.get(source, code) is not None
            if episode is not None or stale:
                await self._withdraw(source, code)
        if episode is not None:
            log.info("fault cleared", extra=_ids(episode))
        return episode

    async def withdraw_pile(self, pile_id: str) -> list[FaultEpisode]:
        """A pile the station no longer has: every fault about it is cleared, as a cleared
        report clears it (episode closed, retained bulletin deleted); the episodes closed.

        Open episodes and bulletins shown both count: an episode whose bulletin did not reach
        the broker would otherwise be republished by the next reconciliation, and a bulletin
        another replica raised may not be in this replica's reading of the database yet.
        """
        episodes = await asyncio.to_thread(self.store.open_episodes)
        about = {(e.source, e.code) for e in episodes if _about(pile_id, e.source, e.pile_id)}
        about |= {
            key
            for key, bulletin in self.board.snapshot().items()
            if _about(pile_id, bulletin.source, bulletin.pile_id)
        }
        closed = []
        for source, code in sorted(about):
            episode = await self.clear_fault(source, code)
            if episode is not None:
                closed.append(episode)
        return closed

    async def acknowledge(self, episode_id: str, who: str) -> FaultEpisode | None:
        found = await asyncio.to_thread(self.store.get, episode_id)
        if found is None:
            return None
        async with self._lock(found.source, found.code):
            episode = await asyncio.to_thread(self.store.acknowledge, episode_id, who, self.clock())
            if episode is not None and episode.cleared_at is None:
                bulletin = bulletin_of(episode, self.catalogue)
                if bulletin is not None:
                    await self._publish(bulletin)
        if episode is not None:
            log.info("fault acknowledged", extra={**_ids(episode), "acked_by": episode.acked_by})
        return episode

    async def reconcile(self) -> None:
        """Make the retained bulletins on the broker match the open episodes.

        A first look over everything finds the faults that differ; each is then settled
        under its own lock, from a fresh read, since it may have changed meanwhile.
        """
        shown = self.board.snapshot()
        episodes = await asyncio.to_thread(self.store.open_episodes)
        wanted = {(e.source, e.code): bulletin_of(e, self.catalogue) for e in episodes}
        differ = {key for key, bulletin in wanted.items() if shown.get(key) != bulletin}
        for key in sorted(differ | (shown.keys() - wanted.keys())):
            async with self._lock(*key):
                await self._settle(*key)

    async def _settle(self, source: str, code: str) -> None:
        episode = await asyncio.to_thread(self.store.open_episode, source, code)
        bulletin = None if episode is None else bulletin_of(episode, self.catalogue)
        shown = self.board.get(source, code)
        if bulletin is not None and shown != bulletin:
            log.info("bulletin republished", extra={"source": source, "code": code})
            await self._publish(bulletin)
        elif bulletin is None and shown is not None:
            log.info("stale bulletin withdrawn", extra={"source": source, "code": code})
            await self._withdraw(source, code)

    def _lock(self, source: str, code: str) -> asyncio.Lock:
        lock = self._locks.get((source, code))
        if lock is None:
            lock = self._locks[(source, code)] = asyncio.Lock()
        return lock

    async def connected(self) -> None:
        """A bus hook: after each (re)connection the broker needs reconciling soon."""
        self._reconnected.set()

    async def keep_reconciled(self, interval: float, first_after: float = 1.0) -> None:
        """Reconcile shortly after each (re)connection, and every ``interval`` besides.

        ``first_after`` a (re)connection (see :meth:`connected`), not at once: the retained
        bulletins, reports and statuses arrive again first, so the reconciliation compares
        with the broker as it is and republishes nothing that ended while this service was
        cut off.
        """
        while True:
            try:
                # Not wait_for: on Python 3.11 it can swallow a cancellation that meets the event.
                async with asyncio.timeout(interval):
                    await self._reconnected.wait()
            except TimeoutError:
                pass
            else:
                self._reconnected.clear()
                await asyncio.sleep(first_after)
            try:
                if self.bus.connected:
                    await self.reconcile()
            except BusUnavailable:
                pass
            except Exception:
                log.exception("reconciliation failed")

    async def _publish(self, bulletin: Bulletin) -> None:
        topic = channels.FAULT_BULLETIN.topic(source=bulletin.source, code=bulletin.code)
        if not self.bus.connected:
            log.warning("bulletin not published yet: no broker", extra={"topic": topic})
            return
        try:
            await self.bus.send(
                channels.FAULT_BULLETIN, bulletin, source=bulletin.source, code=bulletin.code
            )
        except BusUnavailable as exc:
            log.warning("bulletin not published yet", extra={"topic": topic, "error": str(exc)})
            return
        self.board.put(bulletin)

    async def _withdraw(self, source: str, code: str) -> None:
        """An empty retained message deletes the retained bulletin on the broker."""
        topic = channels.FAULT_BULLETIN.topic(source=source, code=code)
        if not self.bus.connected:
            log.warning("bulletin not withdrawn yet: no broker", extra={"topic": topic})
            return
        try:
            await self.bus.clear(channels.FAULT_BULLETIN, source=source, code=code)
        except BusUnavailable as exc:
            log.warning("bulletin not withdrawn yet", extra={"topic": topic, "error": str(exc)})
            return
        self.board.remove(source, code)

    def _count_new(self, episode: FaultEpisode, due: datetime) -> None:
        self.metrics.bulletins_raised.labels(episode.code).inc()
        detect = (episode.detected_at - episode.since).total_seconds()
        self.metrics.latency(LatencyStage.DETECT, episode.code, detect)
        publish = (self.clock() - due).total_seconds()
        self.metrics.latency(LatencyStage.PUBLISH, episode.code, publish)


def _about(pile_id: str, source: str, about_pile: str | None) -> bool:
    """A fault is about the pile if it names the pile, or the pile is its source."""
    return pile_id in (source, about_pile)


def _ids(episode: FaultEpisode) -> dict[str, str | None]:
    return {
        "episode_id": episode.id,
        "code": episode.code,
        "source": episode.source,
        "charger": episode.charger,
        "pile_id": episode.pile_id,
    }
