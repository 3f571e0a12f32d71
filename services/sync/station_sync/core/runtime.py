"""What the lifespan owns while sync runs, kept on ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from station_runtime.bus import Bus
from station_sync.core.config import Settings
from station_sync.outbox import Outbox
from station_sync.relay import Relay


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    outbox: Outbox
    relay: Relay
