"""Benchmark: ``station backup`` and ``station restore`` of a station with 100,000 sessions.

The station's databases are made as the services make them (each service's own migrations)
and filled straight through SQL with what 100,000 completed sessions leave behind: billing's
sessions (with their frozen tariff, priced CDR and receipt as JSON of the real shape and
size), meter samples (``--samples`` per session: 15 s apart, billing's default, for the
length of a charge), debits and outbox rows (the records as sync sends them); verification's
cards, ledger (an opening balance, a debit per session) and authorizations. The console's
and faults' databases are migrated but hold little (their history is kept for days, not
forever). Generating all this by charging would take days; the backup does not care how
the rows got there.

Then it times, as the commands do them: the backup of the station (while a writer keeps
adding sessions to billing, as a running station would, with ``--busy``), the check of the
file, and the restore into an empty data directory. Prints the sizes of the databases and
of the file, the times and the throughput.

    uv run python tools/bench/bench_backup.py [--sessions 100000] [--samples 120] [--busy]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from station_runtime.migrations import make_engine, migrate
from station_tools import backup as backups

CARDS = 2_000
PILES = [f"c{c}-p{p:02d}" for c in range(1, 5) for p in range(1, 13)]
CHUNK = 5_000
PRICE = Decimal("1.20")
STATION = "station-bench"


def migrated(data_dir: Path) -> dict[str, Path]:
    """Every station database at the newest schema, as the services leave them."""
    paths = {}
    for service in backups.DATABASE_SERVICES:
        path = data_dir / service / f"{service}.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine, backups.migrations_folder(service), f"alembic_version_{service}")
        engine.dispose()
        paths[service] = path
    return paths


def stamp(at: datetime) -> str:
    """How the station's UTC columns store a time in SQLite."""
    return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def tariff_json() -> str:
    return json.dumps(
        {
            "country_code": "CN",
            "party_id": "STN",
            "id": "default",
            "currency": "CNY",
            "type": "REGULAR",
            "tariff_alt_text": [{"language": "en", "text": "1.20 CNY per kWh"}],
            "elements": [
                {
                    "price_components": [
                        {"type": "ENERGY", "price": "1.20", "vat": None, "step_size": 1}
                    ]
                }
            ],
            "last_updated": "2026-11-30T00:00:00Z",
        }
    )


def session_row(
    i: int, started: datetime, rng: random.Random, samples: int
) -> tuple[dict[str, object], Decimal]:
    """One completed session with its CDR and receipt, as billing stores it."""
    minutes = max(samples, 1) * 15 / 60
    stopped = started + timedelta(minutes=minutes)
    energy = Decimal(rng.randint(2_000, 60_000)) / 1000
    meter_start = Decimal(rng.randint(0, 9_000_000)) / 1000
    cost = (energy * PRICE).quantize(Decimal("0.01"))
    session_id = str(uuid.UUID(int=rng.getrandbits(128)))
    pile, card = PILES[i % len(PILES)], f"CARD-{i % CARDS:05d}"
    cdr = {
        "id": session_id,
        "start_date_time": started.isoformat(),
        "end_date_time": stopped.isoformat(),
        "currency": "CNY",
        "tariffs": [json.loads(tariff_json())],
        "charging_periods": [
            {
                "start_date_time": started.isoformat(),
                "dimensions": [{"type": "ENERGY", "volume": str(energy)}],
                "tariff_id": "default",
            }
        ],
        "total_cost": {"excl_vat": str(cost), "incl_vat": str(cost)},
        "total_energy": str(energy),
        "total_energy_cost": {"excl_vat": str(cost), "incl_vat": str(cost)},
        "total_time": round(minutes / 60, 4),
        "last_updated": stopped.isoformat(),
    }
    receipt = {
        "pile_id": pile,
        "session_id": session_id,
        "energy": str(energy),
        "cost": str(cost),
        "currency": "CNY",
        "balance": str(Decimal(500) - cost),
        "lines": [f"{energy} kWh", f"{cost} CNY", "Thank you"],
    }
    row: dict[str, object] = {
        "id": session_id,
        "pile_id": pile,
        "card_uid": card,
        "status": "completed",
        "started_at": stamp(started),
        "stopped_at": stamp(stopped),
        "stop_reason": "local",
        "meter_start": str(meter_start),
        "meter_stop": str(meter_start + energy),
        "total_energy": str(energy),
        "cost_excl_vat": str(cost),
        "cost_incl_vat": str(cost),
        "currency": "CNY",
        "tariff_id": "default",
        "tariff": tariff_json(),
        "receipt": json.dumps(receipt),
        "receipt_final": 1,
        "cdr": json.dumps(cdr),
    }
    return row, cost


def insert(
    connection: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, object]]
) -> None:
    if not rows:
        return
    columns = list(rows[0])
    marks = ",".join("?" for _ in columns)
    connection.executemany(
        f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
        [tuple(row[c] for c in columns) for row in rows],
    )


def fill(paths: dict[str, Path], sessions: int, samples: int, seed: int = 13) -> None:
    rng = random.Random(seed)
    billing = sqlite3.connect(paths["billing"])
    verification = sqlite3.connect(paths["verification"])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    try:
        _cards(verification, start)
        for first in range(0, sessions, CHUNK):
            chunk = range(first, min(first + CHUNK, sessions))
            _chunk(billing, verification, rng, chunk, start, samples)
    finally:
        billing.close()
        verification.close()


def _cards(verification: sqlite3.Connection, start: datetime) -> None:
    cards = [
        {
            "uid": f"CARD-{n:05d}",
            "holder": f"Driver {n}",
            "status": "active",
            "created_at": stamp(start),
        }
        for n in range(CARDS)
    ]
    insert(verification, "cards", cards)
    opening = [
        {
            "card_uid": card["uid"],
            "kind": "opening",
            "amount": "100000.00",
            "created_at": stamp(start),
        }
        for card in cards
    ]
    insert(verification, "ledger_entries", opening)
    verification.commit()


def _chunk(
    billing: sqlite3.Connection,
    verification: sqlite3.Connection,
    rng: random.Random,
    chunk: range,
    start: datetime,
    samples: int,
) -> None:
    sessions, outbox, debits, ledger, grants, meter = [], [], [], [], [], []
    for i in chunk:
        started = start + timedelta(minutes=7 * i)
        row, cost = session_row(i, started, rng, samples)
        sessions.append(row)
        stopped = str(row["stopped_at"])
        record = {
            "record_id": row["id"],
            "station_id": STATION,
            "session_id": row["id"],
            "pile_id": row["pile_id"],
            "card_uid": row["card_uid"],
            "started_at": row["started_at"],
            "stopped_at": stopped,
            "stop_reason": "local",
            "meter_start": row["meter_start"],
            "meter_stop": row["meter_stop"],
            "total_energy": row["total_energy"],
            "total_cost": {"excl_vat": str(cost), "incl_vat": str(cost)},
            "currency": "CNY",
            "tariff_id": "default",
        }
        outbox.append(
            {
                "record_id": row["id"],
                "stored_at": stopped,
                "payload": json.dumps(record),
                "sent_at": stopped,
                "attempts": 1,
            }
        )
        common = {"card_uid": row["card_uid"], "pile_id": row["pile_id"]}
        debits.append(
            {
                "session_id": row["id"],
                **common,
                "amount": str(cost),
                "status": "settled",
                "attempts": 1,
                "created_at": stopped,
                "updated_at": stopped,
            }
        )
        ledger.append(
            {
                "card_uid": row["card_uid"],
                "kind": "session_debit",
                "amount": str(-cost),
                "session_id": row["id"],
                "created_at": stopped,
            }
        )
        grants.append(
            {
                "session_id": row["id"],
                **common,
                "created_at": row["started_at"],
                "session_seen": 1,
                "ended_at": stopped,
                "end_reason": "completed",
            }
        )
        energy, step = Decimal(str(row["meter_start"])), Decimal(str(row["total_energy"]))
        for n in range(samples):
            meter.append(
                {
                    "session_id": row["id"],
                    "at": stamp(started + timedelta(seconds=15 * n)),
                    "energy": str(energy + step * n / max(samples - 1, 1)),
                    "charging": 1,
                    "current": "32.0",
                    "power": "7.0",
                }
            )
    for table, rows in (
        ("billing_sessions", sessions),
        ("billing_outbox", outbox),
        ("billing_debits", debits),
        ("billing_meter_samples", meter),
    ):
        insert(billing, table, rows)
    billing.commit()
    insert(verification, "ledger_entries", ledger)
    insert(verification, "authorizations", grants)
    verification.commit()


def busy_writer(path: Path, stop: threading.Event, counter: list[int]) -> None:
    """A running station: a session stored every few milliseconds while the backup runs."""
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    rng = random.Random(7)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    while not stop.is_set():
        row, _ = session_row(counter[0], start + timedelta(minutes=counter[0]), rng, 4)
        insert(connection, "billing_sessions", [row])
        connection.commit()
        counter[0] += 1
        time.sleep(0.005)
    connection.close()


def size_of(paths: dict[str, Path]) -> int:
    return sum(p.stat().st_size for p in paths.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument(
        "--samples",
        type=int,
        default=120,
        help="meter samples kept per session (120: a 30-minute charge at billing's 15 s)",
    )
    parser.add_argument("--busy", action="store_true", help="a writer adds sessions meanwhile")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        run(work, args.sessions, args.samples, args.busy)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, sessions: int, samples: int, busy: bool) -> None:
    station = work / "station"
    began = time.monotonic()
    paths = migrated(station)
    fill(paths, sessions, samples)
    made = time.monotonic() - began
    print(
        f"station: {sessions:,} sessions, {samples} meter samples each, {CARDS:,} cards; "
        f"databases {backups.human_size(size_of(paths))} (made in {made:.0f} s)"
    )
    for service, path in paths.items():
        print(f"  {service:<14}{backups.human_size(path.stat().st_size):>10}")

    stop, written = threading.Event(), [0]
    writer = threading.Thread(target=busy_writer, args=(paths["billing"], stop, written))
    if busy:
        writer.start()
    try:
        taken = backups.backup(station, work / "station.tar.gz", station_id=STATION, environ={})
    finally:
        stop.set()
        if busy:
            writer.join()
    raw = sum(entry.size for entry in taken.manifest.databases)
    print(
        f"backup:  {taken.seconds:6.1f} s  {backups.human_size(taken.size)} file "
        f"({backups.human_size(raw)} of database copies, {raw / taken.size:.1f}x smaller), "
        f"{raw / taken.seconds / 2**20:.0f} MB/s"
        + (f"; {written[0]:,} sessions written meanwhile" if busy else "")
    )
    began = time.monotonic()
    backups.verify(taken.path)
    print(f"check:   {time.monotonic() - began:6.1f} s  (every checksum, nothing written)")
    began = time.monotonic()
    backups.restore(taken.path, work / "restored", environ={})
    restored = time.monotonic() - began
    print(f"restore: {restored:6.1f} s  {raw / restored / 2**20:.0f} MB/s")
    check = sqlite3.connect(work / "restored" / "billing" / "billing.db")
    count = check.execute("SELECT count(*) FROM billing_sessions").fetchone()[0]
    check.close()
    assert count >= sessions, count
    print(f"restored billing holds {count:,} sessions")


if __name__ == "__main__":
    main()
