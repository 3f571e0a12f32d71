"""The central app: stations and records over HTTP, built on the station service skeleton.

Central runs off-site and speaks only HTTP: it has no bus, so its ``/ready`` is its database
answering. Its migrations run before it serves.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from station_central.api.routes import records, stations
from station_central.core.config import SERVICE, Replication, Settings
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.replication import ReplicationWatch
from station_central.state import Central
from station_central.stations import StationStore
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app


async def assemble(kit: Kit[Settings]) -> Central:
    settings = kit.settings
    metrics = CentralMetrics.on(kit.registry)
    metrics.replication_sync_configured.set(1 if settings.replication is Replication.SYNC else 0)
    if kit.engine.dialect.name == "postgresql":
        # SQLite has no standby to watch (its standby_connected stays 0).
        watch = ReplicationWatch(kit.engine, metrics, settings.replication_sample_seconds)
        kit.background("replication", watch.run)
    return Central(
        settings=settings,
        stations=StationStore(kit.engine, kit.clock),
        records=RecordStore(kit.engine),
        metrics=metrics,
    )


SPEC: ServiceSpec[Settings, Central] = ServiceSpec(
    name=SERVICE,
    title="Station central",
    assemble=assemble,
    routers=[stations.router, records.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` stamps ``received_at``; tests may hand in one they control."""
    return build_app(SPEC, settings, clock)
