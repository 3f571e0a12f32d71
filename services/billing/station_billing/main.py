"""The billing app: REST, health and metrics, with the bus and the database in its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from station_billing.api.routes import sessions
from station_billing.core.clock import Clock, utc_now
from station_billing.core.config import SERVICE, Settings
from station_billing.core.runtime import Runtime
from station_billing.handlers import SessionHandlers
from station_billing.metrics import BillingMetrics
from station_billing.store import SessionStore
from station_billing.tariffs import default_tariff
from station_protocol.bus import Bus
from station_protocol.service.health import health_router
from station_protocol.service.migrations import make_engine, migrate

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
            store = SessionStore(engine)
            bus = Bus(settings.bus_options(SERVICE), registry=registry)
            SessionHandlers(
                bus=bus,
                store=store,
                tariff=default_tariff(settings, clock()),
                metrics=metrics,
                clock=clock,
                station_id=settings.station_id,
            ).register()
            async with bus:
                app.state.runtime = Runtime(settings, engine, bus, store)
                yield
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

    app.include_router(health_router(running_bus, registry, {"database": database_ready}))
    app.include_router(sessions.router)
    return app
