"""``/api/v1/board``, ``/bulletins``, ``/totals`` and ``/events``: what the board page reads.

The page loads one snapshot and then follows ``/api/v1/events`` (server-sent events): a
``pile`` event whenever a pile's view changes, ``bulletins`` when the active bulletins do,
``totals`` when the day's totals may have, ``piles`` when a pile joined or left the station,
``registrations`` when the devices waiting for an operator did. Nothing polls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from station_console.api.deps import StateDep
from station_console.board import BULLETINS, PILES, PileView
from station_console.core.config import Language
from station_console.feed import REGISTRATIONS, TOTALS
from station_console.registrations import RegistrationView
from station_console.state import ConsoleState, Totals
from station_protocol.bulletins import Bulletin

router = APIRouter(tags=["board"])

QUIET = 15.0
"""Seconds without change after which the stream checks the client is still there."""


class BoardSnapshot(BaseModel):
    station: str
    language: Language
    currency: str
    """Of the totals' revenue and the sessions' costs."""
    chargers: dict[str, list[str]]
    """Each charger's piles, in order: how the board draws the station."""
    piles: list[PileView]
    bulletins: list[Bulletin]
    totals: Totals
    registrations: list[RegistrationView]
    """Devices that joined a charger's network and wait for an operator."""


class StationPiles(BaseModel):
    """The ``piles`` event: the station's pile set changed, the page draws it again."""

    chargers: dict[str, list[str]]
    piles: list[PileView]


async def snapshot(state: ConsoleState) -> BoardSnapshot:
    return BoardSnapshot(
        station=state.settings.station_name,
        language=state.settings.language,
        currency=state.settings.currency,
        chargers=state.board.layout(),
        piles=state.board.views(),
        bulletins=state.board.active_bulletins(),
        totals=await state.totals(),
        registrations=state.registrations.views(),
    )


@router.get("/board")
async def get_board(state: StateDep) -> BoardSnapshot:
    """Everything the board shows, now."""
    return await snapshot(state)


@router.get("/bulletins")
async def list_bulletins(state: StateDep) -> list[Bulletin]:
    """The active bulletins, most urgent first, with their causes and remedies."""
    return state.board.active_bulletins()


@router.get("/totals")
async def get_totals(state: StateDep) -> Totals:
    """Today's completed sessions, energy and revenue (the station's time zone)."""
    return await state.totals()


@router.get("/events", response_class=EventSourceResponse)
async def follow(state: StateDep) -> AsyncIterator[ServerSentEvent]:
    """The board live: a ``snapshot`` first, then every change as it happens."""
    with state.feed.watch() as watcher:
        state.metrics.watchers.inc()
        try:
            yield ServerSentEvent(event="snapshot", data=await snapshot(state))
            while True:
                changed = await watcher.changes(QUIET)
                for what in sorted(changed):
                    event = await _event(state, what)
                    if event is not None:
                        yield event
        finally:
            state.metrics.watchers.dec()


async def _event(state: ConsoleState, what: str) -> ServerSentEvent | None:
    board = state.board
    if what == BULLETINS:
        return ServerSentEvent(event="bulletins", data=board.active_bulletins())
    if what == TOTALS:
        return ServerSentEvent(event="totals", data=await state.totals())
    if what == REGISTRATIONS:
        return ServerSentEvent(event="registrations", data=state.registrations.views())
    if what == PILES:
        return ServerSentEvent(
            event="piles", data=StationPiles(chargers=board.layout(), piles=board.views())
        )
    if not board.has_pile(what):
        return None  # it left the station since it changed; ``piles`` tells the page
    return ServerSentEvent(event="pile", data=board.view(what))
