"""``/api/v1/faults``: the active bulletins, their history, and acknowledgements.

Plain ``def`` routes for reads: FastAPI runs them in its thread pool, so a database read
never stalls the bus loop that shares the event loop. ``?lang=zh`` or ``en`` (the default)
picks the language of the catalogue texts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from station_faults.api.deps import AnnouncerDep, CatalogueDep, StoreDep
from station_faults.api.schemas import Acknowledgement, FaultView
from station_faults.episodes import HistoryFilter
from station_protocol.catalogue import Language, Severity

router = APIRouter(prefix="/faults", tags=["faults"])

LanguageQuery = Annotated[Language, Query(alias="lang")]


@router.get("")
def active_faults(
    store: StoreDep,
    catalogue: CatalogueDep,
    language: LanguageQuery = Language.EN,
    severity: Severity | None = None,
    charger: Annotated[str | None, Query(max_length=8)] = None,
    pile_id: Annotated[str | None, Query(max_length=16)] = None,
) -> list[FaultView]:
    """The faults active now, the most severe first, then the oldest first."""
    views = [
        FaultView.of(episode, catalogue.get(episode.code), language)
        for episode in store.open_episodes()
    ]
    views = [
        view
        for view in views
        if (severity is None or view.severity is severity)
        and (charger is None or view.charger == charger)
        and (pile_id is None or view.pile_id == pile_id)
    ]
    return sorted(views, key=lambda view: (view.severity.rank, view.raised_at))


@router.get("/history")
def fault_history(
    store: StoreDep,
    catalogue: CatalogueDep,
    language: LanguageQuery = Language.EN,
    code: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    charger: Annotated[str | None, Query(max_length=8)] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FaultView]:
    """Every episode, newest first, with its duration once it cleared."""
    query = HistoryFilter(code=code, source=source, charger=charger, active=active, limit=limit)
    return [
        FaultView.of(episode, catalogue.get(episode.code), language)
        for episode in store.history(query)
    ]


@router.get("/{fault_id}")
def one_fault(
    store: StoreDep,
    catalogue: CatalogueDep,
    fault_id: str,
    language: LanguageQuery = Language.EN,
) -> FaultView:
    episode = store.get(fault_id)
    if episode is None:
        raise HTTPException(status_code=404, detail=f"no fault {fault_id}")
    return FaultView.of(episode, catalogue.get(episode.code), language)


@router.post("/{fault_id}/ack")
async def acknowledge_fault(
    announcer: AnnouncerDep,
    catalogue: CatalogueDep,
    fault_id: str,
    body: Acknowledgement,
    language: LanguageQuery = Language.EN,
) -> FaultView:
    """Someone takes the fault on; the first acknowledgement stands, later ones change nothing.

    The bulletin on the broker is republished with ``acked_by``, so every board shows that
    someone is on it.
    """
    episode = await announcer.acknowledge(fault_id, body.who)
    if episode is None:
        raise HTTPException(status_code=404, detail=f"no fault {fault_id}")
    return FaultView.of(episode, catalogue.get(episode.code), language)
