"""What billing's routes work with while the service runs: the state ``assemble`` returns."""

from __future__ import annotations

from dataclasses import dataclass

from station_billing.assignments import AssignmentBook, TariffsInEffect
from station_billing.core.config import Settings
from station_billing.debits import DebitBook
from station_billing.displays import TariffDisplays
from station_billing.meters import MeterWatch
from station_billing.store import SessionStore
from station_billing.tariffs import TariffBook


@dataclass(frozen=True)
class BillingState:
    settings: Settings
    sessions: SessionStore
    tariffs: TariffBook
    assignments: AssignmentBook
    in_effect: TariffsInEffect
    meters: MeterWatch
    displays: TariffDisplays
    debits: DebitBook
