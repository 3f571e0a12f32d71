"""Cards, their prepaid ledger, and the authorizations given to them.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("uid", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("card_uid", sa.String(64), sa.ForeignKey("cards.uid"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=True, unique=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("card_uid", "reference", name="uq_ledger_entries_card_reference"),
    )
    op.create_index("ix_ledger_entries_card_uid", "ledger_entries", ["card_uid"])
    op.create_table(
        "authorizations",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("card_uid", sa.String(64), sa.ForeignKey("cards.uid"), nullable=False),
        sa.Column("pile_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_seen", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
    )
    op.create_index("ix_authorizations_card_uid", "authorizations", ["card_uid"])
    op.create_index(
        "uq_authorizations_open_card",
        "authorizations",
        ["card_uid"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("authorizations")
    op.drop_table("ledger_entries")
    op.drop_table("cards")
