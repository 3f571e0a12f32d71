"""Billing's tables.

A session row becomes the charging record when it completes: its totals, its priced OCPI
CDR (``cdr``) and its receipt are written by the same UPDATE, together with the session's
pending debit, so a record never exists without its receipt or its debit. The tariff is
copied into the row (OCPI JSON) when the session opens, so a tariff changed later never
reprices a session that already started.

Tariffs are versioned: a changed tariff is a new row under the same id, never an edit, so a
version a session was priced with can always be read back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Text, false, text
from sqlmodel import Field, SQLModel

from station_runtime.columns import ExactDecimal, UtcDateTime

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
    receipt_final: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
    """The receipt has its balance line and has been sent: it never changes again."""
    tariff_version: int | None = Field(default=None, sa_column=Column(Integer()))
    """The stored tariff version frozen at the start; ``None`` for the configured default."""
    cdr: str | None = Field(default=None, sa_column=Column(Text()))
    """The priced OCPI CDR (periods and totals) as JSON, once completed."""
    balance_at_start: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    """The card's balance when the session opened, if known: the running cost's limit."""
    stop_requested_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    """When billing last asked the collector to stop the charge (balance used up)."""
    anomaly: str | None = Field(default=None, sa_column=Column(String(32)))
    """``RecordAnomaly``: the record was billed other than from the pile's last word."""


def _autoincrement() -> Column[int]:
    # SQLite numbers rows only for a column declared exactly INTEGER PRIMARY KEY.
    return Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)


class TariffVersion(SQLModel, table=True):
    """One version of an OCPI tariff; a PUT that changes it adds the next version."""

    __tablename__: ClassVar[str] = "billing_tariffs"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    version: int = Field(sa_column=Column(Integer(), primary_key=True))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    body: str = Field(sa_column=Column(Text(), nullable=False))
    """The OCPI Tariff as JSON (money as exact decimal strings)."""
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class AssignmentScope(StrEnum):
    STATION = "station"
    CHARGER = "charger"
    PILE = "pile"


SPECIFICITY = {AssignmentScope.PILE: 3, AssignmentScope.CHARGER: 2, AssignmentScope.STATION: 1}
"""The most specific assignment wins: a pile's over its charger's over the station's."""


class TariffAssignment(SQLModel, table=True):
    """A tariff in effect on the station, a charger or a pile, within a validity window."""

    __tablename__: ClassVar[str] = "billing_tariff_assignments"
    __table_args__ = (Index("ix_billing_tariff_assignments_target", "scope", "target"),)

    id: int | None = Field(default=None, sa_column=_autoincrement())
    tariff_id: str = Field(sa_column=Column(String(36), nullable=False))
    scope: str = Field(sa_column=Column(String(16), nullable=False))
    target: str = Field(sa_column=Column(String(16), nullable=False))
    """The charger or pile id; empty for the station."""
    valid_from: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    """Inclusive; ``None``: since ever."""
    valid_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    """Exclusive; ``None``: until further notice."""
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class MeterSampleRow(SQLModel, table=True):
    """A meter reading kept for a session, timed by billing's clock."""

    __tablename__: ClassVar[str] = "billing_meter_samples"
    __table_args__ = (Index("ix_billing_meter_samples_session", "session_id", "at"),)

    id: int | None = Field(default=None, sa_column=_autoincrement())
    session_id: str = Field(sa_column=Column(String(36), nullable=False))
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    energy: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    charging: bool | None = Field(default=None, sa_column=Column(Boolean()))
    current: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    power: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))


class DebitStatus(StrEnum):
    PENDING = "pending"
    """Not yet acknowledged by verification: retried until it is."""
    SETTLED = "settled"
    """On the card's ledger (booked now or before)."""
    REFUSED = "refused"
    """Verification cannot book it (unknown card, invalid amount): an operator must look."""


class PendingDebit(SQLModel, table=True):
    """A record's debit, written with the record, retried until verification books it."""

    __tablename__: ClassVar[str] = "billing_debits"
    __table_args__ = (Index("ix_billing_debits_status", "status", "created_at"),)

    session_id: str = Field(sa_column=Column(String(36), primary_key=True))
    card_uid: str = Field(sa_column=Column(String(64), nullable=False))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    amount: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text()))
    balance_after: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class KnownPile(SQLModel, table=True):
    """A pile billing has heard of: it gets the tariff display (``channels.PILE_TARIFF``)."""

    __tablename__: ClassVar[str] = "billing_piles"

    pile_id: str = Field(sa_column=Column(String(16), primary_key=True))
    first_seen: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
