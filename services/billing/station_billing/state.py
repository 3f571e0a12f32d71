"""What billing's routes work with while the service runs: the state ``assemble`` returns."""

from __future__ import annotations

from dataclasses import dataclass

from station_billing.assignment_store import AssignmentStore
from station_billing.core.config import Settings
from station_billing.debit_store import DebitStore
from station_billing.meter_feed import MeterFeed
from station_billing.session_requests import SessionRequests
from station_billing.session_store import SessionStore
from station_billing.tariff_displays import TariffDisplays
from station_billing.tariff_in_effect import TariffsInEffect
from station_billing.tariff_store import TariffStore


@dataclass(frozen=True)
class BillingState:
    settings: Settings
    sessions: SessionStore
    tariffs: TariffStore
    assignments: AssignmentStore
    in_effect: TariffsInEffect
    meters: MeterFeed
    """The running cost of an active session, to the latest reading."""
    displays: TariffDisplays
    """Poked when a tariff or an assignment changes."""
    debits: DebitStore
    requests: SessionRequests
    """The collectors' requests; also closes a session an operator stopped and nobody did."""
