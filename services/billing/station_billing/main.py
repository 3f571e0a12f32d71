"""The billing service: sessions, tariffs, charging records and receipts, over the bus and REST."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from station_billing.api.routes import assignments, debits, sessions, tariffs
from station_billing.assignment_store import AssignmentStore
from station_billing.billable_piles import BillablePiles
from station_billing.compiled_tariffs import CompiledTariffs
from station_billing.core.config import SERVICE, Settings
from station_billing.debit_settler import DebitSettler
from station_billing.debit_store import DebitStore
from station_billing.meter_feed import MeterFeed
from station_billing.metrics import BillingMetrics
from station_billing.ocpi_tariffs import default_tariff
from station_billing.pile_store import PileStore
from station_billing.pricing.localtime import StationZone
from station_billing.sample_store import SampleStore
from station_billing.session_requests import SessionRequests
from station_billing.session_store import SessionStore
from station_billing.state import BillingState
from station_billing.tariff_displays import TariffDisplays
from station_billing.tariff_in_effect import TariffsInEffect
from station_billing.tariff_store import StoredTariff, TariffStore
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app


async def assemble(kit: Kit[Settings]) -> BillingState:
    """Wire the service's parts and register its bus handlers (the bus connects after)."""
    settings, clock, bus, engine = kit.settings, kit.clock, kit.bus, kit.engine
    metrics = BillingMetrics.on(kit.registry)
    kit.count_drops(metrics.count_drop)
    zone = StationZone(settings.time_zone)
    sessions = SessionStore(engine)
    samples = SampleStore(engine)
    piles = PileStore(engine)
    tariffs = TariffStore(engine)
    assignments = AssignmentStore(engine)
    default = StoredTariff(default_tariff(settings, clock()), None)
    in_effect = TariffsInEffect(assignments, tariffs, default)
    compiled = CompiledTariffs(default)
    billable = BillablePiles.of(settings.layout)
    displays = TariffDisplays(
        bus=bus,
        in_effect=in_effect,
        piles=piles,
        compiled=compiled,
        zone=zone,
        clock=clock,
        metrics=metrics,
        billable=billable,
        max_wait=settings.display_max_wait,
    )
    meters = MeterFeed(
        bus=bus,
        sessions=sessions,
        samples=samples,
        piles=piles,
        compiled=compiled,
        zone=zone,
        clock=clock,
        metrics=metrics,
        settings=settings,
        billable=billable,
        on_new_pile=displays.poke,
    )
    debit_store = DebitStore(engine)
    settler = DebitSettler(bus, debit_store, clock, metrics, settings.debit_timeout)
    requests = SessionRequests(
        bus=bus,
        sessions=sessions,
        in_effect=in_effect,
        samples=samples,
        compiled=compiled,
        settler=settler,
        meters=meters,
        metrics=metrics,
        clock=clock,
        zone=zone,
        settings=settings,
        billable=billable,
    )
    billable.on_change(displays.piles_changed)
    billable.register(bus)
    requests.register()
    meters.register()

    async def retry_debits() -> None:
        await settler.run(settings.debit_retry_interval)

    kit.background("debit-retries", retry_debits)
    kit.background("tariff-displays", displays.run)
    kit.on_close(requests.close)
    return BillingState(
        settings=settings,
        sessions=sessions,
        tariffs=tariffs,
        assignments=assignments,
        in_effect=in_effect,
        meters=meters,
        displays=displays,
        debits=debit_store,
        requests=requests,
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
