"""The charging record as it leaves the station: what sync sends to central.

Built when the session is priced and queued in the same transaction that stores it (the
transactional outbox), so a record is either stored and queued, or neither.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from station_billing.models import ChargingSession
from station_protocol.messages import StopReason
from station_protocol.ocpi import Price
from station_protocol.records import ChargingRecord, RecordAnomaly

CDR_BREAKDOWN = (
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_fixed_cost",
    "total_time",
    "total_parking_time",
    "charging_periods",
)
"""The OCPI CDR fields the record carries beside its own totals."""


def charging_record(
    session: ChargingSession,
    *,
    station_id: str,
    stopped_at: datetime,
    stop_reason: StopReason,
    meter_stop: Decimal,
    total_energy: Decimal,
    total_cost: Price,
    cdr: dict[str, Any],
    anomaly: RecordAnomaly | None = None,
) -> ChargingRecord:
    return ChargingRecord.model_validate(
        {
            "record_id": session.id,
            "station_id": station_id,
            "session_id": session.id,
            "pile_id": session.pile_id,
            "card_uid": session.card_uid,
            "started_at": session.started_at,
            "stopped_at": stopped_at,
            "stop_reason": stop_reason,
            "meter_start": session.meter_start,
            "meter_stop": meter_stop,
            "total_energy": total_energy,
            "total_cost": total_cost,
            "currency": session.currency,
            "tariff_id": session.tariff_id,
            **{name: cdr[name] for name in CDR_BREAKDOWN if name in cdr},
            "anomaly": anomaly,
        }
    )
