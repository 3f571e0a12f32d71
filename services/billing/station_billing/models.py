"""Billing's tables.

A session row becomes the charging record when it completes: its totals and its receipt
are written by the same UPDATE, so a record never exists without its receipt or the other
way round. The tariff is copied into the row (OCPI JSON) when the session opens, so a
tariff changed later never reprices a session that already started.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import Column, Index, String, Text, text
from sqlmodel import Field, SQLModel

from station_billing.columns import ExactDecimal, UtcDateTime

ACTIVE_SESSION_PER_PILE = "uq_billing_sessions_active_pile"
"""At most one active session per pile, enforced by the database (two replicas may race)."""


class ChargingSession(SQLModel, table=True):
    __tablename__: ClassVar[str] = "billing_sessions"
    __table_args__ = (
        Index(
            ACTIVE_SESSION_PER_PILE,
            "pile_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_billing_sessions_pile_started", "pile_id", "started_at"),
        Index("ix_billing_sessions_card_started", "card_uid", "started_at"),
        Index("ix_billing_sessions_started", "started_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    card_uid: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    started_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    stopped_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    stop_reason: str | None = Field(default=None, sa_column=Column(String(32)))
    meter_start: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    meter_stop: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    total_energy: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    cost_excl_vat: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    cost_incl_vat: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    tariff_id: str = Field(sa_column=Column(String(36), nullable=False))
    tariff: str = Field(sa_column=Column(Text(), nullable=False))
    """The OCPI Tariff in force when the session opened, as JSON."""
    receipt: str | None = Field(default=None, sa_column=Column(Text()))
    """The Receipt message sent to the pile, as JSON; replayed as is on a redelivery."""
