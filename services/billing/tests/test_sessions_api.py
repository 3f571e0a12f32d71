"""The sessions REST API: filters, newest first, 404s, receipts only for completed sessions."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from typing import Any


async def test_list_filters_by_pile_card_and_status_newest_first(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile_a, pile_b = new_pile(), new_pile()
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    await collector.open(first, pile_a, "CARD-A", meter_start="0")
    billing.clock.advance(minutes=10)
    await collector.checkout(first, pile_a, meter_stop="4")
    billing.clock.advance(minutes=1)
    await collector.open(second, pile_b, "CARD-B", meter_start="0")
    billing.clock.advance(minutes=1)
    await collector.open(third, pile_a, "CARD-B", meter_start="4")

    def ids(rows: list[dict[str, Any]]) -> list[str]:
        return [row["id"] for row in rows]

    assert ids(await billing.sessions()) == [third, second, first]
    assert ids(await billing.sessions(pile_id=pile_a)) == [third, first]
    assert ids(await billing.sessions(card_uid="CARD-B")) == [third, second]
    assert ids(await billing.sessions(status="active")) == [third, second]
    assert ids(await billing.sessions(status="completed")) == [first]
    assert ids(await billing.sessions(pile_id=pile_a, card_uid="CARD-B", status="active")) == [
        third
    ]
    assert await billing.sessions(pile_id=new_pile()) == []
    assert ids(await billing.sessions(limit="1")) == [third]


async def test_an_active_session_has_no_totals_and_no_receipt_yet(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), str(uuid.uuid4())
    await collector.open(session, pile, "CARD-1", meter_start="42.000")

    record = await billing.session(session)
    assert record["status"] == "active"
    assert record["meter_start"] == "42.000"
    assert record["meter_stop"] is None
    assert record["total_energy"] is None
    assert record["total_cost"] is None
    assert record["stopped_at"] is None
    assert (await billing.http.get(f"/api/v1/sessions/{session}/receipt")).status_code == 404

    await collector.checkout(session, pile, meter_stop="43.5")
    receipt = await billing.http.get(f"/api/v1/sessions/{session}/receipt")
    assert receipt.status_code == 200
    assert receipt.json()["total_energy"] == "1.500"
    assert receipt.json()["total_cost"] == {"excl_vat": "1.80", "incl_vat": "1.80"}


async def test_unknown_sessions_are_404(billing: Any) -> None:
    missing = str(uuid.uuid4())
    assert (await billing.http.get(f"/api/v1/sessions/{missing}")).status_code == 404
    assert (await billing.http.get(f"/api/v1/sessions/{missing}/receipt")).status_code == 404


async def test_bad_query_is_a_clear_client_error(billing: Any) -> None:
    response = await billing.http.get("/api/v1/sessions", params={"status": "paused"})
    assert response.status_code == 422
    assert "status" in response.text
    assert (await billing.http.get("/api/v1/sessions", params={"limit": "0"})).status_code == 422


async def test_health_ready_and_metrics(billing: Any) -> None:
    assert (await billing.http.get("/health")).json() == {"status": "ok", "pid": os.getpid()}
    ready = await billing.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "database": True}
    metrics = (await billing.http.get("/metrics")).text
    assert "station_billing_sessions_opened_total" in metrics
    assert "station_billing_sessions_completed_total" in metrics
    assert "station_bus_connected 1.0" in metrics


async def test_an_operator_stop_nobody_carries_out_is_closed_by_billing(
    settings: Any,
    clock: Any,
    ledger: Any,
    collector: Any,
    retained: Any,
    new_pile: Any,
    start_billing: Any,
) -> None:
    """Issue 10, point 2: the collector is away (nobody checks out), yet the stop ends the
    session: at the last reading billing believed, flagged for review, the debit booked once,
    and the pile's retained session completed so that the collector stops the pile."""
    pile, session = new_pile(), str(uuid.uuid4())
    impatient = settings.model_copy(update={"operator_stop_wait": 0.3})
    async with start_billing(impatient, clock) as billing:
        await collector.open(session, pile, "CARD-OP", meter_start="100.000")
        clock.advance(minutes=30)
        await collector.reading(pile, session, energy="110.500", charging=True)
        await billing.readings_seen(1)

        response = await billing.http.post(f"/api/v1/sessions/{session}/stop")

        assert response.status_code == 200, response.text
        record = response.json()
        assert (record["status"], record["stop_reason"]) == ("completed", "operator")
        assert record["anomaly"] == "closed_without_pile"
        assert (record["meter_stop"], record["total_energy"]) == ("110.500", "10.500")
        assert record["total_cost"] == {"excl_vat": "12.60", "incl_vat": "12.60"}
        completed = await retained.eventually(pile, "completed")
        assert completed.session_id == session
        assert ledger.booked == {session: Decimal("12.60")}
        again = await billing.http.post(f"/api/v1/sessions/{session}/stop")
        assert again.json()["total_cost"] == record["total_cost"]
        # A collector's late checkout is answered with the same record, not billed again.
        reply = await collector.checkout(session, pile, meter_stop="111")
        assert reply.ok and reply.receipt is not None
        assert reply.receipt.total_cost.incl_vat == Decimal("12.60")
        assert ledger.booked == {session: Decimal("12.60")}
        assert ledger.balances["CARD-OP"] == Decimal("87.40")
