"""The faults app: REST, health and metrics, with the bus and the database in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from station_faults.announcer import FaultAnnouncer
from station_faults.api.routes import faults
from station_faults.board import ActiveBulletins, BoardFeed
from station_faults.core.clock import Clock, utc_now
from station_faults.core.config import SERVICE, Settings
from station_faults.core.runtime import Runtime
from station_faults.episodes import EpisodeStore
from station_faults.liveness import CollectorLiveness
from station_faults.metrics import BoardCollector, FaultMetrics
from station_faults.reports import ReportHandler
from station_protocol import channels
from station_protocol.catalogue import load_catalogue
from station_runtime.bus import Bus
from station_runtime.health import bus_health_router
from station_runtime.migrations import make_engine, migrate

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_faults"


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the service's own clock; tests may hand in one they control."""
    catalogue = load_catalogue(settings.catalogue_path)
    registry = CollectorRegistry()
    metrics = FaultMetrics.on(registry)
    board = ActiveBulletins()
    registry.register(
        BoardCollector(board, settings.station_layout.pile_ids, catalogue.unreachable_codes())
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            await asyncio.to_thread(migrate, engine, MIGRATIONS, VERSION_TABLE)
            store = EpisodeStore(engine)
            bus = Bus(settings.bus_options(SERVICE), registry=registry)
            announcer = FaultAnnouncer(
                bus=bus,
                store=store,
                catalogue=catalogue,
                board=board,
                metrics=metrics,
                clock=clock,
                hold_down=timedelta(seconds=settings.hold_down),
            )
            bus.add_route(channels.FAULT_BULLETIN.filter(), BoardFeed(board, metrics).on_bulletin)
            bus.on_connect(announcer.connected)
            ReportHandler(bus, announcer, catalogue, metrics).register()
            liveness = CollectorLiveness(
                bus=bus,
                store=store,
                announcer=announcer,
                board=board,
                catalogue=catalogue,
                metrics=metrics,
                clock=clock,
                misses=settings.misses,
                forget_after=timedelta(seconds=settings.forget_after),
                rejoin=timedelta(seconds=bus.options.longest_retry),
            )
            liveness.register()
            async with bus:
                await liveness.watch_known()
                reconciler = asyncio.create_task(
                    announcer.keep_reconciled(settings.reconcile_interval), name="reconcile"
                )
                app.state.runtime = Runtime(settings, engine, bus, store, catalogue, announcer)
                try:
                    yield
                finally:
                    app.state.runtime = None
                    reconciler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reconciler
                    liveness.close()
        finally:
            app.state.runtime = None
            engine.dispose()

    app = FastAPI(title="Station faults", version="1", lifespan=lifespan)
    app.state.runtime = None

    def running_bus() -> Bus | None:
        runtime = app.state.runtime
        return runtime.bus if isinstance(runtime, Runtime) else None

    async def database_ready() -> bool:
        runtime = app.state.runtime
        return isinstance(runtime, Runtime) and await asyncio.to_thread(runtime.store.ping)

    app.include_router(bus_health_router(running_bus, registry, {"database": database_ready}))
    app.include_router(faults.router)
    return app
