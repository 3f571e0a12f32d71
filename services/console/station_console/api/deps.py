"""FastAPI dependencies: routes reach the running console only through these.

Tests swap them with ``app.dependency_overrides``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from pydantic import StringConstraints

from station_console.state import ConsoleState
from station_runtime.deps import RunningDep


def get_state(service: RunningDep) -> ConsoleState:
    state: ConsoleState = service.state
    return state


StateDep = Annotated[ConsoleState, Depends(get_state)]

Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
"""Who takes an operator action, for the logs."""


def known_pile(state: ConsoleState, pile_id: str) -> str:
    """404 for a pile that is not on this station's board."""
    if not state.board.has_pile(pile_id):
        raise HTTPException(404, f"no pile {pile_id} at this station")
    return pile_id
