"""The monitoring history: what the console remembers of each pile, for a bounded time.

Writes come from bus handlers, which must not wait on a disk: they are queued
(:class:`HistoryWriter`) and written in batches by one task, in a worker thread. Reads are
plain functions for the routes (FastAPI runs ``def`` routes in its thread pool).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from station_console.models import FaultEntry, LinkSample, SessionEntry, StateChange

log = logging.getLogger("station.console.history")

STATES_SHOWN = 500
"""The newest state changes a pile's history returns (a flapping pile has many)."""
SESSIONS_SHOWN = 200
BATCH = 500
"""Writes folded into one transaction."""

Write = Callable[[Session], None]


# -- what the routes return ------------------------------------------------------------------


class StatePoint(BaseModel):
    at: datetime
    state: str


class LinkPoint(BaseModel):
    at: datetime
    """The start of the bucket."""
    mean: Decimal
    lowest: int


class EnergyDay(BaseModel):
    day: date
    energy_kwh: Decimal
    sessions: int
    revenue: Decimal


class FaultPoint(BaseModel):
    id: str
    code: str
    severity: str
    raised_at: datetime
    cleared_at: datetime | None


class SessionPoint(BaseModel):
    session_id: str
    started_at: datetime
    stopped_at: datetime
    stop_reason: str | None
    energy_kwh: Decimal
    cost: Decimal


class PileHistory(BaseModel):
    since: datetime
    states: list[StatePoint]
    link: list[LinkPoint]
    energy_per_day: list[EnergyDay]
    faults: list[FaultPoint]
    sessions: list[SessionPoint]


class DayTotals(BaseModel):
    day: date
    sessions: int
    energy_kwh: Decimal
    revenue: Decimal
    """Incl. VAT."""


# -- writing ---------------------------------------------------------------------------------


def bucket_of(at: datetime, seconds: float) -> datetime:
    """The start of the link-quality bucket ``at`` falls in (aligned on the epoch)."""
    start = int(at.timestamp() // seconds * seconds)
    return datetime.fromtimestamp(start, tz=at.tzinfo)


def state_changed(pile_id: str, at: datetime, state: str) -> Write:
    def write(session: Session) -> None:
        session.add(StateChange(pile_id=pile_id, at=at, state=state))

    return write


def link_sampled(pile_id: str, bucket: datetime, quality: int) -> Write:
    def write(session: Session) -> None:
        row = session.get(LinkSample, (pile_id, bucket))
        if row is None:
            session.add(
                LinkSample(pile_id=pile_id, bucket=bucket, samples=1, total=quality, lowest=quality)
            )
            session.flush()
            return
        row.samples += 1
        row.total += quality
        row.lowest = min(row.lowest, quality)
        session.add(row)

    return write


def session_completed(entry: SessionEntry) -> Write:
    def write(session: Session) -> None:
        if session.get(SessionEntry, entry.session_id) is None:
            session.add(entry)
            session.flush()

    return write


def fault_raised(entry: FaultEntry) -> Write:
    def write(session: Session) -> None:
        if session.get(FaultEntry, entry.bulletin_id) is None:
            session.add(entry)
            session.flush()

    return write


def fault_cleared(bulletin_id: str, at: datetime) -> Write:
    def write(session: Session) -> None:
        row = session.get(FaultEntry, bulletin_id)
        if row is not None and row.cleared_at is None:
            row.cleared_at = at
            session.add(row)

    return write


def pruned(before: datetime) -> Write:
    def write(session: Session) -> None:
        session.exec(delete(StateChange).where(col(StateChange.at) < before))
        session.exec(delete(LinkSample).where(col(LinkSample.bucket) < before))
        session.exec(delete(SessionEntry).where(col(SessionEntry.stopped_at) < before))
        session.exec(
            delete(FaultEntry).where(
                col(FaultEntry.cleared_at).is_not(None), col(FaultEntry.cleared_at) < before
            )
        )

    return write


@dataclass
class HistoryWriter:
    """One queue of writes, drained in batches by :meth:`run` (a background task)."""

    engine: Engine
    on_written: Callable[[], None] = lambda: None
    """Told after each batch that touched the sessions (the day's totals may have moved)."""
    _queue: asyncio.Queue[tuple[Write, bool]] = field(default_factory=asyncio.Queue)

    def put(self, write: Write, *, totals: bool = False) -> None:
        self._queue.put_nowait((write, totals))

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, [write for write, _ in batch])
            except Exception:
                log.exception("history batch not written", extra={"writes": len(batch)})
            if any(totals for _, totals in batch):
                self.on_written()

    async def drain(self) -> None:
        """Write what is queued now (at stop, and for tests)."""
        pending = []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait()[0])
        if pending:
            await asyncio.to_thread(self._write, pending)

    def _write(self, writes: list[Write]) -> None:
        with Session(self.engine) as session:
            for write in writes:
                write(session)
            session.commit()


# -- reading ---------------------------------------------------------------------------------


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def day_totals(engine: Engine, now: datetime, zone: ZoneInfo) -> DayTotals:
    start = day_start(now, zone)
    with Session(engine) as session:
        rows = session.exec(select(SessionEntry).where(col(SessionEntry.stopped_at) >= start)).all()
    return DayTotals(
        day=start.date(),
        sessions=len(rows),
        energy_kwh=sum((row.energy for row in rows), Decimal(0)),
        revenue=sum((row.cost for row in rows), Decimal(0)),
    )


def pile_history(
    engine: Engine, pile_id: str, now: datetime, days: int, zone: ZoneInfo
) -> PileHistory:
    since = now - timedelta(days=days)
    with Session(engine) as session:
        states = session.exec(
            select(StateChange)
            .where(StateChange.pile_id == pile_id, col(StateChange.at) >= since)
            .order_by(col(StateChange.at).desc())
            .limit(STATES_SHOWN)
        ).all()
        links = session.exec(
            select(LinkSample)
            .where(LinkSample.pile_id == pile_id, col(LinkSample.bucket) >= since)
            .order_by(col(LinkSample.bucket))
        ).all()
        faults = session.exec(
            select(FaultEntry)
            .where(FaultEntry.pile_id == pile_id, col(FaultEntry.raised_at) >= since)
            .order_by(col(FaultEntry.raised_at).desc())
        ).all()
        sessions = session.exec(
            select(SessionEntry)
            .where(SessionEntry.pile_id == pile_id, col(SessionEntry.stopped_at) >= since)
            .order_by(col(SessionEntry.stopped_at).desc())
        ).all()
    return PileHistory(
        since=since,
        states=[StatePoint(at=row.at, state=row.state) for row in reversed(states)],
        link=[
            LinkPoint(
                at=row.bucket,
                mean=(Decimal(row.total) / row.samples).quantize(Decimal("0.1")),
                lowest=row.lowest,
            )
            for row in links
        ],
        energy_per_day=_per_day(sessions, zone),
        faults=[
            FaultPoint(
                id=row.bulletin_id,
                code=row.code,
                severity=row.severity,
                raised_at=row.raised_at,
                cleared_at=row.cleared_at,
            )
            for row in faults
        ],
        sessions=[
            SessionPoint(
                session_id=row.session_id,
                started_at=row.started_at,
                stopped_at=row.stopped_at,
                stop_reason=row.stop_reason,
                energy_kwh=row.energy,
                cost=row.cost,
            )
            for row in sessions[:SESSIONS_SHOWN]
        ],
    )


def _per_day(sessions: Sequence[SessionEntry], zone: ZoneInfo) -> list[EnergyDay]:
    days: dict[date, EnergyDay] = {}
    for row in sessions:
        day = row.stopped_at.astimezone(zone).date()
        known = days.get(day) or EnergyDay(
            day=day, energy_kwh=Decimal(0), sessions=0, revenue=Decimal(0)
        )
        days[day] = EnergyDay(
            day=day,
            energy_kwh=known.energy_kwh + row.energy,
            sessions=known.sessions + 1,
            revenue=known.revenue + row.cost,
        )
    return [days[day] for day in sorted(days)]


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows per table (for the history's size metric and tests of its bound)."""
    with Session(engine) as session:
        return {
            model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
            for model in (StateChange, LinkSample, SessionEntry, FaultEntry)
        }
