"""Charging records in central's database, stored once per (station, record id).

A batch is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (see :mod:`.bulk`): the rows
it returns are the records stored now. Every other record of the batch was there already: a
duplicate if it is the same record (compared as records, so ``"1.2"`` and ``"1.20"``, or two
spellings of one instant, are the same), a conflict if it is not. A conflict changes
nothing: the record first stored stays, and the sender is told so instead of retrying.

Blocking SQLAlchemy calls: the routes are plain ``def`` (FastAPI's thread pool).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Select, Table, and_, func, or_, select

from station_central.bulk import encode_records, insert_new_records
from station_central.models import StoredRecord
from station_protocol.central import CentralRecord, RecordOutcome, RecordResult
from station_protocol.records import ChargingRecord

log = logging.getLogger("station.central.records")

RECORDS: Table = StoredRecord.metadata.tables[StoredRecord.__tablename__]

_Listing = Select[datetime, int, str, datetime]
"""Records listed each with its sort key (``stopped_at``, row id), JSON and receipt time."""


class RecordsMissing(Exception):
    """A record was neither inserted nor found: the batch must be sent again."""


@dataclass(frozen=True)
class RecordFilter:
    station_id: str | None = None
    pile_id: str | None = None
    card_uid: str | None = None
    since: datetime | None = None
    """Records that stopped at or after this instant."""
    until: datetime | None = None
    """Records that stopped before this instant (exclusive, so that consecutive periods
    ``since=a&until=b``, ``since=b&until=c`` share no record)."""
    limit: int = 1000

    def narrow(self, statement: _Listing) -> _Listing:
        """``statement`` restricted to the records this filter keeps (``limit`` aside)."""
        conditions = [
            column == value
            for column, value in (
                (RECORDS.c.station_id, self.station_id),
                (RECORDS.c.pile_id, self.pile_id),
                (RECORDS.c.card_uid, self.card_uid),
            )
            if value is not None
        ]
        if self.since is not None:
            conditions.append(RECORDS.c.stopped_at >= self.since)
        if self.until is not None:
            conditions.append(RECORDS.c.stopped_at < self.until)
        return statement.where(*conditions)


@dataclass(frozen=True)
class RecordStore:
    engine: Engine

    def store(
        self, station_id: str, records: Sequence[ChargingRecord], received_at: datetime
    ) -> list[RecordResult]:
        """Store the records central does not hold yet; one result per record, in order."""
        first: dict[str, ChargingRecord] = {}
        for record in records:
            first.setdefault(record.record_id, record)
        dialect = self.engine.dialect.name
        rows = encode_records(station_id, first.values(), received_at, dialect)
        with self.engine.begin() as connection:
            inserted = set(
                connection.execute(insert_new_records(dialect), {"rows": rows}).scalars()
            )
            others = [record_id for record_id in first if record_id not in inserted]
            held = _payloads(connection, station_id, others) if others else {}
        missing = set(others) - held.keys()
        if missing:
            raise RecordsMissing(f"records neither stored nor found: {sorted(missing)[:5]}")
        reference = {
            record_id: first[record_id]
            if record_id in inserted
            else ChargingRecord.model_validate_json(held[record_id])
            for record_id in first
        }
        return self._results(station_id, records, inserted, reference)

    @staticmethod
    def _results(
        station_id: str,
        records: Sequence[ChargingRecord],
        inserted: set[str],
        reference: dict[str, ChargingRecord],
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        reported: set[str] = set()
        for record in records:
            record_id = record.record_id
            if record_id in inserted and record_id not in reported:
                outcome = RecordOutcome.STORED
            elif reference[record_id] == record:
                outcome = RecordOutcome.DUPLICATE
            else:
                outcome = RecordOutcome.CONFLICT
                log.warning(
                    "record refused: central holds another record under its id",
                    extra={
                        "station_id": station_id,
                        "record_id": record_id,
                        "session_id": record.session_id,
                        "pile_id": record.pile_id,
                        "card_uid": record.card_uid,
                    },
                )
            reported.add(record_id)
            results.append(RecordResult(record_id=record_id, outcome=outcome))
        return results

    def find(self, query: RecordFilter) -> list[CentralRecord]:
        """Oldest first (by ``stopped_at``), at most ``query.limit``."""
        statement = query.narrow(_listing()).limit(query.limit)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_central_record(payload, received_at) for _, _, payload, received_at in rows]

    def pages(self, query: RecordFilter, page_size: int) -> Iterator[list[CentralRecord]]:
        """Every record the filter keeps (``limit`` aside), oldest first, ``page_size`` at a time.

        Each page is a query of its own that starts after the last row of the one before
        (by ``stopped_at``, then row id), so an export of years of records holds one page in
        memory and no connection open between pages; a record stored meanwhile is in the
        export if it sorts after the page being read.
        """
        after: tuple[datetime, int] | None = None
        while True:
            statement = query.narrow(_listing())
            if after is not None:
                stopped_at, row_id = after
                statement = statement.where(
                    or_(
                        RECORDS.c.stopped_at > stopped_at,
                        and_(RECORDS.c.stopped_at == stopped_at, RECORDS.c.id > row_id),
                    )
                )
            with self.engine.connect() as connection:
                rows = connection.execute(statement.limit(page_size)).all()
            if not rows:
                return
            yield [_central_record(payload, received_at) for _, _, payload, received_at in rows]
            if len(rows) < page_size:
                return
            last = rows[-1]
            after = (last[0], last[1])

    def count(self, station_id: str | None = None) -> int:
        statement = select(func.count()).select_from(RECORDS)
        if station_id is not None:
            statement = statement.where(RECORDS.c.station_id == station_id)
        with self.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())


def _listing() -> _Listing:
    """Records oldest first, with the sort key (``stopped_at``, row id) ahead of each."""
    return select(
        RECORDS.c.stopped_at, RECORDS.c.id, RECORDS.c.payload, RECORDS.c.received_at
    ).order_by(RECORDS.c.stopped_at, RECORDS.c.id)


def _payloads(connection: Connection, station_id: str, record_ids: list[str]) -> dict[str, str]:
    rows = connection.execute(
        select(RECORDS.c.record_id, RECORDS.c.payload).where(
            RECORDS.c.station_id == station_id, RECORDS.c.record_id.in_(record_ids)
        )
    ).all()
    return {record_id: payload for record_id, payload in rows}


def _central_record(payload: str, received_at: datetime) -> CentralRecord:
    record = ChargingRecord.model_validate_json(payload)
    return CentralRecord.model_validate({**record.model_dump(), "received_at": received_at})
