"""What a session costs from its meter readings: the running cost and the final cost alike.

One function, :func:`session_cost`, turns a session and its readings into the OCPI CDR
(charging periods and totals) and its price. Checkout calls it with the closing reading;
the meter feed (:mod:`station_billing.meter_feed`) and the REST API call it with the latest
reading while the session charges. Both price the CDR they built through
:func:`station_billing.pricing.session_from_cdr` exactly as ``station-billing price`` does,
so an operator who feeds a record's CDR to the CLI gets the record's totals back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from station_billing.metering import MeterSample, build_cdr
from station_billing.models import ChargingSession
from station_billing.ocpi_tariffs import tariff_json
from station_billing.pricing import (
    CompiledTariff,
    Totals,
    price_session,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone


@dataclass(frozen=True)
class PricedSession:
    cdr: dict[str, Any]
    """The OCPI CDR: periods, totals, and the frozen tariff under ``tariffs``."""
    totals: Totals


def session_cost(
    session: ChargingSession,
    samples: Sequence[MeterSample],
    ended_at: datetime,
    meter_end: Decimal,
    compiled: CompiledTariff,
    zone: StationZone,
) -> PricedSession:
    """The session from its start to ``ended_at`` (reading ``meter_end``), priced."""
    built = build_cdr(
        started_at=session.started_at,
        meter_start=session.meter_start,
        samples=samples,
        ended_at=ended_at,
        meter_end=meter_end,
        tariff=compiled,
        zone=zone,
    )
    totals = price_session(compiled, session_from_cdr(built, zone))
    cdr = {
        "id": session.id,
        "session_id": session.id,
        "start_date_time": built["start_date_time"],
        "end_date_time": built["end_date_time"],
        "currency": compiled.currency,
        "tariffs": [tariff_json(compiled.tariff)],
        "charging_periods": built["charging_periods"],
        **totals_json(totals),
    }
    return PricedSession(cdr, totals)
