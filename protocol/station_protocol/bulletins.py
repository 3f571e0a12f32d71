"""Fault bulletins: a fault as the people at the station see it, version 1.

The faults service publishes one retained :class:`Bulletin` per active fault on
``station/v1/faults/bulletins/<source>/<code>`` and deletes it (an empty retained payload)
when the fault clears, so that a display board or a kiosk that connects at any time sees
exactly the faults that are active now. A bulletin carries every language of the catalogue;
the reader picks one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from station_protocol.catalogue import CatalogueEntry, FaultCodeText, Scope, Severity, Text
from station_protocol.ids import ChargerId, PileId


class Bulletin(BaseModel):
    """One fault episode, expanded with its catalogue entry.

    ``id`` names the episode: a fault that clears and comes back within the faults service's
    hold-down keeps its id (``flaps`` counts the returns), so a flapping link is one
    bulletin, not a storm of them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal["v1"] = "v1"
    id: str = Field(min_length=1, max_length=36)
    code: FaultCodeText
    severity: Severity
    scope: Scope
    source: str = Field(min_length=1, max_length=64)
    """The pile id, the charger id (a collector's fault), or a service name."""
    charger: ChargerId | None = None
    pile_id: PileId | None = None
    title: Text
    text: Text
    causes: tuple[Text, ...]
    remedies: tuple[Text, ...]
    """In the order to try them."""
    station_action: Text
    since: AwareDatetime
    """When the condition began (for a silent pile or collector: its last sign of life)."""
    detected_at: AwareDatetime
    """When it was decided that the condition is a fault."""
    raised_at: AwareDatetime
    """When this bulletin was first published."""
    flaps: int = Field(default=0, ge=0)
    acked_by: str | None = None
    acked_at: AwareDatetime | None = None
    detail: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def expand(
        cls,
        entry: CatalogueEntry,
        *,
        id: str,
        source: str,
        charger: str | None,
        pile_id: str | None,
        since: AwareDatetime,
        detected_at: AwareDatetime,
        raised_at: AwareDatetime,
        flaps: int = 0,
        acked_by: str | None = None,
        acked_at: AwareDatetime | None = None,
        detail: dict[str, str] | None = None,
    ) -> Bulletin:
        """The bulletin of one episode of ``entry``'s fault."""
        return cls(
            id=id,
            code=entry.code,
            severity=entry.severity,
            scope=entry.scope,
            source=source,
            charger=charger,
            pile_id=pile_id,
            title=entry.title,
            text=entry.text,
            causes=entry.causes,
            remedies=entry.remedies,
            station_action=entry.station_action,
            since=since,
            detected_at=detected_at,
            raised_at=raised_at,
            flaps=flaps,
            acked_by=acked_by,
            acked_at=acked_at,
            detail=detail or {},
        )
