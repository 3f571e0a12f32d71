"""FastAPI dependencies: what a route needs from the running app, swappable in tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from station_verification.verification import station_clock


def get_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def get_db(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine) as db:
        yield db


def get_clock() -> Callable[[], datetime]:
    """The station's own clock: money and card dates never trust a caller's time."""
    return station_clock


Db = Annotated[Session, Depends(get_db)]
Clock = Annotated[Callable[[], datetime], Depends(get_clock)]
