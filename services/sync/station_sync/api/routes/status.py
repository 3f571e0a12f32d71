"""``/api/v1/sync``: the relay's state, as the metrics show it, in one answer; and the
station's token for central, installed without a restart and without losing the backlog."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, status

from station_sync.api.deps import RelayDep
from station_sync.api.schemas import CentralTokenIn, SyncStatus

log = logging.getLogger("station.sync.api")

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
        central_token=await asyncio.to_thread(lambda: relay.central.token.source),
        token_rejected=relay.token_announcer.active,
    )


@router.put("/central-token", status_code=status.HTTP_204_NO_CONTENT)
async def install_central_token(body: CentralTokenIn, relay: RelayDep) -> None:
    """Install the token central issued (after a rotation); it is never echoed or logged.

    Kept in ``<data_dir>/central-token`` (mode 0600), it overrides the ``central_token``
    setting; the relay tries the backlog with it at once. ``central_token_rejected`` clears
    when central accepts a batch.
    """
    await asyncio.to_thread(relay.central.token.install, body.token)
    relay.wake()
