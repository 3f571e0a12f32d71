"""The piles' retained statuses for the console's board (``station/v1/piles/<pile>/status``).

A change of the board word, the session or the fault codes goes out at once: that is what
an operator watches. Telemetry (power, energy, link quality, last seen) changes with every
pile message, so it is coalesced: a sweep every ``interval`` seconds publishes each pile
whose status moved since it was last said, with its latest values (the last value is never
dropped, only the ones in between).

The status is retained, so it is said again whenever the broker may have lost it (after a
reconnection) and whenever someone else wrote or deleted it (a forged or cleared status
would otherwise stand until the pile next changes): this collector reads its own piles'
status topics and restores its word at the next sweep, so a fight with another writer
costs at most one message per pile per interval.

The piles are the console's pile set: a pile added is said at once (``offline`` until it is
heard); a pile removed has its retained status deleted (an empty retained payload), so that
no board keeps showing a pile the station no longer has.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from station_protocol import channels
from station_protocol.messages import PileStatus
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.deliveries import Cleared, Delivery

log = logging.getLogger("station.collector.status")

Spawn = Callable[[Coroutine[Any, Any, object]], None]
Compose = Callable[[str], PileStatus]

RECENT = 8
"""Statuses remembered per pile, to know our own word when the broker sends it back."""


def _board_key(status: PileStatus) -> tuple[object, ...]:
    """What goes out at once when it changes."""
    return (status.state, status.session_id, tuple(status.faults))


def _key(status: PileStatus) -> dict[str, Any]:
    """Everything but the time it was composed."""
    return status.model_dump(exclude={"updated_at"})


@dataclass
class PileStatuses:
    """What this collector last said of each pile, and when to say it again."""

    bus: Bus
    piles: tuple[str, ...]
    compose: Compose
    """The pile's status now, from the collector's own view of it."""
    spawn: Spawn
    interval: float
    sent: dict[str, PileStatus] = field(default_factory=dict)
    recent: dict[str, deque[PileStatus]] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    """Piles whose retained status someone else wrote or deleted: said again at the sweep."""
    undeleted: set[str] = field(default_factory=set)
    """Removed piles whose retained status the broker may still hold: deleted on reconnection."""

    def changed(self, pile_id: str) -> None:
        """Something about the pile changed: publish now if its board word did."""
        if pile_id not in self.piles:
            return
        status = self.compose(pile_id)
        last = self.sent.get(pile_id)
        if last is None or _board_key(status) != _board_key(last):
            self._send(status)

    def sweep(self) -> None:
        """Publish each pile whose status moved (or was overwritten) since it was last said."""
        if not self.bus.connected:
            return  # said again on reconnection, with what is true then
        for pile_id in self.piles:
            status = self.compose(pile_id)
            last = self.sent.get(pile_id)
            if pile_id in self.stale or last is None or _key(status) != _key(last):
                self._send(status)

    async def run(self) -> None:
        """Sweep every ``interval`` until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sweep()
            except Exception:
                # One pile's bad fact must not silence every pile's status.
                log.exception("status sweep failed")

    async def republish(self) -> None:
        """After a (re)connection: every pile's status, as it is now (the broker may have
        lost what was said while the connection was down, or never heard it)."""
        for pile_id in self.piles:
            self._send(self.compose(pile_id))
        for pile_id in sorted(self.undeleted):
            await self._delete(pile_id)

    def add(self, pile_id: str) -> None:
        """A pile the console added: said at once, then kept up as any other."""
        if pile_id not in self.piles:
            self.piles = (*self.piles, pile_id)
        self.changed(pile_id)

    def remove(self, pile_id: str) -> None:
        """A pile the collector no longer serves: nothing more is said of it, and its
        retained status is deleted."""
        self.piles = tuple(pile for pile in self.piles if pile != pile_id)
        self.sent.pop(pile_id, None)
        self.recent.pop(pile_id, None)
        self.stale.discard(pile_id)
        self.spawn(self._delete(pile_id))

    async def on_echo(self, delivery: Delivery[PileStatus]) -> None:
        """A status on one of our piles' topics: ours coming back, or someone else's word.

        One sent from the broker's store on subscribing is an earlier run's (or a forger's
        while we were away): the republish on connection overwrites it anyway.
        """
        if delivery.retained:
            return
        pile_id = delivery.params["pile"]
        if delivery.body not in self.recent.get(pile_id, ()):
            log.warning(
                "pile status written by someone else: said again", extra={"pile_id": pile_id}
            )
            self.stale.add(pile_id)

    async def on_cleared(self, cleared: Cleared) -> None:
        """Our retained status was deleted: said again at the next sweep."""
        pile_id = cleared.params["pile"]
        if pile_id in self.piles:
            self.stale.add(pile_id)

    def _send(self, status: PileStatus) -> None:
        pile_id = status.pile_id
        self.sent[pile_id] = status
        self.recent.setdefault(pile_id, deque(maxlen=RECENT)).append(status)
        self.stale.discard(pile_id)
        self.spawn(self._publish(status))

    async def _publish(self, status: PileStatus) -> None:
        try:
            await self.bus.send(channels.PILE_STATUS, status, pile=status.pile_id)
        except BusUnavailable:
            # Said again with what is true then, once the bus has reconnected.
            log.warning(
                "broker unavailable, pile status not said", extra={"pile_id": status.pile_id}
            )

    async def _delete(self, pile_id: str) -> None:
        self.undeleted.discard(pile_id)
        if pile_id in self.piles:
            return  # added back meanwhile: its status stands
        try:
            await self.bus.clear(channels.PILE_STATUS, pile=pile_id)
        except BusUnavailable:
            self.undeleted.add(pile_id)
            log.warning(
                "broker unavailable, status of a removed pile not deleted",
                extra={"pile_id": pile_id},
            )
