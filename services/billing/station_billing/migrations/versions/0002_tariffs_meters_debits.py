"""Versioned tariffs and their assignments, meter samples, pending debits, known piles.

Revision ID: 0002_tariffs_meters_debits
Revises: 0001_sessions
Create Date: 2026-11-30

Sessions gain their priced CDR, the tariff version they froze, the card's balance at the
start, when billing last asked for a stop, and whether their receipt is final. Receipts
written before this revision were final when sent, so they are marked final.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002_tariffs_meters_debits"
down_revision: str | None = "0001_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSIONS = "billing_sessions"


def _exact() -> sa.types.TypeEngine[Any]:
    return sa.String(40).with_variant(sa.Numeric(), "postgresql")


def _row_id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    with op.batch_alter_table(SESSIONS) as batch:
        batch.add_column(
            sa.Column("receipt_final", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("tariff_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cdr", sa.Text(), nullable=True))
        batch.add_column(sa.Column("balance_at_start", _exact(), nullable=True))
        batch.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        sa.text(f"UPDATE {SESSIONS} SET receipt_final = :yes WHERE receipt IS NOT NULL").bindparams(
            yes=True
        )
    )
    op.create_table(
        "billing_tariffs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "billing_tariff_assignments",
        _row_id(),
        sa.Column("tariff_id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_billing_tariff_assignments_target", "billing_tariff_assignments", ["scope", "target"]
    )
    op.create_table(
        "billing_meter_samples",
        _row_id(),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy", _exact(), nullable=False),
        sa.Column("charging", sa.Boolean(), nullable=True),
        sa.Column("current", _exact(), nullable=True),
        sa.Column("power", _exact(), nullable=True),
    )
    op.create_index(
        "ix_billing_meter_samples_session", "billing_meter_samples", ["session_id", "at"]
    )
    op.create_table(
        "billing_debits",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("card_uid", sa.String(64), nullable=False),
        sa.Column("pile_id", sa.String(16), nullable=False),
        sa.Column("amount", _exact(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("balance_after", _exact(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_billing_debits_status", "billing_debits", ["status", "created_at"])
    op.create_table(
        "billing_piles",
        sa.Column("pile_id", sa.String(16), primary_key=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("billing_piles")
    op.drop_table("billing_debits")
    op.drop_table("billing_meter_samples")
    op.drop_table("billing_tariff_assignments")
    op.drop_table("billing_tariffs")
    with op.batch_alter_table(SESSIONS) as batch:
        for column in ("stop_requested_at", "balance_at_start", "cdr", "tariff_version"):
            batch.drop_column(column)
        batch.drop_column("receipt_final")
