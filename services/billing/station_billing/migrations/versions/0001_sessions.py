"""Sessions, which become charging records when they complete.

Revision ID: 0001_sessions
Revises:
Create Date: 2026-11-30

Money and meter readings are exact: text on SQLite (which has no decimal type), NUMERIC on
PostgreSQL. The partial unique index lets the database refuse a second active session on a
pile, even when two billing replicas race.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001_sessions"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "billing_sessions"
ACTIVE = sa.text("status = 'active'")


def _exact() -> sa.types.TypeEngine[Any]:
    return sa.String(40).with_variant(sa.Numeric(), "postgresql")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pile_id", sa.String(16), nullable=False),
        sa.Column("card_uid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("meter_start", _exact(), nullable=False),
        sa.Column("meter_stop", _exact(), nullable=True),
        sa.Column("total_energy", _exact(), nullable=True),
        sa.Column("cost_excl_vat", _exact(), nullable=True),
        sa.Column("cost_incl_vat", _exact(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tariff_id", sa.String(36), nullable=False),
        sa.Column("tariff", sa.Text(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=True),
    )
    op.create_index(
        "uq_billing_sessions_active_pile",
        TABLE,
        ["pile_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index("ix_billing_sessions_pile_started", TABLE, ["pile_id", "started_at"])
    op.create_index("ix_billing_sessions_card_started", TABLE, ["card_uid", "started_at"])
    op.create_index("ix_billing_sessions_started", TABLE, ["started_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
