"""One car charges and is billed (S101-S108, S201-S205), end to end.

Real mosquitto, verification, billing and collector processes; simulated piles that behave
as Zigbee2MQTT devices. Each test uses its own piles and cards, so they share one station.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from station_tools.simulator import Simulator
from station_tools.steps import (
    billed_exactly,
    charge_and_stop,
    eventually,
    new_card,
    sessions,
    shown,
)

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

PRICE = Decimal("1.20")


def assert_billed_exactly(record: dict[str, Any]) -> None:
    billed_exactly(record, PRICE)


async def test_plug_then_swipe_charges_and_second_swipe_bills_with_a_receipt(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card = new_card(verification)
    pile = "c1-p01"
    await piles.plug(pile)
    await asyncio.sleep(0.2)
    await piles.swipe(pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    assert record["status"] == "completed"
    assert record["stop_reason"] == "local"
    assert record["card_uid"] == card
    assert datetime.fromisoformat(record["stopped_at"]) > datetime.fromisoformat(
        record["started_at"]
    )
    assert_billed_exactly(record)
    assert Decimal(record["meter_stop"]) == piles.pile(pile).energy
    receipt = billing.get(f"/api/v1/sessions/{record['id']}/receipt")
    assert receipt.status_code == 200
    total = record["total_cost"]["incl_vat"]
    await eventually(lambda: total in shown(piles, pile))
    assert piles.pile(pile).displays[-1].qr
    await piles.unplug(pile)


async def test_swipe_then_plug_charges(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card = new_card(verification)
    pile = "c2-p01"
    await piles.swipe(pile, card)
    await asyncio.sleep(0.2)
    await piles.plug(pile)
    record = await charge_and_stop(piles, billing, pile, card)
    assert_billed_exactly(record)
    await piles.unplug(pile)


async def test_plug_alone_and_swipe_alone_start_nothing(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card = new_card(verification)
    await piles.plug("c1-p02")
    await piles.swipe("c1-p03", card)
    await eventually(lambda: "Swipe your card" in shown(piles, "c1-p02"))
    await eventually(lambda: "Plug in the gun" in shown(piles, "c1-p03"))
    await asyncio.sleep(1.5)
    for pile in ("c1-p02", "c1-p03"):
        assert not piles.pile(pile).charging
        assert sessions(billing, pile_id=pile) == []
    await piles.unplug("c1-p02")


REFUSALS = {
    "unknown": ("Card not recognised", None),
    "blocked": ("Card blocked", {"status": "blocked"}),
    "expired": (
        "Card expired",
        {"expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
    ),
    "insufficient_balance": ("Balance too low", {"balance": "0.00"}),
}


async def test_each_refusal_refuses_and_shows_why(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    for number, (reason, (text, fields)) in enumerate(REFUSALS.items(), start=1):
        pile = ["c2-p02", "c2-p03", "c2-p04", "c1-p04"][number - 1]
        card = (
            f"NOBODY-{uuid.uuid4().hex[:6]}" if fields is None else new_card(verification, **fields)
        )
        await piles.plug(pile)
        await piles.swipe(pile, card)
        await eventually(lambda pile=pile, reason=reason: reason in shown(piles, pile))
        assert text in shown(piles, pile)
        assert not piles.pile(pile).charging
        assert sessions(billing, pile_id=pile, card_uid=card) == []
        await piles.unplug(pile)


async def test_a_card_charging_on_one_pile_is_refused_on_another(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card = new_card(verification)
    await piles.plug("c1-p01")
    await piles.swipe("c1-p01", card)
    await eventually(lambda: piles.pile("c1-p01").charging)
    await piles.plug("c2-p01")
    await piles.swipe("c2-p01", card)
    await eventually(lambda: "already_charging" in shown(piles, "c2-p01"))
    assert not piles.pile("c2-p01").charging
    record = await charge_and_stop(piles, billing, "c1-p01", card)
    assert_billed_exactly(record)
    for pile in ("c1-p01", "c2-p01"):
        await piles.unplug(pile)


async def test_the_record_reaches_central_after_t2_with_the_same_totals(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, central: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p04"
    await piles.plug(pile)
    await piles.swipe(pile, card)
    record = await charge_and_stop(piles, billing, pile, card)

    def at_central() -> list[dict[str, Any]]:
        response = central.get("/api/v1/records", params={"card_uid": card})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    copies = await eventually(at_central, timeout=20)
    assert len(copies) == 1
    copy = copies[0]
    assert copy["session_id"] == record["id"]
    assert copy["station_id"] == "station-1"
    assert copy["total_cost"] == record["total_cost"]
    assert Decimal(copy["total_energy"]) == Decimal(record["total_energy"])
    assert copy["pile_id"] == pile
    await piles.unplug(pile)
