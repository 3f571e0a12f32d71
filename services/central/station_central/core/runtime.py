"""What the lifespan owns while central runs, kept on ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from station_central.core.clock import Clock
from station_central.core.config import Settings
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.stations import StationStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    stations: StationStore
    records: RecordStore
    metrics: CentralMetrics
    clock: Clock
