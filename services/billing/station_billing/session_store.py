"""Sessions and charging records in billing's database.

Every write is idempotent by session id, because the bus delivers at least once and a
second billing replica may see the same request: opening twice opens once, completing
twice bills once. The database itself decides the races (a primary key, a partial unique
index, a conditional UPDATE), not a lock in this process.

Blocking SQLAlchemy calls: the bus handlers run them in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_billing.models import ChargingSession, DebitStatus, PendingDebit
from station_billing.session_closing import Closing
from station_billing.tariff_store import StoredTariff
from station_protocol.messages import Receipt, SessionOpenRequest, SessionStatus
from station_runtime.outbox import write_outbox_row


class OpenOutcome(StrEnum):
    OPENED = "opened"
    ALREADY_OPEN = "already_open"
    """The same session was opened before (a redelivered request): nothing changes."""
    ALREADY_COMPLETED = "already_completed"
    PILE_BUSY = "pile_busy"
    """Another session is active on the pile."""
    ID_TAKEN = "id_taken"
    """The session id belongs to a session of another pile or card."""


@dataclass(frozen=True)
class OpenResult:
    outcome: OpenOutcome
    session: ChargingSession
    """The session opened, or the one that stands in the way."""


class CompleteOutcome(StrEnum):
    COMPLETED = "completed"
    ALREADY_COMPLETED = "already_completed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CompleteResult:
    outcome: CompleteOutcome
    session: ChargingSession | None = None


@dataclass(frozen=True)
class SessionFilter:
    pile_id: str | None = None
    card_uid: str | None = None
    status: SessionStatus | None = None
    limit: int = 100


@dataclass(frozen=True)
class SessionStore:
    engine: Engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def get(self, session_id: str) -> ChargingSession | None:
        with self._session() as db:
            return db.get(ChargingSession, session_id)

    def find(self, query: SessionFilter) -> list[ChargingSession]:
        """Newest first."""
        statement = select(ChargingSession)
        if query.pile_id is not None:
            statement = statement.where(col(ChargingSession.pile_id) == query.pile_id)
        if query.card_uid is not None:
            statement = statement.where(col(ChargingSession.card_uid) == query.card_uid)
        if query.status is not None:
            statement = statement.where(col(ChargingSession.status) == query.status.value)
        statement = statement.order_by(
            col(ChargingSession.started_at).desc(), col(ChargingSession.id).desc()
        ).limit(query.limit)
        with self._session() as db:
            return list(db.exec(statement).all())

    def latest_on_pile(self, pile_id: str) -> ChargingSession | None:
        found = self.find(SessionFilter(pile_id=pile_id, limit=1))
        return found[0] if found else None

    def now_on_pile(self, pile_id: str) -> ChargingSession | None:
        """The pile's active session, else the last one that ended there."""
        return self.active_on_pile(pile_id) or self.latest_on_pile(pile_id)

    def active_on_pile(self, pile_id: str) -> ChargingSession | None:
        with self._session() as db:
            return db.exec(
                select(ChargingSession).where(
                    col(ChargingSession.pile_id) == pile_id,
                    col(ChargingSession.status) == SessionStatus.ACTIVE.value,
                )
            ).first()

    def open(
        self, request: SessionOpenRequest, started_at: datetime, tariff: StoredTariff
    ) -> OpenResult:
        """Open the session of ``request`` with ``tariff`` frozen into it."""
        existing = self._blocking(request)
        if existing is not None:
            return existing
        frozen = tariff.tariff
        row = ChargingSession(
            id=request.session_id,
            pile_id=request.pile_id,
            card_uid=request.card_uid,
            status=SessionStatus.ACTIVE.value,
            started_at=started_at,
            meter_start=request.meter_start,
            currency=frozen.currency,
            tariff_id=frozen.id,
            tariff_version=tariff.version,
            tariff=frozen.model_dump_json(),
            balance_at_start=request.balance,
        )
        try:
            with self._session() as db:
                db.add(row)
                db.commit()
        except IntegrityError:
            # Another replica got there between our check and our insert: its row decides.
            raced = self._blocking(request)
            if raced is None:
                raise
            return raced
        return OpenResult(OpenOutcome.OPENED, row)

    def _blocking(self, request: SessionOpenRequest) -> OpenResult | None:
        """What already stands for or against opening ``request``, if anything."""
        with self._session() as db:
            same_id = db.get(ChargingSession, request.session_id)
            if same_id is not None:
                return OpenResult(_outcome_for_same_id(same_id, request), same_id)
            active = db.exec(
                select(ChargingSession).where(
                    col(ChargingSession.pile_id) == request.pile_id,
                    col(ChargingSession.status) == SessionStatus.ACTIVE.value,
                )
            ).first()
        if active is not None:
            return OpenResult(OpenOutcome.PILE_BUSY, active)
        return None

    def complete(self, closing: Closing) -> CompleteResult:
        """Write the record, its receipt, its pending debit and its outbox row in one transaction.

        The conditional UPDATE is what makes a redelivered or raced checkout bill once: the
        second one matches no active row and gets the stored record back instead. The debit
        row is written only by the UPDATE that completed the session, in its transaction,
        so a stored record always has exactly one debit to settle.
        """
        statement = (
            update(ChargingSession)
            .where(
                col(ChargingSession.id) == closing.session_id,
                col(ChargingSession.status) == SessionStatus.ACTIVE.value,
            )
            .values(
                status=SessionStatus.COMPLETED.value,
                stopped_at=closing.stopped_at,
                stop_reason=closing.stop_reason.value,
                meter_stop=closing.meter_stop,
                total_energy=closing.total_energy,
                cost_excl_vat=closing.total_cost.excl_vat,
                cost_incl_vat=closing.total_cost.incl_vat,
                receipt=closing.receipt.model_dump_json(),
                receipt_final=False,
                cdr=closing.cdr,
                anomaly=closing.anomaly.value if closing.anomaly is not None else None,
            )
        )
        with self._session() as db:
            changed = db.exec(statement).rowcount
            if changed:
                db.add(
                    PendingDebit(
                        session_id=closing.session_id,
                        card_uid=closing.receipt.card_uid,
                        pile_id=closing.receipt.pile_id,
                        amount=closing.total_cost.incl_vat,
                        status=DebitStatus.PENDING.value,
                        attempts=0,
                        created_at=closing.stopped_at,
                        updated_at=closing.stopped_at,
                    )
                )
                write_outbox_row(db.connection(), closing.record, stored_at=closing.stopped_at)
            db.commit()
        stored = self.get(closing.session_id)
        if stored is None:
            return CompleteResult(CompleteOutcome.UNKNOWN)
        outcome = CompleteOutcome.COMPLETED if changed else CompleteOutcome.ALREADY_COMPLETED
        return CompleteResult(outcome, stored)

    def finalize_receipt(self, session_id: str, receipt: Receipt) -> ChargingSession | None:
        """Store the receipt as sent, unless another checkout finalized it first; the row."""
        statement = (
            update(ChargingSession)
            .where(
                col(ChargingSession.id) == session_id,
                col(ChargingSession.receipt_final).is_(False),
            )
            .values(receipt=receipt.model_dump_json(), receipt_final=True)
        )
        with self._session() as db:
            db.exec(statement)
            db.commit()
        return self.get(session_id)

    def set_balance(self, session_id: str, balance: Decimal) -> None:
        """The card's balance at the start, learnt after the session opened."""
        statement = (
            update(ChargingSession)
            .where(
                col(ChargingSession.id) == session_id,
                col(ChargingSession.balance_at_start).is_(None),
            )
            .values(balance_at_start=balance)
        )
        with self._session() as db:
            db.exec(statement)
            db.commit()

    def stop_requested(self, session_id: str, at: datetime) -> None:
        statement = (
            update(ChargingSession)
            .where(col(ChargingSession.id) == session_id)
            .values(stop_requested_at=at)
        )
        with self._session() as db:
            db.exec(statement)
            db.commit()


def _outcome_for_same_id(session: ChargingSession, request: SessionOpenRequest) -> OpenOutcome:
    if (session.pile_id, session.card_uid) != (request.pile_id, request.card_uid):
        return OpenOutcome.ID_TAKEN
    if session.status == SessionStatus.ACTIVE.value:
        return OpenOutcome.ALREADY_OPEN
    return OpenOutcome.ALREADY_COMPLETED


def stored_receipt(session: ChargingSession) -> Receipt | None:
    return Receipt.model_validate_json(session.receipt) if session.receipt else None
