"""FastAPI dependencies: the routes reach the lifespan's resources only through these.

Tests swap them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from station_billing.core.config import Settings
from station_billing.core.runtime import Runtime
from station_billing.store import SessionStore
from station_protocol.bus import Bus


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


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
BusDep = Annotated[Bus, Depends(get_bus)]
StoreDep = Annotated[SessionStore, Depends(get_store)]
