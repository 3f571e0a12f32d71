"""Sessions' debits, booked on the card's ledger exactly once (billing asks over the bus).

Billing asks for a session's debit until it gets an answer, so the same request may come
many times, after a restart of either service, and to two replicas at once. A session is
debited once: an earlier debit of the session is found and answered again
(``already_booked``), and the database refuses a second one (a partial unique index on the
debits' session ids) when two replicas race. A debit is booked whatever the balance: the
energy was delivered; a card that went below zero is refused its next charge (minimum
balance). A request whose session was debited with another amount or card is a
``conflict``: the first booking stands and an operator looks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from station_protocol.messages import (
    BalanceReply,
    BalanceRequest,
    DebitReply,
    DebitRequest,
    DebitResult,
)
from station_runtime.clock import Clock
from station_verification import ledger
from station_verification.models import Card, LedgerKind
from station_verification.money import InexactAmount, shown, to_units

log = logging.getLogger("station.verification.debits")


def _reply(request: DebitRequest, result: DebitResult, **fields: object) -> DebitReply:
    return DebitReply(
        session_id=request.session_id, card_uid=request.card_uid, result=result, **fields
    )


def earlier_answer(db: Session, request: DebitRequest) -> DebitReply | None:
    """The answer for a session debited before (``already_booked`` or ``conflict``)."""
    earlier = ledger.debit_of(db, request.session_id)
    if earlier is None:
        return None
    booked = shown(-earlier.amount)
    balance = shown(ledger.balance(db, earlier.card_uid))
    if earlier.card_uid != request.card_uid or booked != request.amount:
        return _reply(
            request,
            DebitResult.CONFLICT,
            amount=booked,
            balance=balance,
            error=f"session debited before: {booked} on card {earlier.card_uid}",
        )
    return _reply(request, DebitResult.ALREADY_BOOKED, amount=booked, balance=balance)


def decide_debit(db: Session, request: DebitRequest, now: datetime) -> DebitReply:
    def reply(result: DebitResult, **fields: object) -> DebitReply:
        return _reply(request, result, **fields)

    earlier = earlier_answer(db, request)
    if earlier is not None:
        return earlier
    card = db.get(Card, request.card_uid, with_for_update=True)
    if card is None:
        return reply(DebitResult.UNKNOWN_CARD, error=f"no card {request.card_uid!r}")
    try:
        to_units(request.amount)
    except InexactAmount as exc:
        return reply(DebitResult.INVALID, error=str(exc))
    ledger.book(
        db,
        card.uid,
        LedgerKind.SESSION_DEBIT,
        -request.amount,
        now,
        session_id=request.session_id,
        reason=f"charge on {request.pile_id}",
    )
    db.flush()
    return reply(
        DebitResult.BOOKED, amount=request.amount, balance=shown(ledger.balance(db, card.uid))
    )


@dataclass
class Debiting:
    """Books debits and tells balances in their own transactions (blocking: run in a thread)."""

    engine: Engine
    clock: Clock

    def debit(self, request: DebitRequest) -> DebitReply:
        try:
            return self._debit_once(request)
        except IntegrityError:
            # Another replica booked this session between our look and our insert: its
            # booking is the one, and asking again finds it.
            log.info("debit raced another replica, deciding again", extra=_ids(request))
            return self._debit_once(request)

    def booked_before(self, request: DebitRequest) -> DebitReply | None:
        """The answer for a session debited before, if it was (no need to ask billing)."""
        with Session(self.engine) as db:
            return earlier_answer(db, request)

    def _debit_once(self, request: DebitRequest) -> DebitReply:
        with Session(self.engine) as db:
            reply = decide_debit(db, request, self.clock())
            db.commit()
            return reply

    def balance(self, request: BalanceRequest) -> BalanceReply:
        with Session(self.engine) as db:
            if db.get(Card, request.card_uid) is None:
                return BalanceReply(card_uid=request.card_uid, known=False)
            balance = shown(ledger.balance(db, request.card_uid))
        return BalanceReply(card_uid=request.card_uid, known=True, balance=balance)


def _ids(request: DebitRequest) -> dict[str, str]:
    return {
        "session_id": request.session_id,
        "card_uid": request.card_uid,
        "pile_id": request.pile_id,
    }
