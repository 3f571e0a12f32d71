"""The relay loop: due records out of billing's outbox, to central, marked sent on its word.

Order within a batch: read the due rows, send them, and only then mark them; so a crash at
any point leaves a row either unsent (sent again later: central answers ``duplicate``) or
confirmed, never marked without central holding it. Nothing here is kept in memory that
the outbox does not also hold, which is what lets sync be killed and restarted at will.

A batch central answers 401 stays in the outbox like any failed one, and raises
``central_token_rejected`` (the token was rotated at central: an operator must install the
new one); the next batch central accepts clears it. Installing a token wakes the loop
(:meth:`Relay.wake`), so the backlog goes at once rather than after the backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from station_protocol.central import SENT_OUTCOMES, BatchReply, RecordOutcome
from station_runtime.clock import Clock
from station_sync.backoff import Backoff
from station_sync.batches import Batch, Readable, Unreadable, read_rows
from station_sync.central import CentralClient, CentralError, TokenRejected
from station_sync.core.config import Settings
from station_sync.faults import FaultAnnouncer
from station_sync.metrics import RefusedReason, SyncMetrics
from station_sync.outbox import Backlog, Outbox, Position
from station_sync.watch import CentralWatch

log = logging.getLogger("station.sync.relay")

SHORTEST_WAIT = 0.01
IN_FLIGHT = 2
"""Batches on their way to central at once: enough to keep central and its database busy."""
CONFLICT_ERROR = "conflict: central holds another record under this id"
UNANSWERED_ERROR = "central's answer did not name this record"


class Pace(StrEnum):
    """What the loop does after a step."""

    IDLE = "idle"
    """Nothing more is due: wait for the next record to come due."""
    RETRY = "retry"
    """The step failed: back off, then try the same records again."""


T = TypeVar("T")


def _start(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task whose failure, if nobody awaits it any more, is not reported as unhandled."""
    task = asyncio.create_task(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


@dataclass
class Relay:
    settings: Settings
    outbox: Outbox
    central: CentralClient
    metrics: SyncMetrics
    watch: CentralWatch
    announcer: FaultAnnouncer
    token_announcer: FaultAnnouncer
    """``central_token_rejected``: raised on a 401, cleared when a batch is accepted."""
    clock: Clock
    backlog: Backlog | None = None
    """The backlog as last counted."""
    last_sent_at: datetime | None = None
    _counted_at: float = field(default=float("-inf"))
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def t2(self) -> timedelta:
        return timedelta(seconds=self.settings.t2)

    async def run(self) -> None:
        backoff = Backoff(self.settings.retry_min, self.settings.retry_max)
        while True:
            pace = await self.step()
            await self.count(force=True)
            if pace is Pace.RETRY:
                if await self._rest(backoff.delay()):
                    backoff.reset()
                continue
            backoff.reset()
            await self._rest(self.idle_wait())

    def wake(self) -> None:
        """Try again now (a new token was installed): ends the current wait or backoff."""
        self._woken.set()

    async def _rest(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until woken; True if woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        woken = self._woken.is_set()
        self._woken.clear()
        return woken

    async def step(self) -> Pace:
        """One pass; whatever goes wrong, the loop backs off and tries again, never dies."""
        try:
            return await self._pass()
        except SQLAlchemyError as exc:
            self.metrics.database_errors.inc()
            log.warning("outbox not reachable", extra={"error": str(exc).splitlines()[0]})
        except Exception:
            self.metrics.relay_errors.inc()
            log.exception("relay pass failed")
        return Pace.RETRY

    async def _pass(self) -> Pace:
        """Send what is due now, batch after batch, until less than a full batch is left.

        Pipelined: the next batch is read while earlier ones are on their way, and up to
        ``IN_FLIGHT`` batches travel at once (central stores one while it parses the next).
        Each batch is marked sent only after central answered for it, so the order that
        makes a crash harmless holds for every batch.
        """
        cutoff = self.clock() - self.t2
        reading = _start(self._read(cutoff, None))
        travelling: list[asyncio.Task[bool]] = []
        try:
            while True:
                batch = await reading
                full = len(batch.rows) == self.settings.batch_size
                if full:
                    reading = _start(self._read(cutoff, batch.after))
                if batch.unreadable:
                    await self._set_aside_unreadable(batch.unreadable)
                if batch.readable:
                    if len(travelling) >= IN_FLIGHT and not await travelling.pop(0):
                        return Pace.RETRY
                    travelling.append(_start(self._deliver(batch.readable)))
                if not full:
                    break
                await self.count(force=False)
            delivered = [await task for task in travelling]
            travelling.clear()
            return Pace.IDLE if all(delivered) else Pace.RETRY
        except asyncio.CancelledError:
            # Shutting down: batches still travelling stay unmarked and go again next time.
            for task in travelling:
                task.cancel()
            raise
        finally:
            if not reading.done():
                reading.cancel()
            for task in travelling:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _deliver(self, batch: list[Readable]) -> bool:
        """Send one batch and settle it; False if it did not get through."""
        try:
            reply = await self.central.send([item.row.payload for item in batch])
        except TokenRejected as exc:
            self._token_rejected(str(exc))
            await self._failed(batch, str(exc))
            return False
        except CentralError as exc:
            await self._failed(batch, str(exc))
            return False
        await self._settle(batch, reply)
        return True

    def _token_rejected(self, error: str) -> None:
        now = self.clock()
        detail = {
            "station_id": self.settings.station_id,
            "central": self.settings.central_url,
            "token_source": self.central.token.source.value,
            "token_file": str(self.central.token.path),
            "last_error": error[:200],
        }
        self.token_announcer.want(True, now, now, detail)

    async def _read(self, cutoff: datetime, after: Position | None) -> Batch:
        rows = await asyncio.to_thread(self.outbox.due, cutoff, self.settings.batch_size, after)
        readable, unreadable = await asyncio.to_thread(read_rows, rows, self.settings.station_id)
        return Batch(rows, readable, unreadable)

    async def _failed(self, batch: list[Readable], error: str) -> None:
        self.metrics.send_failures.inc()
        self.metrics.central_up.set(0)
        self.watch.failed(self.clock(), error)
        log.warning(
            "batch not sent; retrying with backoff", extra={"records": len(batch), "error": error}
        )
        await asyncio.to_thread(self.outbox.mark_failed, [item.row.id for item in batch], error)

    async def _settle(self, batch: list[Readable], reply: BatchReply) -> None:
        """Mark what central holds as sent; set conflicts aside; leave the rest due."""
        outcomes = {result.record_id: result.outcome for result in reply.results}
        sent = [item for item in batch if outcomes.get(item.row.record_id) in SENT_OUTCOMES]
        conflicts = [
            item for item in batch if outcomes.get(item.row.record_id) is RecordOutcome.CONFLICT
        ]
        unanswered = [item for item in batch if item.row.record_id not in outcomes]
        now = self.clock()
        await asyncio.to_thread(self.outbox.mark_sent, [item.row.id for item in sent], now)
        self.metrics.sent.inc(len(sent))
        self.metrics.central_up.set(1)
        self.watch.succeeded()
        self.last_sent_at = now
        self.token_announcer.want(False, now, now, {"station_id": self.settings.station_id})
        log.info("records sent", extra={"records": len(sent), "conflicts": len(conflicts)})
        if conflicts:
            await self._set_aside_conflicts(conflicts)
        if unanswered:
            ids = [item.row.id for item in unanswered]
            await asyncio.to_thread(self.outbox.mark_failed, ids, UNANSWERED_ERROR)

    async def _set_aside_conflicts(self, conflicts: list[Readable]) -> None:
        ids = [item.row.id for item in conflicts]
        await asyncio.to_thread(self.outbox.mark_refused, ids, CONFLICT_ERROR, self.clock())
        self.metrics.refused.labels(RefusedReason.CONFLICT.value).inc(len(conflicts))
        for item in conflicts:
            log.error(
                "central refused a record: it holds another one under the same id",
                extra={
                    "record_id": item.record.record_id,
                    "session_id": item.record.session_id,
                    "pile_id": item.record.pile_id,
                    "card_uid": item.record.card_uid,
                },
            )

    async def _set_aside_unreadable(self, unreadable: list[Unreadable]) -> None:
        now = self.clock()
        for item in unreadable:
            await asyncio.to_thread(self.outbox.mark_refused, [item.row.id], item.reason, now)
            log.error(
                "outbox row set aside: it cannot be sent",
                extra={"record_id": item.row.record_id, "reason": item.reason},
            )
        self.metrics.refused.labels(RefusedReason.UNREADABLE.value).inc(len(unreadable))

    async def count(self, *, force: bool) -> None:
        """Recount the backlog (at most every ``stats_interval`` while records flow)."""
        if not force and time.monotonic() - self._counted_at < self.settings.stats_interval:
            return
        now = self.clock()
        try:
            backlog = await asyncio.to_thread(self.outbox.backlog, now, now - self.t2)
        except SQLAlchemyError as exc:
            self.metrics.database_errors.inc()
            log.warning("outbox not countable", extra={"error": str(exc).splitlines()[0]})
            return
        self._counted_at = time.monotonic()
        self.backlog = backlog
        self.metrics.show(backlog)
        self._decide_fault(now, backlog)

    def _decide_fault(self, now: datetime, backlog: Backlog) -> None:
        decision = self.watch.fault(now, backlog.overdue)
        if decision is None:
            return
        detail = {
            "station_id": self.settings.station_id,
            "central": self.settings.central_url,
            "backlog": str(backlog.unsent),
            "overdue": str(backlog.overdue),
            "oldest_unsent_age_seconds": f"{backlog.oldest_age:.0f}",
            "unreachable_seconds": f"{self.watch.unreachable_for(now):.0f}",
        }
        if self.watch.last_error:
            detail["last_error"] = self.watch.last_error[:200]
        self.announcer.want(decision, now, self.watch.failing_since or now, detail)

    def idle_wait(self) -> float:
        """Until the oldest waiting record comes due, but never longer than ``poll_interval``."""
        backlog = self.backlog
        poll = self.settings.poll_interval
        if backlog is None or backlog.oldest_stored_at is None:
            return poll
        if backlog.overdue:
            return SHORTEST_WAIT
        due_in = (backlog.oldest_stored_at + self.t2 - self.clock()).total_seconds()
        return min(max(due_in, SHORTEST_WAIT), poll)
