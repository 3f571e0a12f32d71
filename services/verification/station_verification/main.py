"""The verification service: cards and the prepaid ledger, answering over the bus and REST."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app
from station_verification.api.routes import cards
from station_verification.core.config import SERVICE, Settings
from station_verification.debits import Debiting
from station_verification.handlers import VerificationHandlers
from station_verification.metrics import VerificationMetrics
from station_verification.verification import Policy, Verifier


async def assemble(kit: Kit[Settings]) -> VerificationHandlers:
    metrics = VerificationMetrics.on(kit.registry)
    kit.count_drops(metrics.count_drop)
    handlers = VerificationHandlers(
        kit.bus,
        Verifier(kit.engine, Policy.of(kit.settings), kit.clock),
        metrics,
        Debiting(kit.engine, kit.clock),
        billing_timeout=kit.settings.billing_timeout,
    )
    handlers.register()
    kit.on_close(handlers.close)
    return handlers


SPEC: ServiceSpec[Settings, VerificationHandlers] = ServiceSpec(
    name=SERVICE,
    title="Station verification",
    assemble=assemble,
    routers=[cards.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
    bus=lambda settings: settings.bus_options(SERVICE),
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    return build_app(SPEC, settings, clock)
