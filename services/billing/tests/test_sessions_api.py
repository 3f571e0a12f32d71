"""The sessions REST API: filters, newest first, 404s, receipts only for completed sessions."""

from __future__ import annotations

import os
import uuid
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
