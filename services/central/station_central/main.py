"""The central app: stations, records, health and metrics; the database in its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from station_central.api.routes import records, stations
from station_central.core.clock import Clock, utc_now
from station_central.core.config import Settings
from station_central.core.runtime import Runtime
from station_central.health import health_router
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.stations import StationStore
from station_runtime.migrations import make_engine, migrate

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_central"


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` stamps ``received_at``; tests may hand in one they control."""
    registry = CollectorRegistry()
    metrics = CentralMetrics.on(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            await asyncio.to_thread(migrate, engine, MIGRATIONS, VERSION_TABLE)
            app.state.runtime = Runtime(
                settings=settings,
                engine=engine,
                stations=StationStore(engine, clock),
                records=RecordStore(engine),
                metrics=metrics,
                clock=clock,
            )
            yield
        finally:
            app.state.runtime = None
            engine.dispose()

    app = FastAPI(title="Station central", version="1", lifespan=lifespan)
    app.state.runtime = None

    async def database_ready() -> bool:
        runtime = app.state.runtime
        return isinstance(runtime, Runtime) and await asyncio.to_thread(runtime.records.ping)

    app.include_router(health_router(registry, database_ready))
    app.include_router(stations.router)
    app.include_router(records.router)
    return app
