"""``/api/v1/cards``: issue, read, block/unblock/expire, top up and refund cards; their ledger.

A card uid may hold any printable character, ``/``, ``?`` and spaces included, so the uid
is a ``path`` parameter: send it percent-encoded (``quote(uid, safe="")``) and it arrives
whole, slashes and all. A uid with a ``.`` or ``..`` segment also needs its dots sent as
``%2E``, since HTTP clients collapse dot segments before sending. The routes are plain
functions, which FastAPI runs in its thread pool, because the database calls block.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError

from station_runtime.deps import ClockDep, DbDep
from station_verification import cards, ledger
from station_verification.api.schemas import (
    CardCreate,
    CardOut,
    CardUpdate,
    LedgerEntryOut,
    LedgerOut,
    RefundIn,
    RefundOut,
    TopUp,
)
from station_verification.models import Card, CardStatus, LedgerEntry
from station_verification.money import money_text

log = logging.getLogger("station.verification.api")

router = APIRouter(prefix="/cards", tags=["cards"])


def _not_found(uid: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no card {uid!r}")


@router.post("", status_code=status.HTTP_201_CREATED)
def issue_card(body: CardCreate, db: DbDep, clock: ClockDep) -> CardOut:
    new = cards.NewCard(
        uid=body.uid,
        holder=body.holder,
        status=body.status,
        expires_at=body.expires_at,
        opening_balance=body.balance,
    )
    conflict = HTTPException(status.HTTP_409_CONFLICT, f"card {body.uid!r} exists already")
    try:
        card = cards.issue(db, new, clock())
        db.commit()
    except cards.CardExists:
        raise conflict from None
    except IntegrityError:
        # Issued by someone else between our look-up and our insert.
        db.rollback()
        raise conflict from None
    log.info("card issued", extra={"card_uid": card.uid})
    return CardOut.of(cards.view(db, card))


@router.get("/{uid:path}/ledger")
def read_ledger(uid: str, db: DbDep) -> LedgerOut:
    """Every balance change of the card, oldest first; the balance is their sum.

    Registered before ``GET /{uid}`` so that ``.../ledger`` is this, not a card named so.
    """
    try:
        card = cards.find(db, uid)
    except cards.CardNotFound:
        raise _not_found(uid) from None
    entries = ledger.entries(db, card.uid)
    return LedgerOut(
        card_uid=card.uid,
        balance=money_text(ledger.balance(db, card.uid)),
        entries=[LedgerEntryOut.of(entry) for entry in entries],
    )


@router.get("/{uid:path}")
def read_card(uid: str, db: DbDep) -> CardOut:
    """The card and its balance now. Percent-encode the uid: it may hold ``/``, ``?``, spaces."""
    try:
        return CardOut.of(cards.view(db, cards.find(db, uid)))
    except cards.CardNotFound:
        raise _not_found(uid) from None


@router.patch("/{uid:path}")
def update_card(uid: str, body: CardUpdate, db: DbDep) -> CardOut:
    try:
        card = cards.find(db, uid)
    except cards.CardNotFound:
        raise _not_found(uid) from None
    changes = body.model_dump(include=body.model_fields_set)
    if body.status is not None:
        card.status = CardStatus(body.status)
    if "expires_at" in body.model_fields_set:
        card.expires_at = body.expires_at
    db.add(card)
    db.commit()
    db.refresh(card)
    log.info("card updated", extra={"card_uid": uid, "changes": changes})
    return CardOut.of(cards.view(db, card))


@router.post("/{uid:path}/top-ups", status_code=status.HTTP_201_CREATED)
def top_up_card(uid: str, body: TopUp, db: DbDep, clock: ClockDep) -> CardOut:
    """Credit the card; repeat a payment's ``reference`` safely, it is booked only once."""
    try:
        card = _book_top_up(db, uid, body, clock)
    except cards.CardNotFound:
        raise _not_found(uid) from None
    except cards.ReferenceReused:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"reference {body.reference!r} was booked on this card for another amount",
        ) from None
    log.info(
        "card topped up",
        extra={"card_uid": uid, "amount": str(body.amount), "reference": body.reference},
    )
    return CardOut.of(cards.view(db, card))


def _book_top_up(db: DbDep, uid: str, body: TopUp, clock: ClockDep) -> Card:
    try:
        card = cards.top_up(db, uid, body.amount, body.reference, clock())
        db.commit()
    except IntegrityError:
        # The same reference was booked by a parallel retry; booking again finds it.
        db.rollback()
        card = cards.top_up(db, uid, body.amount, body.reference, clock())
        db.commit()
    return card


@router.post("/{uid:path}/refunds", status_code=status.HTTP_201_CREATED)
def refund_card(uid: str, body: RefundIn, db: DbDep, clock: ClockDep) -> RefundOut:
    """An operator's refund: a ledger entry with its reason (and the session it refunds)."""
    refund = cards.Refund(body.amount, body.reason, body.session_id, body.reference)
    try:
        entry = _book_refund(db, uid, refund, clock)
    except cards.CardNotFound:
        raise _not_found(uid) from None
    except cards.ReferenceReused:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"reference {body.reference!r} was booked on this card for another amount",
        ) from None
    except cards.NoDebit:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"card {uid!r} was never debited for session {body.session_id}",
        ) from None
    except cards.RefundTooLarge as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"session {exc.session_id} was debited {money_text(exc.debited)}, "
            f"{money_text(exc.refunded)} of it refunded already",
        ) from None
    log.info(
        "card refunded",
        extra={
            "card_uid": uid,
            "amount": str(body.amount),
            "reason": body.reason,
            "session_id": body.session_id,
        },
    )
    return RefundOut(
        card_uid=uid,
        balance=money_text(ledger.balance(db, uid)),
        entry=LedgerEntryOut.of(entry),
    )


def _book_refund(db: DbDep, uid: str, refund: cards.Refund, clock: ClockDep) -> LedgerEntry:
    try:
        entry = cards.refund(db, uid, refund, clock())
        db.commit()
    except IntegrityError:
        # The same reference was booked by a parallel retry; booking again finds it.
        db.rollback()
        entry = cards.refund(db, uid, refund, clock())
        db.commit()
    db.refresh(entry)
    return entry
