"""The sync app: the relay loop and the fault announcer in its lifespan, status and metrics.

Sync owns no table and runs no migration: the outbox is billing's (billing creates it).
Until it exists, sync is not ready and its relay retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from station_runtime.bus import Bus
from station_runtime.health import bus_health_router
from station_runtime.migrations import make_engine
from station_sync.api.routes import status
from station_sync.central import CentralClient
from station_sync.core.clock import Clock, utc_now
from station_sync.core.config import SERVICE, Settings
from station_sync.core.runtime import Runtime
from station_sync.faults import FaultAnnouncer
from station_sync.metrics import SyncMetrics
from station_sync.outbox import Outbox
from station_sync.relay import Relay
from station_sync.watch import CentralWatch

log = logging.getLogger("station.sync")


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    registry = CollectorRegistry()
    metrics = SyncMetrics.on(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.sqlalchemy_url)
        bus = Bus(settings.bus_options(SERVICE), registry=registry)
        if settings.central_token is None:
            log.warning("no central_token set: central will refuse every batch")
        try:
            async with bus, _central_http(settings) as http:
                outbox = Outbox(engine)
                announcer = FaultAnnouncer(bus, SERVICE)
                relay = Relay(
                    settings=settings,
                    outbox=outbox,
                    central=CentralClient(http, settings.station_id),
                    metrics=metrics,
                    watch=CentralWatch(timedelta(seconds=settings.backlog_fault_after)),
                    announcer=announcer,
                    clock=clock,
                )
                tasks = [
                    asyncio.create_task(relay.run(), name="sync-relay"),
                    asyncio.create_task(announcer.run(), name="sync-faults"),
                ]
                app.state.runtime = Runtime(settings, engine, bus, outbox, relay)
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
                    for task in tasks:
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        finally:
            app.state.runtime = None
            engine.dispose()

    app = FastAPI(title="Station sync", version="1", lifespan=lifespan)
    app.state.runtime = None

    def running_bus() -> Bus | None:
        runtime = app.state.runtime
        return runtime.bus if isinstance(runtime, Runtime) else None

    async def outbox_ready() -> bool:
        runtime = app.state.runtime
        return isinstance(runtime, Runtime) and await asyncio.to_thread(runtime.outbox.readable)

    app.include_router(bus_health_router(running_bus, registry, {"outbox": outbox_ready}))
    app.include_router(status.router)
    return app


def _central_http(settings: Settings) -> httpx.AsyncClient:
    headers = {}
    if settings.central_token is not None:
        headers["Authorization"] = f"Bearer {settings.central_token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=settings.central_url,
        headers=headers,
        timeout=settings.request_timeout,
    )
