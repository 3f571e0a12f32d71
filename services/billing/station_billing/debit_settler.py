"""Settling each record with the card's prepaid ledger: exactly once, whatever fails.

The ledger lives with the cards in verification; billing asks for a session's debit over
the bus (``DebitRequest``, MQTT v5 request/response). The debit is written as pending in
the record's own transaction (see
:meth:`station_billing.session_store.SessionStore.complete`), so a stored record always has
one to settle, and it stays pending until verification answers. Checkout asks once at once
(the receipt shows the balance after it); a background task asks again for every debit
still pending, so a debit survives verification being down, the broker restarting and
billing itself restarting mid-checkout. Verification books a session once however often it
is asked (idempotent by session id), which is what makes retrying safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from station_billing.debit_store import DebitStore
from station_billing.metrics import BillingMetrics
from station_billing.models import DebitStatus
from station_protocol import channels
from station_protocol.messages import DebitReply, DebitRequest, DebitResult
from station_runtime.bus import Bus
from station_runtime.tasks import stop_if_cancelled

log = logging.getLogger("station.billing.debits")

AT_ONCE = 20


@dataclass(frozen=True)
class Settlement:
    """What asking for a debit came to: settled (with the balance after it) or not yet."""

    settled: bool
    balance: Decimal | None = None


@dataclass(frozen=True)
class DebitSettler:
    """Asks verification over the bus for each record's debit until it is answered."""

    bus: Bus
    store: DebitStore
    clock: Callable[[], datetime]
    metrics: BillingMetrics
    timeout: float

    async def settle(self, session_id: str) -> Settlement:
        """Ask verification once for the session's debit, unless it is settled already."""
        row = await asyncio.to_thread(self.store.get, session_id)
        if row is None or row.status == DebitStatus.REFUSED.value:
            return Settlement(False)
        if row.status == DebitStatus.SETTLED.value:
            return Settlement(True, row.balance_after)
        request = DebitRequest(
            session_id=row.session_id, card_uid=row.card_uid, pile_id=row.pile_id, amount=row.amount
        )
        extra = {"session_id": row.session_id, "card_uid": row.card_uid, "pile_id": row.pile_id}
        reply = await self.bus.ask(channels.DEBIT, request, timeout=self.timeout)
        if reply is None:
            # No answer in time, no broker, or an answer that does not read as a DebitReply:
            # the bus has logged which; the debit stays pending and is asked for again.
            self.metrics.debits.labels("unanswered").inc()
            error = f"no reply on {channels.DEBIT.topic()} within {self.timeout} s"
            log.warning("debit not acknowledged yet, will retry", extra={**extra, "error": error})
            await asyncio.to_thread(self.store.failed, session_id, error, self.clock())
            return Settlement(False)
        if reply.settled and not _answers(reply, request):
            # A "booked" that names another session, card or amount is not verification's
            # answer to this request (a stranger raced it, or a stale redelivery): taking it
            # would mark a debit settled that no ledger holds. Ask again later.
            self.metrics.debits.labels("mismatched").inc()
            error = f"reply {reply.result.value} for {reply.session_id} of {reply.amount}"
            log.warning("debit reply does not match the request", extra={**extra, "error": error})
            await asyncio.to_thread(self.store.failed, session_id, error, self.clock())
            return Settlement(False)
        self.metrics.debits.labels(reply.result.value).inc()
        if reply.settled:
            await asyncio.to_thread(self.store.settled, session_id, reply.balance, self.clock())
            log.info(
                "session debited",
                extra={**extra, "amount": str(reply.amount), "result": reply.result.value},
            )
            return Settlement(True, reply.balance)
        error = f"{reply.result.value}: {reply.error or ''}".strip()
        if reply.result is DebitResult.NOT_BILLED:
            # Verification could not get billing's word on the record (billing busy, the
            # broker restarting): not a refusal, the debit stays pending.
            log.warning("debit not booked yet, will retry", extra={**extra, "error": error})
            await asyncio.to_thread(self.store.failed, session_id, error, self.clock())
            return Settlement(False)
        await asyncio.to_thread(self.store.refused, session_id, error, self.clock())
        log.error("debit refused by verification", extra={**extra, "error": error})
        return Settlement(False)

    async def retry_pending(self) -> int:
        """One round over the pending debits; how many were settled."""
        pending = await asyncio.to_thread(self.store.pending)
        settled = 0
        for start in range(0, len(pending), AT_ONCE):
            chunk = pending[start : start + AT_ONCE]
            results = await asyncio.gather(*(self.settle(row.session_id) for row in chunk))
            settled += sum(1 for result in results if result.settled)
        return settled

    async def run(self, interval: float) -> None:
        """Until cancelled: retry every pending debit every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.retry_pending()
            except Exception:
                log.exception("debit retry round failed")
            stop_if_cancelled()


def _answers(reply: DebitReply, request: DebitRequest) -> bool:
    """A settled reply names the request's session and card and the amount it asked for."""
    return (
        reply.session_id == request.session_id
        and reply.card_uid == request.card_uid
        and reply.amount is not None
        and reply.amount == request.amount
    )
