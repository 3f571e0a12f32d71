"""The station's pile set and the registrations of new devices.

Revision ID: 0002_piles
Revises: 0001_history
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002_piles"
down_revision: str | None = "0001_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_piles",
        sa.Column("pile_id", sa.String(16), primary_key=True),
        sa.Column("charger", sa.String(8), nullable=False),
        _when("added_at"),
        sa.Column("ieee_address", sa.String(18), nullable=True),
        _when("removed_at", nullable=True),
    )
    op.create_table(
        "console_pile_set",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        _when("changed_at"),
    )
    op.create_table(
        "console_registrations",
        sa.Column("ieee_address", sa.String(18), primary_key=True),
        sa.Column("charger", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("joined_at"),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("vendor", sa.String(64), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("pile_id", sa.String(16), nullable=True),
        _when("decided_at", nullable=True),
    )


def downgrade() -> None:
    for table in ("console_registrations", "console_pile_set", "console_piles"):
        op.drop_table(table)
