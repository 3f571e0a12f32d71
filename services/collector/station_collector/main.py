"""The collector's FastAPI app; its lifespan owns the bus connection and the collector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from station_collector.api.routes import piles
from station_collector.collector import Collector
from station_collector.core.config import Settings
from station_collector.metrics import CollectorMetrics
from station_protocol import channels
from station_runtime.bus import Bus
from station_runtime.health import bus_health_router


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = CollectorMetrics.on(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        options = settings.bus_options(
            f"collector-{settings.charger}",
            charger=settings.charger,
            status_topic=channels.COLLECTOR_STATUS.topic(charger=settings.charger),
        )
        bus = Bus(options, registry=registry)
        collector = Collector(settings, bus, metrics)
        collector.register()
        app.state.collector = collector
        async with bus:
            app.state.bus = bus
            collector.start()
            yield
            await collector.close()
        app.state.bus = None

    app = FastAPI(title=f"Collector {settings.charger}", lifespan=lifespan)
    app.state.settings = settings
    app.state.bus = None
    app.include_router(bus_health_router(lambda: app.state.bus, registry))
    app.include_router(piles.router, prefix="/api/v1")
    return app
