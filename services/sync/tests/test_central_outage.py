"""Central down: nothing lost, retries back off, the backlog grows, the fault comes and goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from station_protocol import channels
from station_protocol.faults import FaultCode
from station_tools.records import sample_record
from station_tools.steps import eventually

FAULT_AFTER = 1.0
RETRY_MIN, RETRY_MAX = 0.05, 0.4


async def test_an_outage_delays_records_raises_the_fault_and_loses_nothing(
    own_central: Any,
    outbox: Any,
    make_settings: Any,
    start_sync: Any,
    retained: Any,
    poll: Any,
) -> None:
    await asyncio.to_thread(own_central.process.start, 30)
    async with httpx.AsyncClient(base_url=own_central.url) as http:
        station, token = await own_central.api(http).register()
    own_central.process.stop()
    before = [sample_record(station) for _ in range(20)]
    during = [sample_record(station) for _ in range(10)]
    outbox.queue(before)
    topic = channels.SERVICE_FAULT.topic(
        service="sync", source="central", code=FaultCode.CENTRAL_SYNC_BACKLOG
    )
    settings = make_settings(
        own_central.url,
        station,
        token,
        backlog_fault_after=FAULT_AFTER,
        retry_min=RETRY_MIN,
        retry_max=RETRY_MAX,
    )

    async with start_sync(settings) as sync:
        started = time.monotonic()

        def backlog(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return bool(await sync.metric("station_sync_backlog_records") == n)

            return check

        await poll(backlog(20))
        outbox.queue(during)
        await poll(backlog(30))
        raised = await retained.eventually(topic, active=True, timeout=10)
        failures = await sync.metric("station_sync_send_failures_total")
        elapsed = time.monotonic() - started
        status = await sync.status()
        rows = outbox.rows()

        assert all(row["sent_at"] is None and row["attempts"] >= 2 for row in rows[:20])
        assert failures >= 3
        # Without backoff a refused connection would be retried every RETRY_MIN (~80 times
        # here); doubling up to RETRY_MAX (jittered to at least half of it) allows this many:
        assert failures <= 5 + elapsed / (RETRY_MAX / 2), "retries back off"
        assert await sync.metric("station_sync_central_up") == 0
        assert await sync.metric("station_sync_oldest_unsent_age_seconds") >= FAULT_AFTER
        assert status["fault_active"] and status["unreachable_since"] is not None
        assert raised.service == "sync" and raised.source == "central"
        assert raised.code == FaultCode.CENTRAL_SYNC_BACKLOG
        assert (raised.detected_at - raised.since).total_seconds() >= FAULT_AFTER
        assert raised.detail["backlog"] in {"20", "30"}
        assert "unreachable" in raised.detail["last_error"]

        await asyncio.to_thread(own_central.process.start, 30)
        await eventually(lambda: outbox.sent() == 30, timeout=20)
        cleared = await retained.eventually(topic, active=False, timeout=10)
        await poll(backlog(0))
        assert await sync.metric("station_sync_sent_total") == 30
        assert await sync.metric("station_sync_central_up") == 1

    assert cleared.detected_at > raised.detected_at
    async with httpx.AsyncClient(base_url=own_central.url) as http:
        held = await own_central.api(http).records(station_id=station)
    assert sorted(r["record_id"] for r in held) == sorted(r.record_id for r in before + during)
