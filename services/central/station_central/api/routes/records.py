"""Charging records: stations send them in batches, operators read them back.

Database work runs in worker threads (plain ``def`` routes run in FastAPI's thread pool),
so one slow database call never holds up the other requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from station_central.api.deps import (
    AdminDep,
    CallerDep,
    MetricsDep,
    RecordsDep,
    SettingsDep,
    StationWriterDep,
    refuse,
)
from station_central.api.routes import mounted
from station_central.export import csv_chunks
from station_central.metrics import CentralMetrics
from station_central.records import RecordFilter, RecordStore
from station_protocol.central import (
    MAX_BATCH,
    BatchReply,
    CentralPaths,
    CentralRecord,
    RecordBatch,
    RecordOutcome,
    RecordResult,
)
from station_protocol.ids import STATION_PATTERN
from station_protocol.records import ChargingRecord
from station_runtime.api_types import Instant
from station_runtime.clock import Clock
from station_runtime.deps import ClockDep

log = logging.getLogger("station.central.records")

router = APIRouter(tags=["records"])


MAX_BATCH_BYTES = 32 * 1024 * 1024
"""Far above the largest batch a station sends (1000 records with their charging periods)."""

BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RecordBatch.model_json_schema()}},
    }
}


@router.post(
    mounted(CentralPaths.RECORDS_BATCH_TEMPLATE),
    response_model=BatchReply,
    openapi_extra=BATCH_BODY,
)
async def store_batch(
    request: Request,
    station_id: StationWriterDep,
    records: RecordsDep,
    metrics: MetricsDep,
    clock: ClockDep,
) -> Response:
    """Idempotent by record id: one result per record (stored, duplicate or conflict).

    Stored and duplicate records are held by central; a conflict is a different record under
    an id central already holds: refused and logged, never overwritten. The body is read
    and parsed here rather than by FastAPI so that a batch of hundreds of records is parsed
    once, straight from its bytes, in a worker thread.
    """
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise HTTPException(status_code=413, detail=f"a batch is at most {MAX_BATCH_BYTES} bytes")
    return await asyncio.to_thread(_store_batch, body, station_id, records, metrics, clock)


def _store_batch(
    body: bytes, station_id: str, records: RecordStore, metrics: CentralMetrics, clock: Clock
) -> Response:
    try:
        batch = RecordBatch.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc
    if len(batch.records) > MAX_BATCH:
        raise HTTPException(status_code=413, detail=f"at most {MAX_BATCH} records per batch")
    reply = BatchReply(results=_store(records, metrics, station_id, batch.records, clock))
    metrics.batches.inc()
    return Response(reply.model_dump_json(), media_type="application/json")


@router.put(
    mounted(CentralPaths.RECORD_TEMPLATE),
    status_code=201,
    responses={200: {"description": "already stored"}, 409: {"description": "conflict"}},
)
def put_record(
    record: ChargingRecord,
    record_id: Annotated[str, Path(min_length=1, max_length=64)],
    station_id: StationWriterDep,
    records: RecordsDep,
    metrics: MetricsDep,
    clock: ClockDep,
    response: Response,
) -> RecordResult:
    """One record: 201 stored, 200 already stored (same record), 409 another record there."""
    if record.record_id != record_id:
        raise HTTPException(status_code=422, detail="record_id differs from the path")
    result = _store(records, metrics, station_id, [record], clock)[0]
    if result.outcome is RecordOutcome.CONFLICT:
        raise HTTPException(
            status_code=409, detail=f"another record is stored under {record_id}; refused"
        )
    if result.outcome is RecordOutcome.DUPLICATE:
        response.status_code = 200
    return result


def _store(
    records: RecordStore,
    metrics: CentralMetrics,
    station_id: str,
    batch: Sequence[ChargingRecord],
    clock: Clock,
) -> list[RecordResult]:
    foreign = sorted({r.record_id for r in batch if r.station_id != station_id})
    if foreign:
        raise refuse(metrics, 403, f"records of another station than {station_id}: {foreign[:5]}")
    results = records.store(station_id, batch, clock())
    for result in results:
        metrics.records.labels(result.outcome.value).inc()
    stored = sum(1 for result in results if result.outcome is RecordOutcome.STORED)
    log.info(
        "records received",
        extra={"station_id": station_id, "records": len(results), "stored": stored},
    )
    return results


def record_filter(
    station_id: Annotated[str | None, Query(pattern=STATION_PATTERN)] = None,
    pile_id: Annotated[str | None, Query(max_length=16)] = None,
    card_uid: Annotated[str | None, Query(max_length=64)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> RecordFilter:
    """The filters the JSON listing and the CSV export share (``limit`` is the listing's)."""
    return RecordFilter(
        station_id=station_id, pile_id=pile_id, card_uid=card_uid, since=since, until=until
    )


RecordFilterDep = Annotated[RecordFilter, Depends(record_filter)]


@router.get(mounted(CentralPaths.RECORDS), response_model_exclude_none=True)
def list_records(
    caller: CallerDep,
    records: RecordsDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    query: RecordFilterDep,
    limit: Annotated[int, Query(ge=1)] = 1000,
) -> list[CentralRecord]:
    """Records oldest first (by ``stopped_at``); ``since`` keeps those stopped at or after it,
    ``until`` those stopped before it.

    Parts a record does not have (the OCPI breakdown before the pricing engine fills it)
    are left out rather than written as null, as in the record the station sent.

    The admin reads every station; a station's token reads only its own records.
    """
    station_id = query.station_id
    if not caller.is_admin:
        if station_id is not None and station_id != caller.station_id:
            raise refuse(metrics, 403, "a station reads only its own records")
        station_id = caller.station_id
    return records.find(replace(query, station_id=station_id, limit=min(limit, settings.max_page)))


@router.get(
    mounted(CentralPaths.RECORDS_CSV),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the records as CSV"}},
)
def export_records(
    _admin: AdminDep, records: RecordsDep, settings: SettingsDep, query: RecordFilterDep
) -> StreamingResponse:
    """The records of the listing's filters as CSV, oldest first, every one (no ``limit``).

    Admin only: it is the operator's export for the books. Streamed a page of
    ``export_page`` records at a time, so a year of records never sits in memory at once.
    """
    log.info("records exported", extra={"station_id": query.station_id})
    return StreamingResponse(
        csv_chunks(records.pages(query, settings.export_page)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="records.csv"'},
    )
