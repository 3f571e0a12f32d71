"""Billing and verification as real processes: every session debited once, kills and all.

Checkouts come concurrently and redelivered while verification is killed (kill -9) and
restarted, and billing too; at the end each session is on the card's ledger exactly once
and the card's balance is the sum of its ledger.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess


async def test_each_session_is_debited_once_through_kills_and_redeliveries(
    own_mosquitto: Mosquitto, tmp_path: Path, collector_for: Any, new_pile: Any
) -> None:
    verification = ServiceProcess.station_service(
        "verification", broker=own_mosquitto.url, work=tmp_path
    )
    billing = ServiceProcess.station_service(
        "billing",
        broker=own_mosquitto.url,
        work=tmp_path,
        debit_timeout="1",
        debit_retry_interval="0.3",
        balance_timeout="1",
    )
    sessions = [(new_pile(), str(uuid.uuid4())) for _ in range(6)]
    try:
        await asyncio.gather(
            asyncio.to_thread(verification.start), asyncio.to_thread(billing.start)
        )
        async with (
            httpx.AsyncClient(base_url=verification.base_url) as cards,
            collector_for(own_mosquitto.url) as collector,
        ):
            issued = await cards.post(
                "/api/v1/cards", json={"uid": "FLEET-1", "holder": "Fleet", "balance": "100.00"}
            )
            assert issued.status_code == 201
            for pile, session in sessions:
                opened = await collector.open(session, pile, "FLEET-1", meter_start="0")
                assert opened.opened

            async def checkout(index: int) -> None:
                pile, session = sessions[index]
                replies = await asyncio.gather(
                    *(
                        collector.checkout(session, pile, meter_stop=f"{index + 1}.5")
                        for _ in range(2)
                    )
                )
                assert all(reply.ok for reply in replies)

            await asyncio.gather(checkout(0), checkout(1))
            verification.kill()
            await asyncio.gather(checkout(2), checkout(3))
            billing.kill()
            await asyncio.gather(
                asyncio.to_thread(billing.start), asyncio.to_thread(verification.start)
            )
            await asyncio.gather(checkout(4), checkout(5))

            async def ledger() -> dict[str, Any]:
                body: dict[str, Any] = (await cards.get("/api/v1/cards/FLEET-1/ledger")).json()
                return body

            deadline = asyncio.get_running_loop().time() + 15
            while True:
                body = await ledger()
                debits = [e for e in body["entries"] if e["kind"] == "session_debit"]
                if len(debits) >= len(sessions):
                    break
                assert asyncio.get_running_loop().time() < deadline, body
                await asyncio.sleep(0.2)

            async with httpx.AsyncClient(base_url=billing.base_url) as records:
                totals = {
                    session: Decimal(
                        (await records.get(f"/api/v1/sessions/{session}")).json()["total_cost"][
                            "incl_vat"
                        ]
                    )
                    for _, session in sessions
                }
                pending = (await records.get("/api/v1/debits", params={"status": "pending"})).json()
    finally:
        billing.stop()
        verification.stop()

    assert sorted(e["session_id"] for e in debits) == sorted(totals)
    assert {e["session_id"]: -Decimal(e["amount"]) for e in debits} == totals
    balance = Decimal(body["balance"])
    assert balance == sum((Decimal(e["amount"]) for e in body["entries"]), Decimal(0))
    assert balance == Decimal("100.00") - sum(totals.values(), Decimal(0))
    assert pending == []
