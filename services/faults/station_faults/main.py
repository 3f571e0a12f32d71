"""The faults service: its parts wired on the shared skeleton (REST, health, metrics, bus,
database and lifespan come from :mod:`station_runtime.service`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from station_faults.announcer import FaultAnnouncer
from station_faults.api.routes import faults
from station_faults.board import ActiveBulletins, BoardFeed
from station_faults.core.config import SERVICE, Settings
from station_faults.episodes import EpisodeStore
from station_faults.liveness import CollectorLiveness
from station_faults.metrics import BoardCollector, FaultMetrics
from station_faults.piles import ExpectedPiles, PileFollower
from station_faults.reports import ReportHandler
from station_protocol.catalogue import load_catalogue
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app


async def assemble(kit: Kit[Settings]) -> FaultAnnouncer:
    """The announcer is the state the routes work with (its store, its catalogue)."""
    settings, bus = kit.settings, kit.bus
    catalogue = load_catalogue(settings.catalogue_path)
    metrics = FaultMetrics.on(kit.registry)
    kit.count_drops(metrics.count_drop)
    board = ActiveBulletins()
    expected = ExpectedPiles.of(settings.layout)
    kit.registry.register(BoardCollector(board, expected.pile_ids, catalogue.unreachable_codes()))
    store = EpisodeStore(kit.engine)
    announcer = FaultAnnouncer(
        bus=bus,
        store=store,
        catalogue=catalogue,
        board=board,
        metrics=metrics,
        clock=kit.clock,
        hold_down=timedelta(seconds=settings.hold_down),
    )
    BoardFeed(bus, board).register()
    bus.on_connect(announcer.connected)
    # Before the reports: the retained word on the piles comes first after a (re)connection.
    PileFollower(bus, expected, announcer).register()
    ReportHandler(bus, announcer, catalogue, expected).register()
    liveness = CollectorLiveness(
        bus=bus,
        store=store,
        announcer=announcer,
        board=board,
        catalogue=catalogue,
        metrics=metrics,
        clock=kit.clock,
        misses=settings.misses,
        forget_after=timedelta(seconds=settings.forget_after),
        rejoin=timedelta(seconds=bus.options.longest_retry),
        startup_grace=timedelta(seconds=settings.startup_grace),
    )
    liveness.register()
    kit.on_start(liveness.watch_known)

    async def keep_reconciled() -> None:
        await announcer.keep_reconciled(settings.reconcile_interval)

    kit.background("reconcile", keep_reconciled)
    kit.on_close(liveness.close)
    return announcer


SPEC: ServiceSpec[Settings, FaultAnnouncer] = ServiceSpec(
    name=SERVICE,
    title="Station faults",
    assemble=assemble,
    routers=[faults.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
    bus=lambda settings: settings.bus_options(SERVICE),
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the service's own clock; tests may hand in one they control."""
    return build_app(SPEC, settings, clock)
