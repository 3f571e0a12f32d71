"""A session's debit is unique; its refunds may name the same session.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

0001 made ``ledger_entries.session_id`` unique across every kind of entry, which leaves no
room for an operator's refund that names the session it refunds. The uniqueness that
matters, one debit per session (a redelivered debit is booked once), becomes a partial
unique index on the debits alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ledger_entries"
DEBITS = sa.text("kind = 'session_debit'")
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("ledger_entries_session_id_key", TABLE, type_="unique")
    else:
        # SQLite cannot drop a constraint: the batch copies the table without it (the
        # naming convention names the unnamed UNIQUE so that it can be left out).
        with op.batch_alter_table(TABLE, recreate="always", naming_convention=NAMING) as batch:
            batch.drop_constraint("uq_ledger_entries_session_id", type_="unique")
    op.create_index(
        "uq_ledger_entries_session_debit",
        TABLE,
        ["session_id"],
        unique=True,
        sqlite_where=DEBITS,
        postgresql_where=DEBITS,
    )
    op.create_index("ix_ledger_entries_session_id", TABLE, ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_session_id", TABLE)
    op.drop_index("uq_ledger_entries_session_debit", TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.create_unique_constraint("uq_ledger_entries_session_id", ["session_id"])
