"""The service's tables: cards, their ledger, and the authorizations it has given.

A card has no balance column on purpose: its balance is the sum of its ledger entries,
so that no update can make the number drift from the history that explains it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from station_verification.columns import Money


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class LedgerKind(StrEnum):
    OPENING = "opening"
    TOP_UP = "top_up"
    SESSION_DEBIT = "session_debit"
    REFUND = "refund"


class AuthorizationEnd(StrEnum):
    COMPLETED = "completed"
    """Billing announced the session completed."""
    LAPSED = "lapsed"
    """The charge never started within the authorization TTL."""
    WITHDRAWN = "withdrawn"
    """The collector gave the start up, and billing has no active session of it."""


class Card(SQLModel, table=True):
    __tablename__ = "cards"

    uid: str = Field(sa_column=Column(String(64), primary_key=True))
    holder: str = Field(sa_column=Column(String(200), nullable=False))
    status: CardStatus = Field(sa_column=Column(String(16), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerEntry(SQLModel, table=True):
    """One movement of a card's money; entries are only ever added, never changed."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("card_uid", "reference", name="uq_ledger_entries_card_reference"),
        # One debit per session, enforced by the database: a redelivered debit, even on
        # another replica, is booked once. Refunds may name the session they refund.
        Index(
            "uq_ledger_entries_session_debit",
            "session_id",
            unique=True,
            sqlite_where=text("kind = 'session_debit'"),
            postgresql_where=text("kind = 'session_debit'"),
        ),
    )

    id: int | None = Field(
        # SQLite numbers rows only for a column declared exactly INTEGER PRIMARY KEY.
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    card_uid: str = Field(
        sa_column=Column(String(64), ForeignKey("cards.uid"), nullable=False, index=True)
    )
    kind: LedgerKind = Field(sa_column=Column(String(16), nullable=False))
    amount: Decimal = Field(sa_column=Column(Money(), nullable=False))
    session_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    """Debits name their session (one debit per session); a refund may name the one it refunds."""
    reason: str | None = Field(default=None, sa_column=Column(String(200)))
    reference: str | None = Field(default=None, sa_column=Column(String(128)))
    """A top-up's payment reference; the same one twice on a card is one top-up."""
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Authorization(SQLModel, table=True):
    """A card accepted for one session on one pile, until that session ends or lapses."""

    __tablename__ = "authorizations"
    __table_args__ = (
        # At most one open authorization per card, enforced by the database so that two
        # replicas answering at once cannot both let the same card charge.
        Index(
            "uq_authorizations_open_card",
            "card_uid",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    session_id: str = Field(sa_column=Column(String(36), primary_key=True))
    card_uid: str = Field(
        sa_column=Column(String(64), ForeignKey("cards.uid"), nullable=False, index=True)
    )
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    session_seen: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    end_reason: AuthorizationEnd | None = Field(default=None, sa_column=Column(String(16)))
