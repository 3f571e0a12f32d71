"""Bus handlers: verification, debit and balance requests in, replies out; pile sessions in.

Messages arrive decoded by their channel; the bus drops and counts what cannot be read.
Database work runs in a worker thread so that a slow database never stalls the MQTT loop
(and with it the keep-alive that tells the station this service is alive).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from station_protocol import channels
from station_protocol.messages import (
    BalanceReply,
    BalanceRequest,
    DebitReply,
    DebitRequest,
    PileSession,
    VerificationReply,
    VerificationRequest,
)
from station_runtime.bus import Bus
from station_runtime.deliveries import Delivery
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

    def register(self) -> None:
        self.bus.serve(channels.VERIFICATION, self.on_request, share=SHARE_GROUP)
        self.bus.serve(channels.DEBIT, self.on_debit, share=SHARE_GROUP)
        self.bus.serve(channels.BALANCE, self.on_balance, share=SHARE_GROUP)
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

    async def on_debit(self, delivery: Delivery[DebitRequest]) -> DebitReply:
        """Book a session's debit once, however often billing asks (see ``debits``)."""
        request = delivery.body
        reply = await asyncio.to_thread(self.debiting.debit, request)
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
        return reply

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
