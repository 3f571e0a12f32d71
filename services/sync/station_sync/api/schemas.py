"""The REST shape of sync's status, for operators and the display board."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class SyncStatus(BaseModel):
    """Where the records stand on their way to central, as last counted."""

    model_config = ConfigDict(frozen=True)

    station_id: str
    central_url: str
    t2_seconds: float
    counted_at: datetime | None
    backlog: int
    """Records not yet confirmed by central."""
    overdue: int
    """Of those, records stored more than T2 ago."""
    oldest_unsent_age_seconds: float
    refused: int
    """Records central refused (conflicts) or that cannot be sent: an operator's job."""
    last_sent_at: datetime | None
    unreachable_since: datetime | None
    """The first failed send since the last success, while central is out of reach."""
    last_error: str | None
    fault_active: bool
