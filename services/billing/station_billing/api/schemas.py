"""The REST shapes of billing: OCPI field names, money and energy as decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from station_billing.models import ChargingSession
from station_protocol.messages import SessionStatus, StopReason
from station_protocol.ocpi import Price

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
    currency: str

    @classmethod
    def of(cls, session: ChargingSession) -> SessionView:
        cost = (
            Price(excl_vat=session.cost_excl_vat, incl_vat=session.cost_incl_vat)
            if session.cost_excl_vat is not None and session.cost_incl_vat is not None
            else None
        )
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
            currency=session.currency,
        )
