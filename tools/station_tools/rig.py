"""The station's service processes, planned from a layout: what ``station up`` and the
end-to-end tests both start.

One plan for both, so that the tests exercise exactly the processes, modules and settings
that a user runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from station_protocol.ids import Layout
from station_tools.ports import free_port
from station_tools.processes import ServiceProcess

DEFAULT_PORTS = {"verification": 8101, "billing": 8102}
COLLECTOR_PORT_BASE = 8120


@dataclass(frozen=True)
class Ports:
    """HTTP ports of the services; ``collector(i)`` for charger ``c<i>``."""

    verification: int = DEFAULT_PORTS["verification"]
    billing: int = DEFAULT_PORTS["billing"]
    collector_base: int = COLLECTOR_PORT_BASE
    collectors: tuple[int, ...] = ()

    @classmethod
    def free(cls, chargers: int) -> Ports:
        """Free loopback ports for everything (tests, several stations on one machine)."""
        return cls(
            verification=free_port(),
            billing=free_port(),
            collectors=tuple(free_port() for _ in range(chargers)),
        )

    def collector(self, index: int) -> int:
        if self.collectors:
            return self.collectors[index - 1]
        return self.collector_base + index


@dataclass
class StationRig:
    broker_url: str
    layout: Layout
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    t1: float = 1.0
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Extra settings per service name (``verification``, ``billing``, ``collector``)."""
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        port = {"verification": self.ports.verification, "billing": self.ports.billing}[service]
        return f"http://127.0.0.1:{port}"

    def collector_url(self, charger: str) -> str:
        return f"http://127.0.0.1:{self.ports.collector(int(charger[1:]))}"

    def plan(self) -> list[ServiceProcess]:
        logs = self.data_dir / "logs"
        plan = [
            self._service("verification", "STATION_VERIFICATION_", self.ports.verification, logs),
            self._service("billing", "STATION_BILLING_", self.ports.billing, logs),
        ]
        for index, charger in enumerate(self.layout.charger_ids(), start=1):
            port = self.ports.collector(index)
            process = self._service("collector", "STATION_COLLECTOR_", port, logs)
            process.name = f"collector-{charger}"
            process.env.update(
                {
                    "STATION_COLLECTOR_CHARGER": charger,
                    "STATION_COLLECTOR_PILES": str(self.layout.piles_per_charger),
                    "STATION_COLLECTOR_T1": str(self.t1),
                }
            )
            plan.append(process)
        return plan

    def _service(self, name: str, prefix: str, port: int, logs: Path) -> ServiceProcess:
        env = {
            f"{prefix}BROKER": self.broker_url,
            f"{prefix}PORT": str(port),
            f"{prefix}DATA_DIR": str(self.data_dir / name),
            **{f"{prefix}{key.upper()}": value for key, value in self.env.get(name, {}).items()},
        }
        return ServiceProcess(
            name=name,
            module=f"station_{name}",
            env=env,
            log_dir=logs,
            health_url=f"http://127.0.0.1:{port}/ready",
        )

    def start(self) -> StationRig:
        """Start every service, in order, each healthy before the next."""
        for process in self.plan():
            self.services[process.name] = process
            process.start()
        return self

    def stop(self) -> None:
        for process in reversed(list(self.services.values())):
            process.stop()

    def __iter__(self) -> Iterator[ServiceProcess]:
        return iter(self.services.values())

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]
