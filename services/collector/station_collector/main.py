"""The collector's FastAPI app, built by the station's service skeleton.

No database: a collector keeps nothing on disk (billing's retained session of each pile and
its own retained fault reports tell a restarted collector what it needs). Its bus connection
carries a per-charger status topic and last will, so that the faults service sees a dead
collector at once.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import FastAPI

from station_collector.api.routes import piles
from station_collector.collector import Collector
from station_collector.core.config import Settings
from station_collector.metrics import CollectorMetrics
from station_protocol import channels
from station_runtime.clock import Clock, utc_now
from station_runtime.service import Kit, ServiceSpec, build_app

SERVICE = "collector"


async def assemble(kit: Kit[Settings]) -> Collector:
    collector = Collector(kit.settings, kit.bus, CollectorMetrics.on(kit.registry))
    kit.count_drops(collector.count_drop)
    collector.register()
    kit.on_start(collector.start)
    kit.on_close(collector.close)
    return collector


SPEC: ServiceSpec[Settings, Collector] = ServiceSpec(
    name=SERVICE,
    title="Station collector",
    assemble=assemble,
    routers=[piles.router],
    bus=lambda s: s.bus_options(
        f"{SERVICE}-{s.charger}",
        charger=s.charger,
        status_topic=channels.COLLECTOR_STATUS.topic(charger=s.charger),
    ),
)


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """The app of one charger's collector; its title names the charger."""
    return build_app(replace(SPEC, title=f"Collector {settings.charger}"), settings, clock)
