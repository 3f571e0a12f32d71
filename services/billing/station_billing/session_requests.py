"""Billing on the bus: session open and checkout requests from the collectors.

Both are consumed through a shared subscription, so replicas split the work, and both are
idempotent by session id, so a redelivered request changes nothing and gets the same
answer. Order within a request: store, then reply, then publish the pile's retained
session state, so that nobody learns of a session or a receipt the database does not hold.

A checkout that completes a session asks verification for the debit before it replies, so
the receipt can say the balance after it; that round trip runs in a task of its own (a bus
handler never awaits a reply itself: the replies are read by the same loop). A checkout of
a session whose receipt is final is answered at once, in order, with the stored receipt.

Requests arrive decoded by their channel (the bus drops and counts what cannot be read).
Billing answers them itself (``Bus.answer``) rather than by returning the
reply to the bus: the pile's retained session must follow the answer, and a checkout's
answer may wait for the debit in a task of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime

from station_billing.billable_piles import BillablePiles
from station_billing.compiled_tariffs import CompiledTariffs
from station_billing.core.config import Settings
from station_billing.debit_settler import DebitSettler
from station_billing.meter_feed import MeterFeed
from station_billing.metrics import BillingMetrics
from station_billing.models import ChargingSession
from station_billing.pricing.localtime import StationZone
from station_billing.receipts import with_balance
from station_billing.sample_store import SampleStore
from station_billing.session_closing import Meter, close_session, unattended_reading
from station_billing.session_store import (
    CompleteOutcome,
    OpenOutcome,
    OpenResult,
    SessionStore,
    stored_receipt,
)
from station_billing.tariff_in_effect import TariffsInEffect
from station_protocol import channels
from station_protocol.messages import (
    BalanceRequest,
    CheckoutReply,
    CheckoutRequest,
    PileSession,
    SessionAnswer,
    SessionOpenReply,
    SessionOpenRequest,
    SessionQuery,
    SessionStatus,
    StopReason,
)
from station_protocol.ocpi import Price
from station_runtime.bus import Bus
from station_runtime.clock import Clock
from station_runtime.deliveries import Delivery
from station_runtime.tasks import RoundTrips

log = logging.getLogger("station.billing.handlers")


SHARE_GROUP = "billing"
UNKNOWN_SESSION = "unknown session"
IMPLAUSIBLE_START = "meter_start is not the pile's meter reading"
UNKNOWN_PILE = "no such pile at this station"

OPEN_ERRORS = {
    OpenOutcome.PILE_BUSY: "pile {pile_id} already has an active session",
    OpenOutcome.ALREADY_COMPLETED: "session {session_id} is already completed",
    OpenOutcome.ID_TAKEN: "session id {session_id} is already used on another pile or card",
}


@dataclass
class SessionRequests:
    """The collectors' session open and checkout requests, answered."""

    bus: Bus
    sessions: SessionStore
    in_effect: TariffsInEffect
    """The tariff new sessions open with (each session keeps its own frozen copy)."""
    samples: SampleStore
    compiled: CompiledTariffs
    settler: DebitSettler
    meters: MeterFeed
    metrics: BillingMetrics
    clock: Clock
    zone: StationZone
    settings: Settings
    billable: BillablePiles
    """The piles a session may open on; a checkout is answered on any pile."""
    _trips: RoundTrips = field(default_factory=lambda: RoundTrips("billing"))

    def register(self) -> None:
        self.bus.serve(channels.SESSION_OPEN, self.on_session_open, share=SHARE_GROUP)
        self.bus.serve(channels.CHECKOUT, self.on_checkout, share=SHARE_GROUP)
        self.bus.serve(channels.SESSION_QUERY, self.on_session_query, share=SHARE_GROUP)

    async def on_session_query(self, delivery: Delivery[SessionQuery]) -> SessionAnswer:
        """Billing's word on a session: by id, or the pile's active one else its last one."""
        query = delivery.body
        if query.session_id is not None:
            session = await asyncio.to_thread(self.sessions.get, query.session_id)
        else:
            assert query.pile_id is not None
            session = await asyncio.to_thread(self.sessions.now_on_pile, query.pile_id)
        return SessionAnswer(session=pile_session(session) if session is not None else None)

    async def close(self) -> None:
        """Cancel the round trips still running (the service is stopping)."""
        await self._trips.close()

    async def on_session_open(self, delivery: Delivery[SessionOpenRequest]) -> None:
        request = delivery.body
        now = self.clock()
        refusal = await self._refusal(request, now)
        if refusal is not None:
            reply = SessionOpenReply(session_id=request.session_id, opened=False, error=refusal)
            await self.bus.answer(channels.SESSION_OPEN, delivery, reply)
            return
        tariff = await asyncio.to_thread(self.in_effect.on, request.pile_id, now)
        result = await asyncio.to_thread(self.sessions.open, request, now, tariff)
        extra = _ids(request.session_id, request.pile_id, request.card_uid)
        if result.outcome is OpenOutcome.OPENED:
            self.meters.opened(request.pile_id, request.meter_start, now)
            self.metrics.sessions_opened.inc()
            log.info(
                "session opened",
                extra={
                    **extra,
                    "meter_start": str(request.meter_start),
                    "tariff_id": tariff.tariff.id,
                    "tariff_version": tariff.version,
                },
            )
            if request.balance is None:
                self._trips.spawn(self._learn_balance(request))
        elif result.outcome is not OpenOutcome.ALREADY_OPEN:
            log.warning("session not opened", extra={**extra, "reason": result.outcome.value})
        await self.bus.answer(channels.SESSION_OPEN, delivery, _open_reply(request, result))
        if result.outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN):
            # Published again on a redelivery too: the first publish may have been lost.
            await self._publish_pile_session(result.session)
        await self.meters.remember_pile(request.pile_id)

    async def _refusal(self, request: SessionOpenRequest, now: datetime) -> str | None:
        """Why an opening cannot be true (a pile the station does not have, a meter reading
        that is not the pile's), or ``None``."""
        if not self.billable.accepts(request.pile_id):
            self.metrics.sessions_refused.labels("unknown_pile").inc()
            log.warning(
                "session not opened: no such pile at this station",
                extra=_ids(request.session_id, request.pile_id, request.card_uid),
            )
            return UNKNOWN_PILE
        if not await self._plausible_opening(request, now):
            return IMPLAUSIBLE_START
        return None

    async def _plausible_opening(self, request: SessionOpenRequest, now: datetime) -> bool:
        """A new session opens at the pile's meter as billing last believed it, no lower and
        no further on than the pile could have counted since (a redelivered open of a
        stored session is answered as before, whatever the meter has done since)."""
        if self.meters.plausible_start(request.pile_id, request.meter_start, now):
            return True
        if await asyncio.to_thread(self.sessions.get, request.session_id) is not None:
            return True
        self.metrics.sessions_refused.labels("implausible_meter_start").inc()
        log.warning(
            "session not opened: its opening reading is not the pile's meter",
            extra={
                **_ids(request.session_id, request.pile_id, request.card_uid),
                "meter_start": str(request.meter_start),
            },
        )
        return False

    async def _learn_balance(self, request: SessionOpenRequest) -> None:
        """The open did not carry the card's balance: ask verification for it."""
        ask = BalanceRequest(card_uid=request.card_uid, session_id=request.session_id)
        extra = _ids(request.session_id, request.pile_id, request.card_uid)
        reply = await self.bus.ask(channels.BALANCE, ask, timeout=self.settings.balance_timeout)
        if reply is None:
            log.warning("card balance unknown: the running cost is not watched", extra=extra)
            return
        if reply.known and reply.balance is not None:
            await asyncio.to_thread(self.sessions.set_balance, request.session_id, reply.balance)

    async def on_checkout(self, delivery: Delivery[CheckoutRequest]) -> None:
        request = delivery.body
        session = await asyncio.to_thread(self.sessions.get, request.session_id)
        if session is not None and session.status == SessionStatus.ACTIVE.value:
            session = await self._complete(session, request)
        if session is None:
            log.warning(
                "checkout for an unknown session",
                extra=_ids(request.session_id, request.pile_id, None),
            )
            reply = CheckoutReply(session_id=request.session_id, ok=False, error=UNKNOWN_SESSION)
            await self.bus.answer(channels.CHECKOUT, delivery, reply)
            return
        if session.receipt_final:
            await self._reply_receipt(delivery, session)
        else:
            self._trips.spawn(self._settle_and_reply(delivery, session.id))

    async def close_unattended(self, session_id: str, reason: StopReason) -> ChargingSession | None:
        """End an active session without its collector (an operator stop nobody carried out:
        the collector is away, or its pile silent), so that an operator stop always ends it.

        Priced at the last reading billing believed and flagged ``closed_without_pile``; its
        debit asked as any checkout's; the pile's retained session then says completed, so
        the collector stops the pile now or when it is back (it follows billing's word).
        A session already closed (by its collector meanwhile) is returned as it is.
        """
        session = await asyncio.to_thread(self.sessions.get, session_id)
        if session is None or session.status != SessionStatus.ACTIVE.value:
            return session
        meter = await self._meter(session)
        request = CheckoutRequest(
            session_id=session.id,
            pile_id=session.pile_id,
            meter_stop=unattended_reading(session, meter),
            stop_reason=reason,
        )
        closed = await self._complete(session, request, meter, unattended=True)
        if closed is None:
            return None
        settled = await self._settle(closed.id) if not closed.receipt_final else closed
        final = settled or closed
        await self._publish_if_latest(final)
        return final

    async def _meter(self, session: ChargingSession) -> Meter:
        samples = await asyncio.to_thread(self.samples.of, session.id)
        return Meter(
            samples=samples,
            latest=self.meters.latest(session.id),
            rated_power=self.settings.rated_powers().of(session.pile_id),
        )

    async def _complete(
        self,
        session: ChargingSession,
        request: CheckoutRequest,
        meter: Meter | None = None,
        *,
        unattended: bool = False,
    ) -> ChargingSession | None:
        """Price and store the record; the stored row (this one's or a racing replica's)."""
        if session.pile_id != request.pile_id:
            log.warning(
                "checkout names another pile than the session's; billing the session's",
                extra={**_extra(session), "request_pile_id": request.pile_id},
            )
        if meter is None:
            meter = await self._meter(session)
        compiled = self.compiled.of_session(session)
        closing = await asyncio.to_thread(
            functools.partial(
                close_session,
                session,
                request,
                self.clock(),
                self.settings.station_id,
                meter,
                compiled,
                self.zone,
                unattended=unattended,
            )
        )
        result = await asyncio.to_thread(self.sessions.complete, closing)
        self.meters.forget(session.id)
        if result.outcome is CompleteOutcome.COMPLETED:
            self.metrics.sessions_completed.inc()
            log.info(
                "session completed",
                extra={
                    **_extra(session),
                    "total_energy": str(closing.total_energy),
                    "total_cost": str(closing.total_cost.incl_vat),
                    "anomaly": closing.anomaly,
                },
            )
        return result.session

    async def _settle_and_reply(self, delivery: Delivery[CheckoutRequest], session_id: str) -> None:
        """Ask for the debit, put the balance on the receipt, make it final, answer."""
        session = await self._settle(session_id)
        if session is not None:
            await self._reply_receipt(delivery, session)

    async def _settle(self, session_id: str) -> ChargingSession | None:
        """Ask for the debit and make the receipt final with the balance after it."""
        settlement = await self.settler.settle(session_id)
        session = await asyncio.to_thread(self.sessions.get, session_id)
        receipt = stored_receipt(session) if session is not None else None
        if session is None or receipt is None:
            return None
        final = with_balance(receipt, settlement.balance if settlement.settled else None)
        stored = await asyncio.to_thread(self.sessions.finalize_receipt, session_id, final)
        return stored or session

    async def _reply_receipt(
        self, delivery: Delivery[CheckoutRequest], session: ChargingSession
    ) -> None:
        """Send the stored receipt: the same bytes however often the checkout comes."""
        receipt = stored_receipt(session)
        reply = CheckoutReply(session_id=session.id, ok=receipt is not None, receipt=receipt)
        await self.bus.answer(channels.CHECKOUT, delivery, reply)
        await self._publish_if_latest(session)

    async def _publish_if_latest(self, session: ChargingSession) -> None:
        latest = await asyncio.to_thread(self.sessions.latest_on_pile, session.pile_id)
        if latest is not None and latest.id == session.id:
            # Never over a newer session on the same pile: the retained state is the pile's now.
            await self._publish_pile_session(session)

    async def _publish_pile_session(self, session: ChargingSession) -> None:
        await self.bus.send(channels.PILE_SESSION, pile_session(session), pile=session.pile_id)


def pile_session(session: ChargingSession) -> PileSession:
    return PileSession(
        session_id=session.id,
        pile_id=session.pile_id,
        card_uid=session.card_uid,
        status=SessionStatus(session.status),
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        stop_reason=StopReason(session.stop_reason) if session.stop_reason else None,
        total_cost=(
            Price(excl_vat=session.cost_excl_vat, incl_vat=session.cost_incl_vat)
            if session.cost_excl_vat is not None and session.cost_incl_vat is not None
            else None
        ),
        total_energy=session.total_energy,
    )


def _open_reply(request: SessionOpenRequest, result: OpenResult) -> SessionOpenReply:
    if result.outcome in (OpenOutcome.OPENED, OpenOutcome.ALREADY_OPEN):
        return SessionOpenReply(session_id=request.session_id, opened=True)
    error = OPEN_ERRORS[result.outcome].format(
        pile_id=request.pile_id, session_id=request.session_id
    )
    return SessionOpenReply(session_id=request.session_id, opened=False, error=error)


def _ids(session_id: str, pile_id: str, card_uid: str | None) -> dict[str, str | None]:
    return {"session_id": session_id, "pile_id": pile_id, "card_uid": card_uid}


def _extra(session: ChargingSession) -> dict[str, str | None]:
    return _ids(session.id, session.pile_id, session.card_uid)
