"""The backup server: a streaming standby of central's PostgreSQL holds every record at once.

Central runs as a real process on a private PostgreSQL primary; the standby is made with
``pg_basebackup -R``. Every record central confirmed must be readable on the standby within
a second; when the primary dies, the promoted standby serves central with nothing missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, bindparam, text

from station_runtime.migrations import make_engine
from station_tools.central import CentralApi
from station_tools.ports import free_port
from station_tools.postgres import TEST_SETTINGS, Postgres
from station_tools.processes import ServiceProcess
from station_tools.records import sample_record

ADMIN_TOKEN = "admin-token-of-the-backup-test-42"
REPLICA_LAG_LIMIT = 1.0


@pytest.fixture
def primary() -> Iterator[Postgres]:
    with Postgres(settings=TEST_SETTINGS) as server:
        yield server


def central_process(database_url: str, tmp_path: Path, name: str) -> tuple[ServiceProcess, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        name=name,
        module="station_central",
        env={
            "STATION_CENTRAL_DATABASE_URL": database_url,
            "STATION_CENTRAL_PORT": str(port),
            "STATION_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
        },
        log_dir=tmp_path / "logs",
        health_url=f"{base}/ready",
    )
    return process, base


def count_on(engine: Engine, record_ids: list[str]) -> int:
    query = text("SELECT count(*) FROM central_records WHERE record_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    with engine.connect() as connection:
        return int(connection.execute(query, {"ids": record_ids}).scalar_one())


async def seconds_until_replicated(engine: Engine, record_ids: list[str]) -> float:
    start = time.monotonic()
    while time.monotonic() - start < 5:
        if await asyncio.to_thread(count_on, engine, record_ids) == len(record_ids):
            return time.monotonic() - start
        await asyncio.sleep(0.01)
    raise AssertionError("records never reached the standby")


async def test_the_standby_copies_every_record_and_takes_over(
    primary: Postgres, tmp_path: Path
) -> None:
    standby = primary.standby()
    central, base = central_process(primary.url(), tmp_path, "central")
    on_standby = make_engine(standby.url())
    try:
        await asyncio.to_thread(central.start, 30)
        async with httpx.AsyncClient(base_url=base) as http:
            api = CentralApi(http, ADMIN_TOKEN)
            station, token = await api.register()
            sent = []
            for _ in range(5):
                batch = [sample_record(station) for _ in range(40)]
                assert await api.outcomes(station, token, batch) == ["stored"] * 40
                lag = await seconds_until_replicated(on_standby, [r.record_id for r in batch])
                assert lag < REPLICA_LAG_LIMIT
                sent.extend(batch)

        primary.kill()
        central.kill()
        await asyncio.to_thread(standby.promote)
        central, base = central_process(standby.url(), tmp_path, "central-on-standby")
        await asyncio.to_thread(central.start, 30)
        async with httpx.AsyncClient(base_url=base) as http:
            api = CentralApi(http, ADMIN_TOKEN)
            held = await api.records(station_id=station)
            assert sorted(r["record_id"] for r in held) == sorted(r.record_id for r in sent)
            assert await api.outcomes(station, token, sent[-40:]) == ["duplicate"] * 40
            assert await api.outcomes(station, token, [sample_record(station)]) == ["stored"]
    finally:
        central.stop()
        on_standby.dispose()
        standby.close()
