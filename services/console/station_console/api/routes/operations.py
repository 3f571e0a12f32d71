"""Operator actions: acknowledge a bulletin, stop a session without its card, put a pile
into maintenance and back. Each goes through its owner (see :mod:`station_console.actions`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from station_console import actions
from station_console.api.deps import StateDep, Who, known_pile
from station_console.api.problems import Problem
from station_protocol.messages import PileMaintenance

router = APIRouter(tags=["operations"])


class Acknowledgement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    who: Who = "operator"


class MaintenanceChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    active: bool
    """``true``: into maintenance (new charges refused); ``false``: back in service."""
    reason: str = Field(default="", max_length=200)
    who: Who = "operator"


@router.post("/bulletins/{bulletin_id}/ack")
async def acknowledge_bulletin(
    state: StateDep, bulletin_id: str, body: Acknowledgement | None = None
) -> Any:
    """Someone takes the fault on (faults keeps the first acknowledgement)."""
    answer = await actions.acknowledge(state, bulletin_id, (body or Acknowledgement()).who)
    if not answer.ok:
        raise Problem(answer.status, answer.detail())
    return answer.body


@router.post("/sessions/{session_id}/stop", responses={202: {"description": "stopping"}})
async def stop_session(state: StateDep, session_id: str, response: Response) -> Any:
    """Billing's operator stop: 200 with the record once stored, 202 while the pile stops."""
    answer = await actions.stop_session(state, session_id)
    if not answer.ok:
        raise Problem(answer.status, answer.detail())
    response.status_code = answer.status
    return answer.body


@router.put("/piles/{pile_id}/maintenance")
async def change_maintenance(
    state: StateDep, pile_id: str, body: MaintenanceChange
) -> PileMaintenance:
    """A pile in maintenance refuses new charges with a clear reason on its display, lets a
    running session finish, and raises no bulletins for being switched off."""
    known_pile(state, pile_id)
    return await actions.set_maintenance(state, pile_id, body.active, body.reason, body.who)
