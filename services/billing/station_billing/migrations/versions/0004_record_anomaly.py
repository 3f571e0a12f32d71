"""A charging record that needs an operator's review says why (``RecordAnomaly``).

Revision ID: 0004_record_anomaly
Revises: 0003_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_record_anomaly"
down_revision = "0003_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_sessions", sa.Column("anomaly", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("billing_sessions") as batch:
        batch.drop_column("anomaly")
