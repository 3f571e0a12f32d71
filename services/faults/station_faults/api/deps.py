"""FastAPI dependencies: the routes reach the lifespan's resources only through these.

Tests swap them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from station_faults.announcer import FaultAnnouncer
from station_faults.core.runtime import Runtime
from station_faults.episodes import EpisodeStore
from station_protocol.catalogue import Catalogue


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise HTTPException(status_code=503, detail="faults is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_store(runtime: RuntimeDep) -> EpisodeStore:
    return runtime.store


def get_catalogue(runtime: RuntimeDep) -> Catalogue:
    return runtime.catalogue


def get_announcer(runtime: RuntimeDep) -> FaultAnnouncer:
    return runtime.announcer


StoreDep = Annotated[EpisodeStore, Depends(get_store)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
AnnouncerDep = Annotated[FaultAnnouncer, Depends(get_announcer)]
