"""What the console hears: every retained word the board is made of, and its history.

Each handler checks that a message is about a pile of this station and that its topic and
body agree; a message that is not is dropped and counted (``station_console_refused_
messages_total``), never shown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from station_console.board import BULLETINS, StationBoard
from station_console.feed import TOTALS, BoardFeed
from station_console.history import (
    HistoryWriter,
    bucket_of,
    fault_cleared,
    fault_raised,
    link_sampled,
    session_completed,
    state_changed,
)
from station_console.models import FaultEntry, SessionEntry
from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.messages import (
    PileBoardState,
    PileMaintenance,
    PileSession,
    PileStatus,
    ServiceStatus,
    SessionStatus,
    TariffDisplay,
)
from station_protocol.zigbee import OnlineState
from station_runtime.bus import Bus
from station_runtime.clock import Clock
from station_runtime.deliveries import Cleared, Delivery

log = logging.getLogger("station.console")

UNKNOWN_PILE = "unknown_pile"
TOPIC_MISMATCH = "topic_mismatch"


@dataclass
class Listening:
    bus: Bus
    board: StationBoard
    feed: BoardFeed
    history: HistoryWriter
    clock: Clock
    link_bucket: float
    _states: dict[str, PileBoardState] = field(default_factory=dict)

    def register(self) -> None:
        bus = self.bus
        bus.subscribe(channels.COLLECTOR_STATUS, self.on_collector_status)
        bus.subscribe(channels.PILE_STATUS, self.on_pile_status)
        bus.subscribe(channels.PILE_SESSION, self.on_pile_session)
        bus.subscribe(channels.PILE_TARIFF, self.on_pile_tariff)
        bus.subscribe(
            channels.PILE_MAINTENANCE, self.on_maintenance, on_clear=self.on_maintenance_cleared
        )
        bus.subscribe(
            channels.FAULT_BULLETIN, self.on_bulletin, on_clear=self.on_bulletin_withdrawn
        )
        self.board.listeners.append(self.on_board_changed)

    # -- the board changed: tell the pages, remember state changes ------------------------

    def on_board_changed(self, what: str) -> None:
        self.feed.notify(what)
        if what == BULLETINS or not self.board.has_pile(what):
            return
        state = self.board.view(what).state
        if self._states.get(what) != state:
            self._states[what] = state
            self.history.put(state_changed(what, self.clock(), state.value))
            self.feed.notify(TOTALS)  # charging now is part of the day's totals

    # -- handlers ---------------------------------------------------------------------------

    async def on_collector_status(self, delivery: Delivery[ServiceStatus]) -> None:
        charger = delivery.params["charger"]
        self.board.put_collector(charger, delivery.body.state is OnlineState.ONLINE)

    async def on_pile_status(self, delivery: Delivery[PileStatus]) -> None:
        status = delivery.body
        if not self._ours(delivery, status.pile_id, channels.PILE_STATUS.name):
            return
        self.board.put_status(status)
        if status.linkquality is not None:
            at = status.last_seen or self.clock()
            bucket = bucket_of(at, self.link_bucket)
            self.history.put(link_sampled(status.pile_id, bucket, status.linkquality))

    async def on_pile_session(self, delivery: Delivery[PileSession]) -> None:
        session = delivery.body
        if not self._ours(delivery, session.pile_id, channels.PILE_SESSION.name):
            return
        self.board.put_session(session)
        if session.status is SessionStatus.COMPLETED and session.stopped_at is not None:
            entry = SessionEntry(
                session_id=session.session_id,
                pile_id=session.pile_id,
                started_at=session.started_at,
                stopped_at=session.stopped_at,
                stop_reason=session.stop_reason.value if session.stop_reason else None,
                energy=session.total_energy or Decimal(0),
                cost=session.total_cost.incl_vat if session.total_cost else Decimal(0),
            )
            self.history.put(session_completed(entry), totals=True)

    async def on_pile_tariff(self, delivery: Delivery[TariffDisplay]) -> None:
        tariff = delivery.body
        if self._ours(delivery, tariff.pile_id, channels.PILE_TARIFF.name):
            self.board.put_tariff(tariff)

    async def on_maintenance(self, delivery: Delivery[PileMaintenance]) -> None:
        maintenance = delivery.body
        if self._ours(delivery, maintenance.pile_id, channels.PILE_MAINTENANCE.name):
            self.board.put_maintenance(maintenance.pile_id, maintenance)

    async def on_maintenance_cleared(self, cleared: Cleared) -> None:
        pile_id = cleared.params["pile"]
        if self.board.has_pile(pile_id):
            self.board.put_maintenance(pile_id, None)

    async def on_bulletin(self, delivery: Delivery[Bulletin]) -> None:
        bulletin = delivery.body
        if (bulletin.source, bulletin.code) != (delivery.params["source"], delivery.params["code"]):
            self.bus.drop(delivery, TOPIC_MISMATCH, channels.FAULT_BULLETIN.name)
            return
        self.board.put_bulletin(bulletin)
        if bulletin.pile_id is not None and self.board.has_pile(bulletin.pile_id):
            entry = FaultEntry(
                bulletin_id=bulletin.id,
                pile_id=bulletin.pile_id,
                code=bulletin.code,
                severity=bulletin.severity.value,
                raised_at=bulletin.raised_at,
            )
            self.history.put(fault_raised(entry))

    async def on_bulletin_withdrawn(self, cleared: Cleared) -> None:
        gone = self.board.remove_bulletin(cleared.params["source"], cleared.params["code"])
        if gone is not None and gone.pile_id is not None:
            self.history.put(fault_cleared(gone.id, self.clock()))

    def _ours(self, delivery: Delivery[Any], pile_id: str, kind: str) -> bool:
        if delivery.params["pile"] != pile_id:
            self.bus.drop(delivery, TOPIC_MISMATCH, kind)
            return False
        if not self.board.has_pile(pile_id):
            self.bus.drop(delivery, UNKNOWN_PILE, kind)
            return False
        return True
