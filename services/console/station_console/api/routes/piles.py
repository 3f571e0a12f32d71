"""``/api/v1/piles``: pile monitoring, now and over the last days."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from station_console import actions
from station_console.api.deps import StateDep, Who, known_pile
from station_console.api.problems import Problem
from station_console.board import PileView
from station_console.history import PileHistory, pile_history
from station_console.pile_registry import NoSuchPile

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


class Decommissioning(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    who: Who = "operator"


class Decommissioned(BaseModel):
    pile_id: str
    revision: int
    """The revision of the station's pile set without the pile."""


@router.delete("/{pile_id}")
async def decommission(
    state: StateDep, pile_id: str, body: Decommissioning | None = None
) -> Decommissioned:
    """The pile leaves the station: no longer breathed to, expected or billed. Refused (409)
    while a session runs on it; its history (sessions, records, faults) stays."""
    known_pile(state, pile_id)
    try:
        word = await actions.decommission(state, pile_id, (body or Decommissioning()).who)
    except actions.SessionRunning as running:
        raise Problem(409, str(running), reason="session_running") from running
    except NoSuchPile as gone:
        raise Problem(404, f"no pile {gone} at this station") from gone
    return Decommissioned(pile_id=pile_id, revision=word.revision)
