"""What the lifespan owns while the service runs, kept on ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from station_faults.announcer import FaultAnnouncer
from station_faults.core.config import Settings
from station_faults.episodes import EpisodeStore
from station_protocol.catalogue import Catalogue
from station_runtime.bus import Bus


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    store: EpisodeStore
    catalogue: Catalogue
    announcer: FaultAnnouncer
