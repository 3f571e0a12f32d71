"""FastAPI dependencies of billing's own state; the database, clock and bus are the shared
ones of :mod:`station_runtime.deps`. Tests swap them with ``app.dependency_overrides``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from station_billing.state import BillingState
from station_runtime.service import Running, running


def get_state(service: Annotated[Running[Any, BillingState], Depends(running)]) -> BillingState:
    return service.state


StateDep = Annotated[BillingState, Depends(get_state)]
