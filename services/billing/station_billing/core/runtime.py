"""What the lifespan owns while the service runs, kept on ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from station_billing.assignments import AssignmentBook, TariffsInEffect
from station_billing.core.clock import Clock
from station_billing.core.config import Settings
from station_billing.debits import DebitBook
from station_billing.displays import TariffDisplays
from station_billing.meters import MeterWatch
from station_billing.pricing.localtime import StationZone
from station_billing.store import SessionStore
from station_billing.tariffs import TariffBook
from station_runtime.bus import Bus


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    store: SessionStore
    tariffs: TariffBook
    assignments: AssignmentBook
    in_effect: TariffsInEffect
    meters: MeterWatch
    displays: TariffDisplays
    debits: DebitBook
    zone: StationZone
    clock: Clock
