"""Each record's debit in billing's database: pending until verification books it.

The row is written in the record's own transaction (see
:meth:`station_billing.session_store.SessionStore.complete`), so a stored record always
has one debit to settle; :mod:`station_billing.debit_settler` asks verification for it
and writes the answer here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from station_billing.models import DebitStatus, PendingDebit

BATCH = 100


@dataclass(frozen=True)
class DebitStore:
    """The records' debits in billing's database (blocking calls)."""

    engine: Engine

    def get(self, session_id: str) -> PendingDebit | None:
        with Session(self.engine) as db:
            return db.get(PendingDebit, session_id)

    def pending(self, limit: int = BATCH) -> list[PendingDebit]:
        with Session(self.engine) as db:
            return list(
                db.exec(
                    select(PendingDebit)
                    .where(col(PendingDebit.status) == DebitStatus.PENDING.value)
                    .order_by(col(PendingDebit.created_at))
                    .limit(limit)
                ).all()
            )

    def all(self) -> list[PendingDebit]:
        with Session(self.engine) as db:
            return list(db.exec(select(PendingDebit).order_by(col(PendingDebit.created_at))).all())

    def _set(self, session_id: str, **values: object) -> None:
        with Session(self.engine) as db:
            db.exec(
                update(PendingDebit)
                .where(
                    col(PendingDebit.session_id) == session_id,
                    col(PendingDebit.status) == DebitStatus.PENDING.value,
                )
                .values(**values)
            )
            db.commit()

    def settled(self, session_id: str, balance: Decimal | None, now: datetime) -> None:
        self._set(
            session_id,
            status=DebitStatus.SETTLED.value,
            balance_after=balance,
            updated_at=now,
            attempts=PendingDebit.attempts + 1,
        )

    def refused(self, session_id: str, error: str, now: datetime) -> None:
        self._set(
            session_id,
            status=DebitStatus.REFUSED.value,
            last_error=error,
            updated_at=now,
            attempts=PendingDebit.attempts + 1,
        )

    def failed(self, session_id: str, error: str, now: datetime) -> None:
        self._set(
            session_id,
            last_error=error,
            updated_at=now,
            attempts=PendingDebit.attempts + 1,
        )
