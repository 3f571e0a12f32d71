"""Demo cards, seeded through verification's REST API so a new station can charge at once.

Through the API and not the database: the launcher is a client like any kiosk, and never
reaches into a service's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx


@dataclass(frozen=True)
class DemoCard:
    uid: str
    holder: str
    balance: Decimal
    blocked: bool = False
    note: str = ""


DEMO_CARDS = (
    DemoCard("DEMO-0001", "Demo driver 1", Decimal("500.00")),
    DemoCard("DEMO-0002", "Demo driver 2", Decimal("500.00")),
    DemoCard("DEMO-0003", "Demo driver 3", Decimal("500.00")),
    DemoCard("DEMO-0004", "Demo driver 4", Decimal("0.00"), note="empty: refused"),
    DemoCard(
        "DEMO-0005", "Demo driver 5", Decimal("500.00"), blocked=True, note="blocked: refused"
    ),
)
"""Three that charge, and two that show how a refusal looks on the pile display."""


def seed_card(client: httpx.Client, api: str, card: DemoCard) -> str:
    """Create ``card``; the outcome in words (``created``, ``already there``, or why not)."""
    body = {"uid": card.uid, "holder": card.holder, "balance": str(card.balance)}
    if card.blocked:
        body["status"] = "blocked"
    try:
        response = client.post(f"{api}/cards", json=body)
    except httpx.HTTPError as exc:
        return f"not seeded: {exc}"
    if response.status_code in (200, 201):
        return "created"
    if response.status_code == 409:
        return "already there"
    return f"not seeded: HTTP {response.status_code} {response.text[:200]}"


def seed_cards(api: str, cards: tuple[DemoCard, ...] = DEMO_CARDS) -> dict[str, str]:
    """Seed every card at ``api`` (``http://HOST:PORT/api/v1``); uid -> outcome."""
    with httpx.Client(timeout=5.0) as client:
        return {card.uid: seed_card(client, api, card) for card in cards}
