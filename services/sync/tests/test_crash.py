"""kill -9 of sync in the middle of a batch: every record reaches central exactly once.

The worst moment is made certain rather than hoped for: billing's database is held locked
for writing (as a long billing transaction would), so sync can read and send its first
batch, central stores it, but sync cannot mark it sent. Then sync is killed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from station_tools.central import CentralApi
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.processes import ServiceProcess
from station_tools.records import sample_record
from station_tools.steps import eventually

RECORDS, BATCH = 600, 200


async def test_a_batch_confirmed_but_not_marked_is_sent_again_and_stored_once(
    mosquitto: Mosquitto,
    central: Any,
    central_http: CentralApi,
    outbox: Any,
    tmp_path: Path,
    poll: Any,
) -> None:
    station, token = await central_http.register()
    records = [sample_record(station) for _ in range(RECORDS)]
    outbox.queue(records, stored_at=datetime.now(UTC) - timedelta(hours=1))
    port = free_port()
    sync = ServiceProcess(
        name="sync",
        module="station_sync",
        env={
            "STATION_SYNC_BROKER": mosquitto.url,
            "STATION_SYNC_PORT": str(port),
            "STATION_SYNC_DATABASE_URL": outbox.url,
            "STATION_SYNC_STATION_ID": station,
            "STATION_SYNC_CENTRAL_URL": central.url,
            "STATION_SYNC_CENTRAL_TOKEN": token,
            "STATION_SYNC_BATCH_SIZE": str(BATCH),
            "STATION_SYNC_RETRY_MIN": "0.05",
            "STATION_SYNC_RETRY_MAX": "0.5",
        },
        log_dir=tmp_path / "logs",
        health_url=f"http://127.0.0.1:{port}/health",
    )

    async def central_holds_first_batch() -> bool:
        return len(await central_http.records(station_id=station, limit=10_000)) >= BATCH

    billing_writer = sqlite3.connect(tmp_path / "billing.db", isolation_level=None, timeout=1)
    try:
        billing_writer.execute("BEGIN IMMEDIATE")
        await asyncio.to_thread(sync.start, 30)
        await poll(central_holds_first_batch, 20)
        assert outbox.sent() == 0, "confirmed by central, not yet marked"
        sync.kill()
    finally:
        billing_writer.execute("ROLLBACK")
        billing_writer.close()
    assert outbox.sent() == 0
    duplicates = await central_http.metric("station_central_records_total", 'outcome="duplicate"')

    try:
        await asyncio.to_thread(sync.start, 30)
        await eventually(lambda: outbox.sent() == RECORDS, timeout=30)
    finally:
        sync.stop()

    held = await central_http.records(station_id=station, limit=10_000)
    assert len(held) == RECORDS
    assert {r["record_id"] for r in held} == {r.record_id for r in records}
    again = await central_http.metric("station_central_records_total", 'outcome="duplicate"')
    assert again - duplicates >= BATCH, "the first batch was sent again and stored once"
