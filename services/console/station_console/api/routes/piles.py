"""``/api/v1/piles``: pile monitoring, now and over the last days."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from station_console.api.deps import StateDep, known_pile
from station_console.board import PileView
from station_console.history import PileHistory, pile_history

router = APIRouter(prefix="/piles", tags=["monitoring"])


class PileDetail(PileView):
    history: PileHistory
    """State changes, link quality, energy per day, faults and sessions, over the console's
    ``history_days`` (7 by default), oldest first except faults and sessions (newest first)."""


@router.get("")
async def list_piles(state: StateDep) -> list[PileView]:
    """Every pile of the station, in charger and pile order, as the board shows it now."""
    return state.board.views()


@router.get("/{pile_id}")
async def get_pile(state: StateDep, pile_id: str) -> PileDetail:
    known_pile(state, pile_id)
    history = await asyncio.to_thread(
        pile_history,
        state.engine,
        pile_id,
        state.clock(),
        state.settings.history_days,
        state.settings.time_zone,
    )
    return PileDetail(**state.board.view(pile_id).model_dump(), history=history)
