"""FastAPI dependencies: the routes reach the lifespan's resources only through these.

Tests swap them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from station_billing.assignments import AssignmentBook, TariffsInEffect
from station_billing.core.clock import Clock
from station_billing.core.config import Settings
from station_billing.core.runtime import Runtime
from station_billing.debits import DebitBook
from station_billing.displays import TariffDisplays
from station_billing.meters import MeterWatch
from station_billing.store import SessionStore
from station_billing.tariffs import TariffBook
from station_runtime.bus import Bus


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise HTTPException(status_code=503, detail="billing is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_engine(runtime: RuntimeDep) -> Engine:
    return runtime.engine


def get_bus(runtime: RuntimeDep) -> Bus:
    return runtime.bus


def get_store(runtime: RuntimeDep) -> SessionStore:
    return runtime.store


def get_tariffs(runtime: RuntimeDep) -> TariffBook:
    return runtime.tariffs


def get_assignments(runtime: RuntimeDep) -> AssignmentBook:
    return runtime.assignments


def get_in_effect(runtime: RuntimeDep) -> TariffsInEffect:
    return runtime.in_effect


def get_displays(runtime: RuntimeDep) -> TariffDisplays:
    return runtime.displays


def get_meters(runtime: RuntimeDep) -> MeterWatch:
    return runtime.meters


def get_debits(runtime: RuntimeDep) -> DebitBook:
    return runtime.debits


def get_clock(runtime: RuntimeDep) -> Clock:
    """The service's own clock: a tariff's version and a window's edges never trust a caller."""
    return runtime.clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
BusDep = Annotated[Bus, Depends(get_bus)]
StoreDep = Annotated[SessionStore, Depends(get_store)]
TariffsDep = Annotated[TariffBook, Depends(get_tariffs)]
AssignmentsDep = Annotated[AssignmentBook, Depends(get_assignments)]
InEffectDep = Annotated[TariffsInEffect, Depends(get_in_effect)]
DisplaysDep = Annotated[TariffDisplays, Depends(get_displays)]
MetersDep = Annotated[MeterWatch, Depends(get_meters)]
ClockDep = Annotated[Clock, Depends(get_clock)]
DebitsDep = Annotated[DebitBook, Depends(get_debits)]
