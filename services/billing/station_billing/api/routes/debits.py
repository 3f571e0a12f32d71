"""``/api/v1/debits``: each record's debit and where it stands, for operators.

A debit is ``pending`` until verification books it (billing retries in the background),
``settled`` once it is on the card's ledger, or ``refused`` when verification cannot book
it (an unknown card, a conflicting earlier debit): those need an operator.
"""

from __future__ import annotations

from fastapi import APIRouter

from station_billing.api.deps import StateDep
from station_billing.api.schemas import DebitOut
from station_billing.models import DebitStatus

router = APIRouter(prefix="/debits", tags=["debits"])


@router.get("")
def list_debits(state: StateDep, status: DebitStatus | None = None) -> list[DebitOut]:
    """Oldest first."""
    rows = state.debits.all()
    return [DebitOut.of(row) for row in rows if status is None or row.status == status.value]
