"""``/api/v1/sessions``: sessions and charging records for the kiosk and operators.

Plain ``def`` routes: FastAPI runs them in its thread pool, so a database read never
stalls the bus loop that shares the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from station_billing.api.deps import StateDep
from station_billing.api.schemas import SessionView
from station_billing.session_store import SessionFilter, stored_receipt
from station_protocol import channels
from station_protocol.ids import charger_of
from station_protocol.messages import Receipt, SessionStatus, StopReason, StopRequest
from station_runtime.bus import BusUnavailable
from station_runtime.deps import BusDep

STOP_POLL = 0.1

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.get("")
def list_sessions(
    state: StateDep,
    pile_id: Annotated[str | None, Query(max_length=16)] = None,
    card_uid: Annotated[str | None, Query(max_length=64)] = None,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SessionView]:
    """Newest first."""
    query = SessionFilter(pile_id=pile_id, card_uid=card_uid, status=status, limit=limit)
    return [SessionView.of(session) for session in state.sessions.find(query)]


@router.get("/{session_id}")
def get_session(state: StateDep, session_id: str) -> SessionView:
    session = state.sessions.get(session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    return SessionView.of(session)


@router.get("/{session_id}/receipt")
def get_receipt(state: StateDep, session_id: str) -> Receipt:
    """404 until the session is completed: a receipt exists only with its charging record."""
    session = state.sessions.get(session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    receipt = stored_receipt(session)
    if receipt is None:
        raise HTTPException(status_code=404, detail=f"session {session_id} is not completed")
    return receipt


@router.get("/{session_id}/cdr")
async def get_cdr(state: StateDep, session_id: str) -> dict[str, Any]:
    """The session as a priced OCPI CDR: its charging periods, totals and frozen tariff.

    For a completed session, the record as stored; while it charges, the running cost to
    the latest reading (``"status": "active"``), from the same function. Feed it with its
    ``tariffs[0]`` to ``station-billing price`` to check a bill offline.
    """
    session = await asyncio.to_thread(state.sessions.get, session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    if session.status != SessionStatus.ACTIVE:
        if not session.cdr:
            raise HTTPException(
                status_code=404, detail=f"session {session_id} was priced before CDRs were kept"
            )
        cdr: dict[str, Any] = json.loads(session.cdr)
        return {**cdr, "status": session.status}
    running = await state.meters.running(session)
    return {**running.cdr, "status": session.status}


@router.post("/{session_id}/stop", responses={202: {"model": SessionView}})
async def stop_session(
    state: StateDep, bus: BusDep, session_id: str, response: Response
) -> SessionView:
    """Operator stop (lost card, broken reader): the collector stops the pile and checks out.

    The stop goes the same way as a second swipe, so the record is priced from the pile's
    final meter reading. If the collector has not checked it out within
    ``operator_stop_wait`` seconds (it is away, or the pile silent), billing closes the
    session itself at the last reading it believed, flagged ``closed_without_pile``, and
    the collector stops the pile when it hears of it: an operator stop always ends the
    session. 200 with the record; a session already completed is returned as it is
    (stopping twice bills once); 202 only if the session could not be closed.
    """
    session = await asyncio.to_thread(state.sessions.get, session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    if session.status != SessionStatus.ACTIVE:
        return SessionView.of(session)
    request = StopRequest(
        session_id=session_id, pile_id=session.pile_id, reason=StopReason.OPERATOR
    )
    with contextlib.suppress(BusUnavailable):
        # Without the broker the collector cannot hear it: billing closes the session alone.
        await bus.send(channels.COLLECTOR_STOP, request, charger=charger_of(session.pile_id))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.settings.operator_stop_wait
    while loop.time() < deadline:
        await asyncio.sleep(STOP_POLL)
        session = await asyncio.to_thread(state.sessions.get, session_id)
        if session is not None and session.status != SessionStatus.ACTIVE:
            return SessionView.of(session)
    closed = await state.requests.close_unattended(session_id, StopReason.OPERATOR)
    if closed is not None and closed.status != SessionStatus.ACTIVE:
        return SessionView.of(closed)
    assert session is not None
    response.status_code = 202
    return SessionView.of(session)
