"""Stations with their token hashes, and the charging records they sent.

Revision ID: 0001_records
Revises:
Create Date: 2026-11-30

A record is unique per (station, record id): the database, not the application, makes a
re-sent batch store nothing twice. Money is exact: text on SQLite, NUMERIC on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001_records"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATIONS = "central_stations"
RECORDS = "central_records"


def _exact() -> sa.types.TypeEngine[Any]:
    return sa.String(40).with_variant(sa.Numeric(), "postgresql")


def _time() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        STATIONS,
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("token_issued_at", _time(), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_central_stations_token_hash"),
    )
    op.create_table(
        RECORDS,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "station_id",
            sa.String(64),
            sa.ForeignKey(f"{STATIONS}.station_id", name="fk_central_records_station"),
            nullable=False,
        ),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("pile_id", sa.String(16), nullable=False),
        sa.Column("card_uid", sa.String(64), nullable=False),
        sa.Column("started_at", _time(), nullable=False),
        sa.Column("stopped_at", _time(), nullable=False),
        sa.Column("total_energy", _exact(), nullable=False),
        sa.Column("cost_excl_vat", _exact(), nullable=False),
        sa.Column("cost_incl_vat", _exact(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("received_at", _time(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.UniqueConstraint("station_id", "record_id", name="uq_central_records_station_record"),
    )
    op.create_index("ix_central_records_stopped", RECORDS, ["stopped_at"])
    op.create_index("ix_central_records_station_stopped", RECORDS, ["station_id", "stopped_at"])
    op.create_index("ix_central_records_pile_stopped", RECORDS, ["pile_id", "stopped_at"])
    op.create_index("ix_central_records_card_stopped", RECORDS, ["card_uid", "stopped_at"])


def downgrade() -> None:
    op.drop_table(RECORDS)
    op.drop_table(STATIONS)
