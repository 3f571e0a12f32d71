"""The station's pile set: the console owns it, stores it, and tells the station.

At the first start the set is the configured layout; afterwards only an approved
registration adds a pile and a decommissioning removes one. Every change is one database
transaction that also counts the revision up, and is then published retained on
``station/v1/console/piles``, where collectors, faults and billing follow it. The word is
published again on every connection to the broker, so a broker that lost its retained
messages learns it back from the console.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from station_console.models import PileSetRevision, StationPile
from station_protocol import channels
from station_protocol.ids import Layout, charger_of
from station_protocol.messages import StationPiles
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.deliveries import Cleared, Delivery
from station_runtime.pile_set import pile_order

log = logging.getLogger("station.console.piles")


NOT_THE_CONSOLES = "not_the_consoles"
"""The drop reason of a pile set on the console's topic that is not its own word."""


class PileTaken(Exception):
    """The pile id belongs to a pile of the station now."""


class NoSuchPile(Exception):
    """The pile id is not a pile of the station now."""


# -- storage (run in a worker thread) --------------------------------------------------------


def load_or_seed(engine: Engine, layout: Layout, at: datetime) -> StationPiles:
    """The stored set; at the very first start, the layout stored as revision 0."""
    with Session(engine) as db:
        revision = db.get(PileSetRevision, 1)
        if revision is None:
            for pile_id in layout.pile_ids():
                db.add(StationPile(pile_id=pile_id, charger=charger_of(pile_id), added_at=at))
            revision = PileSetRevision(id=1, revision=0, changed_at=at)
            db.add(revision)
            db.commit()
            log.info("pile set seeded from the layout", extra={"layout": str(layout)})
        return _word(db, revision)


def add_pile(engine: Engine, pile_id: str, ieee_address: str | None, at: datetime) -> StationPiles:
    """Add ``pile_id``; a decommissioned pile's id is given to the new device."""
    with Session(engine) as db:
        row = db.get(StationPile, pile_id)
        if row is not None and row.removed_at is None:
            raise PileTaken(pile_id)
        if row is None:
            row = StationPile(pile_id=pile_id, charger=charger_of(pile_id), added_at=at)
        row.added_at, row.removed_at, row.ieee_address = at, None, ieee_address
        db.add(row)
        return _next(db, at)


def remove_pile(engine: Engine, pile_id: str, at: datetime) -> StationPiles:
    with Session(engine) as db:
        row = db.get(StationPile, pile_id)
        if row is None or row.removed_at is not None:
            raise NoSuchPile(pile_id)
        row.removed_at = at
        db.add(row)
        return _next(db, at)


def _next(db: Session, at: datetime) -> StationPiles:
    revision = db.get(PileSetRevision, 1) or PileSetRevision(id=1, revision=-1, changed_at=at)
    revision.revision += 1
    revision.changed_at = at
    db.add(revision)
    db.commit()
    return _word(db, revision)


def _word(db: Session, revision: PileSetRevision) -> StationPiles:
    rows = db.exec(select(StationPile).where(col(StationPile.removed_at).is_(None))).all()
    chargers: dict[str, list[str]] = {}
    for pile_id in sorted((row.pile_id for row in rows), key=pile_order):
        chargers.setdefault(charger_of(pile_id), []).append(pile_id)
    return StationPiles(
        chargers=chargers, revision=revision.revision, changed_at=revision.changed_at
    )


# -- the set while the console runs ----------------------------------------------------------

Listener = Callable[[StationPiles], None]


@dataclass
class PileRegistry:
    """The set in force, its storage and its word on the bus; one change at a time."""

    engine: Engine
    bus: Bus
    word: StationPiles
    listeners: list[Listener] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, engine: Engine, bus: Bus, layout: Layout, at: datetime) -> PileRegistry:
        word = await asyncio.to_thread(load_or_seed, engine, layout, at)
        registry = cls(engine, bus, word)
        bus.on_connect(registry.publish)
        bus.subscribe(channels.STATION_PILES, registry.on_word, on_clear=registry.on_cleared)
        return registry

    async def on_word(self, delivery: Delivery[StationPiles]) -> None:
        """The console's own word comes back; any other on its topic is put right at once.

        Nobody else may say which piles the station has (the broker's ACL says so in
        secure mode); in open mode a stray or forged word is dropped, counted, and
        overwritten with the console's, so that the followers are back on the truth within
        one round trip.
        """
        if delivery.body == self.word:
            return
        self.bus.drop(delivery, NOT_THE_CONSOLES, channels.STATION_PILES.name)
        await self.publish()

    async def on_cleared(self, cleared: Cleared) -> None:
        self.bus.drop(cleared, NOT_THE_CONSOLES, channels.STATION_PILES.name)
        await self.publish()

    @property
    def lock(self) -> asyncio.Lock:
        """Held by whoever checks and then changes the set (an approval, a decommissioning)."""
        return self._lock

    def has_pile(self, pile_id: str) -> bool:
        return self.word.has_pile(pile_id)

    async def add(self, pile_id: str, ieee_address: str | None, at: datetime) -> StationPiles:
        """Raises :class:`PileTaken`. The caller holds :attr:`lock`."""
        word = await asyncio.to_thread(add_pile, self.engine, pile_id, ieee_address, at)
        await self._changed(word, added=pile_id)
        return word

    async def remove(self, pile_id: str, at: datetime) -> StationPiles:
        """Raises :class:`NoSuchPile`. The caller holds :attr:`lock`."""
        word = await asyncio.to_thread(remove_pile, self.engine, pile_id, at)
        await self._changed(word, removed=pile_id)
        return word

    async def publish(self) -> None:
        """The word in force, retained (also on every connection to the broker)."""
        await self.bus.send(channels.STATION_PILES, self.word)

    async def _changed(self, word: StationPiles, **what: str) -> None:
        self.word = word
        log.info("pile set changed", extra={"revision": word.revision, **what})
        for listener in self.listeners:
            listener(word)
        try:
            await self.publish()
        except BusUnavailable:
            # Stored: the word goes out on the next connection (``on_connect``).
            log.warning("pile set not published yet", extra={"revision": word.revision})
