"""What the lifespan owns while the service runs, kept on ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from station_billing.core.config import Settings
from station_billing.store import SessionStore
from station_protocol.bus import Bus


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    store: SessionStore
