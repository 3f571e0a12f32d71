"""The REST shapes of billing: OCPI field names, money and energy as decimal strings."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator

from station_billing.models import ChargingSession, PendingDebit, TariffAssignment
from station_billing.ocpi_tariffs import tariff_json
from station_billing.tariff_in_effect import Resolution
from station_billing.tariff_store import StoredTariff
from station_protocol.ids import ChargerId, PileId
from station_protocol.messages import SessionStatus, StopReason
from station_protocol.ocpi import Price
from station_protocol.records import RecordAnomaly
from station_runtime.api_types import Instant

DecimalString = Annotated[
    Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")
]
"""An exact decimal as a plain JSON string (``"12.345"``, never ``1.2345E+1``)."""


class SessionView(BaseModel):
    """A session; once completed, the charging record with its totals."""

    model_config = ConfigDict(frozen=True)

    id: str
    pile_id: str
    card_uid: str
    status: SessionStatus
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: StopReason | None
    meter_start: DecimalString
    meter_stop: DecimalString | None
    total_energy: DecimalString | None
    """kWh; null while the session is active."""
    total_cost: Price | None
    """OCPI Price; null while the session is active."""
    tariff_id: str
    tariff_version: int | None
    """The stored version frozen at the start; null for the station's configured default."""
    currency: str
    total_energy_cost: Price | None = None
    total_time_cost: Price | None = None
    total_parking_cost: Price | None = None
    total_fixed_cost: Price | None = None
    total_time: DecimalString | None = None
    """Hours, start to stop."""
    total_parking_time: DecimalString | None = None
    """Hours plugged in and not charging."""
    charging_periods: list[dict[str, Any]] | None = None
    """The OCPI charging periods the record was priced from; null while active."""
    anomaly: RecordAnomaly | None = None
    """Why the record was not billed from the pile's last word (review it); null if it was."""

    @classmethod
    def of(cls, session: ChargingSession) -> SessionView:
        cost = (
            Price(excl_vat=session.cost_excl_vat, incl_vat=session.cost_incl_vat)
            if session.cost_excl_vat is not None and session.cost_incl_vat is not None
            else None
        )
        cdr: dict[str, Any] = json.loads(session.cdr) if session.cdr else {}
        return cls(
            id=session.id,
            pile_id=session.pile_id,
            card_uid=session.card_uid,
            status=SessionStatus(session.status),
            started_at=session.started_at,
            stopped_at=session.stopped_at,
            stop_reason=StopReason(session.stop_reason) if session.stop_reason else None,
            meter_start=session.meter_start,
            meter_stop=session.meter_stop,
            total_energy=session.total_energy,
            total_cost=cost,
            tariff_id=session.tariff_id,
            tariff_version=session.tariff_version,
            currency=session.currency,
            total_energy_cost=cdr.get("total_energy_cost"),
            total_time_cost=cdr.get("total_time_cost"),
            total_parking_cost=cdr.get("total_parking_cost"),
            total_fixed_cost=cdr.get("total_fixed_cost"),
            total_time=cdr.get("total_time"),
            total_parking_time=cdr.get("total_parking_time"),
            charging_periods=cdr.get("charging_periods"),
            anomaly=RecordAnomaly(session.anomaly) if session.anomaly else None,
        )


class DebitOut(BaseModel):
    session_id: str
    card_uid: str
    pile_id: str
    amount: DecimalString
    status: str
    attempts: int
    last_error: str | None
    balance_after: DecimalString | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PendingDebit) -> DebitOut:
        return cls.model_validate(row, from_attributes=True)


class TariffOut(BaseModel):
    """One stored version of a tariff, the tariff in OCPI 2.2.1 JSON."""

    id: str
    version: int | None
    created_at: datetime | None
    tariff: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredTariff) -> TariffOut:
        return cls(
            id=stored.tariff.id,
            version=stored.version,
            created_at=stored.created_at,
            tariff=tariff_json(stored.tariff),
        )


class AssignmentIn(BaseModel):
    """A tariff for a pile, a charger, or (neither given) the whole station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tariff_id: str
    pile_id: PileId | None = None
    charger_id: ChargerId | None = None
    valid_from: Instant | None = None
    """Inclusive; absent: now and before."""
    valid_until: Instant | None = None
    """Exclusive; absent: until removed."""

    @model_validator(mode="after")
    def _one_target_and_a_real_window(self) -> Self:
        if self.pile_id is not None and self.charger_id is not None:
            raise ValueError("give pile_id or charger_id, not both (neither: the station)")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise ValueError("valid_until must be after valid_from")
        return self


class AssignmentOut(BaseModel):
    id: int
    tariff_id: str
    scope: str
    target: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: TariffAssignment) -> AssignmentOut:
        assert row.id is not None
        return cls(
            id=row.id,
            tariff_id=row.tariff_id,
            scope=row.scope,
            target=row.target or None,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            created_at=row.created_at,
        )


class TariffInEffectOut(BaseModel):
    pile_id: str
    at: datetime
    tariff_id: str
    version: int | None
    """Null: the station's configured default tariff."""
    assignment: AssignmentOut | None
    tariff: dict[str, Any]

    @classmethod
    def of(cls, pile_id: str, at: datetime, resolution: Resolution) -> TariffInEffectOut:
        stored = resolution.stored
        return cls(
            pile_id=pile_id,
            at=at,
            tariff_id=stored.tariff.id,
            version=stored.version,
            assignment=(AssignmentOut.of(resolution.assignment) if resolution.assignment else None),
            tariff=tariff_json(stored.tariff),
        )
