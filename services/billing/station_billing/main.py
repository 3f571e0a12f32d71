"""The billing service: sessions, tariffs, charging records and receipts, over the bus and REST."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from station_billing.api.routes import assignments, debits, sessions, tariffs
from station_billing.assignments import AssignmentBook, TariffsInEffect
from station_billing.core.config import SERVICE, Settings
from station_billing.costing import TariffCache
from station_billing.debits import DebitBook, Debits
from station_billing.displays import TariffDisplays
from station_billing.handlers import SessionHandlers
from station_billing.meters import MeterWatch
from station_billing.metrics import BillingMetrics
from station_billing.pricing.localtime import StationZone
from station_billing.samples import PileBook, SampleStore
from station_billing.state import BillingState
from station_billing.store import SessionStore
from station_billing.tariffs import StoredTariff, TariffBook, default_tariff
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app


async def assemble(kit: Kit[Settings]) -> BillingState:
    """Wire the service's parts and register its bus handlers (the bus connects after)."""
    settings, clock, bus, engine = kit.settings, kit.clock, kit.bus, kit.engine
    metrics = BillingMetrics.on(kit.registry)
    kit.count_drops(metrics.count_drop)
    zone = StationZone(settings.time_zone)
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
        layout=settings.layout,
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

    async def retry_debits() -> None:
        await settlements.run(settings.debit_retry_interval)

    kit.background("debit-retries", retry_debits)
    kit.background("tariff-displays", displays.run)
    kit.on_close(handlers.close)
    return BillingState(
        settings=settings,
        sessions=store,
        tariffs=tariff_book,
        assignments=assignment_book,
        in_effect=in_effect,
        meters=meters,
        displays=displays,
        debits=debit_book,
    )


SPEC: ServiceSpec[Settings, BillingState] = ServiceSpec(
    name=SERVICE,
    title="Station billing",
    assemble=assemble,
    routers=[sessions.router, tariffs.router, assignments.router, debits.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
    bus=lambda settings: settings.bus_options(SERVICE),
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the service's own clock; tests may hand in one they control."""
    return build_app(SPEC, settings, clock)
