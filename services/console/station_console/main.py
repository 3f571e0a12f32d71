"""The console: its parts wired on the shared skeleton (REST, health, metrics, bus,
database and lifespan come from :mod:`station_runtime.service`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from station_console import pages
from station_console.api.routes import board, kiosk, operations, piles, registrations
from station_console.board import StationBoard
from station_console.bridge_client import BridgeClient
from station_console.core.config import SERVICE, Settings
from station_console.feed import REGISTRATIONS, TOTALS, BoardFeed
from station_console.history import HistoryWriter, pruned
from station_console.listening import Listening
from station_console.metrics import ConsoleMetrics
from station_console.owners import Owner, Owners
from station_console.pile_registry import PileRegistry
from station_console.registrations import RegistrationDesk
from station_console.state import ConsoleState
from station_protocol.channels import ZigbeeChannels
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app

PRUNE_EVERY = 3600.0
"""Seconds between deletions of history older than ``history_days``."""


async def assemble(kit: Kit[Settings]) -> ConsoleState:
    settings, bus = kit.settings, kit.bus
    metrics = ConsoleMetrics.on(kit.registry)
    kit.count_drops(metrics.count_drop)
    feed = BoardFeed()
    history = HistoryWriter(kit.engine, on_written=lambda: feed.notify(TOTALS))
    owners = Owners(
        verification=await _owner(kit, "verification", str(settings.verification_url)),
        billing=await _owner(kit, "billing", str(settings.billing_url)),
        faults=await _owner(kit, "faults", str(settings.faults_url)),
    )
    pile_set = await PileRegistry.open(kit.engine, bus, settings.layout, kit.clock())
    board = StationBoard.of(settings.layout.charger_ids(), pile_set.word)
    pile_set.listeners.append(board.follow)
    desk = await _registrations(kit, pile_set)
    desk.listeners.append(lambda: feed.notify(REGISTRATIONS))
    state = ConsoleState(
        settings=settings,
        clock=kit.clock,
        bus=bus,
        engine=kit.engine,
        board=board,
        feed=feed,
        history=history,
        owners=owners,
        metrics=metrics,
        piles=pile_set,
        registrations=desk,
    )
    Listening(bus, state.board, feed, history, kit.clock, settings.link_bucket).register()
    kit.background("history", history.run)
    kit.background("prune", lambda: _keep_pruned(state))
    kit.on_close(history.drain)
    return state


async def _registrations(kit: Kit[Settings], piles: PileRegistry) -> RegistrationDesk:
    """The desk where new devices wait, and the client of every charger's bridge."""
    settings = kit.settings
    zigbee = {
        charger: ZigbeeChannels.for_charger(charger, settings.zigbee_root)
        for charger in settings.layout.charger_ids()
    }
    bridge = BridgeClient(kit.bus, zigbee, settings.bridge_timeout)
    bridge.register()
    desk = RegistrationDesk(kit.engine, kit.clock, zigbee, bridge, piles)
    await desk.load()
    desk.register(kit.bus.subscribe)
    return desk


async def _owner(kit: Kit[Settings], name: str, url: str) -> Owner:
    timeout = httpx.Timeout(kit.settings.owner_timeout)
    client = await kit.enter(httpx.AsyncClient(base_url=url, timeout=timeout))
    return Owner(name, client)


async def _keep_pruned(state: ConsoleState) -> None:
    while True:
        before = state.clock() - timedelta(days=state.settings.history_days)
        state.history.put(pruned(before))
        await asyncio.sleep(PRUNE_EVERY)


SPEC: ServiceSpec[Settings, ConsoleState] = ServiceSpec(
    name=SERVICE,
    title="Station console",
    assemble=assemble,
    routers=[piles.router, board.router, operations.router, kiosk.router, registrations.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
    bus=lambda settings: settings.bus_options(SERVICE),
    extend=pages.extend,
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the console's own clock; tests may hand in one they control."""
    return build_app(SPEC, settings, clock)
