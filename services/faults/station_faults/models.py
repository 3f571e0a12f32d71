"""The faults service's tables.

A fault episode is one stretch of one fault on one source, from the first raise to the clear
that was not followed by a return within the hold-down. At most one episode per source and
code is open at a time: a partial unique index lets the database decide when two replicas
raise the same fault at once.

A collector link is the last breath the station had from a collector; replicas share the
breaths (shared subscription), so the last one is kept where every replica can see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import Column, Float, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from station_runtime.columns import UtcDateTime

OPEN_EPISODE_PER_FAULT = "uq_faults_episodes_open"
OPEN = text("cleared_at IS NULL")


class FaultEpisode(SQLModel, table=True):
    __tablename__: ClassVar[str] = "faults_episodes"
    __table_args__ = (
        Index(
            OPEN_EPISODE_PER_FAULT,
            "source",
            "code",
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        ),
        Index("ix_faults_episodes_fault_cleared", "source", "code", "cleared_at"),
        Index("ix_faults_episodes_raised", "raised_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    code: str = Field(sa_column=Column(String(64), nullable=False))
    severity: str = Field(sa_column=Column(String(16), nullable=False))
    source: str = Field(sa_column=Column(String(64), nullable=False))
    charger: str | None = Field(default=None, sa_column=Column(String(8)))
    pile_id: str | None = Field(default=None, sa_column=Column(String(16)))
    since: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    """When the condition began, as its reporter saw it."""
    detected_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    raised_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    """When the service first raised the bulletin (its own clock)."""
    last_raised_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    """The latest raise, the first one or a return within the hold-down."""
    cleared_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    flaps: int = Field(default=0, sa_column=Column(Integer(), nullable=False, default=0))
    """Returns within the hold-down: how much the fault flapped during this episode."""
    acked_by: str | None = Field(default=None, sa_column=Column(String(64)))
    acked_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    detail: str = Field(default="{}", sa_column=Column(Text(), nullable=False))
    """The reporter's detail (JSON object of strings) from the first raise."""


class CollectorLink(SQLModel, table=True):
    __tablename__: ClassVar[str] = "faults_collector_links"

    charger: str = Field(sa_column=Column(String(8), primary_key=True))
    last_breath_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    """When the last breath arrived, by this service's clock."""
    last_seq: int = Field(sa_column=Column(Integer(), nullable=False))
    t1: float = Field(sa_column=Column(Float(), nullable=False))
    """The collector's breath period, as its last breath said."""
