"""One skeleton for every station service: a service supplies its parts, nothing else.

A service is declared as a :class:`ServiceSpec`: its name, its REST routers, its migrations,
and an ``assemble`` function that wires its domain objects from a :class:`Kit` (settings,
clock, metrics registry, database engine, bus) and returns the object its routes work with.
:func:`build_app` turns that into a FastAPI app whose lifespan does the same for every
service, in the same order:

1. a fresh metrics registry; the database engine, migrated to head before anything serves;
2. the bus (if the service has one), its handlers registered by ``assemble`` before it
   connects, so that no message arrives before its handler;
3. the start hooks, then the background tasks;
4. on the way out: the tasks cancelled, the close hooks run (newest first), the bus
   disconnected with its ``offline`` status, the engine disposed.

While the lifespan runs, the state ``assemble`` returned is on ``app.state.service`` and a
route reaches it through :func:`running` (a 503 while the service starts or stops). Every app
has ``/health``, ``/ready`` (the bus connected, the database answering, and the service's own
checks) and ``/metrics``; its routers are mounted under ``/api/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, HTTPException, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import URL, Engine

from station_runtime.bus import Bus, BusOptions
from station_runtime.clock import Clock, utc_now
from station_runtime.deliveries import DropSink
from station_runtime.health import Check, health_router
from station_runtime.migrations import make_engine, migrate, ping
from station_runtime.tasks import cancel_until_done

log = logging.getLogger("station.service")

API_PREFIX = "/api/v1"

S = TypeVar("S")
T = TypeVar("T")
C = TypeVar("C")

Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Kit(Generic[S]):
    """What the skeleton hands a service's ``assemble``: its settings and its resources."""

    settings: S
    clock: Clock
    registry: CollectorRegistry
    _engine: Engine | None = None
    _bus: Bus | None = None
    _exits: AsyncExitStack = field(default_factory=AsyncExitStack)
    _starts: list[Work] = field(default_factory=list)
    _tasks: list[tuple[str, Work]] = field(default_factory=list)
    _closes: list[Work] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("this service has no database (its spec names no database URL)")
        return self._engine

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise RuntimeError("this service has no bus (its spec names no bus options)")
        return self._bus

    def count_drops(self, sink: DropSink) -> None:
        """Count the messages the bus drops in the service's own metric."""
        self.bus.on_drop = sink

    async def enter(self, resource: contextlib.AbstractAsyncContextManager[C]) -> C:
        """Keep an async resource (an HTTP client...) open while the service runs."""
        return await self._exits.enter_async_context(resource)

    def on_start(self, work: Work) -> None:
        """Run ``work`` once the bus is started, before the background tasks."""
        self._starts.append(work)

    def background(self, name: str, work: Work) -> None:
        """Run ``work`` as a task while the service runs; cancelled when it stops."""
        self._tasks.append((name, work))

    def on_close(self, work: Work) -> None:
        """Run ``work`` when the service stops (newest first), before the bus goes."""
        self._closes.append(work)


@dataclass(frozen=True)
class ServiceSpec(Generic[S, T]):
    """What a service is made of; :func:`build_app` does the rest."""

    name: str
    """``billing``: in logs, the status topic, the client id, the migrations' version table."""
    title: str
    assemble: Callable[[Kit[S]], Awaitable[T]]
    """Wires the service's parts; registers its bus handlers, tasks and hooks on the kit."""
    routers: Sequence[APIRouter] = ()
    database: Callable[[S], URL] | None = None
    """The database URL from the settings; ``None``: the service keeps no tables."""
    migrations: Path | None = None
    """The service's Alembic folder; ``None``: it creates no tables (it reads another's)."""
    bus: Callable[[S], BusOptions] | None = None
    """How to connect to the broker; ``None``: the service speaks only HTTP."""
    checks: Mapping[str, Callable[[T], Awaitable[bool]]] = field(default_factory=dict)
    """Readiness checks beside the broker and the database (the outbox readable...)."""
    extend: Callable[[FastAPI], None] | None = None
    """More for the app than its API: pages outside ``/api/v1``, static files, error
    handlers (the console's board and its problem details)."""

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"


@dataclass(frozen=True)
class Running(Generic[S, T]):
    """The running service, on ``app.state.service`` while the lifespan runs."""

    kit: Kit[S]
    state: T

    @property
    def bus(self) -> Bus:
        return self.kit.bus

    @property
    def engine(self) -> Engine:
        return self.kit.engine


def running(request: Request) -> Running[Any, Any]:
    """The running service, or 503 while it starts or stops."""
    service = getattr(request.app.state, "service", None)
    if not isinstance(service, Running):
        raise HTTPException(status_code=503, detail="the service is starting or stopping")
    return service


def build_app(spec: ServiceSpec[S, T], settings: S, clock: Clock = utc_now) -> FastAPI:
    """The FastAPI app of ``spec``; ``clock`` is the service's own (tests may move theirs)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kit: Kit[S] = Kit(settings, clock, CollectorRegistry())
        app.state.registry = kit.registry
        async with kit._exits:
            if spec.database is not None:
                kit._engine = make_engine(spec.database(settings))
                kit._exits.callback(kit._engine.dispose)
                if spec.migrations is not None:
                    await asyncio.to_thread(
                        migrate, kit._engine, spec.migrations, spec.version_table
                    )
            if spec.bus is not None:
                kit._bus = Bus(spec.bus(settings), registry=kit.registry)
            state = await spec.assemble(kit)
            if kit._bus is not None:
                await kit.enter(kit._bus)
            async with _started(kit):
                app.state.service = Running(kit, state)
                try:
                    yield
                finally:
                    app.state.service = None

    app = FastAPI(title=spec.title, version="1", lifespan=lifespan)
    app.state.service = None
    app.state.registry = None
    app.include_router(health_router(lambda: _checks(app, spec), lambda: app.state.registry))
    for router in spec.routers:
        app.include_router(router, prefix=API_PREFIX)
    if spec.extend is not None:
        spec.extend(app)
    return app


@asynccontextmanager
async def _started(kit: Kit[Any]) -> AsyncIterator[None]:
    for start in kit._starts:
        await start()
    tasks = [asyncio.create_task(work(), name=name) for name, work in kit._tasks]
    try:
        yield
    finally:
        await cancel_until_done(tasks)
        for close in reversed(kit._closes):
            try:
                await close()
            except Exception:
                log.exception("close hook failed")


def _checks(app: FastAPI, spec: ServiceSpec[Any, Any]) -> Mapping[str, Check]:
    """The readiness checks of the running service; nothing is ready while it is not."""
    service = app.state.service
    if not isinstance(service, Running):
        return {"service": _never}
    kit, state = service.kit, service.state
    checks: dict[str, Check] = {}
    if kit._bus is not None:
        bus = kit._bus
        checks["broker"] = lambda: _value(bus.connected)
    if kit._engine is not None:
        engine = kit._engine
        checks["database"] = lambda: asyncio.to_thread(ping, engine)
    for name, check in spec.checks.items():
        checks[name] = _bound(check, state)
    return checks


def _bound(check: Callable[[T], Awaitable[bool]], state: T) -> Check:
    return lambda: check(state)


async def _value(value: bool) -> bool:
    return value


async def _never() -> bool:
    return False
