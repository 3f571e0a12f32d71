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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import TextIO

import aiomqtt
import httpx

from station_protocol.central import CentralPaths
from station_protocol.ids import Layout
from station_protocol.plausibility import DEFAULT_RATED_POWER
from station_runtime.bus import BrokerAddress
from station_tools import children
from station_tools.admin_token import (
    ADMIN_TOKEN_ENV,
    AdminToken,
    AdminTokenError,
    central_admin_token,
)
from station_tools.backup import Schedule
from station_tools.demo_cards import DEMO_CARDS, seed_cards
from station_tools.mosquitto import Mosquitto
from station_tools.ports import free_port, port_in_use
from station_tools.processes import ServiceProcess
from station_tools.rig import Ports, StationRig
from station_tools.simulator import SimulatorOptions
from station_tools.simulator.control import wait_simulator_online
from station_tools.station_file import ServiceEntry, StationFile, StationState

HEALTH_TIMEOUT = 60.0
SIMULATOR_TIMEOUT = 30.0
WATCH_INTERVAL = 0.5
BACKUP_GRACE = 60.0
"""Seconds a stopping station waits for a scheduled backup under way to be written."""
SIMULATOR = "simulator"


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
    backup_every: float | None = None
    """Seconds between backups of the station's databases; ``None``: no schedule."""
    backup_keep: int = 7
    backup_dir: Path | None = None
    """Where the scheduled backups go; default ``<data dir>/backups``."""

    def backups(
        self, say: Callable[[str], None], complain: Callable[[str], None]
    ) -> Schedule | None:
        """The backup schedule, if one was asked for (and there are services to back up)."""
        if self.backup_every is None or not self.services:
            return None
        return Schedule(
            data_dir=self.data_dir,
            out_dir=self.backup_dir or self.data_dir / "backups",
            every=self.backup_every,
            keep=self.backup_keep,
            say=say,
            complain=complain,
            station_id=self.rig().station_id,
        )

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def rig(
        self,
        broker: BrokerAddress | str = "mqtt://127.0.0.1:1883",
        admin_token: str | None = None,
    ) -> StationRig:
        """The station's services as the rig plans them (the same plan the tests run);
        central's admin token is a throwaway one unless given."""
        rig = StationRig(
            broker_url=str(broker),
            layout=self.layout,
            data_dir=self.data_dir.resolve(),
            ports=Ports.shifted(self.port_offset),
            t1=self.t1,
            t2=self.t2,
            rated_power=self.rated_power,
        )
        return rig if admin_token is None else replace(rig, admin_token=admin_token)

    def admin_token(self) -> AdminToken:
        """Central's admin token: ``STATION_CENTRAL_ADMIN_TOKEN``, else the one kept in
        ``<data dir>/central/admin-token`` (made at the first start)."""
        return central_admin_token(self.data_dir.resolve() / "central")

    @property
    def rated_power(self) -> Decimal | None:
        """The simulated piles draw their power ``speedup`` times over in real time: the
        collectors and billing must rate them so, or every reading would be implausible."""
        drawn = SimulatorOptions().power * self.speedup
        return drawn * 2 if self.simulator and drawn * 2 > DEFAULT_RATED_POWER else None

    def port_of(self, name: str) -> int | None:
        """The HTTP port of the process called ``name``, if it has one."""
        return self.rig().port_of(name)

    def ports(self) -> dict[str, int]:
        """Every fixed port the plan needs, by the part that needs it."""
        return self.rig().all_ports() if self.services else {}

    def simulator_process(self, broker: BrokerAddress, instance: str) -> ServiceProcess:
        return ServiceProcess(
            name=SIMULATOR,
            module="station_tools.simulator",
            env={
                "STATION_SIMULATOR_BROKER": str(broker),
                "STATION_SIMULATOR_LAYOUT": str(self.layout),
                "STATION_SIMULATOR_SPEEDUP": str(self.speedup),
                "STATION_SIMULATOR_INSTANCE": instance,
            },
            log_dir=self.logs,
        )


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
        self.admin: AdminToken | None = None
        """Central's admin token, once the services are planned."""
        self.stop_signal: int | None = None
        """The SIGINT or SIGTERM that asked the station to stop."""
        self.stopping = False
        """Set once the station stops: further signals are ignored."""
        self.backups = plan.backups(self.say, self.complain)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def complain(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(self) -> int:
        """Exit code 0 after SIGINT (Ctrl-C) or SIGTERM (``station down``), at any moment:
        during the start as well as once the station runs, every part started so far is
        stopped and the station file removed; 1 if a part failed to start or died."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for sig in previous:
                signal.signal(sig, self._on_signal)
            problem = self.preflight()
            if problem is not None:
                print(f"station up: {problem}", file=sys.stderr, flush=True)
                return 1
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
                self.stopping = True
                self.stop()
        except StopRequested:
            return 0  # before anything was started
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT or SIGTERM: raise :class:`StopRequested` once, never while a child is
        being spawned (it is raised right after) nor while the station stops."""
        if self.stopping or self.stop_signal is not None or children.defer(signum):
            return
        self.stop_signal = signum
        raise StopRequested(signum)

    def check_stop(self) -> None:
        """Raise :class:`StopRequested` again if the signal came where it was swallowed (a
        background task of an event loop keeps the exception to itself)."""
        if self.stop_signal is not None and not self.stopping:
            raise StopRequested(self.stop_signal)

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
        if plan.services:
            try:
                self.admin = plan.admin_token()
            except AdminTokenError as exc:
                raise StartFailure(str(exc)) from None
        rig = plan.rig(broker, self.admin.value if self.admin else None)
        if plan.services:
            try:
                rig.start(HEALTH_TIMEOUT)
            except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
                raise StartFailure(f"a service did not start:\n{exc}") from None
            finally:
                self.processes.extend(rig)
        self.check_stop()
        if plan.simulator:
            self.start_simulator(broker)
        if plan.services:
            self.cards = seed_cards(f"{rig.url('verification')}/api/v1")
        self.check_stop()
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
            online = False
            if not simulator.running():
                raise StartFailure(f"the simulator exited:\n{simulator.tail_log()}")
            with contextlib.suppress(aiomqtt.MqttError):
                online = asyncio.run(wait_simulator_online(broker, instance, 1.0))
            self.check_stop()
            if online:
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
        """The one screen a person needs: the board first (what most come for), then where
        everything else is and what to type next."""
        plan = self.plan
        say = self.say
        layout = plan.layout
        board = self.url_of("console")
        if board is not None:
            say(f"Board: {board}/")
            say()
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
        if self.backups is not None:
            say(
                f"  {'backups':<16}every {self.backups.every:g} s into {self.backups.out_dir}/"
                f" (newest {self.backups.keep} kept)"
            )
        self.announce_cards()
        self.announce_central()
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

    def announce_cards(self) -> None:
        if not self.cards:
            return
        self.say()
        self.say("Demo cards")
        for card in DEMO_CARDS:
            note = f"  ({card.note})" if card.note else ""
            self.say(
                f"  {card.uid:<12}{card.holder:<16}balance {card.balance}{note}"
                f"  [{self.cards.get(card.uid, '?')}]"
            )

    def announce_central(self) -> None:
        """Ready-to-paste ``curl`` lines for the records synced to central: the admin token
        is read from where it is kept, so it never shows on the screen or in a log."""
        central = self.url_of("central")
        if central is None or self.admin is None:
            return
        where = self.admin.file or f"${ADMIN_TOKEN_ENV}"
        station = self.plan.rig().station_id
        auth = f"curl -sH {self.admin.header()}"
        self.say()
        self.say(f"Central's records (admin token in {where})")
        self.say(f"  {auth} {central}{CentralPaths.STATIONS}")
        self.say(f'  {auth} "{central}{CentralPaths.RECORDS}?station_id={station}"')
        self.say(
            f'  {auth} -o records.csv "{central}{CentralPaths.RECORDS_CSV}?station_id={station}"'
        )

    def url_of(self, name: str) -> str | None:
        """The base URL of the started process called ``name``, if it runs one."""
        for process in self.processes:
            if process.name == name:
                return base_url(process)
        return None

    def watch(self) -> int:
        """Sleep until a part dies; then say which, show its log, and ask for exit code 1."""
        while True:
            time.sleep(WATCH_INTERVAL)
            self.check_stop()
            if self.backups is not None:
                self.backups.tick()
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
        """Stop every part: the services (each says it stops on purpose), then the simulator,
        the broker last.

        Not the simulated piles first: bridges that vanish under running collectors would be
        announced as offline, and their bulletins left on the board for the next start.
        """
        if self.backups is not None:
            self.backups.wait(BACKUP_GRACE)
        running = [p for p in reversed(self.processes) if p.running()]
        services = [p for p in running if p.name != SIMULATOR]
        for process in services:
            process.signal(signal.SIGTERM)
        for process in services:
            process.stop()
        for process in reversed(self.processes):
            process.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop()
        StationFile.remove(self.plan.data_dir)
        if self.broker is not None:
            self.say("Station stopped.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
