"""FastAPI dependencies of sync's own: the relay its routes report on.

The running service comes from ``station_runtime.deps`` (503 while sync starts or stops);
tests swap these with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends

from station_runtime.deps import RunningDep
from station_sync.relay import Relay


def get_relay(service: RunningDep) -> Relay:
    return cast(Relay, service.state)


RelayDep = Annotated[Relay, Depends(get_relay)]
