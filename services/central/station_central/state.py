"""What central's routes work with while it runs: ``assemble``'s result, on the running app."""

from __future__ import annotations

from dataclasses import dataclass

from station_central.core.config import Settings
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.stations import StationStore


@dataclass(frozen=True)
class Central:
    settings: Settings
    stations: StationStore
    records: RecordStore
    metrics: CentralMetrics
