"""May this card charge on this pile as this session? The answer and what it records.

The checks run in the order a driver can act on: a card the station does not know, then
one an operator stopped, then one past its date, then one busy on another pile, and only
then money. An accepted card is recorded as an authorization in the same transaction, so
that the same card cannot be accepted twice at once, even by two replicas.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from station_protocol.messages import (
    PileSession,
    SessionStatus,
    VerificationRequest,
    VerificationResult,
)
from station_runtime.clock import Clock
from station_verification import authorizations, ledger
from station_verification.core.config import Settings
from station_verification.models import Authorization, Card, CardStatus

log = logging.getLogger("station.verification")


class SessionConflict(Exception):
    """The session id was already authorized for another card: a collector bug, not a driver's."""


@dataclass(frozen=True)
class Policy:
    min_balance: Decimal
    authorization_ttl: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(settings.min_balance, timedelta(seconds=settings.authorization_ttl))


@dataclass(frozen=True)
class Verdict:
    result: VerificationResult
    balance: Decimal | None
    """The card's balance when it was checked; ``None`` for an unknown card."""
    repeated: bool = False
    """The same session asked before (a redelivery) and gets its first answer again."""


def decide(db: Session, request: VerificationRequest, now: datetime, policy: Policy) -> Verdict:
    earlier = db.get(Authorization, request.session_id)
    if earlier is not None:
        if earlier.card_uid != request.card_uid:
            raise SessionConflict(request.session_id)
        return Verdict(
            VerificationResult.ACCEPTED, ledger.balance(db, earlier.card_uid), repeated=True
        )
    card = db.get(Card, request.card_uid, with_for_update=True)
    if card is None:
        return Verdict(VerificationResult.UNKNOWN, None)
    balance = ledger.balance(db, card.uid)
    result = _refusal(db, card, request, balance, now, policy)
    if result is None:
        authorizations.grant(db, request.session_id, card.uid, request.pile_id, now)
        result = VerificationResult.ACCEPTED
    return Verdict(result, balance)


def _refusal(
    db: Session,
    card: Card,
    request: VerificationRequest,
    balance: Decimal,
    now: datetime,
    policy: Policy,
) -> VerificationResult | None:
    if card.status == CardStatus.BLOCKED:
        return VerificationResult.BLOCKED
    if card.expires_at is not None and card.expires_at <= now:
        return VerificationResult.EXPIRED
    ttl = policy.authorization_ttl
    if authorizations.open_elsewhere(db, card.uid, request.session_id, now, ttl):
        return VerificationResult.ALREADY_CHARGING
    if balance < policy.min_balance:
        return VerificationResult.INSUFFICIENT_BALANCE
    return None


@dataclass
class Verifier:
    """Runs decisions and session news in their own transactions (blocking: run in a thread)."""

    engine: Engine
    policy: Policy
    clock: Clock

    def verify(self, request: VerificationRequest) -> Verdict:
        try:
            return self._verify_once(request)
        except IntegrityError:
            # Another replica accepted this card or this session between our read and our
            # write; asking again sees its row and answers accordingly.
            log.info(
                "verification raced another answer, deciding again",
                extra={"session_id": request.session_id, "card_uid": request.card_uid},
            )
            return self._verify_once(request)

    def _verify_once(self, request: VerificationRequest) -> Verdict:
        with Session(self.engine) as db:
            verdict = decide(db, request, self.clock(), self.policy)
            db.commit()
            return verdict

    def withdraw(self, session_id: str, card_uid: str) -> Authorization | None:
        with Session(self.engine, expire_on_commit=False) as db:
            row = authorizations.withdrawn(db, session_id, card_uid, self.clock())
            db.commit()
            return row

    def session_changed(self, session: PileSession) -> Authorization | None:
        with Session(self.engine, expire_on_commit=False) as db:
            if session.status == SessionStatus.COMPLETED:
                row = authorizations.session_completed(db, session.session_id, self.clock())
            else:
                row = authorizations.session_active(db, session.session_id)
            db.commit()
            return row
