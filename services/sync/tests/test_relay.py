"""Records leave the outbox T2 after they were stored, and are marked sent on central's word."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select

from station_runtime.migrations import make_engine
from station_runtime.outbox import OUTBOX_METADATA, billing_outbox
from station_tools.central import CentralApi
from station_tools.postgres import TEST_SETTINGS, Postgres
from station_tools.records import queue_records, sample_record
from station_tools.steps import eventually

T2 = 1.5


async def test_records_wait_t2_and_are_marked_sent_once_central_holds_them(
    central: Any,
    central_http: CentralApi,
    outbox: Any,
    make_settings: Any,
    start_sync: Any,
    poll: Any,
) -> None:
    station, token = await central_http.register()
    records = [sample_record(station, pile_id=f"c1-p0{i}") for i in range(1, 4)]
    outbox.queue(records)

    settings = make_settings(central.url, station, token, t2=T2, batch_size=2)
    async with start_sync(settings) as sync:
        await asyncio.sleep(T2 / 2)
        assert await central_http.records(station_id=station) == []
        assert outbox.sent() == 0
        assert await sync.metric("station_sync_backlog_records") == 3

        await eventually(lambda: outbox.sent() == 3, timeout=10)
        held = {r["record_id"]: r for r in await central_http.records(station_id=station)}
        rows = outbox.rows()

        async def drained() -> bool:
            return bool(await sync.metric("station_sync_backlog_records") == 0)

        await poll(drained)
        assert await sync.metric("station_sync_sent_total") == 3
        status = await sync.status()

    assert set(held) == {r.record_id for r in records}
    t2 = timedelta(seconds=T2)
    for row in rows:
        assert row["sent_at"] - row["stored_at"] >= t2
        received = datetime.fromisoformat(held[row["record_id"]]["received_at"])
        assert row["stored_at"] + t2 <= received <= row["sent_at"]
        assert row["attempts"] == 0 and row["last_error"] is None
    assert status["backlog"] == 0 and status["last_sent_at"] is not None


async def test_conflicts_and_unreadable_rows_are_set_aside_not_retried(
    central: Any, central_http: CentralApi, outbox: Any, make_settings: Any, start_sync: Any
) -> None:
    station, token = await central_http.register()
    clash = sample_record(station)
    other_version = clash.model_copy(update={"card_uid": "CARD-ELSEWHERE"})
    assert await central_http.outcomes(station, token, [other_version]) == ["stored"]
    good = [sample_record(station), sample_record(station)]
    foreign = sample_record("another-station")
    outbox.queue([good[0], clash, good[1], foreign])
    with outbox.engine.begin() as connection:
        connection.execute(
            insert(billing_outbox).values(
                record_id="broken", stored_at=datetime.now(UTC), payload="{not json", attempts=0
            )
        )

    async with start_sync(make_settings(central.url, station, token)) as sync:
        await eventually(lambda: outbox.sent() == 2)
        await asyncio.sleep(0.5)
        refused = await sync.metric("station_sync_refused_records")
        conflicts = await sync.metric("station_sync_refused_total", 'reason="conflict"')
        unreadable = await sync.metric("station_sync_refused_total", 'reason="unreadable"')
        backlog = await sync.metric("station_sync_backlog_records")
        status = await sync.status()

    rows = {row["record_id"]: row for row in outbox.rows()}
    assert {r for r, row in rows.items() if row["sent_at"] is not None} == {
        g.record_id for g in good
    }
    set_aside = {r: row for r, row in rows.items() if row["refused_at"] is not None}
    assert set(set_aside) == {clash.record_id, "broken", foreign.record_id}
    assert set_aside[clash.record_id]["last_error"].startswith("conflict")
    assert set_aside[clash.record_id]["attempts"] == 1, "a conflict is not retried"
    assert set_aside["broken"]["last_error"].startswith("unreadable payload")
    assert (refused, conflicts, unreadable, backlog) == (3, 1, 2, 0)
    assert status["refused"] == 3
    assert set_aside[foreign.record_id]["last_error"] == "payload is a record of another-station"
    [kept] = [
        r
        for r in await central_http.records(station_id=station)
        if r["record_id"] == clash.record_id
    ]
    assert kept["card_uid"] == "CARD-ELSEWHERE"


def sent_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        query = select(func.count()).where(billing_outbox.c.sent_at.is_not(None))
        return int(connection.execute(query).scalar_one())


async def test_sync_waits_for_billing_to_create_its_outbox(
    central: Any,
    central_http: CentralApi,
    make_settings: Any,
    start_sync: Any,
    poll: Any,
    tmp_path: Path,
) -> None:
    station, token = await central_http.register()
    url = f"sqlite:///{tmp_path / 'billing-not-migrated-yet.db'}"

    async with start_sync(make_settings(central.url, station, token, database_url=url)) as sync:
        not_ready = await sync.http.get("/ready")

        async def database_errors_counted() -> bool:
            return bool(await sync.metric("station_sync_database_errors_total") >= 1)

        await poll(database_errors_counted)
        billing = make_engine(url)
        OUTBOX_METADATA.create_all(billing)
        queue_records(billing, [sample_record(station)])

        async def ready() -> bool:
            return bool((await sync.http.get("/ready")).status_code == 200)

        await poll(ready)
        await eventually(lambda: sent_rows(billing) == 1)
        billing.dispose()

    assert not_ready.status_code == 503
    # The skeleton pings the database too: it answers; only the outbox table is missing.
    assert not_ready.json()["checks"] == {"broker": True, "database": True, "outbox": False}
    assert len(await central_http.records(station_id=station)) == 1


async def test_the_outbox_may_live_in_postgresql(
    central: Any, central_http: CentralApi, make_settings: Any, start_sync: Any
) -> None:
    station, token = await central_http.register()
    records = [sample_record(station) for _ in range(5)]
    with Postgres(settings=TEST_SETTINGS) as postgres:
        billing = make_engine(postgres.url())
        OUTBOX_METADATA.create_all(billing)
        queue_records(billing, records[:3], stored_at=datetime.now(UTC) - timedelta(minutes=5))
        queue_records(billing, records[3:])
        settings = make_settings(
            central.url, station, token, database_url=postgres.url(), batch_size=2
        )
        async with start_sync(settings):
            await eventually(lambda: sent_rows(billing) == 5)
        billing.dispose()

    held = await central_http.records(station_id=station)
    assert sorted(r["record_id"] for r in held) == sorted(r.record_id for r in records)
