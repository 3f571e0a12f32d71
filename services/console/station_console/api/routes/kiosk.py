"""``/api/v1/kiosk``: the card kiosk's only counterpart.

Errors are problem details (``application/problem+json``) whose ``detail`` a kiosk can
show as it is and whose ``reason`` it can translate: ``unknown`` card, ``busy`` pile...
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, StringConstraints

from station_console import kiosk
from station_console.api.deps import StateDep, known_pile
from station_console.api.problems import Problem
from station_console.kiosk import KioskCard
from station_protocol.messages import (
    KioskIntent,
    KioskOutcome,
    KioskRefusal,
    KioskReply,
    TariffDisplay,
)
from station_protocol.zigbee import CardUid
from station_runtime.api_types import Money

router = APIRouter(prefix="/kiosk", tags=["kiosk"])

REFUSALS: dict[KioskRefusal, str] = {
    KioskRefusal.UNKNOWN: "This card is not known at this station.",
    KioskRefusal.BLOCKED: "This card is blocked.",
    KioskRefusal.EXPIRED: "This card has expired.",
    KioskRefusal.INSUFFICIENT_BALANCE: "The card's balance is too low; please top it up.",
    KioskRefusal.ALREADY_CHARGING: "This card is already charging.",
    KioskRefusal.BUSY: "The pile is busy with another card's session.",
    KioskRefusal.NO_SESSION: "No session of this card runs on this pile.",
    KioskRefusal.OUT_OF_SERVICE: "The pile is out of service.",
    KioskRefusal.MAINTENANCE: "The pile is in maintenance.",
    KioskRefusal.VERIFICATION_UNAVAILABLE: "Cards cannot be checked just now; try again.",
    KioskRefusal.BILLING_UNAVAILABLE: "Billing is not answering just now; try again.",
    KioskRefusal.NOT_STARTED: "The gun was unplugged before the charge could start.",
}
NOT_A_CARD = {404: "unknown"}

Uid = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")]
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^ *[\x21-\x7e][\x20-\x7e]*$")
]
"""Printable ASCII with something other than spaces (verification keeps it as the payment's
reference): the schema says exactly what the handler and verification accept."""


_TOP_UP = Money(places=2, whole=9, positive=True)
"""A kiosk top-up: cents, below 10^9 (what a payment terminal pays in)."""


class KioskTopUp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[Decimal, _TOP_UP.check, _TOP_UP.digits, _TOP_UP.schema]
    """A decimal string above zero with at most two places (``"50.00"``), below 10^9."""
    reference: Reference
    """The payment's reference: a retried top-up with the same one credits once."""


class KioskCardAtPile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    card_uid: CardUid


@router.get("/cards/{uid}", responses={404: {"description": "unknown card"}})
async def read_card(state: StateDep, uid: Uid) -> KioskCard:
    """Status, balance, expiry and the card's last 10 sessions."""
    found = await kiosk.card(state, uid)
    if not isinstance(found, KioskCard):
        raise Problem(found.status, found.detail(), NOT_A_CARD.get(found.status))
    return found


@router.post("/cards/{uid}/top-ups", status_code=201)
async def top_up(state: StateDep, uid: Uid, body: KioskTopUp) -> Any:
    """Credit a prepaid card once per ``reference``: a retried top-up credits once."""
    answer = await kiosk.top_up(state, uid, body.amount, body.reference)
    if not answer.ok:
        raise Problem(answer.status, answer.detail(), NOT_A_CARD.get(answer.status))
    return answer.body


@router.get("/sessions/{session_id}/receipt")
async def receipt(state: StateDep, session_id: str) -> Any:
    """The receipt lines and its QR payload, once the session is completed."""
    answer = await kiosk.receipt(state, session_id)
    if not answer.ok:
        raise Problem(answer.status, answer.detail())
    return answer.body


@router.get("/piles/{pile_id}/price")
async def price(state: StateDep, pile_id: str) -> TariffDisplay:
    """The price in effect at the pile now, as its display shows it."""
    known_pile(state, pile_id)
    tariff = state.board.piles[pile_id].tariff
    if tariff is None:
        raise Problem(503, f"no price known for {pile_id} yet: billing has not published one")
    return tariff


@router.post("/piles/{pile_id}/start", responses={409: {"description": "refused"}})
async def start(state: StateDep, pile_id: str, body: KioskCardAtPile) -> KioskReply:
    """As a swipe at the pile: ``started`` (with the session), ``waiting_for_gun`` (plug
    within the pairing window), or a 409 problem with the refusal ``reason``."""
    return await _swipe(state, pile_id, body.card_uid, KioskIntent.START)


@router.post("/piles/{pile_id}/stop", responses={409: {"description": "refused"}})
async def stop(state: StateDep, pile_id: str, body: KioskCardAtPile) -> KioskReply:
    """As the second swipe at the pile: ``stopping``; the record follows as at the pile."""
    return await _swipe(state, pile_id, body.card_uid, KioskIntent.STOP)


async def _swipe(state: StateDep, pile_id: str, card_uid: str, intent: KioskIntent) -> KioskReply:
    known_pile(state, pile_id)
    reply = await kiosk.swipe(state, pile_id, card_uid, intent)
    if reply is None:
        raise Problem(
            503, f"the collector of {pile_id} did not answer", reason="collector_unavailable"
        )
    if reply.outcome is KioskOutcome.REFUSED:
        reason = reply.reason or KioskRefusal.OUT_OF_SERVICE
        raise Problem(409, REFUSALS[reason], reason=reason.value)
    return reply
