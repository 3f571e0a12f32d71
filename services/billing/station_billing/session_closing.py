"""Closing a session: which meter reading ends it, how much energy it took, what it costs.

Pure decisions, no storage: :mod:`station_billing.session_requests` stores what this returns
in one transaction. The cost comes from :func:`station_billing.session_cost.session_cost`,
the same function that gives the running cost while the session charges.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from station_billing.charging_record import charging_record
from station_billing.metering import MeterSample
from station_billing.models import ChargingSession
from station_billing.pricing import CompiledTariff
from station_billing.pricing.localtime import StationZone
from station_billing.receipts import Costs, build_receipt
from station_billing.session_cost import PricedSession, session_cost
from station_protocol.messages import CheckoutRequest, Receipt, StopReason
from station_protocol.ocpi import Price
from station_protocol.records import ChargingRecord

log = logging.getLogger("station.billing.checkout")


@dataclass(frozen=True)
class Closing:
    """Everything the charging record gets when its session completes."""

    session_id: str
    stopped_at: datetime
    stop_reason: StopReason
    meter_stop: Decimal
    total_energy: Decimal
    total_cost: Price
    receipt: Receipt
    """Without the balance line's figure yet (it is pending until the debit is answered)."""
    record: ChargingRecord
    """What sync sends to central, queued in the transaction that stores the session."""
    cdr: str | None = None
    """The priced OCPI CDR as JSON."""


def close_session(
    session: ChargingSession,
    request: CheckoutRequest,
    stopped_at: datetime,
    station_id: str,
    samples: Sequence[MeterSample],
    compiled: CompiledTariff,
    zone: StationZone,
) -> Closing:
    """Price ``session`` with the tariff frozen into it when it opened."""
    meter_stop = final_reading(session, request.meter_stop)
    priced: PricedSession = session_cost(session, samples, stopped_at, meter_stop, compiled, zone)
    total_energy = meter_stop - session.meter_start
    receipt = build_receipt(
        session_id=session.id,
        pile_id=session.pile_id,
        card_uid=session.card_uid,
        started_at=session.started_at,
        stopped_at=stopped_at,
        total_energy=total_energy,
        costs=Costs.of(priced.totals),
        currency=compiled.currency,
        station_id=station_id,
    )
    total_cost = priced.totals.total_cost.price()
    record = charging_record(
        session,
        station_id=station_id,
        stopped_at=stopped_at,
        stop_reason=request.stop_reason,
        meter_stop=meter_stop,
        total_energy=total_energy,
        total_cost=total_cost,
        cdr=priced.cdr,
    )
    return Closing(
        session_id=session.id,
        stopped_at=stopped_at,
        stop_reason=request.stop_reason,
        meter_stop=meter_stop,
        total_energy=total_energy,
        total_cost=total_cost,
        receipt=receipt,
        record=record,
        cdr=json.dumps(priced.cdr),
    )


def final_reading(session: ChargingSession, meter_stop: Decimal | None) -> Decimal:
    """The reading that ends the session; never below the start, so a record is never negative.

    A missing reading (the pile went silent) or one below the start (a meter reset or a
    swapped meter) bills no energy rather than guessing; the warning leaves a trail for the
    operator to correct the record by hand.
    """
    extra = {"session_id": session.id, "pile_id": session.pile_id, "card_uid": session.card_uid}
    if meter_stop is None:
        log.warning("checkout without a meter reading: billing no energy", extra=extra)
        return session.meter_start
    if meter_stop < session.meter_start:
        log.warning(
            "meter reading below the session's start: billing no energy",
            extra={**extra, "meter_start": str(session.meter_start), "meter_stop": str(meter_stop)},
        )
        return session.meter_start
    return meter_stop
