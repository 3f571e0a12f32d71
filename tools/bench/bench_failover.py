"""Benchmark: central's replication lag under load, and the time a failover takes.

Central runs as a process over a private PostgreSQL primary and its streaming standby (both
hosts, as in production). A client sends a sustained ``--rate`` records/s (batches of
``--batch``) for ``--seconds``; meanwhile the primary's ``pg_stat_replication`` is sampled
every 50 ms (``flush_lag`` and ``replay_lag``). Then the primary is killed (SIGKILL),
``station-central failover`` runs as a process, and the clock stops when central stores a
batch again. Prints p50/p99 of the lags, the rate achieved, and the failover times.

    python tools/bench/bench_failover.py [--rate 1000] [--seconds 20] [--mode async|sync]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from station_tools.central import CentralApi
from station_tools.ports import free_port
from station_tools.postgres import Postgres
from station_tools.processes import ServiceProcess
from station_tools.records import sample_record

ADMIN_TOKEN = "admin-token-of-the-failover-benchmark"
SAMPLE_SECONDS = 0.05
LAGS = (
    "SELECT coalesce(extract(epoch FROM flush_lag), 0),"
    " coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication"
)
"""NULL lag: the standby has caught up and the primary is idle."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def sample_lags(primary: Postgres, until: float) -> tuple[list[float], list[float]]:
    flush: list[float] = []
    replay: list[float] = []
    while time.monotonic() < until:
        row = await asyncio.to_thread(primary.psql, LAGS)
        if row:
            first, second = row.split("|")
            flush.append(float(first))
            replay.append(float(second))
        await asyncio.sleep(SAMPLE_SECONDS)
    return flush, replay


async def load(
    api: CentralApi, station: str, token: str, rate: int, batch: int, until: float
) -> int:
    """Batches on a fixed schedule (``rate`` records/s); returns the records confirmed."""
    period, sent = batch / rate, 0
    next_at = time.monotonic()
    while time.monotonic() < until:
        records = [sample_record(station) for _ in range(batch)]
        response = await api.send(station, token, records)
        assert response.status_code == 200, response.text
        sent += batch
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def command(env: dict[str, str], *arguments: str) -> None:
    """``station-central <arguments>`` as a process, as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "station_central", *arguments],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)


async def run(rate: int, seconds: float, batch: int, mode: str) -> None:
    settings = {"wal_level": "replica"}
    with Postgres(settings=settings) as primary, tempfile.TemporaryDirectory() as work:
        primary.create_database("central")
        standby = primary.standby()
        port = free_port()
        env = {
            "STATION_CENTRAL_DATABASE_URL": primary.url("central"),
            "STATION_CENTRAL_DATABASE_HOSTS": f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}",
            "STATION_CENTRAL_REPLICATION": mode,
            "STATION_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        await asyncio.to_thread(command, env, "replication", "--wait", "10")
        central = ServiceProcess(
            name="central",
            module="station_central",
            env={**env, "STATION_CENTRAL_PORT": str(port)},
            log_dir=Path(work) / "logs",
            health_url=f"http://127.0.0.1:{port}/ready",
        )
        try:
            await asyncio.to_thread(central.start, 30)
            async with httpx.AsyncClient(base_url=central.base_url, timeout=30) as http:
                api = CentralApi(http, ADMIN_TOKEN)
                station, token = await api.register()
                until = time.monotonic() + seconds
                started = time.monotonic()
                sent, (flush, replay) = await asyncio.gather(
                    load(api, station, token, rate, batch, until), sample_lags(primary, until)
                )
                achieved = sent / (time.monotonic() - started)

                primary.kill()
                died = time.monotonic()
                await asyncio.to_thread(command, env, "failover")
                promoted = time.monotonic()
                while True:
                    try:
                        response = await api.send(station, token, [sample_record(station)])
                        if response.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.01)
                answered = time.monotonic()
        finally:
            central.stop()
            standby.close()
    report(mode, achieved, seconds, sent, flush, replay)
    print(f"failover: primary killed -> command done {(promoted - died) * 1000:.0f} ms")
    print(f"failover: primary killed -> central stores again {(answered - died) * 1000:.0f} ms")


def report(
    mode: str, achieved: float, seconds: float, sent: int, flush: list[float], replay: list[float]
) -> None:
    print(f"mode {mode}: {achieved:,.0f} records/s for {seconds:.0f} s ({sent} records)")
    for name, lags in (("flush", flush), ("replay", replay)):
        print(
            f"{name} lag, {len(lags)} samples: p50 {percentile(lags, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(lags, 0.99) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="records/s (1000)")
    parser.add_argument("--seconds", type=float, default=20, help="load duration (20)")
    parser.add_argument("--batch", type=int, default=50, help="records per batch (50)")
    parser.add_argument("--mode", choices=["async", "sync"], default="async")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.rate, arguments.seconds, arguments.batch, arguments.mode))


if __name__ == "__main__":
    main()
