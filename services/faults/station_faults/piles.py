"""The piles faults expects, following the console's word on the station's pile set.

The configured layout (setting ``layout``) is only the first pile set: the console's
retained word (``StationPiles``) replaces it whole when it arrives, and every later word
too. An approved pile (``c1-p13`` on a 4 x 12 station) is expected from then on: its
reports raise bulletins and ``station_pile_up`` exports it. A decommissioned pile is
forgotten: its bulletins are withdrawn (nobody is to be sent to repair a pile that is not
there any more), it leaves ``station_pile_up``, and later reports about it are dropped and
counted as ``unknown_pile``. The chargers stay the layout's: a charger is hardware that
comes with its collector, not something the console approves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from station_faults.announcer import FaultAnnouncer
from station_protocol import channels
from station_protocol.ids import Layout, charger_of
from station_runtime.bus import Bus, by_topic
from station_runtime.pile_set import PileSet, PileSetChange

log = logging.getLogger("station.faults.piles")


@dataclass(frozen=True)
class ExpectedPiles:
    """The piles of the pile set in force that stand on one of the layout's chargers."""

    piles: PileSet
    chargers: frozenset[str]

    @classmethod
    def of(cls, layout: Layout) -> ExpectedPiles:
        """Before the console's word: the layout's piles."""
        return cls(PileSet.of(layout.pile_ids()), frozenset(layout.charger_ids()))

    def has_charger(self, charger: str) -> bool:
        return charger in self.chargers

    def has_pile(self, pile_id: str) -> bool:
        return self.has_charger(charger_of(pile_id)) and self.piles.has_pile(pile_id)

    def pile_ids(self) -> list[str]:
        """In charger and pile order."""
        return [pile for pile in self.piles.pile_ids() if self.has_charger(charger_of(pile))]


@dataclass(frozen=True)
class PileFollower:
    """Keeps faults in step with the console's word: what a change of the pile set means
    for the bulletins."""

    bus: Bus
    expected: ExpectedPiles
    announcer: FaultAnnouncer

    def register(self) -> None:
        # In a lane of its own rather than in the bus's message loop: a removal withdraws
        # bulletins (database writes, publishes) and the other messages need not wait.
        self.expected.piles.on_change(self.changed)
        self.bus.subscribe(channels.STATION_PILES, self.expected.piles.on_word, lane=by_topic)

    async def changed(self, change: PileSetChange) -> None:
        for pile_id in change.removed:
            withdrawn = await self.announcer.withdraw_pile(pile_id)
            log.info(
                "pile removed from the station: its faults are over",
                extra={
                    "pile_id": pile_id,
                    "revision": change.revision,
                    "withdrawn": ",".join(episode.code for episode in withdrawn),
                },
            )
        if change.added:
            # A collector may have reported on a new pile before this service heard the
            # console approve it: that report was dropped, but it stands retained. Reading
            # the retained reports again raises it now (the others change nothing).
            log.info(
                "piles added to the station: reading the standing reports again",
                extra={"pile_ids": ",".join(change.added), "revision": change.revision},
            )
            await self.bus.look_again(channels.COLLECTOR_FAULT)
