"""Bus handlers: verification, debit and balance requests in, replies out; pile sessions in.

Database work runs in a worker thread so that a slow database never stalls the MQTT loop
(and with it the keep-alive that tells the station this service is alive).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from station_protocol.bus import Bus, Incoming
from station_protocol.messages import (
    BalanceRequest,
    DebitRequest,
    PileSession,
    VerificationReply,
    VerificationRequest,
)
from station_protocol.topics import StationTopics, shared
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
        self.bus.add_route(
            shared(SHARE_GROUP, StationTopics.verification_requests()), self.on_request
        )
        self.bus.add_route(shared(SHARE_GROUP, StationTopics.debit_requests()), self.on_debit)
        self.bus.add_route(shared(SHARE_GROUP, StationTopics.balance_requests()), self.on_balance)
        # Not shared: a broker sends no retained messages to a shared subscription, and the
        # retained session of each pile is how a (re)started replica learns what ended while
        # it was away. Applying the same news twice changes nothing.
        self.bus.add_route(StationTopics.pile_sessions(), self.on_pile_session)

    async def on_request(self, incoming: Incoming) -> None:
        try:
            request = VerificationRequest.model_validate_json(incoming.payload)
        except ValidationError as exc:
            self._drop(DropKind.MALFORMED_REQUEST, incoming, error=_first_error(exc))
            return
        ids = {
            "session_id": request.session_id,
            "card_uid": request.card_uid,
            "pile_id": request.pile_id,
        }
        if incoming.response_topic is None:
            # Accepting would lock the card for a session nobody will hear about.
            self._drop(DropKind.NO_RESPONSE_TOPIC, incoming, **ids)
            return
        try:
            verdict = await asyncio.to_thread(self.verifier.verify, request)
        except SessionConflict:
            self._drop(DropKind.SESSION_CONFLICT, incoming, **ids)
            return
        self.metrics.verifications.labels(verdict.result.value).inc()
        log.info(
            "card verified",
            extra={**ids, "result": verdict.result.value, "repeated": verdict.repeated},
        )
        await self.bus.reply(
            incoming,
            VerificationReply(
                session_id=request.session_id,
                card_uid=request.card_uid,
                result=verdict.result,
                balance=None if verdict.balance is None else shown(verdict.balance),
            ),
        )

    async def on_debit(self, incoming: Incoming) -> None:
        """Book a session's debit once, however often billing asks (see ``debits``)."""
        try:
            request = DebitRequest.model_validate_json(incoming.payload)
        except ValidationError as exc:
            self._drop(DropKind.MALFORMED_DEBIT, incoming, error=_first_error(exc))
            return
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
        await self.bus.reply(incoming, reply)

    async def on_balance(self, incoming: Incoming) -> None:
        try:
            request = BalanceRequest.model_validate_json(incoming.payload)
        except ValidationError as exc:
            self._drop(DropKind.MALFORMED_BALANCE, incoming, error=_first_error(exc))
            return
        await self.bus.reply(incoming, await asyncio.to_thread(self.debiting.balance, request))

    async def on_pile_session(self, incoming: Incoming) -> None:
        if not incoming.payload:
            return  # a retained message being cleared
        try:
            session = PileSession.model_validate_json(incoming.payload)
        except ValidationError as exc:
            self._drop(DropKind.MALFORMED_PILE_SESSION, incoming, error=_first_error(exc))
            return
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

    def _drop(self, kind: DropKind, incoming: Incoming, **fields: str) -> None:
        self.metrics.dropped.labels(kind.value).inc()
        log.warning(
            "bus message dropped", extra={"kind": kind.value, "topic": incoming.topic, **fields}
        )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
