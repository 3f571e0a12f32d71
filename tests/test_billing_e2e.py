"""Billing as a driver and an operator meet it (issue 5), end to end on real processes.

The price before charging, the stop when the balance is used up, the receipt's balance,
and a ledger that always sums to the balance.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from station_tools.simulator import Simulator
from station_tools.steps import (
    charge_and_stop,
    completed,
    eventually,
    new_card,
    shown,
    start_charge,
)

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""


def balance(verification: httpx.Client, card: str) -> Decimal:
    return Decimal(verification.get(f"/api/v1/cards/{card}").json()["balance"])


def ledger(verification: httpx.Client, card: str) -> list[dict[str, Any]]:
    response = verification.get(f"/api/v1/cards/{card}/ledger")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def test_the_price_is_on_the_display_when_the_gun_is_plugged(piles: Simulator) -> None:
    pile = "c1-p01"
    await piles.plug(pile)
    await eventually(lambda: "1.20" in shown(piles, pile))
    assert "CNY" in shown(piles, pile)
    await piles.unplug(pile)


async def test_a_session_is_debited_once_and_the_receipt_shows_the_balance(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification, balance="100.00"), "c1-p02"
    await start_charge(piles, billing, pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    cost = Decimal(record["total_cost"]["incl_vat"])
    await eventually(lambda: balance(verification, card) == Decimal("100.00") - cost)
    entries = ledger(verification, card)
    debits = [e for e in entries if e.get("session_id") == record["id"]]
    assert len(debits) == 1
    assert sum(Decimal(e["amount"]) for e in entries) == balance(verification, card)
    remaining = f"{Decimal('100.00') - cost:.2f}"
    await eventually(lambda: remaining in shown(piles, pile))
    await piles.unplug(pile)


async def test_the_charge_stops_when_the_running_cost_reaches_the_balance(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification, balance="2.00"), "c1-p03"
    await start_charge(piles, billing, pile, card)
    record = await completed(billing, pile, card, timeout=60)
    assert record["stop_reason"] == "insufficient_balance"
    await eventually(lambda: not piles.pile(pile).charging)
    cost = Decimal(record["total_cost"]["incl_vat"])
    assert cost >= Decimal("2.00") - Decimal("0.50")  # stopped near the balance, not long after
    await asyncio.sleep(0.5)
    entries = ledger(verification, card)
    assert sum(Decimal(e["amount"]) for e in entries) == balance(verification, card)
    await piles.unplug(pile)
