"""The charging record: what a completed session leaves behind, as it travels to central.

Billing writes it (with its outbox row, in the same transaction), sync relays it, central
stores it once per ``record_id``. Its JSON is the contract between the three.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from station_protocol.ids import PileId, StationId
from station_protocol.messages import StopReason
from station_protocol.ocpi import ChargingPeriod, CurrencyCode, Price
from station_protocol.times import Instant
from station_protocol.zigbee import CardUid

RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Hours = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Reading = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class RecordAnomaly(StrEnum):
    """Why a record was not billed from the pile's last word: an operator should review it."""

    METER_IMPLAUSIBLE = "meter_implausible"
    """The closing reading was more than the pile could have delivered (or out of range):
    the session was billed up to its last believed reading."""
    PRICING_FAILED = "pricing_failed"
    """The session could not be priced: it was closed with no energy and no cost, so that
    the pile and the card are free again, and waits for an operator's correction."""
    CLOSED_WITHOUT_PILE = "closed_without_pile"
    """An operator stopped the session and its collector did not check it out (it was away,
    or the pile silent): billing closed it at its last believed reading, and the collector
    stops the pile when it is back."""


class ChargingRecord(BaseModel):
    """A completed session's charging record as it travels to central (OCPI CDR names).

    ``record_id`` is billing's session id, which makes sending it idempotent. The OCPI CDR
    breakdown (``total_*_cost``, ``total_time``, ``total_parking_time``,
    ``charging_periods``) is optional: it is filled once the pricing engine produces it.
    Fields this version does not know are kept (``extra="allow"``), so a newer station's
    record survives an older central unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    record_id: RecordId
    station_id: StationId
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    pile_id: PileId
    card_uid: CardUid
    started_at: Instant
    stopped_at: Instant
    stop_reason: StopReason
    meter_start: Reading
    meter_stop: Reading
    total_energy: Reading
    """kWh."""
    total_cost: Price
    currency: CurrencyCode
    tariff_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    total_energy_cost: Price | None = None
    total_time_cost: Price | None = None
    total_parking_cost: Price | None = None
    total_fixed_cost: Price | None = None
    total_time: Hours | None = None
    """Hours, as OCPI counts them."""
    total_parking_time: Hours | None = None
    """Hours."""
    charging_periods: list[ChargingPeriod] | None = None
    """OCPI ``CdrChargingPeriod`` objects, as the pricing engine cut the session."""
    anomaly: RecordAnomaly | None = None
    """Set when the record needs an operator's review; absent on an ordinary record."""


def record_json(record: ChargingRecord) -> str:
    """The JSON of ``record`` as it is queued, sent and stored (money as decimal strings)."""
    return record.model_dump_json(exclude_none=True)
