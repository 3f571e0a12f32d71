"""Fault episodes (the bulletins' history) and the collectors' last breaths.

Revision ID: 0001_episodes
Revises:
Create Date: 2026-11-30

The partial unique index lets the database refuse a second open episode of the same fault
on the same source, even when two faults replicas raise it at the same moment.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_episodes"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPISODES = "faults_episodes"
LINKS = "faults_collector_links"
OPEN = sa.text("cleared_at IS NULL")


def upgrade() -> None:
    op.create_table(
        EPISODES,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("charger", sa.String(8), nullable=True),
        sa.Column("pile_id", sa.String(16), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flaps", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("acked_by", sa.String(64), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index(
        "uq_faults_episodes_open",
        EPISODES,
        ["source", "code"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_faults_episodes_fault_cleared", EPISODES, ["source", "code", "cleared_at"])
    op.create_index("ix_faults_episodes_raised", EPISODES, ["raised_at"])
    op.create_table(
        LINKS,
        sa.Column("charger", sa.String(8), primary_key=True),
        sa.Column("last_breath_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("t1", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(LINKS)
    op.drop_table(EPISODES)
