"""Which tariff is in effect on a pile at an instant.

A tariff is assigned to the station, to a charger or to a pile, each assignment with an
optional validity window (``valid_from`` inclusive, ``valid_until`` exclusive). On a pile,
the most specific assignment valid at that instant wins: the pile's own over its
charger's over the station's. Among assignments equally specific and valid at once, the
one that became valid last wins (then the one made last), so an operator can schedule a
new price over a standing one without ending it first. An assignment whose tariff is itself
not valid at that instant (its OCPI ``start_date_time``/``end_date_time``) is passed over.
Where nothing applies, the station's configured default tariff does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from station_billing.models import SPECIFICITY, AssignmentScope, TariffAssignment
from station_billing.tariffs import StoredTariff, TariffBook
from station_protocol.ids import charger_of
from station_protocol.ocpi import Tariff

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Resolution:
    """The tariff in effect and the assignment that put it there (``None``: the default)."""

    stored: StoredTariff
    assignment: TariffAssignment | None


def tariff_valid(tariff: Tariff, at: datetime) -> bool:
    if tariff.start_date_time is not None and at < tariff.start_date_time:
        return False
    return tariff.end_date_time is None or at < tariff.end_date_time


@dataclass(frozen=True)
class AssignmentBook:
    engine: Engine
    tariffs: TariffBook

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

    def resolve(self, pile_id: str, at: datetime) -> Resolution | None:
        """The assigned tariff in effect, or ``None`` when the default applies."""
        for assignment in self.candidates(pile_id, at):
            stored = self.tariffs.latest(assignment.tariff_id)
            if stored is not None and tariff_valid(stored.tariff, at):
                return Resolution(stored, assignment)
        return None

    def edges_after(self, at: datetime) -> list[datetime]:
        """Future instants where some assignment starts or ends (the displays change then)."""
        edges = []
        for row in self.all():
            edges += [edge for edge in (row.valid_from, row.valid_until) if edge and edge > at]
        for stored in self.tariffs.all_latest():
            tariff = stored.tariff
            edges += [
                edge
                for edge in (tariff.start_date_time, tariff.end_date_time)
                if edge is not None and edge > at
            ]
        return edges


def _precedence(row: TariffAssignment) -> tuple[int, datetime, datetime, int]:
    scope = AssignmentScope(row.scope)
    return (
        SPECIFICITY[scope],
        row.valid_from or NEVER,
        row.created_at,
        row.id or 0,
    )


@dataclass(frozen=True)
class TariffsInEffect:
    """The tariff a session opening on a pile at an instant freezes: assigned, or default."""

    assignments: AssignmentBook
    default: StoredTariff

    def on(self, pile_id: str, at: datetime) -> StoredTariff:
        resolved = self.assignments.resolve(pile_id, at)
        return resolved.stored if resolved is not None else self.default

    def resolution(self, pile_id: str, at: datetime) -> Resolution:
        resolved = self.assignments.resolve(pile_id, at)
        return resolved if resolved is not None else Resolution(self.default, None)
