"""The central server's HTTP API (version 1): what sync sends and what central answers.

Central runs off-site and collects the charging records of every station. The contract is
shaped by invariant 2 of ``docs/invariants.md`` (no record lost, none duplicated): a batch
is idempotent by record id, and central answers per record, so that the sender marks
exactly the confirmed ones as sent and never retries forever a record central will not take.

Every request carries ``Authorization: Bearer <token>``: a station's token (issued once by
``POST /api/v1/stations`` with the admin token) writes and reads only that station's
records; the admin token creates stations and reads every record.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from station_protocol.ids import StationId
from station_protocol.records import ChargingRecord, RecordId

API_ROOT = "/api/v1"
MAX_BATCH = 1000
"""Records central takes in one batch; a larger batch is refused with 413."""


class CentralPaths:
    """The URL paths of central's API (relative to its base URL)."""

    STATIONS = f"{API_ROOT}/stations"
    RECORDS = f"{API_ROOT}/records"
    RECORDS_CSV = f"{API_ROOT}/records.csv"
    """``GET`` (admin): the records of ``RECORDS``'s filters as CSV, for the books."""
    RECORDS_BATCH_TEMPLATE = f"{API_ROOT}/stations/{{station_id}}/records:batch"
    RECORD_TEMPLATE = f"{API_ROOT}/stations/{{station_id}}/records/{{record_id}}"
    STATION_TOKEN_TEMPLATE = f"{API_ROOT}/stations/{{station_id}}/token"

    @staticmethod
    def records_batch(station_id: str) -> str:
        """``POST``: a batch of one station's records (:class:`RecordBatch`)."""
        return CentralPaths.RECORDS_BATCH_TEMPLATE.format(station_id=station_id)

    @staticmethod
    def record(station_id: str, record_id: str) -> str:
        """``PUT``: one record; 201 stored, 200 already stored, 409 another record there."""
        return CentralPaths.RECORD_TEMPLATE.format(station_id=station_id, record_id=record_id)

    @staticmethod
    def station_token(station_id: str) -> str:
        """``POST`` (admin): a new token for the station; the old one stops working."""
        return CentralPaths.STATION_TOKEN_TEMPLATE.format(station_id=station_id)


class RecordBatch(BaseModel):
    """``POST .../records:batch``: records of the station named in the path, oldest first."""

    model_config = ConfigDict(frozen=True)

    records: list[ChargingRecord] = Field(min_length=1)


class RecordOutcome(StrEnum):
    STORED = "stored"
    """Central did not have it and now does."""
    DUPLICATE = "duplicate"
    """Central already had this very record (a re-send): nothing changed."""
    CONFLICT = "conflict"
    """Central holds a different record under this id: refused, logged, kept as it was."""


SENT_OUTCOMES = frozenset({RecordOutcome.STORED, RecordOutcome.DUPLICATE})
"""Outcomes after which the sender may mark the record sent."""


class RecordResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_id: RecordId
    outcome: RecordOutcome


class BatchReply(BaseModel):
    """One result per record of the batch, in the batch's order."""

    model_config = ConfigDict(frozen=True)

    results: list[RecordResult]


class StationRegistration(BaseModel):
    """``POST /api/v1/stations`` (admin token)."""

    model_config = ConfigDict(frozen=True)

    station_id: StationId
    name: str | None = Field(default=None, max_length=200)


INSTALL_TOKEN = (
    "Install this token on the station, where it is read from standard input: "
    "`station sync token` (or PUT /api/v1/sync/central-token on its sync service, body "
    '{"token": "..."}). Sync keeps its backlog and uses the token at its next try.'
)
"""How a station takes a new token, said in every answer that issues one."""


class StationCredentials(BaseModel):
    """The station's token: shown once; central keeps only its hash."""

    model_config = ConfigDict(frozen=True)

    station_id: StationId
    token: str
    install: str = INSTALL_TOKEN
    """What to do with the token on the station (it is never sent there by central)."""


class Station(BaseModel):
    model_config = ConfigDict(frozen=True)

    station_id: StationId
    name: str | None = None
    created_at: datetime


class CentralRecord(ChargingRecord):
    """A record as ``GET /api/v1/records`` returns it: the station's record plus receipt time."""

    received_at: AwareDatetime
    """When central first stored it (central's clock)."""
