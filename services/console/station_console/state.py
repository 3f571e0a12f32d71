"""What the console's routes work with while it runs (the skeleton keeps it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Engine

from station_console.board import StationBoard
from station_console.core.config import Settings
from station_console.feed import BoardFeed
from station_console.history import DayTotals, HistoryWriter, day_totals
from station_console.metrics import ConsoleMetrics
from station_console.owners import Owners
from station_console.pile_registry import PileRegistry
from station_console.registrations import RegistrationDesk
from station_protocol.messages import PileBoardState
from station_runtime.bus import Bus
from station_runtime.clock import Clock


@dataclass(frozen=True)
class ConsoleState:
    settings: Settings
    clock: Clock
    bus: Bus
    engine: Engine
    board: StationBoard
    feed: BoardFeed
    history: HistoryWriter
    owners: Owners
    metrics: ConsoleMetrics
    piles: PileRegistry
    registrations: RegistrationDesk

    async def totals(self) -> Totals:
        zone = self.settings.time_zone
        day = await asyncio.to_thread(day_totals, self.engine, self.clock(), zone)
        charging = sum(1 for view in self.board.views() if view.state is PileBoardState.CHARGING)
        return Totals(**day.model_dump(), charging_now=charging)


class Totals(DayTotals):
    """Today's completed sessions, their energy and revenue, and the piles charging now."""

    charging_now: int
