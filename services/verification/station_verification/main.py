"""The app: REST routes, health, and the lifespan that owns the database and the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from station_protocol.bus import Bus
from station_protocol.service.health import health_router
from station_protocol.service.migrations import make_engine, migrate
from station_verification.api.routes import cards
from station_verification.core.config import SERVICE, Settings
from station_verification.debits import Debiting
from station_verification.handlers import VerificationHandlers
from station_verification.metrics import VerificationMetrics
from station_verification.verification import Policy, Verifier, station_clock

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = f"alembic_version_{SERVICE}"


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = VerificationMetrics.on(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database)
        try:
            await asyncio.to_thread(migrate, engine, MIGRATIONS, VERSION_TABLE)
            bus = Bus(settings.bus_options(SERVICE), registry=registry)
            VerificationHandlers(
                bus,
                Verifier(engine, Policy.of(settings)),
                metrics,
                Debiting(engine, station_clock),
            ).register()
            app.state.engine = engine
            app.state.bus = bus
            async with bus:
                yield
        finally:
            app.state.bus = None
            engine.dispose()

    app = FastAPI(title="Station verification", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.bus = None
    app.include_router(cards.router)

    async def database_ready() -> bool:
        return await asyncio.to_thread(_database_answers, app.state.engine)

    app.include_router(health_router(lambda: app.state.bus, registry, {"database": database_ready}))
    return app


def _database_answers(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1
