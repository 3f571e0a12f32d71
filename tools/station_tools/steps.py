"""What a test (or a benchmark) does to a running station, in the station's words.

Shared by the end-to-end, chaos and benchmark code, so that "a driver charges and stops"
means the same steps everywhere.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import httpx

from station_tools.simulator import Simulator

REPEAT_WINDOW = 1.1
"""A second swipe sooner than this would be the card reader repeating itself."""

T = TypeVar("T")


def new_card(verification: httpx.Client, balance: str = "100.00", **fields: Any) -> str:
    """Register a fresh card (unique uid) and return its uid."""
    uid = f"CARD-{uuid.uuid4().hex[:8]}"
    response = verification.post(
        "/api/v1/cards", json={"uid": uid, "holder": "Test driver", "balance": balance, **fields}
    )
    assert response.status_code == 201, response.text
    return uid


async def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {value!r}")
        await asyncio.sleep(0.05)


def sessions(billing: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    response = billing.get("/api/v1/sessions", params=filters)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def shown(piles: Simulator, pile: str) -> str:
    """Everything the pile's display has shown, as one text."""
    return "\n".join(line for screen in piles.pile(pile).displays for line in screen.lines)


async def start_charge(
    piles: Simulator, billing: httpx.Client, pile: str, card: str
) -> dict[str, Any]:
    """Plug and swipe; returns the active session once energy flows."""
    await piles.plug(pile)
    await piles.swipe(pile, card)
    return await charging(piles, billing, pile, card)


async def charging(piles: Simulator, billing: httpx.Client, pile: str, card: str) -> dict[str, Any]:
    """Wait until the pile charges for ``card`` and its meter moved; the active session."""
    await eventually(lambda: piles.pile(pile).charging)
    active = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="active")
    )
    await eventually(lambda: piles.pile(pile).energy > Decimal(active[0]["meter_start"]))
    return active[0]


async def completed(
    billing: httpx.Client, pile: str, card: str, timeout: float = 15.0
) -> dict[str, Any]:
    records = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="completed"), timeout
    )
    return records[0]


async def charge_and_stop(
    piles: Simulator, billing: httpx.Client, pile: str, card: str
) -> dict[str, Any]:
    """The card is charging on ``pile``: let energy flow, swipe again, return the record."""
    await charging(piles, billing, pile, card)
    await asyncio.sleep(REPEAT_WINDOW)
    await piles.swipe(pile, card)
    await eventually(lambda: not piles.pile(pile).charging)
    return await completed(billing, pile, card)


def billed_exactly(record: dict[str, Any], price: Decimal) -> None:
    """The record's energy is meter_stop - meter_start and its cost energy x price."""
    energy = Decimal(record["meter_stop"]) - Decimal(record["meter_start"])
    assert energy > 0
    assert Decimal(record["total_energy"]) == energy
    expected = (energy * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(record["total_cost"]["incl_vat"]) == expected
    assert Decimal(record["total_cost"]["excl_vat"]) == expected


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in an exposition ``text`` (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
