"""The billing app: REST, health and metrics, with the bus and the database in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from station_billing.api.routes import assignments, debits, sessions, tariffs
from station_billing.assignments import AssignmentBook, TariffsInEffect
from station_billing.core.clock import Clock, utc_now
from station_billing.core.config import SERVICE, Settings
from station_billing.core.runtime import Runtime
from station_billing.costing import TariffCache
from station_billing.debits import DebitBook, Debits
from station_billing.displays import TariffDisplays
from station_billing.handlers import SessionHandlers
from station_billing.meters import MeterWatch
from station_billing.metrics import BillingMetrics
from station_billing.pricing.localtime import StationZone
from station_billing.samples import PileBook, SampleStore
from station_billing.store import SessionStore
from station_billing.tariffs import StoredTariff, TariffBook, default_tariff
from station_protocol.ids import Layout
from station_runtime.bus import Bus
from station_runtime.health import bus_health_router
from station_runtime.migrations import make_engine, migrate

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_billing"


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the service's own clock; tests may hand in one they control."""
    registry = CollectorRegistry()
    metrics = BillingMetrics.on(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            await asyncio.to_thread(migrate, engine, MIGRATIONS, VERSION_TABLE)
            runtime, handlers, settlements = _assemble(settings, clock, metrics, registry, engine)
            async with runtime.bus:
                background = [
                    asyncio.create_task(settlements.run(settings.debit_retry_interval)),
                    asyncio.create_task(runtime.displays.run()),
                ]
                app.state.runtime = runtime
                try:
                    yield
                finally:
                    app.state.runtime = None
                    for task in background:
                        task.cancel()
                    for task in background:
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                    await handlers.close()
        finally:
            app.state.runtime = None
            engine.dispose()

    app = FastAPI(title="Station billing", version="1", lifespan=lifespan)
    app.state.runtime = None

    def running_bus() -> Bus | None:
        runtime = app.state.runtime
        return runtime.bus if isinstance(runtime, Runtime) else None

    async def database_ready() -> bool:
        runtime = app.state.runtime
        return isinstance(runtime, Runtime) and await asyncio.to_thread(runtime.store.ping)

    app.include_router(bus_health_router(running_bus, registry, {"database": database_ready}))
    app.include_router(sessions.router)
    app.include_router(tariffs.router)
    app.include_router(assignments.router)
    app.include_router(debits.router)
    return app


def _assemble(
    settings: Settings,
    clock: Clock,
    metrics: BillingMetrics,
    registry: CollectorRegistry,
    engine: Engine,
) -> tuple[Runtime, SessionHandlers, Debits]:
    """Wire the service's parts; the bus is not connected yet."""
    bus = Bus(settings.bus_options(SERVICE), registry=registry)
    zone = StationZone.named(settings.time_zone)
    store = SessionStore(engine)
    samples = SampleStore(engine)
    piles = PileBook(engine)
    tariff_book = TariffBook(engine)
    assignment_book = AssignmentBook(engine, tariff_book)
    in_effect = TariffsInEffect(
        assignment_book, StoredTariff(default_tariff(settings, clock()), None)
    )
    cache = TariffCache()
    displays = TariffDisplays(
        bus=bus,
        in_effect=in_effect,
        assignments=assignment_book,
        piles=piles,
        tariffs=cache,
        zone=zone,
        clock=clock,
        metrics=metrics,
        layout=Layout.parse(settings.layout) if settings.layout else None,
        max_wait=settings.display_max_wait,
    )
    meters = MeterWatch(
        bus=bus,
        store=store,
        samples=samples,
        piles=piles,
        tariffs=cache,
        zone=zone,
        clock=clock,
        metrics=metrics,
        settings=settings,
        on_new_pile=displays.poke,
    )
    debit_book = DebitBook(engine)
    settlements = Debits(bus, debit_book, clock, metrics, settings.debit_timeout)
    handlers = SessionHandlers(
        bus=bus,
        store=store,
        in_effect=in_effect,
        samples=samples,
        tariffs=cache,
        debits=settlements,
        meters=meters,
        metrics=metrics,
        clock=clock,
        zone=zone,
        settings=settings,
    )
    handlers.register()
    meters.register()
    runtime = Runtime(
        settings=settings,
        engine=engine,
        bus=bus,
        store=store,
        tariffs=tariff_book,
        assignments=assignment_book,
        in_effect=in_effect,
        meters=meters,
        displays=displays,
        debits=debit_book,
        zone=zone,
        clock=clock,
    )
    return runtime, handlers, settlements
