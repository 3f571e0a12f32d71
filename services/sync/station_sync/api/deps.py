"""FastAPI dependencies: the routes reach the lifespan's resources only through these.

Tests swap them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from station_sync.core.config import Settings
from station_sync.core.runtime import Runtime
from station_sync.relay import Relay


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise HTTPException(status_code=503, detail="sync is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_relay(runtime: RuntimeDep) -> Relay:
    return runtime.relay


SettingsDep = Annotated[Settings, Depends(get_settings)]
RelayDep = Annotated[Relay, Depends(get_relay)]
