"""Central's tables: stations (with their token hashes) and the records they sent.

A record is stored once per (station, record id): the unique constraint is what makes a
re-sent batch harmless, even when two requests race. The record's JSON is kept as it was
first stored (``payload``); the columns beside it exist to filter and sum without parsing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from station_runtime.columns import ExactDecimal, UtcDateTime

RECORD_KEY = "uq_central_records_station_record"


class CentralStation(SQLModel, table=True):
    __tablename__: ClassVar[str] = "central_stations"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_central_stations_token_hash"),)

    station_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str | None = Field(default=None, sa_column=Column(String(200)))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False))
    """SHA-256 of the station's token (a random 256-bit secret, so no slow hash is needed)."""
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    token_issued_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class StoredRecord(SQLModel, table=True):
    __tablename__: ClassVar[str] = "central_records"
    __table_args__ = (
        UniqueConstraint("station_id", "record_id", name=RECORD_KEY),
        Index("ix_central_records_stopped", "stopped_at"),
        Index("ix_central_records_station_stopped", "station_id", "stopped_at"),
        Index("ix_central_records_pile_stopped", "pile_id", "stopped_at"),
        Index("ix_central_records_card_stopped", "card_uid", "stopped_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    station_id: str = Field(
        sa_column=Column(String(64), ForeignKey("central_stations.station_id"), nullable=False)
    )
    record_id: str = Field(sa_column=Column(String(64), nullable=False))
    session_id: str = Field(sa_column=Column(String(36), nullable=False))
    pile_id: str = Field(sa_column=Column(String(16), nullable=False))
    card_uid: str = Field(sa_column=Column(String(64), nullable=False))
    started_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    stopped_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    total_energy: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    cost_excl_vat: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    cost_incl_vat: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    received_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    payload: str = Field(sa_column=Column(Text(), nullable=False))
    """The ChargingRecord JSON as first stored."""
