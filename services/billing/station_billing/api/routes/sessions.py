"""``/api/v1/sessions``: sessions and charging records for the kiosk and operators.

Plain ``def`` routes: FastAPI runs them in its thread pool, so a database read never
stalls the bus loop that shares the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from station_billing.api.deps import StoreDep
from station_billing.api.schemas import SessionView
from station_billing.store import SessionFilter, stored_receipt
from station_protocol.messages import Receipt, SessionStatus

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.get("")
def list_sessions(
    store: StoreDep,
    pile_id: Annotated[str | None, Query(max_length=16)] = None,
    card_uid: Annotated[str | None, Query(max_length=64)] = None,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SessionView]:
    """Newest first."""
    query = SessionFilter(pile_id=pile_id, card_uid=card_uid, status=status, limit=limit)
    return [SessionView.of(session) for session in store.find(query)]


@router.get("/{session_id}")
def get_session(store: StoreDep, session_id: str) -> SessionView:
    session = store.get(session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    return SessionView.of(session)


@router.get("/{session_id}/receipt")
def get_receipt(store: StoreDep, session_id: str) -> Receipt:
    """404 until the session is completed: a receipt exists only with its charging record."""
    session = store.get(session_id)
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {session_id}")
    receipt = stored_receipt(session)
    if receipt is None:
        raise HTTPException(status_code=404, detail=f"session {session_id} is not completed")
    return receipt
