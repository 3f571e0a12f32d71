"""The central app: stations and records over HTTP, built on the station service skeleton.

Central runs off-site and speaks only HTTP: it has no bus, so its ``/ready`` is its database
answering. Its migrations run before it serves.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from station_central.api.routes import records, stations
from station_central.core.config import SERVICE, Settings
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.state import Central
from station_central.stations import StationStore
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app


async def assemble(kit: Kit[Settings]) -> Central:
    return Central(
        settings=kit.settings,
        stations=StationStore(kit.engine, kit.clock),
        records=RecordStore(kit.engine),
        metrics=CentralMetrics.on(kit.registry),
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
