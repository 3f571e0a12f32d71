"""One INSERT per batch, its rows passed as a single JSON parameter.

Why not ``executemany``: a batch of several hundred records rendered as one multi-row
``VALUES`` statement costs more to build and to parse (thousands of placeholders) than to
store. Handing the rows to the database as one JSON document, expanded there by
``jsonb_to_recordset`` (PostgreSQL) or ``json_each`` (SQLite), keeps a batch one short
statement with one parameter, and ``ON CONFLICT DO NOTHING RETURNING`` still says which
records were new.

Values are encoded as the column types expect them: exact decimal text (so no float ever
touches money), UTC timestamps (ISO with offset for ``timestamptz``; naive UTC text on
SQLite, the form :class:`~station_runtime.columns.UtcDateTime` reads back).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import TextClause, text

from station_protocol.records import ChargingRecord, record_json

TABLE = "central_records"
KEY = ("station_id", "record_id")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("station_id", "text"),
    ("record_id", "text"),
    ("session_id", "text"),
    ("pile_id", "text"),
    ("card_uid", "text"),
    ("started_at", "timestamptz"),
    ("stopped_at", "timestamptz"),
    ("total_energy", "numeric"),
    ("cost_excl_vat", "numeric"),
    ("cost_incl_vat", "numeric"),
    ("currency", "text"),
    ("received_at", "timestamptz"),
    ("payload", "text"),
)
"""The columns a batch fills, with their PostgreSQL types (``id`` is the database's)."""

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def insert_new_records(dialect: str) -> TextClause:
    """``INSERT`` the rows of ``:rows`` not stored yet; returns the record ids inserted."""
    names = ", ".join(name for name, _ in COLUMNS)
    conflict = f"ON CONFLICT ({', '.join(KEY)}) DO NOTHING RETURNING record_id"
    if dialect == "postgresql":
        shape = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        source = f"SELECT {names} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({shape})"
    elif dialect == "sqlite":
        values = ", ".join(f"json_extract(value, '$.{name}')" for name, _ in COLUMNS)
        # "WHERE true" tells SQLite's parser the ON CONFLICT belongs to the INSERT.
        source = f"SELECT {values} FROM json_each(:rows) WHERE true"
    else:
        raise ValueError(f"central stores records on postgresql or sqlite, not {dialect}")
    return text(f"INSERT INTO {TABLE} ({names}) {source} {conflict}")


def encode_records(
    station_id: str, records: Iterable[ChargingRecord], received_at: datetime, dialect: str
) -> str:
    """The ``:rows`` parameter: one JSON object per record, keyed by :data:`COLUMNS`."""
    stamp = _postgres_time if dialect == "postgresql" else _sqlite_time
    received = stamp(received_at)
    return json.dumps(
        [
            {
                "station_id": station_id,
                "record_id": record.record_id,
                "session_id": record.session_id,
                "pile_id": record.pile_id,
                "card_uid": record.card_uid,
                "started_at": stamp(record.started_at),
                "stopped_at": stamp(record.stopped_at),
                "total_energy": _exact(record.total_energy),
                "cost_excl_vat": _exact(record.total_cost.excl_vat),
                "cost_incl_vat": _exact(record.total_cost.incl_vat),
                "currency": record.currency,
                "received_at": received,
                "payload": record_json(record),
            }
            for record in records
        ]
    )


def _postgres_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(SQLITE_TIME)


def _exact(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"not a finite Decimal: {value!r}")
    return format(value, "f")
