"""``GET /api/v1/sync``: the relay's state, as the metrics show it, in one answer."""

from __future__ import annotations

from fastapi import APIRouter

from station_sync.api.deps import RelayDep
from station_sync.api.schemas import SyncStatus

router = APIRouter(prefix="/sync", tags=["sync"])


@router.get("")
async def sync_status(relay: RelayDep) -> SyncStatus:
    settings = relay.settings
    backlog = relay.backlog
    return SyncStatus(
        station_id=settings.station_id,
        central_url=settings.central_url,
        t2_seconds=settings.t2,
        counted_at=backlog.at if backlog else None,
        backlog=backlog.unsent if backlog else 0,
        overdue=backlog.overdue if backlog else 0,
        oldest_unsent_age_seconds=backlog.oldest_age if backlog else 0.0,
        refused=backlog.refused if backlog else 0,
        last_sent_at=relay.last_sent_at,
        unreachable_since=relay.watch.failing_since,
        last_error=relay.watch.last_error,
        fault_active=relay.announcer.active,
    )
