"""The transactional outbox: each charging record queued for central with its session.

The table's shape is the contract sync reads (``station_runtime.outbox``); billing only
ever inserts rows, in the transaction that completes a session.

Revision ID: 0003_outbox
Revises: 0002_tariffs_meters_debits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from station_runtime.outbox import (
    OUTBOX_REFUSED_INDEX,
    OUTBOX_UNSENT_INDEX,
    REFUSED,
    UNSENT,
)

revision = "0003_outbox"
down_revision = "0002_tariffs_meters_debits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text()),
        sa.Column("refused_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("record_id", name="uq_billing_outbox_record_id"),
    )
    op.create_index(
        OUTBOX_UNSENT_INDEX,
        "billing_outbox",
        ["stored_at", "id"],
        sqlite_where=sa.text(UNSENT),
        postgresql_where=sa.text(UNSENT),
    )
    op.create_index(
        OUTBOX_REFUSED_INDEX,
        "billing_outbox",
        ["id"],
        sqlite_where=sa.text(REFUSED),
        postgresql_where=sa.text(REFUSED),
    )


def downgrade() -> None:
    op.drop_index(OUTBOX_REFUSED_INDEX, table_name="billing_outbox")
    op.drop_index(OUTBOX_UNSENT_INDEX, table_name="billing_outbox")
    op.drop_table("billing_outbox")
