"""The station's piles as a service follows them: the console's retained word, or the layout.

The console owns the pile set (``station/v1/console/piles``, retained); collectors, faults
and billing follow it, so that a pile approved on the board is breathed to, expected and
billed without a restart, and a decommissioned one is forgotten. Until the console's word
arrives a follower goes by its configured layout (a station whose console has never run,
or a broker that lost its retained messages, still charges on the piles it was built
with); the first word replaces the layout whole.

A deleted pile set (an empty retained payload) is not "no piles": it is ignored, and the
follower keeps the set it has. Only the console's next word changes it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from station_protocol import channels
from station_protocol.ids import charger_of
from station_protocol.messages import StationPiles
from station_runtime.bus import Bus
from station_runtime.deliveries import Delivery

log = logging.getLogger("station.pile_set")


@dataclass(frozen=True)
class PileSetChange:
    """What one word of the console changed, in pile order; ``revision`` is ``None`` for
    the configured layout."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    revision: int | None

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


Listener = Callable[[PileSetChange], Awaitable[None] | None]


@dataclass
class PileSet:
    """The piles a follower serves now; ``charger`` narrows it to one charger's piles."""

    piles: set[str]
    charger: str | None = None
    revision: int | None = None
    """The revision of the console's word in force, ``None`` while the layout is."""
    listeners: list[Listener] = field(default_factory=list)

    @classmethod
    def of(cls, piles: Iterable[str], charger: str | None = None) -> PileSet:
        """A follower's start: its configured piles (all of them, or ``charger``'s)."""
        return cls({pile for pile in piles if _mine(pile, charger)}, charger)

    def __contains__(self, pile: object) -> bool:
        return pile in self.piles

    def __len__(self) -> int:
        return len(self.piles)

    def has_pile(self, pile: str) -> bool:
        return pile in self.piles

    def pile_ids(self) -> list[str]:
        """In charger and pile order."""
        return sorted(self.piles, key=pile_order)

    def piles_of(self, charger: str) -> list[str]:
        return [pile for pile in self.pile_ids() if charger_of(pile) == charger]

    def on_change(self, listener: Listener) -> None:
        """``listener`` hears every change after it is applied (sync or async)."""
        self.listeners.append(listener)

    def register(self, bus: Bus) -> None:
        bus.subscribe(channels.STATION_PILES, self.on_word)

    async def on_word(self, delivery: Delivery[StationPiles]) -> None:
        await self.apply(delivery.body)

    async def apply(self, word: StationPiles) -> PileSetChange:
        """Take the console's word as the whole truth; tell the listeners what changed."""
        new = {pile for pile in word.pile_ids() if _mine(pile, self.charger)}
        change = PileSetChange(
            added=tuple(sorted(new - self.piles, key=pile_order)),
            removed=tuple(sorted(self.piles - new, key=pile_order)),
            revision=word.revision,
        )
        self.piles, self.revision = new, word.revision
        if change:
            log.info(
                "pile set changed",
                extra={
                    "revision": word.revision,
                    "added": ",".join(change.added),
                    "removed": ",".join(change.removed),
                    "charger": self.charger,
                },
            )
            for listener in list(self.listeners):
                result = listener(change)
                if inspect.isawaitable(result):
                    await result
        return change


def _mine(pile: str, charger: str | None) -> bool:
    return charger is None or charger_of(pile) == charger


def pile_order(pile_id: str) -> tuple[int, int]:
    """Charger, then pile number: ``c2-p01`` before ``c10-p01``, ``c1-p09`` before ``c1-p10``."""
    charger, number = pile_id.split("-p")
    return int(charger[1:]), int(number)
