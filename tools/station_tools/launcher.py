"""``station up``: the whole station on one machine, started and stopped as one thing.

Every part is a real child process (mosquitto, each service, the simulator), started the way
a container starts it (``python -m <module>`` and ``STATION_<SERVICE>_*`` variables), so the
laptop station fails the way the cluster one does. One part that dies stops the whole
station with exit code 1: a half-running station on a laptop only hides the bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import TextIO

import aiomqtt
import httpx

from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_tools.demo_cards import DEMO_CARDS, seed_cards
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port
from station_tools.processes import ServiceProcess
from station_tools.rig import Ports, StationRig
from station_tools.simulator.control import wait_simulator_online
from station_tools.station_file import ServiceEntry, StationFile, StationState

HEALTH_TIMEOUT = 60.0
SIMULATOR_TIMEOUT = 30.0
WATCH_INTERVAL = 0.5


class StopRequested(BaseException):
    """SIGINT or SIGTERM: a BaseException, so that no ``except Exception`` swallows it."""


class StartFailure(Exception):
    """A part of the station did not come up; the message says which and why."""


@dataclass(frozen=True)
class StationPlan:
    """What ``station up`` starts, decided from the command line before anything runs."""

    data_dir: Path
    layout: Layout
    broker: BrokerAddress | None = None
    """An existing broker; ``None`` starts an embedded mosquitto."""
    simulator: bool = True
    services: bool = True
    t1: float = 1.0
    t2: float = 60.0
    speedup: Decimal = Decimal(1)
    port_offset: int = 0

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def rig(self, broker: BrokerAddress | str = "mqtt://127.0.0.1:1883") -> StationRig:
        """The station's services as the rig plans them (the same plan the tests run)."""
        return StationRig(
            broker_url=str(broker),
            layout=self.layout,
            data_dir=self.data_dir.resolve(),
            ports=Ports.shifted(self.port_offset),
            t1=self.t1,
            t2=self.t2,
        )

    def port_of(self, name: str) -> int | None:
        """The HTTP port of the process called ``name``, if it has one."""
        return self.rig().port_of(name)

    def ports(self) -> dict[str, int]:
        """Every fixed port the plan needs, by the part that needs it."""
        return self.rig().all_ports() if self.services else {}

    def simulator_process(self, broker: BrokerAddress, instance: str) -> ServiceProcess:
        return ServiceProcess(
            name="simulator",
            module="station_tools.simulator",
            env={
                "STATION_SIMULATOR_BROKER": str(broker),
                "STATION_SIMULATOR_LAYOUT": str(self.layout),
                "STATION_SIMULATOR_SPEEDUP": str(self.speedup),
                "STATION_SIMULATOR_INSTANCE": instance,
            },
            log_dir=self.logs,
        )


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def reachable(broker: BrokerAddress) -> bool:
    try:
        with socket.create_connection((broker.host, broker.port), timeout=2):
            return True
    except OSError:
        return False


def base_url(process: ServiceProcess) -> str | None:
    if process.health_url is None:
        return None
    return process.health_url.rsplit("/", 1)[0]


class Launcher:
    """Runs a :class:`StationPlan` until a signal (exit 0) or until a part dies (exit 1)."""

    def __init__(self, plan: StationPlan, out: TextIO | None = None) -> None:
        self.plan = plan
        self.out = out or sys.stdout
        self.broker: BrokerAddress | None = plan.broker
        self.mosquitto: Mosquitto | None = None
        self.processes: list[ServiceProcess] = []
        self.started_at = datetime.now(UTC)
        self.cards: dict[str, str] = {}

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> int:
        problem = self.preflight()
        if problem is not None:
            print(f"station up: {problem}", file=sys.stderr, flush=True)
            return 1
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, _raise_stop)
        try:
            self.start()
            self.announce()
            return self.watch()
        except StopRequested:
            self.say("\nStopping the station ...")
            return 0
        except StartFailure as exc:
            print(f"station up: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def preflight(self) -> str | None:
        """Why the plan cannot start here, or ``None``: checked before anything is started."""
        running = StationFile.read(self.plan.data_dir)
        if running is not None and running.launcher_alive():
            return (
                f"a station already runs from {self.plan.data_dir} (pid {running.launcher_pid}); "
                f"stop it with `station down --data-dir {self.plan.data_dir}`"
            )
        broker = self.plan.broker
        if broker is not None and not reachable(broker):
            return f"cannot reach the broker {broker}"
        for part, port in self.plan.ports().items():
            if port_in_use(port):
                return (
                    f"port {port} for {part} is already in use; stop what listens there "
                    "or move the station's ports with --port-offset"
                )
        return None

    def start(self) -> None:
        plan = self.plan
        plan.logs.mkdir(parents=True, exist_ok=True)
        broker = self.start_broker()
        self.write_station_file(StationState.STARTING)
        rig = plan.rig(broker)
        if plan.services:
            try:
                rig.start(HEALTH_TIMEOUT)
            except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
                raise StartFailure(f"a service did not start:\n{exc}") from None
            finally:
                self.processes.extend(rig)
        if plan.simulator:
            self.start_simulator(broker)
        if plan.services:
            self.cards = seed_cards(f"{rig.url('verification')}/api/v1")
        self.write_station_file(StationState.RUNNING)

    def start_broker(self) -> BrokerAddress:
        if self.broker is None:
            self.mosquitto = Mosquitto(port=free_port(), data_dir=self.plan.data_dir / "mosquitto")
            try:
                self.mosquitto.start()
            except (RuntimeError, FileNotFoundError) as exc:
                raise StartFailure(str(exc)) from None
            self.broker = BrokerAddress.parse(self.mosquitto.url)
        return self.broker

    def start_simulator(self, broker: BrokerAddress) -> None:
        instance = uuid.uuid4().hex
        simulator = self.plan.simulator_process(broker, instance)
        self.processes.append(simulator)
        simulator.start(wait=0)
        deadline = SIMULATOR_TIMEOUT
        while deadline > 0:
            if not simulator.running():
                raise StartFailure(f"the simulator exited:\n{simulator.tail_log()}")
            with contextlib.suppress(aiomqtt.MqttError):
                if asyncio.run(wait_simulator_online(broker, instance, 1.0)):
                    return
            deadline -= 1.0
        raise StartFailure(f"the simulator did not come online:\n{simulator.tail_log()}")

    def write_station_file(self, state: StationState) -> None:
        assert self.broker is not None
        entries = [
            ServiceEntry(
                name=p.name,
                url=base_url(p),
                port=self.plan.port_of(p.name),
                pid=p.pid,
                log=str(p.log_file),
            )
            for p in self.processes
        ]
        if self.mosquitto is not None:
            entries.insert(
                0,
                ServiceEntry(
                    name="mosquitto",
                    port=self.mosquitto.port,
                    pid=self.mosquitto.process.pid if self.mosquitto.process else None,
                    log=str(self.mosquitto.log_file),
                ),
            )
        StationFile(
            state=state,
            broker=str(self.broker),
            launcher_pid=os.getpid(),
            started_at=self.started_at,
            layout=str(self.plan.layout) if self.plan.simulator else None,
            t1=self.plan.t1,
            t2=self.plan.t2,
            speedup=str(self.plan.speedup),
            services=entries,
        ).write(self.plan.data_dir)

    def announce(self) -> None:
        """The one screen a person needs: where everything is and what to type next."""
        plan = self.plan
        say = self.say
        layout = plan.layout
        say(
            f"Station up: {_count(layout.chargers, 'charger')} x "
            f"{_count(layout.piles_per_charger, 'pile')}"
            f"{' (simulated)' if plan.simulator else ''}, data in {plan.data_dir}"
        )
        say()
        say(f"  {'broker':<16}{self.broker}{'  (embedded mosquitto)' if self.mosquitto else ''}")
        for process in self.processes:
            url = base_url(process)
            if url is None:
                say(f"  {process.name:<16}running (log {process.log_file})")
                continue
            api = f"{url}/api/v1" if not process.name.startswith("collector") else url
            say(f"  {process.name:<16}{api:<34} docs {url}/docs   metrics {url}/metrics")
        say(f"  {'logs':<16}{plan.logs}/")
        say(f"  {'T1 / T2':<16}{plan.t1:g} s / {plan.t2:g} s")
        if self.cards:
            say()
            say("Demo cards")
            for card in DEMO_CARDS:
                note = f"  ({card.note})" if card.note else ""
                say(
                    f"  {card.uid:<12}{card.holder:<16}balance {card.balance}{note}"
                    f"  [{self.cards.get(card.uid, '?')}]"
                )
        data = f" --data-dir {plan.data_dir}" if plan.data_dir != Path(".station") else ""
        if plan.simulator:
            pile = layout.pile_ids()[0]
            say()
            say("Try")
            say(f"  station pile plug {pile}{data}")
            say(f"  station pile swipe {pile} DEMO-0001{data}     (swipe again to stop)")
            say(f"  station pile unplug {pile}{data}")
        say()
        say(f"Ctrl-C here (or `station down{data}`) stops the station.")

    def watch(self) -> int:
        """Sleep until a part dies; then say which, show its log, and ask for exit code 1."""
        while True:
            time.sleep(WATCH_INTERVAL)
            if self.mosquitto is not None and (
                self.mosquitto.process is None or self.mosquitto.process.poll() is not None
            ):
                self.report_death("mosquitto", None, _tail(self.mosquitto.log_file))
                return 1
            for process in self.processes:
                if not process.running():
                    code = process.process.returncode if process.process else None
                    self.report_death(process.name, code, process.tail_log())
                    return 1

    def report_death(self, name: str, code: int | None, tail: str) -> None:
        exit_code = f" with exit code {code}" if code is not None else ""
        print(
            f"\nstation up: {name} stopped{exit_code}; the last lines of its log:",
            file=sys.stderr,
            flush=True,
        )
        print(tail, file=sys.stderr, flush=True)
        print("station up: stopping the station.", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop every part, the simulator and collectors first, the broker last."""
        running = [p for p in reversed(self.processes) if p.running()]
        for process in running:
            process.signal(signal.SIGTERM)
        for process in reversed(self.processes):
            process.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop()
        StationFile.remove(self.plan.data_dir)
        if self.broker is not None:
            self.say("Station stopped.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signum)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
