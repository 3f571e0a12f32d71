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
from station_protocol.plausibility import within_rating
from station_protocol.records import ChargingRecord, RecordAnomaly

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
    anomaly: RecordAnomaly | None = None


@dataclass(frozen=True)
class Meter:
    """What billing knows of the session's meter when it closes."""

    samples: Sequence[MeterSample]
    """The kept samples, oldest first."""
    latest: MeterSample | None
    """The latest reading billing believed (kept as a sample or not)."""
    rated_power: Decimal
    """kW the pile can deliver: the bound on every rise (``station_protocol.plausibility``)."""


def close_session(
    session: ChargingSession,
    request: CheckoutRequest,
    stopped_at: datetime,
    station_id: str,
    meter: Meter,
    compiled: CompiledTariff,
    zone: StationZone,
    *,
    unattended: bool = False,
) -> Closing:
    """Price ``session`` with the tariff frozen into it when it opened.

    Never raises for what the session holds: a closing reading the pile cannot have counted
    is replaced by the last believed one, and a session that cannot be priced at all is
    closed with nothing billed; either way the record is flagged for an operator
    (``anomaly``), so that a checkout always ends in a record and frees the pile and card.

    ``unattended``: billing closes it without its collector (an operator stop nobody
    carried out), at the last reading it believed; the record says so.
    """
    meter_stop, anomaly = closing_reading(session, request.meter_stop, stopped_at, meter)
    if unattended:
        anomaly = anomaly or RecordAnomaly.CLOSED_WITHOUT_PILE
    try:
        return _priced(
            session, request, stopped_at, station_id, meter, meter_stop, compiled, zone, anomaly
        )
    except (ArithmeticError, ValueError, OverflowError):
        log.exception(
            "session could not be priced: closed with nothing billed, for an operator",
            extra={"session_id": session.id, "pile_id": session.pile_id},
        )
        return _unpriced(session, request, stopped_at, station_id, compiled.currency)


def _priced(
    session: ChargingSession,
    request: CheckoutRequest,
    stopped_at: datetime,
    station_id: str,
    meter: Meter,
    meter_stop: Decimal,
    compiled: CompiledTariff,
    zone: StationZone,
    anomaly: RecordAnomaly | None,
) -> Closing:
    samples = meter.samples
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
        anomaly=anomaly,
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
        anomaly=anomaly,
    )


def _unpriced(
    session: ChargingSession,
    request: CheckoutRequest,
    stopped_at: datetime,
    station_id: str,
    currency: str,
) -> Closing:
    """The session closed at its opening reading with a zero cost, flagged for review."""
    nothing = Price(excl_vat=Decimal(0), incl_vat=Decimal(0))
    receipt = build_receipt(
        session_id=session.id,
        pile_id=session.pile_id,
        card_uid=session.card_uid,
        started_at=session.started_at,
        stopped_at=stopped_at,
        total_energy=Decimal(0),
        costs=Costs(total=nothing),
        currency=currency,
        station_id=station_id,
    )
    record = charging_record(
        session,
        station_id=station_id,
        stopped_at=stopped_at,
        stop_reason=request.stop_reason,
        meter_stop=session.meter_start,
        total_energy=Decimal(0),
        total_cost=nothing,
        cdr={},
        anomaly=RecordAnomaly.PRICING_FAILED,
    )
    return Closing(
        session_id=session.id,
        stopped_at=stopped_at,
        stop_reason=request.stop_reason,
        meter_stop=session.meter_start,
        total_energy=Decimal(0),
        total_cost=nothing,
        receipt=receipt,
        record=record,
        anomaly=RecordAnomaly.PRICING_FAILED,
    )


def closing_reading(
    session: ChargingSession, meter_stop: Decimal | None, stopped_at: datetime, meter: Meter
) -> tuple[Decimal, RecordAnomaly | None]:
    """The reading that ends the session, and why it is not the collector's, if it is not.

    The collector's closing reading is believed only if the pile could have counted it: the
    rise since the last reading billing believed, and the session's whole energy, each
    within the pile's rated power over the time they took. Otherwise the session is billed
    up to its last believed reading (``meter_implausible``).
    """
    stop = final_reading(session, meter_stop)
    last = last_believed(session, meter)
    since_last = (stopped_at - last.at).total_seconds()
    duration = (stopped_at - session.started_at).total_seconds()
    if within_rating(stop - last.energy, since_last, meter.rated_power) and within_rating(
        stop - session.meter_start, duration, meter.rated_power
    ):
        return stop, None
    log.warning(
        "closing reading more than the pile could have delivered: billed to the last believed",
        extra={
            "session_id": session.id,
            "pile_id": session.pile_id,
            "card_uid": session.card_uid,
            "meter_stop": str(meter_stop),
            "last_believed": str(last.energy),
        },
    )
    return max(last.energy, session.meter_start), RecordAnomaly.METER_IMPLAUSIBLE


def unattended_reading(session: ChargingSession, meter: Meter) -> Decimal:
    """Where a session billing closes on its own ends: at the last reading it believed."""
    return max(last_believed(session, meter).energy, session.meter_start)


def last_believed(session: ChargingSession, meter: Meter) -> MeterSample:
    """The latest reading that is within the rating since the session's start."""
    opening = MeterSample(at=session.started_at, energy=session.meter_start, charging=True)
    readings = [*meter.samples, *([meter.latest] if meter.latest is not None else [])]
    for reading in sorted(readings, key=lambda sample: sample.at, reverse=True):
        rise = reading.energy - session.meter_start
        seconds = (reading.at - session.started_at).total_seconds()
        if rise >= 0 and within_rating(rise, seconds, meter.rated_power):
            return reading
    return opening


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
