"""The card kiosk's questions, answered from the owners.

A card is verification's (status, balance, expiry, top-ups), its sessions and receipts are
billing's, the price at a pile is billing's retained word the board already holds, and a
start or stop at the kiosk is a swipe at the pile, which only its collector can decide
(:data:`~station_protocol.channels.KIOSK`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from station_console.owners import Answer
from station_console.state import ConsoleState
from station_protocol import channels
from station_protocol.ids import charger_of
from station_protocol.messages import KioskIntent, KioskReply, KioskRequest

log = logging.getLogger("station.console.kiosk")

RECENT_SESSIONS = 10


class KioskSession(BaseModel):
    id: str
    pile_id: str
    status: str
    started_at: datetime
    stopped_at: datetime | None
    total_energy: Decimal | None
    total_cost: Decimal | None
    """Incl. VAT; null while the session runs."""
    currency: str


class KioskCard(BaseModel):
    uid: str
    status: str
    """``active``, ``blocked``, or ``expired`` (active, but past its expiry)."""
    balance: Decimal
    expires_at: datetime | None
    sessions: list[KioskSession]
    """The card's last sessions, newest first."""


def card_path(uid: str) -> str:
    return f"/api/v1/cards/{quote(uid, safe='')}"


async def card(state: ConsoleState, uid: str) -> Answer | KioskCard:
    """The card with its last sessions; the owner's answer when it is not a card."""
    found = await state.owners.verification.call("GET", card_path(uid))
    if not found.ok:
        return found
    sessions = await state.owners.billing.call(
        "GET", "/api/v1/sessions", params={"card_uid": uid, "limit": RECENT_SESSIONS}
    )
    body = found.body
    expires = datetime.fromisoformat(body["expires_at"]) if body.get("expires_at") else None
    status = body["status"]
    if status == "active" and expires is not None and expires <= state.clock():
        status = "expired"
    return KioskCard(
        uid=body["uid"],
        status=status,
        balance=Decimal(body["balance"]),
        expires_at=expires,
        sessions=[_session(row) for row in sessions.body] if sessions.ok else [],
    )


def _session(row: dict[str, Any]) -> KioskSession:
    cost = row.get("total_cost")
    return KioskSession(
        id=row["id"],
        pile_id=row["pile_id"],
        status=row["status"],
        started_at=row["started_at"],
        stopped_at=row.get("stopped_at"),
        total_energy=row.get("total_energy"),
        total_cost=cost["incl_vat"] if cost else None,
        currency=row["currency"],
    )


async def top_up(state: ConsoleState, uid: str, amount: Decimal, reference: str) -> Answer:
    return await state.owners.verification.call(
        "POST",
        f"{card_path(uid)}/top-ups",
        json={"amount": str(amount), "reference": reference},
    )


async def receipt(state: ConsoleState, session_id: str) -> Answer:
    return await state.owners.billing.call(
        "GET", f"/api/v1/sessions/{quote(session_id, safe='')}/receipt"
    )


async def swipe(
    state: ConsoleState, pile_id: str, card_uid: str, intent: KioskIntent
) -> KioskReply | None:
    """The collector's answer, or ``None`` when it gave none in time (it is away)."""
    request = KioskRequest(pile_id=pile_id, card_uid=card_uid, intent=intent)
    reply = await state.bus.ask(
        channels.KIOSK,
        request,
        timeout=state.settings.kiosk_timeout,
        answers=lambda answer: (
            (answer.pile_id, answer.card_uid, answer.intent) == (pile_id, card_uid, intent)
        ),
        charger=charger_of(pile_id),
    )
    outcome = reply.outcome.value if reply is not None else "no_answer"
    state.metrics.kiosk.labels(intent.value, outcome).inc()
    log.info(
        "kiosk swipe",
        extra={
            "pile_id": pile_id,
            "card_uid": card_uid,
            "intent": intent.value,
            "outcome": outcome,
            "reason": reply.reason.value if reply is not None and reply.reason else None,
        },
    )
    return reply
