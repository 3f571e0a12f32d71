"""Billing's outbox as the relay sees it: rows due, and the relay's own columns.

Sync reads the table through its protocol definition and writes only ``sent_at``,
``attempts``, ``last_error`` and ``refused_at``. Every call is one short transaction (a
read, or one UPDATE by primary key), because billing writes to the same SQLite file: a
long write transaction here would make billing's checkout wait.

Blocking SQLAlchemy calls: the relay runs them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select, text, tuple_, update

from station_runtime.outbox import REFUSED, UNSENT, billing_outbox

ERROR_TEXT_LIMIT = 500


Position = tuple[datetime, int]
"""``(stored_at, id)`` of a row: the order rows are sent in."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    record_id: str
    stored_at: datetime
    payload: str
    attempts: int


@dataclass(frozen=True)
class Backlog:
    """What is still to be sent, as of ``at``."""

    at: datetime
    unsent: int
    """Rows not yet confirmed by central (refused ones excluded)."""
    overdue: int
    """Of those, rows stored at least T2 ago: due now."""
    oldest_stored_at: datetime | None
    refused: int
    """Rows central refused for good (conflicts, unreadable payloads): an operator's job."""

    @property
    def oldest_age(self) -> float:
        """Seconds the oldest unsent record has waited since it was stored (0 if none)."""
        if self.oldest_stored_at is None:
            return 0.0
        return max(0.0, (self.at - self.oldest_stored_at).total_seconds())


@dataclass(frozen=True)
class Outbox:
    engine: Engine

    def readable(self) -> bool:
        """The table is there (billing has created it) and answers."""
        with self.engine.connect() as connection:
            connection.execute(select(billing_outbox.c.id).limit(1)).all()
        return True

    def due(self, cutoff: datetime, limit: int, after: Position | None = None) -> list[OutboxRow]:
        """Unsent rows stored at or before ``cutoff``, oldest first (after ``after``, if given)."""
        table = billing_outbox
        statement = (
            select(
                table.c.id, table.c.record_id, table.c.stored_at, table.c.payload, table.c.attempts
            )
            .where(text(UNSENT), table.c.stored_at <= cutoff)
            .order_by(table.c.stored_at, table.c.id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(tuple_(table.c.stored_at, table.c.id) > tuple_(*after))
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [OutboxRow(*row) for row in rows]

    def mark_sent(self, ids: Sequence[int], at: datetime) -> None:
        """Central holds these records now (stored, or it had them already)."""
        self._update(ids, sent_at=at, last_error=None)

    def mark_failed(self, ids: Sequence[int], error: str) -> None:
        """One more attempt that did not get through; the rows stay due."""
        self._update(
            ids,
            attempts=billing_outbox.c.attempts + 1,
            last_error=error[:ERROR_TEXT_LIMIT],
        )

    def mark_refused(self, ids: Sequence[int], error: str, at: datetime) -> None:
        """Never to be sent again as they are: kept, counted, explained in ``last_error``."""
        self._update(
            ids,
            attempts=billing_outbox.c.attempts + 1,
            last_error=error[:ERROR_TEXT_LIMIT],
            refused_at=at,
        )

    def _update(self, ids: Sequence[int], **values: object) -> None:
        if not ids:
            return
        statement = update(billing_outbox).where(billing_outbox.c.id.in_(list(ids)))
        with self.engine.begin() as connection:
            connection.execute(statement.values(**values))

    def backlog(self, now: datetime, cutoff: datetime) -> Backlog:
        table = billing_outbox
        overdue = func.coalesce(func.sum(case((table.c.stored_at <= cutoff, 1), else_=0)), 0)
        unsent = select(func.count(), overdue, func.min(table.c.stored_at)).where(text(UNSENT))
        refused = select(func.count()).select_from(table).where(text(REFUSED))
        with self.engine.connect() as connection:
            count, due, oldest = connection.execute(unsent).one()
            refused_count = connection.execute(refused).scalar_one()
        return Backlog(
            at=now,
            unsent=int(count),
            overdue=int(due),
            oldest_stored_at=oldest,
            refused=int(refused_count),
        )
