"""Billing's transactional outbox: the contract between billing (writer) and sync (relay).

Why an outbox: a charging record must reach the central server even if the station's
uplink, central, or any process dies at the worst moment (invariant 2 of
``docs/invariants.md``). Billing therefore never talks to central. It writes the record
and its outbox row in ONE database
transaction, so that a stored record always has a row to be sent and a rolled-back one
never does; sync later reads the rows, sends them and marks them sent once central has
confirmed. Central is idempotent by record id, so a row sent twice (sync crashed after
central confirmed, before it marked the row) is stored once.

The table is defined here, on its own ``MetaData``, because two services read it: billing
creates it (in its own Alembic migration, from the columns below) and writes rows; sync
reads rows and writes only the relay columns (``sent_at``, ``attempts``, ``last_error``,
``refused_at``). Nobody else touches it.

Times: ``stored_at``, ``sent_at`` and ``refused_at`` are timezone-aware UTC in Python. On
PostgreSQL they are ``timestamptz``; on SQLite, which has no time zones, they are stored as
naive UTC text (``2026-11-30 06:00:00.000000``) and come back aware (see
:class:`station_runtime.columns.UtcDateTime`), so comparisons in SQL stay correct.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    text,
)

from station_protocol.records import ChargingRecord, record_json
from station_runtime.columns import UtcDateTime

OUTBOX_TABLE = "billing_outbox"
OUTBOX_UNIQUE_RECORD = "uq_billing_outbox_record_id"
OUTBOX_UNSENT_INDEX = "ix_billing_outbox_unsent"
OUTBOX_REFUSED_INDEX = "ix_billing_outbox_refused"
UNSENT = "sent_at IS NULL AND refused_at IS NULL"
"""The rows still to be sent; a partial index covers exactly these, oldest first."""
REFUSED = "sent_at IS NULL AND refused_at IS NOT NULL"
"""The rows central refused; a partial index keeps counting them cheap however big the table."""

OUTBOX_METADATA = MetaData()

billing_outbox = Table(
    OUTBOX_TABLE,
    OUTBOX_METADATA,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("record_id", String(64), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("last_error", Text(), nullable=True),
    Column("refused_at", UtcDateTime(), nullable=True),
    UniqueConstraint("record_id", name=OUTBOX_UNIQUE_RECORD),
    Index(
        OUTBOX_UNSENT_INDEX,
        "stored_at",
        "id",
        sqlite_where=text(UNSENT),
        postgresql_where=text(UNSENT),
    ),
    Index(
        OUTBOX_REFUSED_INDEX,
        "id",
        sqlite_where=text(REFUSED),
        postgresql_where=text(REFUSED),
    ),
)
"""One row per charging record, written by billing in the record's own transaction.

- ``id``: insertion order (autoincrement).
- ``record_id``: the record's id (billing's session id); unique, so a record is queued once.
- ``stored_at``: when billing stored the record (billing's clock); sync sends it T2 later.
- ``payload``: the :class:`ChargingRecord` as JSON (:func:`station_protocol.records.record_json`).
- ``sent_at``: when central confirmed it (stored or already had it); NULL until then.
- ``attempts``: sends tried so far; ``last_error``: why the last one failed, if it did.
- ``refused_at``: central refused it for good (another record under the same id, or a
  payload that does not read as a record): it is not sent again and stays visible (and
  counted by sync) until an operator resolves it and sets ``refused_at`` back to NULL.
"""


def write_outbox_row(
    connection: Connection, record: ChargingRecord, *, stored_at: datetime | None = None
) -> None:
    """Queue ``record`` for central, inside the caller's transaction.

    Call it on the connection of the transaction that stores the record, and only when that
    transaction really stored it (the conditional UPDATE changed a row): a second row for the
    same record id violates the unique constraint and rolls the whole transaction back,
    which is the point. With SQLModel: ``write_outbox_row(db.connection(), record)`` before
    ``db.commit()``. ``stored_at`` defaults to now (UTC); pass the service's own clock.
    """
    connection.execute(
        insert(billing_outbox).values(
            record_id=record.record_id,
            stored_at=stored_at if stored_at is not None else datetime.now(UTC),
            payload=record_json(record),
            attempts=0,
        )
    )
