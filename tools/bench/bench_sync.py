"""Benchmark: a backlog of charging records drained from billing's outbox to central.

The situation after a long outage: 100,000 records have waited in billing's outbox (stored
long ago, so all are due) when central comes back. Sync and central run as real processes
(central on a private PostgreSQL by default), and the clock runs from sync's start until
the outbox holds no unsent record. Prints records/s and the time until the backlog is
empty; checks that central holds every record once.

    python tools/bench/bench_sync.py [--records 100000] [--batch-size 500] [--central-db sqlite]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from station_protocol.records import record_json
from station_runtime.migrations import make_engine
from station_runtime.outbox import OUTBOX_METADATA, billing_outbox
from station_tools.central import prometheus_sample, register_station
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.postgres import Postgres
from station_tools.processes import ServiceProcess
from station_tools.records import sample_record

ADMIN_TOKEN = "admin-token-of-the-sync-benchmark"
STATION = "station-bench"
QUEUE_CHUNK = 10_000


def fill_outbox(url: str, count: int) -> None:
    """``count`` records stored two hours ago, in billing's outbox table."""
    engine = make_engine(url)
    OUTBOX_METADATA.create_all(engine)
    stored_at = datetime.now(UTC) - timedelta(hours=2)
    for start in range(0, count, QUEUE_CHUNK):
        rows = []
        for i in range(start, min(start + QUEUE_CHUNK, count)):
            record = sample_record(
                STATION,
                pile_id=f"c{1 + i % 4}-p{1 + i % 12:02d}",
                card_uid=f"CARD-{i % 500:04d}",
                stopped_at=stored_at - timedelta(seconds=count - i),
            )
            payload = record_json(record)
            rows.append({"record_id": record.record_id, "stored_at": stored_at, "payload": payload})
        with engine.begin() as connection:
            connection.execute(insert(billing_outbox), rows)
    engine.dispose()


def cpu_seconds(process: ServiceProcess) -> float:
    """User + system CPU time the process has used so far (Linux ``/proc``)."""
    if process.pid is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unsent(database: Path) -> int:
    with sqlite3.connect(database, timeout=30) as db:
        query = "SELECT count(*) FROM billing_outbox WHERE sent_at IS NULL AND refused_at IS NULL"
        return int(db.execute(query).fetchone()[0])


def central_process(database_url: str, work: Path) -> tuple[ServiceProcess, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        name="central",
        module="station_central",
        env={
            "STATION_CENTRAL_DATABASE_URL": database_url,
            "STATION_CENTRAL_PORT": str(port),
            "STATION_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
            "STATION_CENTRAL_LOG_LEVEL": "WARNING",
        },
        log_dir=work / "logs",
        health_url=f"{url}/ready",
    )
    return process, url


def sync_process(
    broker: Mosquitto, outbox_url: str, central_url: str, token: str, batch: int, work: Path
) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        name="sync",
        module="station_sync",
        env={
            "STATION_SYNC_BROKER": broker.url,
            "STATION_SYNC_PORT": str(port),
            "STATION_SYNC_DATABASE_URL": outbox_url,
            "STATION_SYNC_STATION_ID": STATION,
            "STATION_SYNC_CENTRAL_URL": central_url,
            "STATION_SYNC_CENTRAL_TOKEN": token,
            "STATION_SYNC_BATCH_SIZE": str(batch),
            "STATION_SYNC_LOG_LEVEL": "WARNING",
        },
        log_dir=work / "logs",
        health_url=None,
    )


@dataclass(frozen=True)
class Drain:
    total: float
    """Seconds from sync's start (process start-up included) until the backlog was empty."""
    draining: float
    """Seconds from the first record marked sent until the backlog was empty."""
    sync_cpu: float
    central_cpu: float


def drain(sync: ServiceProcess, central: ServiceProcess, outbox: Path, records: int) -> Drain:
    central_before = cpu_seconds(central)
    started = time.monotonic()
    sync.start(wait=0)
    first_sent: float | None = None
    while (left := unsent(outbox)) > 0:
        if first_sent is None and left < records:
            first_sent = time.monotonic()
        if sync.process is not None and sync.process.poll() is not None:
            raise RuntimeError(f"sync exited: {sync.tail_log()}")
        time.sleep(0.05)
    empty = time.monotonic()
    used = Drain(
        total=empty - started,
        draining=empty - (first_sent or started),
        sync_cpu=cpu_seconds(sync),
        central_cpu=cpu_seconds(central) - central_before,
    )
    sync.stop()
    return used


def run(records: int, batch: int, central_db: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp, Mosquitto() as broker:
        work = Path(tmp)
        postgres = Postgres().start() if central_db == "postgresql" else None
        central_url_db = postgres.url() if postgres else f"sqlite:///{work / 'central.db'}"
        central, central_url = central_process(central_url_db, work)
        try:
            central.start(60)
            token = register_station(central_url, ADMIN_TOKEN, STATION)
            outbox = work / "billing.db"
            queued = time.monotonic()
            fill_outbox(f"sqlite:///{outbox}", records)
            print(f"queued {records} records in {time.monotonic() - queued:.1f} s")
            sync = sync_process(broker, f"sqlite:///{outbox}", central_url, token, batch, work)
            used = drain(sync, central, outbox, records)
            stored = prometheus_sample(
                httpx.get(f"{central_url}/metrics").text,
                "station_central_records_total",
                'outcome="stored"',
            )
        finally:
            central.stop()
            if postgres is not None:
                postgres.close()
    print(f"central database: {central_db}; batch size: {batch}")
    print(f"backlog empty {used.total:.2f} s after sync started (its start-up included)")
    rate = records / used.draining
    print(f"drain: {records} records in {used.draining:.2f} s = {rate:,.0f} records/s")
    print(f"CPU: sync {used.sync_cpu:.1f} s (with start-up), central {used.central_cpu:.1f} s")
    print(f"central stored {stored:.0f} records (expected {records})")
    if stored != records:
        raise SystemExit("central does not hold every record exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--central-db", choices=["postgresql", "sqlite"], default="postgresql")
    arguments = parser.parse_args()
    run(arguments.records, arguments.batch_size, arguments.central_db)


if __name__ == "__main__":
    main()
