"""The station's service processes, planned from a layout: what ``station up`` and the
end-to-end tests both start.

One plan for both, so that the tests exercise exactly the processes, modules and settings
that a user runs. Central runs off-site in a real deployment; the one-machine station runs
it too, registers itself there, and hands the station token to sync.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from station_protocol.ids import Layout
from station_tools.central import register_station
from station_tools.ports import free_ports
from station_tools.processes import ServiceProcess

SERVICES = ("verification", "billing", "faults", "console", "central", "sync")
"""The station's services besides the collectors, in start order (sync needs central)."""


@dataclass(frozen=True)
class Ports:
    """HTTP ports: the documented defaults, shifted by an offset, or free ones for tests."""

    console: int = 8100
    verification: int = 8101
    billing: int = 8102
    faults: int = 8103
    sync: int = 8104
    central: int = 8110
    collector_base: int = 8120
    """Collector ``c<i>`` listens on ``collector_base + i``."""
    collectors: tuple[int, ...] = ()

    @classmethod
    def shifted(cls, offset: int) -> Ports:
        """The defaults plus ``offset``, to run a second station beside the first."""
        base = cls()
        return cls(
            console=base.console + offset,
            verification=base.verification + offset,
            billing=base.billing + offset,
            faults=base.faults + offset,
            sync=base.sync + offset,
            central=base.central + offset,
            collector_base=base.collector_base + offset,
        )

    @classmethod
    def free(cls, chargers: int) -> Ports:
        """Free loopback ports for everything (tests, several stations on one machine)."""
        console, verification, billing, faults, sync, central, *collectors = free_ports(
            6 + chargers
        )
        return cls(
            console=console,
            verification=verification,
            billing=billing,
            faults=faults,
            sync=sync,
            central=central,
            collectors=tuple(collectors),
        )

    def of(self, service: str) -> int:
        port: int = getattr(self, service)
        return port

    def collector(self, index: int) -> int:
        if self.collectors:
            return self.collectors[index - 1]
        return self.collector_base + index


def collector_client_id(charger: str) -> str:
    """The fixed client id of a collector behind its own broker (its replies' topic)."""
    return f"collector-{charger}"


@dataclass
class StationRig:
    broker_url: str
    layout: Layout
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    t1: float = 1.0
    t2: float = 60.0
    station_id: str = "station-1"
    rated_power: Decimal | None = None
    """kW the collectors and billing take as the piles' rating (their default if ``None``);
    a simulator sped up N times draws N times its power in real time."""
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Extra settings per service name (``verification``, ``billing``, ``collector``, ...)."""
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    central_url: str | None = None
    """Central elsewhere (as off-site in production, or another rig's): the rig starts none,
    registers there with ``admin_token`` and points sync at it (a restored station)."""
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    collector_brokers: dict[str, str] = field(default_factory=dict)
    """Charger -> its collector's own broker (bridged to ``broker_url``); the collector
    then uses it, with the fixed client id ``collector-<charger>`` the bridge lets its
    replies in for."""

    @property
    def names(self) -> tuple[str, ...]:
        """The services this rig runs besides the collectors."""
        return tuple(name for name in SERVICES if name != "central" or self.central_url is None)

    def url(self, service: str) -> str:
        if service == "central" and self.central_url is not None:
            return self.central_url.rstrip("/")
        return f"http://127.0.0.1:{self.ports.of(service)}"

    def collector_url(self, charger: str) -> str:
        return f"http://127.0.0.1:{self.ports.collector(int(charger[1:]))}"

    def port_of(self, name: str) -> int | None:
        """The HTTP port of the process called ``name`` (a service or ``collector-c<i>``)."""
        if name in self.names:
            return self.ports.of(name)
        if name.startswith("collector-c"):
            return self.ports.collector(int(name.removeprefix("collector-c")))
        return None

    def all_ports(self) -> dict[str, int]:
        ports = {name: self.ports.of(name) for name in self.names}
        for index, charger in enumerate(self.layout.charger_ids(), start=1):
            ports[f"collector {charger}"] = self.ports.collector(index)
        return ports

    def plan(self, station_token: str = "") -> list[ServiceProcess]:
        """Every process in start order; sync last, with the token central gave the station."""
        billing_db = self.data_dir.resolve() / "billing" / "billing.db"
        settings: dict[str, dict[str, str]] = {
            "verification": {},
            "billing": {"station_id": self.station_id, "layout": str(self.layout)},
            "faults": {"layout": str(self.layout)},
            "console": {
                "layout": str(self.layout),
                "station_name": self.station_id,
                "verification_url": self.url("verification"),
                "billing_url": self.url("billing"),
                "faults_url": self.url("faults"),
            },
            "central": {"admin_token": self.admin_token},
            "sync": {
                "station_id": self.station_id,
                "central_url": self.url("central"),
                "central_token": station_token,
                "t2": str(self.t2),
                "database_url": f"sqlite:///{billing_db}",
            },
        }
        if self.rated_power is not None:
            settings["billing"]["rated_power"] = str(self.rated_power)
        plan = [self._service(name, settings[name]) for name in self.names if name != "sync"]
        for index, charger in enumerate(self.layout.charger_ids(), start=1):
            plan.append(self._collector(index, charger))
        sync = self._service("sync", settings["sync"])
        # Sync is alive before billing has made its outbox table; it waits for it.
        sync.health_url = f"{self.url('sync')}/health"
        plan.append(sync)
        return plan

    def _collector(self, index: int, charger: str) -> ServiceProcess:
        settings = {
            "charger": charger,
            "piles": str(self.layout.piles_per_charger),
            "t1": str(self.t1),
        }
        if self.rated_power is not None:
            settings["rated_power"] = str(self.rated_power)
        own = self.collector_brokers.get(charger)
        if own is not None:
            settings |= {"broker": own, "client_id": collector_client_id(charger)}
        process = self._service(
            "collector",
            settings,
            port=self.ports.collector(index),
            data=self.data_dir / "collectors" / charger,
        )
        return replace(process, name=f"collector-{charger}")

    def _service(
        self,
        name: str,
        settings: dict[str, str],
        *,
        port: int | None = None,
        data: Path | None = None,
    ) -> ServiceProcess:
        given = {"broker": self.broker_url, **settings, **self.env.get(name, {})}
        return ServiceProcess.station_service(
            name,
            broker=given.pop("broker"),
            work=self.data_dir,
            port=port if port is not None else self.ports.of(name),
            data_dir=data,
            own_client_id=False,
            **given,
        )

    def start(self, timeout: float = 60.0) -> StationRig:
        """Start every service, wait for each to be ready, register at central, start sync."""
        plan = self.plan()
        for process in plan[:-1]:
            self.services[process.name] = process
            process.start(wait=0)
        for process in plan[:-1]:
            process.wait_healthy(timeout)
        token = register_station(self.url("central"), self.admin_token, self.station_id)
        # Registering again rotated the token; an operator's token installed in an earlier
        # run (sync's central-token file, which overrides the setting) is stale now.
        (self.data_dir / "sync" / "central-token").unlink(missing_ok=True)
        sync = self.plan(token)[-1]
        self.services[sync.name] = sync
        sync.start(wait=timeout)
        return self

    def stop(self) -> None:
        for process in reversed(list(self.services.values())):
            process.stop()

    def __iter__(self) -> Iterator[ServiceProcess]:
        return iter(self.services.values())

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]
