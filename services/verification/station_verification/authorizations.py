"""Authorizations: which card is charging (or about to) on which pile, for which session.

An accepted card holds an authorization until billing announces its session completed.
If the charge never starts (the pile refuses, billing refuses the opening), the collector
withdraws it at once; and since a collector may die before it can, an authorization whose
session was never seen active also lapses after a TTL instead of locking the card out of
every pile for good.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from station_verification.models import Authorization, AuthorizationEnd

log = logging.getLogger("station.verification.authorizations")


def open_elsewhere(
    db: Session, card_uid: str, session_id: str, now: datetime, ttl: timedelta
) -> list[Authorization]:
    """The card's open authorizations for other sessions, after lapsing the stale ones."""
    rows = db.exec(
        select(Authorization).where(
            Authorization.card_uid == card_uid,
            col(Authorization.ended_at).is_(None),
            Authorization.session_id != session_id,
        )
    ).all()
    still_open = []
    for row in rows:
        lapses_at = row.created_at + ttl
        if not row.session_seen and lapses_at <= now:
            row.ended_at = lapses_at
            row.end_reason = AuthorizationEnd.LAPSED
            db.add(row)
            log.info(
                "authorization lapsed: its charge never started",
                extra={"session_id": row.session_id, "card_uid": card_uid, "pile_id": row.pile_id},
            )
        else:
            still_open.append(row)
    db.flush()
    return still_open


def grant(db: Session, session_id: str, card_uid: str, pile_id: str, now: datetime) -> None:
    db.add(Authorization(session_id=session_id, card_uid=card_uid, pile_id=pile_id, created_at=now))
    db.flush()


def session_active(db: Session, session_id: str) -> Authorization | None:
    """The session is charging: its authorization no longer lapses.

    One that already lapsed (billing was slow to open the session) is opened again, since
    the card is charging after all, unless the card has been authorized elsewhere since.
    """
    row = db.get(Authorization, session_id)
    if row is None:
        return None
    row.session_seen = True
    if row.end_reason == AuthorizationEnd.LAPSED:
        others = db.exec(
            select(Authorization).where(
                Authorization.card_uid == row.card_uid,
                col(Authorization.ended_at).is_(None),
            )
        ).first()
        if others is None:
            row.ended_at = None
            row.end_reason = None
        else:
            log.warning(
                "a lapsed session started charging while its card is authorized elsewhere",
                extra={"session_id": session_id, "card_uid": row.card_uid, "pile_id": row.pile_id},
            )
    db.add(row)
    return row


def withdrawn(db: Session, session_id: str, card_uid: str, now: datetime) -> Authorization | None:
    """The session never started: its card is free again (a hold never outlives it)."""
    row = db.get(Authorization, session_id)
    if row is None or row.card_uid != card_uid or row.ended_at is not None:
        return None
    row.ended_at = now
    row.end_reason = AuthorizationEnd.WITHDRAWN
    db.add(row)
    return row


def session_completed(db: Session, session_id: str, now: datetime) -> Authorization | None:
    """Billing completed the session: the card is free to charge again."""
    row = db.get(Authorization, session_id)
    if row is None:
        return None
    row.session_seen = True
    if row.ended_at is None or row.end_reason == AuthorizationEnd.LAPSED:
        row.ended_at = row.ended_at or now
        row.end_reason = AuthorizationEnd.COMPLETED
    db.add(row)
    return row
