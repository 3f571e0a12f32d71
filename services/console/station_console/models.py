"""The console's own tables: the monitoring history of each pile, nothing anyone else owns.

Bounded: every row has a time, and rows older than ``history_days`` are deleted
(:mod:`station_console.history`). Link quality is folded into one row per pile and bucket
(``link_bucket`` seconds) so that a pile reporting every second costs a few rows a day.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from station_runtime.columns import ExactDecimal, UtcDateTime


class StateChange(SQLModel, table=True):
    """A pile's board state changed (``charging`` to ``finishing``...)."""

    __tablename__: ClassVar[str] = "console_state_changes"
    __table_args__ = (Index("ix_console_state_changes_pile_at", "pile_id", "at"),)

    id: int | None = Field(default=None, sa_column=Column(Integer(), primary_key=True))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))


class LinkSample(SQLModel, table=True):
    """A pile's Zigbee link quality over one bucket: its lowest and its mean."""

    __tablename__: ClassVar[str] = "console_link_samples"

    pile_id: str = Field(sa_column=Column(String(16), primary_key=True))
    bucket: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    samples: int = Field(sa_column=Column(Integer(), nullable=False))
    total: int = Field(sa_column=Column(Integer(), nullable=False))
    lowest: int = Field(sa_column=Column(Integer(), nullable=False))


class SessionEntry(SQLModel, table=True):
    """A completed session as billing announced it (for the day's totals and the pile's
    history); billing keeps the record itself."""

    __tablename__: ClassVar[str] = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_stopped", "stopped_at"),
        Index("ix_console_sessions_pile_stopped", "pile_id", "stopped_at"),
    )

    session_id: str = Field(sa_column=Column(String(36), primary_key=True))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    started_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    stopped_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    stop_reason: str | None = Field(default=None, sa_column=Column(String(32)))
    energy: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    cost: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    """Incl. VAT, in the station's currency."""


class FaultEntry(SQLModel, table=True):
    """A bulletin about a pile, from when it was raised until it was withdrawn."""

    __tablename__: ClassVar[str] = "console_faults"
    __table_args__ = (Index("ix_console_faults_pile_raised", "pile_id", "raised_at"),)

    bulletin_id: str = Field(sa_column=Column(String(36), primary_key=True))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    code: str = Field(sa_column=Column(String(64), nullable=False))
    severity: str = Field(sa_column=Column(String(16), nullable=False))
    raised_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    cleared_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class StationPile(SQLModel, table=True):
    """A pile of the station: the configured layout at the first start, then every approved
    registration. A decommissioned pile keeps its row (``removed_at``): its history stays,
    and its id may be given to a new device later."""

    __tablename__: ClassVar[str] = "console_piles"

    pile_id: str = Field(sa_column=Column(String(16), primary_key=True))
    charger: str = Field(sa_column=Column(String(8), nullable=False))
    added_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    ieee_address: str | None = Field(default=None, sa_column=Column(String(18)))
    """The device approved under this id; ``None`` for a pile of the configured layout."""
    removed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class PileSetRevision(SQLModel, table=True):
    """One row: how many times the pile set changed, and when it last did."""

    __tablename__: ClassVar[str] = "console_pile_set"

    id: int = Field(default=1, sa_column=Column(Integer(), primary_key=True))
    revision: int = Field(sa_column=Column(Integer(), nullable=False))
    changed_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class Registration(SQLModel, table=True):
    """A device that joined a charger's Zigbee network, and what an operator decided."""

    __tablename__: ClassVar[str] = "console_registrations"

    ieee_address: str = Field(sa_column=Column(String(18), primary_key=True))
    charger: str = Field(sa_column=Column(String(8), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    """``joining`` (interview under way), ``pending``, ``approved``, ``rejected``, ``left``."""
    joined_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    model: str | None = Field(default=None, sa_column=Column(String(64)))
    vendor: str | None = Field(default=None, sa_column=Column(String(64)))
    description: str | None = Field(default=None, sa_column=Column(String(200)))
    pile_id: str | None = Field(default=None, sa_column=Column(String(16)))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
