"""Charging records as billing queues them, for tests and benchmarks of sync and central.

``queue_records`` writes outbox rows exactly as billing does (``write_outbox_row``), so the
relay under test reads what it will read in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from station_protocol.messages import StopReason
from station_protocol.ocpi import Price
from station_protocol.records import ChargingRecord
from station_runtime.outbox import write_outbox_row

PRICE_PER_KWH = Decimal("1.20")


def sample_record(
    station_id: str = "station-1",
    *,
    record_id: str | None = None,
    pile_id: str = "c1-p01",
    card_uid: str = "CARD-0001",
    stopped_at: datetime | None = None,
    energy: str = "12.345",
) -> ChargingRecord:
    """A completed session of ``energy`` kWh at 1.20 per kWh (no VAT), ended ``stopped_at``."""
    record_id = record_id or str(uuid.uuid4())
    stopped = stopped_at or datetime.now(UTC)
    total_energy = Decimal(energy)
    cost = (total_energy * PRICE_PER_KWH).quantize(Decimal("0.01"))
    return ChargingRecord(
        record_id=record_id,
        station_id=station_id,
        session_id=record_id,
        pile_id=pile_id,
        card_uid=card_uid,
        started_at=stopped - timedelta(minutes=45),
        stopped_at=stopped,
        stop_reason=StopReason.LOCAL,
        meter_start=Decimal("100.000"),
        meter_stop=Decimal("100.000") + total_energy,
        total_energy=total_energy,
        total_cost=Price(excl_vat=cost, incl_vat=cost),
        currency="CNY",
        tariff_id="default",
    )


def queue_records(
    engine: Engine, records: Iterable[ChargingRecord], stored_at: datetime | None = None
) -> None:
    """Queue ``records`` in billing's outbox in one transaction, as billing would."""
    with engine.begin() as connection:
        for record in records:
            write_outbox_row(connection, record, stored_at=stored_at or datetime.now(UTC))
