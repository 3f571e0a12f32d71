"""The console: its parts wired on the shared skeleton (REST, health, metrics, bus,
database and lifespan come from :mod:`station_runtime.service`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from station_console import pages
from station_console.api.routes import board, kiosk, operations, piles
from station_console.board import StationBoard
from station_console.core.config import SERVICE, Settings
from station_console.feed import TOTALS, BoardFeed
from station_console.history import HistoryWriter, pruned
from station_console.listening import Listening
from station_console.metrics import ConsoleMetrics
from station_console.owners import Owner, Owners
from station_console.state import ConsoleState
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
    state = ConsoleState(
        settings=settings,
        clock=kit.clock,
        bus=bus,
        engine=kit.engine,
        board=StationBoard(settings.layout),
        feed=feed,
        history=history,
        owners=owners,
        metrics=metrics,
    )
    Listening(bus, state.board, feed, history, kit.clock, settings.link_bucket).register()
    kit.background("history", history.run)
    kit.background("prune", lambda: _keep_pruned(state))
    kit.on_close(history.drain)
    return state


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
    routers=[piles.router, board.router, operations.router, kiosk.router],
    database=lambda settings: settings.database(SERVICE),
    migrations=Path(__file__).parent / "migrations",
    bus=lambda settings: settings.bus_options(SERVICE),
    extend=pages.extend,
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """``clock`` is the console's own clock; tests may hand in one they control."""
    return build_app(SPEC, settings, clock)
