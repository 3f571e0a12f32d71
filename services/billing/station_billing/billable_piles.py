"""The piles billing opens sessions on, following the console's word on the station's piles.

The console owns the station's pile set (``StationPiles``, retained): billing opens a
session only on a pile of it, believes readings only of its piles, and shows the tariff on
each of them. Until the word is heard billing goes by its configured layout (setting
``layout``); without a layout it accepts any pile, as it always has, until the console's
first word, after which only the word's piles. Each word replaces the set whole, so a pile
approved on the board (``c1-p13`` on a 4 x 12 station) is billable from then on, and a
decommissioned one takes no new session.

A session already open on a pile that leaves the set is not billing's to cut short: its
readings are still believed and its checkout answered as ever, so that nothing charged is
lost. Only new sessions are refused there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import StationPiles
from station_runtime.bus import Bus, by_topic
from station_runtime.deliveries import Delivery
from station_runtime.pile_set import Listener, PileSet, PileSetChange


@dataclass
class BillablePiles:
    """The pile set billing goes by, or "any pile" before anyone told it otherwise."""

    piles: PileSet
    bounded: bool
    """``False`` only while billing has no layout and has not heard the console."""
    departed: set[str] = field(default_factory=set)
    """Piles that left the set since this process started (a session may still run there).
    Only piles the station really had: a forged stream of made-up piles does not grow it."""

    @classmethod
    def of(cls, layout: Layout | None) -> BillablePiles:
        if layout is None:
            return cls(PileSet(set()), bounded=False)
        return cls(PileSet.of(layout.pile_ids()), bounded=True)

    def accepts(self, pile_id: str) -> bool:
        """May a new session open on the pile, and its readings be believed?"""
        return not self.bounded or self.piles.has_pile(pile_id)

    def has_departed(self, pile_id: str) -> bool:
        """The pile left the set while this process ran, and is not back."""
        return pile_id in self.departed

    def pile_ids(self) -> list[str] | None:
        """The piles of the set, in pile order; ``None`` for any pile."""
        return self.piles.pile_ids() if self.bounded else None

    def on_change(self, listener: Listener) -> None:
        """``listener`` hears each change of the set (not the end of "any pile")."""
        self.piles.on_change(listener)

    def register(self, bus: Bus) -> None:
        # In a lane of its own: a listener publishes (tariff displays) and the bus's message
        # loop need not wait for it.
        self.piles.on_change(self._note_departures)
        bus.subscribe(channels.STATION_PILES, self.on_word, lane=by_topic)

    async def on_word(self, delivery: Delivery[StationPiles]) -> None:
        self.bounded = True
        await self.piles.apply(delivery.body)

    def _note_departures(self, change: PileSetChange) -> None:
        self.departed.update(change.removed)
        self.departed.difference_update(change.added)
