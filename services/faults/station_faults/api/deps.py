"""FastAPI dependencies: the routes reach the running service's announcer only through these.

The announcer is the state the skeleton keeps (see :mod:`station_faults.main`); its store and
catalogue are the ones the bus handlers use. Tests swap these with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from station_faults.announcer import FaultAnnouncer
from station_faults.episodes import EpisodeStore
from station_protocol.catalogue import Catalogue
from station_runtime.deps import RunningDep


def get_announcer(service: RunningDep) -> FaultAnnouncer:
    announcer: FaultAnnouncer = service.state
    return announcer


AnnouncerDep = Annotated[FaultAnnouncer, Depends(get_announcer)]


def get_store(announcer: AnnouncerDep) -> EpisodeStore:
    return announcer.store


def get_catalogue(announcer: AnnouncerDep) -> Catalogue:
    return announcer.catalogue


StoreDep = Annotated[EpisodeStore, Depends(get_store)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
