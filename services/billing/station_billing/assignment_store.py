"""Tariff assignments in billing's database: which tariff is put on the station, a charger
or a pile, each with an optional validity window (``valid_from`` inclusive, ``valid_until``
exclusive). Which of them wins on a pile is :mod:`station_billing.tariff_in_effect`'s part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from station_billing.models import SPECIFICITY, AssignmentScope, TariffAssignment
from station_protocol.ids import charger_of

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AssignmentStore:
    """The tariff assignments (blocking calls: run in a worker thread or the API's pool)."""

    engine: Engine

    def add(self, assignment: TariffAssignment) -> TariffAssignment:
        with Session(self.engine, expire_on_commit=False) as db:
            db.add(assignment)
            db.commit()
            db.refresh(assignment)
        return assignment

    def all(self) -> list[TariffAssignment]:
        with Session(self.engine) as db:
            return list(db.exec(select(TariffAssignment).order_by(col(TariffAssignment.id))).all())

    def get(self, assignment_id: int) -> TariffAssignment | None:
        with Session(self.engine) as db:
            return db.get(TariffAssignment, assignment_id)

    def remove(self, assignment_id: int) -> bool:
        with Session(self.engine) as db:
            row = db.get(TariffAssignment, assignment_id)
            if row is None:
                return False
            db.delete(row)
            db.commit()
        return True

    def candidates(self, pile_id: str, at: datetime) -> list[TariffAssignment]:
        """The assignments valid on ``pile_id`` at ``at``, the winner first."""
        targets = [
            (AssignmentScope.PILE.value, pile_id),
            (AssignmentScope.CHARGER.value, charger_of(pile_id)),
            (AssignmentScope.STATION.value, ""),
        ]
        with Session(self.engine) as db:
            rows = db.exec(
                select(TariffAssignment).where(
                    or_(
                        *(
                            (col(TariffAssignment.scope) == scope)
                            & (col(TariffAssignment.target) == target)
                            for scope, target in targets
                        )
                    ),
                    or_(
                        col(TariffAssignment.valid_from).is_(None),
                        col(TariffAssignment.valid_from) <= at,
                    ),
                    or_(
                        col(TariffAssignment.valid_until).is_(None),
                        col(TariffAssignment.valid_until) > at,
                    ),
                )
            ).all()
        return sorted(rows, key=_precedence, reverse=True)


def _precedence(row: TariffAssignment) -> tuple[int, datetime, datetime, int]:
    scope = AssignmentScope(row.scope)
    return (
        SPECIFICITY[scope],
        row.valid_from or NEVER,
        row.created_at,
        row.id or 0,
    )
