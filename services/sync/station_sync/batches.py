"""A batch of outbox rows, read and checked before it is sent.

A payload central would refuse (not a record, another station's, another id than its row's)
would fail its whole batch again and again, so it is recognised here and set aside.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from station_protocol.records import ChargingRecord
from station_sync.outbox import OutboxRow, Position


@dataclass(frozen=True)
class Readable:
    row: OutboxRow
    record: ChargingRecord


@dataclass(frozen=True)
class Unreadable:
    row: OutboxRow
    reason: str


def read_rows(rows: list[OutboxRow], station_id: str) -> tuple[list[Readable], list[Unreadable]]:
    """Split the rows into records of this station and rows that can never be sent."""
    readable: list[Readable] = []
    unreadable: list[Unreadable] = []
    for row in rows:
        try:
            record = ChargingRecord.model_validate_json(row.payload)
        except ValidationError as exc:
            unreadable.append(Unreadable(row, f"unreadable payload: {exc.error_count()} errors"))
            continue
        if record.record_id != row.record_id:
            unreadable.append(Unreadable(row, f"payload is record {record.record_id}"))
        elif record.station_id != station_id:
            unreadable.append(Unreadable(row, f"payload is a record of {record.station_id}"))
        else:
            readable.append(Readable(row, record))
    return readable, unreadable


@dataclass(frozen=True)
class Batch:
    rows: list[OutboxRow]
    readable: list[Readable]
    unreadable: list[Unreadable]

    @property
    def after(self) -> Position:
        """Where the next batch of the same pass starts."""
        last = self.rows[-1]
        return (last.stored_at, last.id)
