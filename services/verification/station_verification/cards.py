"""Card operations as the kiosk and operators see them: issue, look up, block, top up.

Each function works inside the caller's session and commits nothing, so that a card and
its opening entry (or a top-up and the answer about it) are one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from station_verification import ledger
from station_verification.models import Card, CardStatus, LedgerEntry, LedgerKind


class CardExists(Exception):
    """A card with this uid was issued before."""


class CardNotFound(Exception):
    """No card has this uid."""


class ReferenceReused(Exception):
    """A reference already booked on this card, for a different amount or kind."""


class NoDebit(Exception):
    """A refund names a session this card was never debited for."""


class RefundTooLarge(Exception):
    """A refund would return more of a session than its debit took."""

    def __init__(self, session_id: str, debited: Decimal, refunded: Decimal) -> None:
        super().__init__(session_id)
        self.session_id, self.debited, self.refunded = session_id, debited, refunded


@dataclass(frozen=True)
class Refund:
    amount: Decimal
    reason: str
    session_id: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class CardView:
    """A card together with its balance at the moment it was read."""

    card: Card
    balance: Decimal


@dataclass(frozen=True)
class NewCard:
    uid: str
    holder: str
    status: CardStatus
    expires_at: datetime | None
    opening_balance: Decimal


def view(db: Session, card: Card) -> CardView:
    return CardView(card, ledger.balance(db, card.uid))


def find(db: Session, uid: str) -> Card:
    card = db.get(Card, uid)
    if card is None:
        raise CardNotFound(uid)
    return card


def issue(db: Session, new: NewCard, now: datetime) -> Card:
    """A new card and its opening ledger entry (even for zero: the ledger starts somewhere)."""
    if db.get(Card, new.uid) is not None:
        raise CardExists(new.uid)
    card = Card(
        uid=new.uid,
        holder=new.holder,
        status=new.status,
        expires_at=new.expires_at,
        created_at=now,
    )
    db.add(card)
    db.flush()
    ledger.book(db, card.uid, LedgerKind.OPENING, new.opening_balance, now)
    return card


def top_up(db: Session, uid: str, amount: Decimal, reference: str | None, now: datetime) -> Card:
    """Credit a card; a payment reference seen before on the card is not booked twice.

    The kiosk retries a top-up whose answer it did not get; with a reference, the retry
    finds the first booking instead of crediting the driver again.
    """
    card = find(db, uid)
    if reference is not None:
        earlier = ledger.entry_by_reference(db, uid, reference)
        if earlier is not None:
            if earlier.kind != LedgerKind.TOP_UP or earlier.amount != amount:
                raise ReferenceReused(reference)
            return card
    ledger.book(db, uid, LedgerKind.TOP_UP, amount, now, reference=reference)
    return card


def refund(db: Session, uid: str, refund: Refund, now: datetime) -> LedgerEntry:
    """Credit a card back, with the operator's reason: a ledger entry like any other.

    A refund naming a session returns at most what that session's debit took, all its
    refunds together; a refund with a reference seen before on the card is not booked twice.
    """
    find(db, uid)
    if refund.reference is not None:
        earlier = ledger.entry_by_reference(db, uid, refund.reference)
        if earlier is not None:
            if earlier.kind != LedgerKind.REFUND or earlier.amount != refund.amount:
                raise ReferenceReused(refund.reference)
            return earlier
    if refund.session_id is not None:
        debit = ledger.debit_of(db, refund.session_id)
        if debit is None or debit.card_uid != uid:
            raise NoDebit(refund.session_id)
        debited = -debit.amount
        refunded = ledger.refunded(db, refund.session_id)
        if refunded + refund.amount > debited:
            raise RefundTooLarge(refund.session_id, debited, refunded)
    entry = ledger.book(
        db,
        uid,
        LedgerKind.REFUND,
        refund.amount,
        now,
        reference=refund.reference,
        reason=refund.reason,
        session_id=refund.session_id,
    )
    db.flush()
    return entry
