"""The console's monitoring history: state changes, link quality, sessions and faults.

Revision ID: 0001_history
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001_history"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[str]:
    """Exact text on SQLite, ``NUMERIC`` on PostgreSQL (see ``station_runtime.columns``)."""
    return sa.String(40).with_variant(sa.Numeric(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_state_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pile_id", sa.String(16), nullable=False),
        _when("at"),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("ix_console_state_changes_pile_at", "console_state_changes", ["pile_id", "at"])
    op.create_table(
        "console_link_samples",
        sa.Column("pile_id", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("lowest", sa.Integer(), nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("pile_id", sa.String(16), nullable=False),
        _when("started_at"),
        _when("stopped_at"),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("energy", _money(), nullable=False),
        sa.Column("cost", _money(), nullable=False),
    )
    op.create_index("ix_console_sessions_stopped", "console_sessions", ["stopped_at"])
    op.create_index(
        "ix_console_sessions_pile_stopped", "console_sessions", ["pile_id", "stopped_at"]
    )
    op.create_table(
        "console_faults",
        sa.Column("bulletin_id", sa.String(36), primary_key=True),
        sa.Column("pile_id", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        _when("raised_at"),
        _when("cleared_at", nullable=True),
    )
    op.create_index("ix_console_faults_pile_raised", "console_faults", ["pile_id", "raised_at"])


def downgrade() -> None:
    for table in ("console_faults", "console_sessions", "console_link_samples"):
        op.drop_table(table)
    op.drop_table("console_state_changes")
