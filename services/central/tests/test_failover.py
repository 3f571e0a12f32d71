"""Failover as a command: central's primary dies mid-stream, ``station-central failover``
promotes the standby, and ``rejoin`` brings the old primary back as the new standby.

Everything is real: two private PostgreSQL servers streaming, central as a process over both
hosts (it follows whichever accepts writes), the commands as processes, and a client that
plays a station's sync: it sends 500 records in small batches and sends a batch again until
central confirms it (records are idempotent by id). The primary is killed (SIGKILL) half-way.

Before the kill the standby falls behind for up to a second (its WAL sender frozen, as a
slow link would hold it). Synchronous mode: central confirms nothing the standby has not
flushed, so no confirmed record is lost. Asynchronous mode: exactly what was confirmed
during the lag is lost, never a record confirmed before it; the test prints how many.
Either way no record is stored twice, and the stream carries on against the new primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from station_protocol.records import ChargingRecord
from station_runtime.migrations import make_engine
from station_tools.central import CentralApi
from station_tools.ports import free_port
from station_tools.postgres import TEST_SETTINGS, Postgres
from station_tools.processes import ServiceProcess
from station_tools.records import sample_record

ADMIN_TOKEN = "admin-token-of-the-failover-test"
RECORDS = 500
BATCH = 5
STALL_AFTER = 200
"""Confirmed records before the standby falls behind: its WAL sender is frozen (SIGSTOP),
as a slow link would hold it, so that the test shows what each mode does with a lag."""
KILL_AFTER = 300
STALL_SECONDS = 1.0
"""The primary is killed after ``KILL_AFTER`` confirmed records or this long into the
stall, whichever comes first (in sync mode nothing is confirmed during the stall)."""
RETRY_PAUSE = 0.05


@dataclass
class Servers:
    primary: Postgres
    standby: Postgres

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """A primary with a database for central, and a standby streaming as ``standby``.

    ``wal_log_hints`` and ``full_page_writes`` let ``pg_rewind`` re-join the old primary,
    and ``wal_keep_size`` keeps the WAL it reads back to the last common checkpoint;
    without them ``rejoin`` falls back to a fresh base backup (the asynchronous test takes
    that path).
    """
    rewind = "on" if request.node.callspec.params["mode"] == "sync" else "off"
    settings = {**TEST_SETTINGS, "wal_log_hints": rewind, "full_page_writes": rewind}
    if rewind == "on":
        settings["wal_keep_size"] = "128MB"
    primary = Postgres(settings=settings).start()
    primary.create_database("central")
    standby = primary.standby()
    try:
        yield Servers(primary, standby)
    finally:
        standby.close()
        primary.close()


def central_env(servers: Servers, mode: str) -> dict[str, str]:
    return {
        "STATION_CENTRAL_DATABASE_URL": servers.primary.url("central"),
        "STATION_CENTRAL_DATABASE_HOSTS": servers.hosts,
        "STATION_CENTRAL_REPLICATION": mode,
        "STATION_CENTRAL_REPLICATION_SAMPLE_SECONDS": "0.2",
        "STATION_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
    }


def command(env: dict[str, str], *arguments: str) -> dict[str, Any]:
    """``station-central <arguments>`` as a process; its JSON report."""
    result = subprocess.run(
        [sys.executable, "-m", "station_central", *arguments],
        env={**_environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STATION_")}


def bury(pid: int) -> None:
    """Until the frozen WAL sender is gone: it holds the old primary's shared memory, which
    would stop ``rejoin``'s crash recovery ("pre-existing shared memory block")."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "State:\tZ" not in _status(pid):
        assert time.monotonic() < deadline, f"process {pid} does not die"
        time.sleep(0.01)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "State:\tZ"


@dataclass
class Stream:
    """A station's sync, reduced: each batch is sent until central answers 200."""

    api: CentralApi
    station: str
    token: str
    confirmed: dict[str, float] = field(default_factory=dict)
    """Record id -> when central confirmed it (monotonic)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    failed_sends: int = 0
    marks: dict[int, asyncio.Event] = field(default_factory=dict)

    def confirmed_count(self, count: int) -> asyncio.Event:
        """An event set once ``count`` records are confirmed."""
        return self.marks.setdefault(count, asyncio.Event())

    async def send(self, batch: list[ChargingRecord]) -> None:
        while True:
            try:
                response = await self.api.send(self.station, self.token, batch)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                now = time.monotonic()
                for result in response.json()["results"]:
                    self.confirmed[result["record_id"]] = now
                    outcome = result["outcome"]
                    self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
                for count, event in self.marks.items():
                    if len(self.confirmed) >= count:
                        event.set()
                return
            self.failed_sends += 1
            await asyncio.sleep(RETRY_PAUSE)


async def wait_metric(api: CentralApi, name: str, value: float, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (found := await api.metric(name)) != value:
        assert time.monotonic() < deadline, f"{name} is {found}, not {value}"
        await asyncio.sleep(0.1)


def stored_counts(server: Postgres, station: str) -> dict[str, int]:
    engine = make_engine(server.url("central"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT record_id, count(*) FROM central_records"
                    " WHERE station_id = :station GROUP BY record_id"
                ),
                {"station": station},
            ).all()
    finally:
        engine.dispose()
    return {str(record_id): int(count) for record_id, count in rows}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_failover_mid_stream_keeps_every_confirmed_record_and_rejoins_the_old_primary(
    mode: str, servers: Servers, tmp_path: Path
) -> None:
    env = central_env(servers, mode)
    applied = command(env, "replication", "--wait", "10")
    assert applied["synchronous_standby_names"] == ('"standby"' if mode == "sync" else "")
    port = free_port()
    central = ServiceProcess(
        name=f"central-{mode}",
        module="station_central",
        env={**env, "STATION_CENTRAL_PORT": str(port)},
        log_dir=tmp_path / "logs",
        health_url=f"http://127.0.0.1:{port}/ready",
    )
    try:
        await asyncio.to_thread(central.start, 30)
        async with httpx.AsyncClient(base_url=central.base_url, timeout=10) as http:
            api = CentralApi(http, ADMIN_TOKEN)
            await wait_metric(api, "station_central_standby_connected", 1)
            await wait_metric(
                api, "station_central_replication_synchronous", 1 if mode == "sync" else 0
            )
            station, token = await api.register()
            stream = Stream(api, station, token)
            records = [sample_record(station) for _ in range(RECORDS)]
            batches = [records[i : i + BATCH] for i in range(0, RECORDS, BATCH)]

            async def fail_over() -> tuple[float, float, dict[str, Any]]:
                await stream.confirmed_count(STALL_AFTER).wait()
                sender = int(servers.primary.psql("SELECT pid FROM pg_stat_replication"))
                os.kill(sender, signal.SIGSTOP)
                stalled = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.confirmed_count(KILL_AFTER).wait(), STALL_SECONDS)
                servers.primary.kill()
                killed = time.monotonic()
                await asyncio.to_thread(bury, sender)
                return stalled, killed, await asyncio.to_thread(command, env, "failover")

            failing_over = asyncio.create_task(fail_over())
            for batch in batches:
                await stream.send(batch)
            stalled, killed, report = await failing_over

            # Every record sent is at the new primary, each once; in sync mode no confirmed
            # record was lost, in async mode only what was confirmed while the standby lagged.
            assert report["promoted"] == f"127.0.0.1:{servers.standby.port}"
            counts = stored_counts(servers.standby, station)
            assert set(counts.values()) == {1}
            lost = set(stream.confirmed) - set(counts)
            in_stall = {r for r, at in stream.confirmed.items() if stalled <= at <= killed}
            summary = (
                f"\n{mode}: {len(stream.confirmed)} confirmed, {len(in_stall)} of them during "
                f"the {killed - stalled:.2f} s the standby lagged before the kill; "
                f"{len(counts)} held after the failover, {len(lost)} lost; "
                f"{stream.failed_sends} sends retried; outcomes {stream.outcomes}; "
                f"promotion {report['seconds']} s"
            )
            print(summary, flush=True)  # noqa: T201
            if mode == "sync":
                assert lost == set()
            else:
                assert lost, "a lagging asynchronous standby loses what it did not receive"
                assert lost <= in_stall, "lost a record confirmed before the lag began"
            assert len(stream.confirmed) == RECORDS
            assert len(counts) == RECORDS - len(lost)
            assert await api.outcomes(station, token, records[-BATCH:]) == ["duplicate"] * BATCH
            # Alone now: central says so (the alerts' input).
            await wait_metric(api, "station_central_standby_connected", 0)
            await wait_metric(api, "station_central_replication_synchronous", 0)

            # The old primary comes back as the new standby; sync mode is restored.
            joined = command(env, "rejoin", "--pgdata", str(servers.primary.data_dir))
            # pg_rewind with wal_log_hints (sync case), else a fresh copy (async case).
            assert joined["method"] == ("rewind" if mode == "sync" else "basebackup"), joined
            await asyncio.to_thread(servers.primary.start)
            assert servers.primary.psql("SELECT pg_is_in_recovery()") == "t"
            applied = command(env, "replication", "--wait", "30")
            assert applied["standby_streaming"] is True, servers.primary.tail_log(30)
            assert applied["synchronous_standby_names"] == ('"standby"' if mode == "sync" else "")
            await wait_metric(api, "station_central_standby_connected", 1)
            late = [sample_record(station) for _ in range(BATCH)]
            assert await api.outcomes(station, token, late) == ["stored"] * BATCH
            deadline = time.monotonic() + 5
            while len(stored_counts(servers.primary, station)) < len(counts) + BATCH:
                assert time.monotonic() < deadline, "the re-joined standby does not follow"
                await asyncio.sleep(0.05)
    finally:
        central.stop()
