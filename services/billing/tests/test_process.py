"""Billing as a real process: what it stored survives kill -9, and it bills on after restart."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess


async def test_records_survive_a_kill_and_billing_resumes(
    own_mosquitto: Mosquitto, tmp_path: Path, new_pile: Any, collector_for: Any, ledger_for: Any
) -> None:
    service = ServiceProcess.station_service("billing", broker=own_mosquitto.url, work=tmp_path)
    base = service.base_url
    done, ongoing = str(uuid.uuid4()), str(uuid.uuid4())
    pile, other_pile = new_pile(), new_pile()
    try:
        await asyncio.to_thread(service.start)
        async with collector_for(own_mosquitto.url) as collector, ledger_for(own_mosquitto.url):
            assert (await collector.open(done, pile, "CARD-1", meter_start="100.25")).opened
            # Charges of a few Wh: billing, on its real clock, believes no more than a pile
            # could deliver in the milliseconds the test takes (docs/pricing.md).
            before = await collector.checkout(done, pile, meter_stop="100.285")
            assert before.ok
            assert (await collector.open(ongoing, other_pile, "CARD-2", "7")).opened

            service.kill()
            await asyncio.to_thread(service.start)

            async with httpx.AsyncClient(base_url=base) as http:
                record = (await http.get(f"/api/v1/sessions/{done}")).json()
                assert record["status"] == "completed"
                assert record["total_energy"] == "0.035"
                assert record["total_cost"] == {"excl_vat": "0.04", "incl_vat": "0.04"}
                assert (await http.get(f"/api/v1/sessions/{ongoing}")).json()["status"] == "active"

                replay = await collector.checkout(done, pile, meter_stop="100.285")
                assert replay == before
                resumed = await collector.checkout(ongoing, other_pile, meter_stop="7.04")
                assert resumed.ok and resumed.receipt is not None
                assert resumed.receipt.total_energy == Decimal("0.04")
                assert resumed.receipt.total_cost.incl_vat == Decimal("0.05")
                completed = await http.get("/api/v1/sessions", params={"status": "completed"})
                assert {row["id"] for row in completed.json()} == {done, ongoing}
    finally:
        service.stop()
