"""Billing as a real process: what it stored survives kill -9, and it bills on after restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.processes import ServiceProcess


def wait_ready(base: str, timeout: float = 20.0) -> None:
    """Ready means subscribed on the broker: a request sent earlier would find nobody."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"billing not ready at {base}")


def start(service: ServiceProcess, base: str) -> None:
    service.start(wait=30)
    wait_ready(base)


async def test_records_survive_a_kill_and_billing_resumes(
    own_mosquitto: Mosquitto, tmp_path: Path, new_pile: Any, collector_for: Any, ledger_for: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service = ServiceProcess(
        name="billing",
        module="station_billing",
        env={
            "STATION_BILLING_BROKER": own_mosquitto.url,
            "STATION_BILLING_PORT": str(port),
            "STATION_BILLING_DATA_DIR": str(tmp_path / "data"),
        },
        log_dir=tmp_path / "logs",
        health_url=f"{base}/health",
    )
    done, ongoing = str(uuid.uuid4()), str(uuid.uuid4())
    pile, other_pile = new_pile(), new_pile()
    try:
        await asyncio.to_thread(start, service, base)
        async with collector_for(own_mosquitto.url) as collector, ledger_for(own_mosquitto.url):
            assert (await collector.open(done, pile, "CARD-1", meter_start="100.25")).opened
            before = await collector.checkout(done, pile, meter_stop="112.595")
            assert before.ok
            assert (await collector.open(ongoing, other_pile, "CARD-2", "7")).opened

            service.kill()
            await asyncio.to_thread(start, service, base)

            async with httpx.AsyncClient(base_url=base) as http:
                record = (await http.get(f"/api/v1/sessions/{done}")).json()
                assert record["status"] == "completed"
                assert record["total_energy"] == "12.345"
                assert record["total_cost"] == {"excl_vat": "14.81", "incl_vat": "14.81"}
                assert (await http.get(f"/api/v1/sessions/{ongoing}")).json()["status"] == "active"

                replay = await collector.checkout(done, pile, meter_stop="112.595")
                assert replay == before
                resumed = await collector.checkout(ongoing, other_pile, meter_stop="17.5")
                assert resumed.ok and resumed.receipt is not None
                assert resumed.receipt.total_energy == Decimal("10.5")
                assert resumed.receipt.total_cost.incl_vat == Decimal("12.60")
                completed = await http.get("/api/v1/sessions", params={"status": "completed"})
                assert {row["id"] for row in completed.json()} == {done, ongoing}
    finally:
        service.stop()
