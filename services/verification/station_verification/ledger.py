"""The prepaid ledger: a card's balance is the sum of its entries, computed, never stored."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from station_verification.models import LedgerEntry, LedgerKind


def balance(db: Session, card_uid: str) -> Decimal:
    total = db.exec(
        select(func.coalesce(func.sum(col(LedgerEntry.amount)), 0)).where(
            LedgerEntry.card_uid == card_uid
        )
    ).one()
    return Decimal(total)


def book(
    db: Session,
    card_uid: str,
    kind: LedgerKind,
    amount: Decimal,
    now: datetime,
    *,
    reference: str | None = None,
    reason: str | None = None,
    session_id: str | None = None,
) -> LedgerEntry:
    """Add one entry; the caller's transaction decides whether it stays."""
    entry = LedgerEntry(
        card_uid=card_uid,
        kind=kind,
        amount=amount,
        reference=reference,
        reason=reason,
        session_id=session_id,
        created_at=now,
    )
    db.add(entry)
    return entry


def entry_by_reference(db: Session, card_uid: str, reference: str) -> LedgerEntry | None:
    return db.exec(
        select(LedgerEntry).where(
            LedgerEntry.card_uid == card_uid, LedgerEntry.reference == reference
        )
    ).first()


def entries(db: Session, card_uid: str) -> list[LedgerEntry]:
    """The card's entries, oldest first: its balance's whole history."""
    return list(
        db.exec(
            select(LedgerEntry)
            .where(LedgerEntry.card_uid == card_uid)
            .order_by(col(LedgerEntry.id))
        ).all()
    )


def debit_of(db: Session, session_id: str) -> LedgerEntry | None:
    return db.exec(
        select(LedgerEntry).where(
            LedgerEntry.session_id == session_id, LedgerEntry.kind == LedgerKind.SESSION_DEBIT
        )
    ).first()


def refunded(db: Session, session_id: str) -> Decimal:
    """What operators have refunded of a session so far."""
    total = db.exec(
        select(func.coalesce(func.sum(col(LedgerEntry.amount)), 0)).where(
            LedgerEntry.session_id == session_id, LedgerEntry.kind == LedgerKind.REFUND
        )
    ).one()
    return Decimal(total)
