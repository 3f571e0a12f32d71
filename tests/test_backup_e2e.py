"""Station backups end to end, on real processes: backed up while it charges, restored into a
new data directory, started again beside central, and nothing lost or sent twice.

The story of a disk that dies: a station charges 50 sessions while ``station backup`` (the
command, as cron runs it) copies it once in the middle and once at the end; central is out
of reach for the last ten, so they wait in billing's outbox when the last backup is taken.
After the backup five of them still reach central; then the station's disk is gone.
``station restore`` puts the backup into a new data directory, a new station starts on it
(its own broker and ports, the same central) and must show every card balance, ledger entry,
session and record of the backup, and send central the ten it had not confirmed, central
ending with each of the 50 exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from station_protocol.ids import Layout
from station_tools.central import bearer, prometheus_sample
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import (
    REPEAT_WINDOW,
    charge_and_stop,
    eventually,
    new_card,
    sessions,
    start_charge,
)

pytestmark = pytest.mark.slow

LAYOUT = Layout(2, 4)
SPEEDUP = Decimal(100)
RATED_POWER = Decimal(7) * SPEEDUP * 2
SESSIONS = 50
SYNCED_BEFORE_OUTAGE = 40
DELIVERED_AFTER_BACKUP = 5
ENV = {"collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}}
STATION = "station-1"


def station(broker: Mosquitto, data_dir: Path, **more: Any) -> StationRig:
    return StationRig(
        broker_url=broker.url,
        layout=LAYOUT,
        data_dir=data_dir,
        ports=Ports.free(LAYOUT.chargers),
        t2=1.0,
        rated_power=RATED_POWER,
        env=ENV,
        **more,
    )


def station_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``station ...`` as a user (or cron) runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "station_tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def all_piles_up(rig: StationRig) -> None:
    def up() -> bool:
        for charger in LAYOUT.charger_ids():
            answer = httpx.get(f"{rig.collector_url(charger)}/api/v1/piles", timeout=5)
            if not all(pile["up"] for pile in answer.json()):
                return False
        return True

    await eventually(up, timeout=20)


async def drive(piles: Simulator, billing: httpx.Client, pile: str, card: str) -> None:
    await start_charge(piles, billing, pile, card)
    await charge_and_stop(piles, billing, pile, card)
    await piles.unplug(pile)
    await asyncio.sleep(REPEAT_WINDOW)  # the next swipe is no repeat of the last one


async def charge_rounds(
    piles: Simulator, billing: httpx.Client, cards: dict[str, str], count: int
) -> None:
    """``count`` sessions, one per pile at a time, every pile charging at once."""
    order = list(cards.items())
    for start in range(0, count, len(order)):
        await asyncio.gather(
            *(drive(piles, billing, pile, card) for pile, card in order[: count - start])
        )


def completed_count(billing: httpx.Client) -> int:
    return len(sessions(billing, status="completed", limit="1000"))


def snapshot(verification: httpx.Client, billing: httpx.Client, cards: list[str]) -> dict[str, Any]:
    """Every card balance and ledger entry, every session and record of a station."""
    every = sorted(sessions(billing, limit="1000"), key=lambda s: s["id"])
    return {
        "cards": {uid: verification.get(f"/api/v1/cards/{uid}").json() for uid in cards},
        "ledgers": {
            uid: verification.get(f"/api/v1/cards/{uid}/ledger").json()["entries"] for uid in cards
        },
        "sessions": every,
        "records": {
            s["id"]: billing.get(f"/api/v1/sessions/{s['id']}/cdr").json()
            for s in every
            if s["status"] == "completed"
        },
        "receipts": {
            s["id"]: billing.get(f"/api/v1/sessions/{s['id']}/receipt").json()
            for s in every
            if s["status"] == "completed"
        },
    }


def settled(billing: httpx.Client) -> bool:
    debits = billing.get("/api/v1/debits").json()
    return len(debits) == completed_count(billing) and all(d["status"] == "settled" for d in debits)


def unsent_payloads(billing_db: Path) -> list[str]:
    connection = sqlite3.connect(billing_db)
    try:
        rows = connection.execute(
            "SELECT payload FROM billing_outbox WHERE sent_at IS NULL ORDER BY stored_at, id"
        ).fetchall()
    finally:
        connection.close()
    return [row[0] for row in rows]


def central_records(rig: StationRig) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{rig.url('central')}/api/v1/records",
        params={"station_id": STATION, "limit": 1000},
        headers=bearer(rig.admin_token),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Mosquitto, Mosquitto]]:
    with (
        Mosquitto(data_dir=tmp_path / "broker-a") as first,
        Mosquitto(data_dir=tmp_path / "broker-b") as second,
    ):
        yield first, second


async def test_a_station_restored_from_its_backup_has_everything_and_syncs_nothing_twice(
    brokers: tuple[Mosquitto, Mosquitto], tmp_path: Path
) -> None:
    broker_a, broker_b = brokers
    original = station(broker_a, tmp_path / "a").start()
    restored: StationRig | None = None
    try:
        options = SimulatorOptions(meter_interval=0.1, speedup=SPEEDUP)
        async with Simulator(broker_a.url, LAYOUT, options) as piles:
            await all_piles_up(original)
            with (
                httpx.Client(base_url=original.url("verification"), timeout=5) as verification,
                httpx.Client(base_url=original.url("billing"), timeout=5) as billing,
            ):
                cards = {pile: new_card(verification, "500.00") for pile in LAYOUT.pile_ids()}

                # 1. A backup while every pile charges.
                middle = tmp_path / "middle.tar.gz"
                charging = asyncio.create_task(charge_rounds(piles, billing, cards, 24))
                await eventually(lambda: completed_count(billing) >= 10, timeout=60)
                taken = await asyncio.to_thread(
                    station_command,
                    "backup", "--data-dir", str(original.data_dir), "--out", str(middle),
                )  # fmt: skip
                assert taken.returncode == 0, taken.stderr
                await charging
                await charge_rounds(piles, billing, cards, SYNCED_BEFORE_OUTAGE - 24)
                await eventually(
                    lambda: len(central_records(original)) == SYNCED_BEFORE_OUTAGE, timeout=30
                )

                # 2. Central out of reach for the last ten: they wait in the outbox.
                original["sync"].stop()
                await charge_rounds(piles, billing, cards, SESSIONS - SYNCED_BEFORE_OUTAGE)
                await eventually(lambda: settled(billing), timeout=30)
                final = tmp_path / "final.tar.gz"
                taken = station_command(
                    "backup", "--data-dir", str(original.data_dir), "--out", str(final)
                )
                assert taken.returncode == 0, taken.stderr
                before = snapshot(verification, billing, list(cards.values()))
        assert len(before["records"]) == SESSIONS

        # 3. After the backup, five of the ten still reach central; then the disk dies.
        pending = unsent_payloads(original.data_dir / "billing" / "billing.db")
        assert len(pending) == SESSIONS - SYNCED_BEFORE_OUTAGE
        token = original["sync"].env["STATION_SYNC_CENTRAL_TOKEN"]
        late = pending[:DELIVERED_AFTER_BACKUP]
        answer = httpx.post(
            f"{original.url('central')}/api/v1/stations/{STATION}/records:batch",
            content=('{"records":[' + ",".join(late) + "]}").encode(),
            headers={**bearer(token), "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert {r["outcome"] for r in answer.json()["results"]} == {"stored"}
        for name, process in original.services.items():
            if name != "central":
                process.stop()

        check_the_middle_backup(middle, tmp_path / "middle", before)
        refuses_a_damaged_copy(final, tmp_path)

        # 4. Restore into a new data directory and start a station there, same central.
        target = tmp_path / "b"
        put = station_command("restore", "--data-dir", str(target), "--from", str(final))
        assert put.returncode == 0, put.stderr
        restored = station(
            broker_b,
            target,
            central_url=original.url("central"),
            admin_token=original.admin_token,
        ).start()
        with (
            httpx.Client(base_url=restored.url("verification"), timeout=5) as verification,
            httpx.Client(base_url=restored.url("billing"), timeout=5) as billing,
        ):
            after = snapshot(verification, billing, list(cards.values()))
        assert after == before

        # 5. Sync sends what central had not confirmed; central holds each record once.
        await eventually(lambda: len(central_records(original)) >= SESSIONS, timeout=30)
        await eventually(
            lambda: (
                httpx.get(f"{restored.url('sync')}/api/v1/sync", timeout=5).json()["backlog"] == 0
            ),
            timeout=30,
        )
        held = central_records(original)
        ids = [record["record_id"] for record in held]
        assert len(ids) == len(set(ids)) == SESSIONS
        assert set(ids) == set(before["records"])  # a record's id is its session's
        money = sum(Decimal(r["total_cost"]["incl_vat"]) for r in held)
        assert money == sum(Decimal(s["total_cost"]["incl_vat"]) for s in before["sessions"])
        central_metrics = httpx.get(f"{original.url('central')}/metrics", timeout=5).text
        outcome = 'outcome="{}"'
        stored = prometheus_sample(central_metrics, "station_central_records_total",
                                   outcome.format("stored"))  # fmt: skip
        duplicates = prometheus_sample(
            central_metrics, "station_central_records_total", outcome.format("duplicate")
        )
        conflicts = prometheus_sample(
            central_metrics, "station_central_records_total", outcome.format("conflict")
        )
        assert (stored, duplicates, conflicts) == (SESSIONS, DELIVERED_AFTER_BACKUP, 0)
        sync = httpx.get(f"{restored.url('sync')}/api/v1/sync", timeout=5).json()
        assert (sync["backlog"], sync["refused"]) == (0, 0), sync
        restored_metrics = httpx.get(f"{restored.url('sync')}/metrics", timeout=5).text
        sent = prometheus_sample(restored_metrics, "station_sync_sent_total")
        assert sent == SESSIONS - SYNCED_BEFORE_OUTAGE
    finally:
        if restored is not None:
            restored.stop()
        original.stop()


def check_the_middle_backup(archive: Path, target: Path, end: dict[str, Any]) -> None:
    """The backup taken while the piles charged: every session completed in it is the one the
    station ended with, and each of its card ledgers is the start of the final one."""
    put = station_command("restore", "--data-dir", str(target), "--from", str(archive))
    assert put.returncode == 0, put.stderr
    billing = sqlite3.connect(target / "billing" / "billing.db")
    verification = sqlite3.connect(target / "verification" / "verification.db")
    try:
        assert billing.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        done = billing.execute(
            "SELECT id FROM billing_sessions WHERE status = 'completed'"
        ).fetchall()
        entries = verification.execute(
            "SELECT card_uid, count(*) FROM ledger_entries GROUP BY card_uid"
        ).fetchall()
    finally:
        billing.close()
        verification.close()
    assert 10 <= len(done) < 24, "taken while the piles charged"
    final = {s["id"]: s for s in end["sessions"]}
    assert all(final[session_id]["status"] == "completed" for (session_id,) in done)
    for card, count in entries:
        assert count <= len(end["ledgers"][card])


def refuses_a_damaged_copy(archive: Path, tmp_path: Path) -> None:
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(bytes(raw))
    put = station_command("restore", "--data-dir", str(tmp_path / "x"), "--from", str(damaged))
    assert put.returncode == 1
    assert put.stderr.startswith("station restore: ") and len(put.stderr.splitlines()) == 1
    assert not (tmp_path / "x").exists()
