"""Which tariff applies where: ``/api/v1/tariff-assignments`` and ``/api/v1/piles/{pile}/tariff``.

An assignment puts a tariff on the station, a charger or a pile, with an optional validity
window; on a pile the most specific one valid at the moment wins (see
:mod:`station_billing.tariff_in_effect`). Assignments only decide what sessions opening later
freeze; a session that already started keeps its tariff.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from station_billing.api.deps import StateDep
from station_billing.api.routes.tariffs import refused
from station_billing.api.schemas import AssignmentIn, AssignmentOut, TariffInEffectOut
from station_billing.models import AssignmentScope, TariffAssignment
from station_billing.pricing import Problem
from station_protocol.ids import PILE_PATTERN
from station_runtime.api_types import Instant, RowId
from station_runtime.deps import ClockDep

router = APIRouter(tags=["tariff assignments"])


@router.post("/tariff-assignments", status_code=status.HTTP_201_CREATED)
def assign_tariff(body: AssignmentIn, state: StateDep, clock: ClockDep) -> AssignmentOut:
    if state.tariffs.latest(body.tariff_id) is None:
        raise refused([Problem(("tariff_id",), f"no tariff {body.tariff_id!r}: PUT it first")])
    if body.pile_id is not None:
        scope, target = AssignmentScope.PILE, body.pile_id
    elif body.charger_id is not None:
        scope, target = AssignmentScope.CHARGER, body.charger_id
    else:
        scope, target = AssignmentScope.STATION, ""
    row = state.assignments.add(
        TariffAssignment(
            tariff_id=body.tariff_id,
            scope=scope.value,
            target=target,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            created_at=clock(),
        )
    )
    state.displays.poke()
    return AssignmentOut.of(row)


@router.get("/tariff-assignments")
def list_assignments(state: StateDep) -> list[AssignmentOut]:
    return [AssignmentOut.of(row) for row in state.assignments.all()]


@router.delete("/tariff-assignments/{assignment_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_assignment(assignment_id: RowId, state: StateDep) -> None:
    """Sessions that opened under it keep their tariff; new ones fall back to the next one."""
    if not state.assignments.remove(assignment_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no assignment {assignment_id}")
    state.displays.poke()


@router.get("/piles/{pile_id}/tariff")
def tariff_on_pile(
    pile_id: Annotated[str, Path(pattern=PILE_PATTERN)],
    state: StateDep,
    clock: ClockDep,
    at: Annotated[Instant | None, Query()] = None,
) -> TariffInEffectOut:
    """The tariff a session opening on the pile now (or ``?at=``) would freeze."""
    moment: datetime = at or clock()
    return TariffInEffectOut.of(pile_id, moment, state.in_effect.resolution(pile_id, moment))
