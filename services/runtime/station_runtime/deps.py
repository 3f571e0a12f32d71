"""FastAPI dependencies every service's routes share: the database, the clock, the bus.

They reach the running service through :func:`station_runtime.service.running` (503 while it
starts or stops); tests swap any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine
from sqlmodel import Session

from station_runtime.bus import Bus
from station_runtime.clock import Clock
from station_runtime.service import Running, running

RunningDep = Annotated[Running[Any, Any], Depends(running)]


def get_engine(service: RunningDep) -> Engine:
    return service.kit.engine


def get_db(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine) as db:
        yield db


def get_clock(service: RunningDep) -> Clock:
    """The service's own clock: money, card dates and versions never trust a caller's time."""
    return service.kit.clock


def get_bus(service: RunningDep) -> Bus:
    return service.kit.bus


EngineDep = Annotated[Engine, Depends(get_engine)]
DbDep = Annotated[Session, Depends(get_db)]
ClockDep = Annotated[Clock, Depends(get_clock)]
BusDep = Annotated[Bus, Depends(get_bus)]
