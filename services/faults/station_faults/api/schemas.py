"""The REST shapes of the faults service: one language at a time, as an operator reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from station_faults.episodes import episode_detail
from station_faults.models import FaultEpisode
from station_protocol.catalogue import CatalogueEntry, Language, Scope, Severity


class FaultView(BaseModel):
    """A fault episode with its catalogue entry in one language; active or history."""

    model_config = ConfigDict(frozen=True)

    id: str
    code: str
    severity: Severity
    scope: Scope | None
    source: str
    charger: str | None
    pile_id: str | None
    title: str
    text: str
    causes: list[str]
    """Likely causes, the most likely first."""
    remedies: list[str]
    """What to do, in order."""
    station_action: str
    """What the station does by itself meanwhile."""
    since: datetime
    detected_at: datetime
    raised_at: datetime
    active: bool
    cleared_at: datetime | None
    duration_seconds: float | None
    """From ``since`` to ``cleared_at``; null while the fault is active."""
    flaps: int
    acked_by: str | None
    acked_at: datetime | None
    detail: dict[str, str]

    @classmethod
    def of(
        cls, episode: FaultEpisode, entry: CatalogueEntry | None, language: Language
    ) -> FaultView:
        duration = (
            round((episode.cleared_at - episode.since).total_seconds(), 3)
            if episode.cleared_at is not None
            else None
        )
        return cls(
            id=episode.id,
            code=episode.code,
            severity=Severity(episode.severity),
            scope=entry.scope if entry else None,
            source=episode.source,
            charger=episode.charger,
            pile_id=episode.pile_id,
            title=entry.title.in_language(language) if entry else episode.code,
            text=entry.text.in_language(language) if entry else "",
            causes=[cause.in_language(language) for cause in entry.causes] if entry else [],
            remedies=[step.in_language(language) for step in entry.remedies] if entry else [],
            station_action=entry.station_action.in_language(language) if entry else "",
            since=episode.since,
            detected_at=episode.detected_at,
            raised_at=episode.raised_at,
            active=episode.cleared_at is None,
            cleared_at=episode.cleared_at,
            duration_seconds=duration,
            flaps=episode.flaps,
            acked_by=episode.acked_by,
            acked_at=episode.acked_at,
            detail=episode_detail(episode),
        )


class Acknowledgement(BaseModel):
    """``POST /api/v1/faults/{id}/ack``: who takes the fault on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    who: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
