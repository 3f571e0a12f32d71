"""Which of the collector's piles are in maintenance: the console's retained word.

The word is retained on ``station/v1/piles/<pile>/maintenance``, so a restarted collector
reads it again on subscribing. Only the broker's retained word decides: a live message on
the topic (which anyone who may publish there could send without retaining it) only makes
the collector look again at what the broker retains (:meth:`Bus.look_again`), so a forged
message that is not retained leaves nothing behind. A deleted word (an empty retained
payload) lifts maintenance, once the broker confirms nothing else is retained there.

A pile the console adds is followed from then on (its retained word is asked for at once); a
pile it removes stays followed, so that its word is known if it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from station_protocol import channels
from station_protocol.messages import PileMaintenance
from station_runtime.bus import Bus
from station_runtime.deliveries import Cleared, Delivery

log = logging.getLogger("station.collector.maintenance")

Spawn = Callable[[Coroutine[Any, Any, object]], None]

TOPIC_MISMATCH = "topic_mismatch"
"""The drop reason of a word whose ``pile_id`` is not its topic's pile."""
CONFIRM_LIFT = 0.5
"""Seconds to wait, after a deleted word, for a retained one the broker may still hold."""


@dataclass
class Maintenance:
    bus: Bus
    piles: tuple[str, ...]
    on_change: Callable[[str, bool], None]
    """Called with the pile and whether it is now in maintenance, when that changes."""
    spawn: Spawn
    words: dict[str, PileMaintenance] = field(default_factory=dict)
    """The active word of each pile in maintenance."""
    heard: dict[str, int] = field(default_factory=dict)
    """Retained words applied per pile, so that a lift waiting for confirmation can tell
    whether one came meanwhile."""

    def register(self) -> None:
        for pile_id in self.piles:
            self._subscribe(pile_id)

    def add(self, pile_id: str) -> None:
        """Follow the word on a pile added while running: the broker sends its retained word
        on the new subscription (or at the next connection, if there is none now)."""
        if pile_id in self.piles:
            return
        self.piles = (*self.piles, pile_id)
        self._subscribe(pile_id)
        self.spawn(self._look_again(pile_id))

    def _subscribe(self, pile_id: str) -> None:
        self.bus.subscribe(
            channels.PILE_MAINTENANCE,
            self.on_word,
            only={"pile": pile_id},
            on_clear=self.on_cleared,
        )

    def active(self, pile_id: str) -> bool:
        return pile_id in self.words

    async def on_word(self, delivery: Delivery[PileMaintenance]) -> None:
        pile_id, word = delivery.params["pile"], delivery.body
        if word.pile_id != pile_id:
            error = f"pile_id {word.pile_id} on the topic of {pile_id}"
            self.bus.drop(delivery, TOPIC_MISMATCH, channels.PILE_MAINTENANCE.name, error)
            return
        if not delivery.retained:
            self.spawn(self._look_again(pile_id))
            return
        self.heard[pile_id] = self.heard.get(pile_id, 0) + 1
        self._set(pile_id, word if word.active else None)

    async def on_cleared(self, cleared: Cleared) -> None:
        pile_id = cleared.params["pile"]
        if pile_id in self.words:
            self.spawn(self._lift_unless_retained(pile_id, self.heard.get(pile_id, 0)))

    async def _look_again(self, pile_id: str) -> None:
        await self.bus.look_again(channels.PILE_MAINTENANCE, only={"pile": pile_id})

    async def _lift_unless_retained(self, pile_id: str, heard: int) -> None:
        await self._look_again(pile_id)
        await asyncio.sleep(CONFIRM_LIFT)
        if self.heard.get(pile_id, 0) == heard:
            self._set(pile_id, None)

    def _set(self, pile_id: str, word: PileMaintenance | None) -> None:
        was = pile_id in self.words
        if word is None:
            self.words.pop(pile_id, None)
        else:
            self.words[pile_id] = word
        if was != (word is not None):
            log.info(
                "pile in maintenance" if word is not None else "pile back from maintenance",
                extra={"pile_id": pile_id, "reason": word.reason if word is not None else ""},
            )
            self.on_change(pile_id, word is not None)
