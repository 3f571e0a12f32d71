"""Which tariff is in effect on a pile at an instant: the choice among the stored assignments.

A tariff is assigned to the station, to a charger or to a pile, each assignment with an
optional validity window (``valid_from`` inclusive, ``valid_until`` exclusive). On a pile,
the most specific assignment valid at that instant wins: the pile's own over its
charger's over the station's. Among assignments equally specific and valid at once, the
one that became valid last wins (then the one made last), so an operator can schedule a
new price over a standing one without ending it first. An assignment whose tariff is itself
not valid at that instant (its OCPI ``start_date_time``/``end_date_time``) is passed over.
Where nothing applies, the station's configured default tariff does.

The stores are read with blocking calls: run these in a worker thread or the API's pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from station_billing.assignment_store import AssignmentStore
from station_billing.models import TariffAssignment
from station_billing.tariff_store import StoredTariff, TariffStore
from station_protocol.ocpi import Tariff


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
class TariffsInEffect:
    """The tariff a session opening on a pile at an instant freezes: assigned, or default."""

    assignments: AssignmentStore
    tariffs: TariffStore
    default: StoredTariff

    def on(self, pile_id: str, at: datetime) -> StoredTariff:
        resolved = self._resolve(pile_id, at)
        return resolved.stored if resolved is not None else self.default

    def resolution(self, pile_id: str, at: datetime) -> Resolution:
        resolved = self._resolve(pile_id, at)
        return resolved if resolved is not None else Resolution(self.default, None)

    def _resolve(self, pile_id: str, at: datetime) -> Resolution | None:
        """The assigned tariff in effect, or ``None`` when the default applies."""
        for assignment in self.assignments.candidates(pile_id, at):
            stored = self.tariffs.latest(assignment.tariff_id)
            if stored is not None and tariff_valid(stored.tariff, at):
                return Resolution(stored, assignment)
        return None

    def edges_after(self, at: datetime) -> list[datetime]:
        """Future instants where some assignment starts or ends (the displays change then)."""
        edges = []
        for row in self.assignments.all():
            edges += [edge for edge in (row.valid_from, row.valid_until) if edge and edge > at]
        for stored in self.tariffs.all_latest():
            tariff = stored.tariff
            edges += [
                edge
                for edge in (tariff.start_date_time, tariff.end_date_time)
                if edge is not None and edge > at
            ]
        return edges
