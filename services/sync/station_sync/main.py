"""The sync app: the relay loop and the fault announcer, built on the station service skeleton.

Sync owns no table and runs no migration: the outbox is billing's (billing creates it), in
billing's database. Until it exists, sync is not ready (its ``outbox`` check) and its relay
retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
from fastapi import FastAPI

from station_protocol.faults import FaultCode
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app
from station_sync.api.routes import status
from station_sync.central import CentralClient
from station_sync.core.config import SERVICE, Settings
from station_sync.faults import FaultAnnouncer
from station_sync.metrics import SyncMetrics
from station_sync.outbox import Outbox
from station_sync.relay import Relay
from station_sync.token import CentralToken, TokenSource
from station_sync.watch import CentralWatch

log = logging.getLogger("station.sync")


async def assemble(kit: Kit[Settings]) -> Relay:
    settings = kit.settings
    token = CentralToken.in_dir(settings.data_dir, settings.central_token)
    if token.source is TokenSource.NONE:
        log.warning("no central token (setting or installed): central will refuse every batch")
    http = await kit.enter(_central_http(settings))
    announcer = FaultAnnouncer(kit.bus, SERVICE)
    token_announcer = FaultAnnouncer(kit.bus, SERVICE, code=FaultCode.CENTRAL_TOKEN_REJECTED)
    relay = Relay(
        settings=settings,
        outbox=Outbox(kit.engine),
        central=CentralClient(http, settings.station_id, token),
        metrics=SyncMetrics.on(kit.registry),
        watch=CentralWatch(timedelta(seconds=settings.backlog_fault_after)),
        announcer=announcer,
        token_announcer=token_announcer,
        clock=kit.clock,
    )
    kit.background("sync-relay", relay.run)
    kit.background("sync-faults", announcer.run)
    kit.background("sync-token-fault", token_announcer.run)
    return relay


async def _outbox_readable(relay: Relay) -> bool:
    return await asyncio.to_thread(relay.outbox.readable)


SPEC: ServiceSpec[Settings, Relay] = ServiceSpec(
    name=SERVICE,
    title="Station sync",
    assemble=assemble,
    routers=[status.router],
    database=lambda settings: settings.outbox_database(),
    migrations=None,
    bus=lambda settings: settings.bus_options(SERVICE),
    checks={"outbox": _outbox_readable},
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` decides when a record is due (stored_at + T2); tests may move theirs."""
    return build_app(SPEC, settings, clock)


def _central_http(settings: Settings) -> httpx.AsyncClient:
    """Base URL and timeout; the token goes with each batch, read afresh (it may change)."""
    return httpx.AsyncClient(base_url=settings.central_url, timeout=settings.request_timeout)
