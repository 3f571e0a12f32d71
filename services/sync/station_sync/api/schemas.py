"""The REST shapes of sync: its status, for operators and the display board, and a token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from station_sync.token import TOKEN_PATTERN, TokenSource


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
    """``central_sync_backlog`` is up."""
    central_token: TokenSource
    """Where the token sent to central comes from: ``file`` (installed), ``setting``, ``none``."""
    token_rejected: bool
    """``central_token_rejected`` is up: central answered 401; install the station's token."""


class CentralTokenIn(BaseModel):
    """``PUT /api/v1/sync/central-token``: the station's token as central issued it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Annotated[str, StringConstraints(pattern=TOKEN_PATTERN)] = Field(repr=False)
