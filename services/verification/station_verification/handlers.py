"""Bus handlers: verification, debit and balance requests in, replies out; pile sessions in.

Messages arrive decoded by their channel; the bus drops and counts what cannot be read.
Database work runs in a worker thread so that a slow database never stalls the MQTT loop
(and with it the keep-alive that tells the station this service is alive).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from station_protocol import channels
from station_protocol.messages import (
    AuthorizationWithdrawal,
    BalanceReply,
    BalanceRequest,
    DebitReply,
    DebitRequest,
    DebitResult,
    PileSession,
    SessionAnswer,
    SessionQuery,
    SessionStatus,
    VerificationReply,
    VerificationRequest,
)
from station_runtime.bus import Bus
from station_runtime.deliveries import Delivery
from station_runtime.tasks import RoundTrips
from station_verification.debits import Debiting
from station_verification.metrics import DropKind, VerificationMetrics
from station_verification.money import shown
from station_verification.verification import SessionConflict, Verifier

log = logging.getLogger("station.verification.bus")

SHARE_GROUP = "verification"


@dataclass
class VerificationHandlers:
    bus: Bus
    verifier: Verifier
    metrics: VerificationMetrics
    debiting: Debiting
    billing_timeout: float = 2.0
    _trips: RoundTrips = field(default_factory=lambda: RoundTrips("verification"))

    def register(self) -> None:
        self.bus.serve(channels.VERIFICATION, self.on_request, share=SHARE_GROUP)
        self.bus.serve(channels.DEBIT, self.on_debit, share=SHARE_GROUP)
        self.bus.serve(channels.BALANCE, self.on_balance, share=SHARE_GROUP)
        self.bus.subscribe(channels.WITHDRAWAL, self.on_withdrawal, share=SHARE_GROUP)
        # Not shared: a broker sends no retained messages to a shared subscription, and the
        # retained session of each pile is how a (re)started replica learns what ended while
        # it was away. Applying the same news twice changes nothing.
        self.bus.subscribe(channels.PILE_SESSION, self.on_pile_session)

    async def on_request(self, delivery: Delivery[VerificationRequest]) -> VerificationReply | None:
        request = delivery.body
        ids = {
            "session_id": request.session_id,
            "card_uid": request.card_uid,
            "pile_id": request.pile_id,
        }
        if delivery.incoming.response_topic is None:
            # Accepting would lock the card for a session nobody will hear about.
            self.bus.drop(delivery, DropKind.NO_RESPONSE_TOPIC, channels.VERIFICATION.name)
            return None
        try:
            verdict = await asyncio.to_thread(self.verifier.verify, request)
        except SessionConflict:
            self.bus.drop(delivery, DropKind.SESSION_CONFLICT, channels.VERIFICATION.name)
            return None
        self.metrics.verifications.labels(verdict.result.value).inc()
        log.info(
            "card verified",
            extra={**ids, "result": verdict.result.value, "repeated": verdict.repeated},
        )
        return VerificationReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=verdict.result,
            balance=None if verdict.balance is None else shown(verdict.balance),
        )

    async def close(self) -> None:
        await self._trips.close()

    async def on_debit(self, delivery: Delivery[DebitRequest]) -> None:
        """Book a session's debit once, however often billing asks (see ``debits``).

        Money moves only for what happened: a first booking needs billing's word that the
        session has a completed record on this card and pile of at least the amount. Asking
        is a round trip, so it runs in a task (the replies come through this same loop).
        """
        self._trips.spawn(self._debit(delivery))

    async def _debit(self, delivery: Delivery[DebitRequest]) -> None:
        request = delivery.body
        reply = await asyncio.to_thread(self.debiting.booked_before, request)
        if reply is None:
            reply = await self._unbilled(request)
        if reply is None:
            reply = await asyncio.to_thread(self.debiting.debit, request)
        await self.bus.answer(channels.DEBIT, delivery, reply)
        self.metrics.debits.labels(reply.result.value).inc()
        log.info(
            "session debit",
            extra={
                "session_id": request.session_id,
                "card_uid": request.card_uid,
                "pile_id": request.pile_id,
                "amount": str(request.amount),
                "result": reply.result.value,
            },
        )

    async def on_withdrawal(self, delivery: Delivery[AuthorizationWithdrawal]) -> None:
        """A start given up: free the card, once billing says the session is not active."""
        self._trips.spawn(self._withdraw(delivery.body))

    async def _withdraw(self, withdrawal: AuthorizationWithdrawal) -> None:
        ids = {
            "session_id": withdrawal.session_id,
            "card_uid": withdrawal.card_uid,
            "pile_id": withdrawal.pile_id,
        }
        answer = await self._billing_on(withdrawal.session_id)
        if answer is None or (
            answer.session is not None and answer.session.status is SessionStatus.ACTIVE
        ):
            # Charging after all, or billing not sure: the hold stays until the session's
            # end is announced, or its TTL if it never is.
            log.info("withdrawal not applied: the session may be charging", extra=ids)
            return
        row = await asyncio.to_thread(
            self.verifier.withdraw, withdrawal.session_id, withdrawal.card_uid
        )
        if row is not None:
            log.info("authorization withdrawn: the card is free again", extra=ids)

    async def _billing_on(self, session_id: str) -> SessionAnswer | None:
        return await self.bus.ask(
            channels.SESSION_QUERY,
            SessionQuery(session_id=session_id),
            timeout=self.billing_timeout,
            answers=lambda answer: (
                answer.session is None or answer.session.session_id == session_id
            ),
        )

    async def _unbilled(self, request: DebitRequest) -> DebitReply | None:
        """``not_billed`` unless billing confirms the record the debit is for."""
        answer = await self._billing_on(request.session_id)
        why = unbilled_because(request, answer)
        if why is None:
            return None
        log.warning(
            "debit refused: billing has no such record",
            extra={
                "session_id": request.session_id,
                "card_uid": request.card_uid,
                "pile_id": request.pile_id,
                "amount": str(request.amount),
                "why": why,
            },
        )
        return DebitReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=DebitResult.NOT_BILLED,
            error=why,
        )

    async def on_balance(self, delivery: Delivery[BalanceRequest]) -> BalanceReply:
        return await asyncio.to_thread(self.debiting.balance, delivery.body)

    async def on_pile_session(self, delivery: Delivery[PileSession]) -> None:
        session = delivery.body
        row = await asyncio.to_thread(self.verifier.session_changed, session)
        if row is not None:
            log.info(
                "session news applied to its authorization",
                extra={
                    "session_id": session.session_id,
                    "card_uid": session.card_uid,
                    "pile_id": session.pile_id,
                    "status": session.status.value,
                },
            )


def unbilled_because(request: DebitRequest, answer: SessionAnswer | None) -> str | None:
    """Why billing's answer does not cover the debit asked, or ``None`` if it does."""
    if answer is None:
        return "billing did not confirm the session"
    session = answer.session
    if session is None:
        return "billing has no such session"
    if session.status is not SessionStatus.COMPLETED or session.total_cost is None:
        return "the session is not billed yet"
    if (session.card_uid, session.pile_id) != (request.card_uid, request.pile_id):
        return "the session was billed to another card or pile"
    if request.amount > session.total_cost.incl_vat:
        return f"more than the record's {session.total_cost.incl_vat}"
    return None
