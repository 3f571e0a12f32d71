"""Benchmark: how soon a disconnect is a bulletin on the broker (invariant 4 of
``docs/invariants.md``).

A real station: mosquitto, every service as a process, 4 x 12 simulated piles, T1 = 1 s,
misses 3. It induces disconnects of four kinds and times each from its start to the moment
the bulletin arrives on the retained bulletin topic (as a board subscribed to it sees it):

* a silent pile: from the pile's last answered breath (its last ``breath_ack`` on the
  broker, as the collector saw it); bound misses x T1 + 100 ms;
* a pile Zigbee2MQTT marks offline (the pile silent too): from the availability message;
  bound "at once" + 100 ms;
* a killed collector (SIGKILL, its socket closes, the broker sends its last will): from the
  kill; bound "at once" + 100 ms;
* a hung collector (SIGSTOP, its socket stays open): from the stop; bound 1.5 x keep-alive
  + 100 ms. Its last will (the keep-alive path) is timed too, for the record.

Many pile disconnects run at once over the 48 piles; each collector is killed or hung in
turn (each takes seconds: a restart, a keep-alive), the four collectors side by side. Then
the CPU that the collectors and the faults service use over a steady minute with every pile
breathing. Prints p50/p99 next to each bound.

    uv run python tools/bench/bench_detection.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.faults import FaultCode
from station_protocol.ids import Layout, charger_of
from station_protocol.zigbee import BridgeState, OnlineState, encode
from station_runtime.bus import BrokerAddress
from station_tools.bulletins import BulletinFeed
from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions

LAYOUT = Layout(4, 12)
UNREACHABLE = FaultCode.PILE_UNREACHABLE.value
OFFLINE = FaultCode.COLLECTOR_OFFLINE.value
SLACK = 0.1
"""The 100 ms every bound allows for the bulletin to be out."""
SETTLE = 0.3
RESTARTS = 5


# -- what was measured --------------------------------------------------------------------------


@dataclass
class Kind:
    name: str
    bound: float | None
    """``None``: timed for the record, not held to a bound."""
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    notes: list[str] = field(default_factory=list)

    def over(self, latency: float) -> bool:
        return self.bound is not None and latency > self.bound

    def row(self) -> str:
        n = len(self.latencies)
        if not n:
            return f"{self.name:<34} {0:>4}  (no sample; {self.failures} failed)"
        head = (
            f"{self.name:<34} {n:>4}  {_ms(percentile(self.latencies, 50))}"
            f"  {_ms(percentile(self.latencies, 99))}  {_ms(max(self.latencies))}"
        )
        if self.bound is None:
            return f"{head}  {'(record)':>11}  {'-':>9} {self.failures:>3}"
        within = sum(1 for latency in self.latencies if latency <= self.bound)
        return f"{head}  {_ms(self.bound)}  {within:>4}/{n:<4} {self.failures:>3}"


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least ``p`` % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:>8.0f} ms"


# -- what the bench watches on the broker ------------------------------------------------------


class Answers:
    """When each pile last answered a breath, as the collector sees it: a new ``breath_ack``."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.broker = broker
        self.last: dict[str, float] = {}
        self._acks: dict[str, object] = {}

    async def run(self, ready: asyncio.Event) -> None:
        """``ready`` once every pile has answered since the subscription."""
        piles = set(LAYOUT.pile_ids())
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            for charger in LAYOUT.charger_ids():
                await client.subscribe(
                    ZigbeeChannels.for_charger(charger).pile_state.filter(), qos=0
                )
            async for message in client.messages:
                at = time.monotonic()
                pile = message.topic.value.rsplit("/", 1)[-1]
                payload = message.payload if isinstance(message.payload, bytes) else b""
                with contextlib.suppress(ValueError):
                    ack = json.loads(payload).get("breath_ack")
                    if ack is not None and ack != self._acks.get(pile):
                        self._acks[pile] = ack
                        self.last[pile] = at
                if not ready.is_set() and piles <= self.last.keys():
                    ready.set()


class Statuses:
    """Live ``offline`` statuses of the collectors (their last wills), by arrival time."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.broker = broker
        self.offline: dict[str, list[float]] = {}

    async def run(self, ready: asyncio.Event) -> None:
        async with aiomqtt.Client(
            self.broker.host, self.broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.subscribe(channels.COLLECTOR_STATUS.filter(), qos=1)
            ready.set()
            async for message in client.messages:
                at = time.monotonic()
                charger = channels.COLLECTOR_STATUS.param(message.topic.value, "charger")
                payload = message.payload if isinstance(message.payload, bytes) else b""
                if charger and not message.retain and b'"offline"' in payload:
                    self.offline.setdefault(charger, []).append(at)

    async def will_after(self, charger: str, start: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at in self.offline.get(charger, []):
                if at >= start:
                    return at
            await asyncio.sleep(0.02)
        return None


@contextlib.asynccontextmanager
async def watching(
    *runners: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    tasks = []
    for runner in runners:
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(runner(ready)))
        await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- the station --------------------------------------------------------------------------------


async def piles_up(rig: StationRig, chargers: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                views = [
                    (await client.get(f"{rig.collector_url(c)}/api/v1/piles")).json()
                    for c in chargers
                ]
                if all(pile["up"] for view in views for pile in view):
                    return
            except (httpx.HTTPError, ValueError, TypeError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"piles of {chargers} not up after {timeout} s")
            await asyncio.sleep(0.2)


def cpu_seconds(process: ServiceProcess) -> float:
    """User + system CPU time the process has used so far (Linux ``/proc``)."""
    if process.pid is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def steady_cpu(rig: StationRig, seconds: float) -> dict[str, float]:
    """CPU seconds per wall second of each collector and of the faults service."""
    names = [f"collector-{charger}" for charger in LAYOUT.charger_ids()] + ["faults"]
    before = {name: cpu_seconds(rig[name]) for name in names}
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    return {name: (cpu_seconds(rig[name]) - before[name]) / wall for name in names}


# -- pile disconnects ---------------------------------------------------------------------------


@dataclass
class PileBench:
    sim: Simulator
    feed: BulletinFeed
    answers: Answers
    zigbee2mqtt: aiomqtt.Client
    rng: random.Random
    free: set[str] = field(default_factory=lambda: set(LAYOUT.pile_ids()))
    freed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, kind: Kind, count: int, spacing: float, by_availability: bool) -> None:
        tasks = []
        for _ in range(count):
            while not self.free:
                self.freed.clear()
                await self.freed.wait()
            pile = self.rng.choice(sorted(self.free))
            self.free.discard(pile)
            tasks.append(asyncio.create_task(self._one(kind, pile, by_availability)))
            await asyncio.sleep(spacing * self.rng.uniform(0.5, 1.5))
        await asyncio.gather(*tasks)

    async def _one(self, kind: Kind, pile: str, by_availability: bool) -> None:
        mark = self.feed.mark()
        try:
            await self.sim.silence(pile)
            if by_availability:
                started = time.monotonic()
                await self._availability(pile, OnlineState.OFFLINE)
            event = await self.feed.raised(pile, UNREACHABLE, after=mark, timeout=15)
            if not by_availability:
                # Its last answer before it fell silent: none can come after the silence.
                started = self.answers.last[pile]
            kind.latencies.append(event.at - started)
            if kind.over(event.at - started):
                kind.notes.append(
                    f"over the bound: {pile} {event.at - started:.3f} s, "
                    f"at {datetime.now(UTC):%H:%M:%S.%f} UTC"
                )
            await self.sim.revive(pile)
            if by_availability:
                await self._availability(pile, OnlineState.ONLINE)
            await self.feed.withdrawn(pile, UNREACHABLE, after=mark, timeout=15)
        except (AssertionError, KeyError) as exc:
            kind.failures += 1
            kind.notes.append(f"failed: {pile}: {exc}"[:200])
            await self.sim.revive(pile)
            if by_availability:
                await self._availability(pile, OnlineState.ONLINE)
            await asyncio.sleep(5)
        self.free.add(pile)
        self.freed.set()

    async def _availability(self, pile: str, state: OnlineState) -> None:
        topic = ZigbeeChannels.for_charger(charger_of(pile)).pile_availability.topic(pile=pile)
        await self.zigbee2mqtt.publish(topic, encode(BridgeState(state=state)), qos=1, retain=True)


# -- collector disconnects ----------------------------------------------------------------------


@dataclass
class CollectorBench:
    rig: StationRig
    feed: BulletinFeed
    statuses: Statuses
    keepalive: int
    rng: random.Random
    reasons: dict[str, int] = field(default_factory=dict)
    quiet: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by a collector's restart and by a kill until its bulletin: on the bench's one
    machine, four Python processes starting at once would starve the faults service, which
    a real station (a collector per charger cabinet) never does to it."""

    async def kills(self, kind: Kind, per_collector: int) -> None:
        async def kill(charger: str, process: ServiceProcess, mark: int) -> float:
            async with self.quiet:
                started = time.monotonic()
                process.kill()
                await self.feed.raised(charger, OFFLINE, after=mark, timeout=30)
                await asyncio.sleep(SETTLE)  # one collector death at a time, not a burst
                return started

        async with asyncio.TaskGroup() as group:
            for charger in LAYOUT.charger_ids():
                group.create_task(self._cycle(charger, per_collector, kind, kill))

    async def hangs(self, kind: Kind, will: Kind, per_collector: int) -> None:
        async def hang(charger: str, process: ServiceProcess, mark: int) -> float:
            return await self._hang(charger, process, mark, will)

        async with asyncio.TaskGroup() as group:
            for charger in LAYOUT.charger_ids():
                group.create_task(self._cycle(charger, per_collector, kind, hang))

    async def _cycle(
        self,
        charger: str,
        times: int,
        kind: Kind,
        disconnect: Callable[[str, ServiceProcess, int], Coroutine[Any, Any, float]],
    ) -> None:
        process = self.rig[f"collector-{charger}"]
        for _ in range(times):
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
            mark = self.feed.mark()
            try:
                started = await disconnect(charger, process, mark)
                event = await self.feed.raised(charger, OFFLINE, after=mark, timeout=30)
                kind.latencies.append(event.at - started)
                reason = event.bulletin.detail.get("reason", "?") if event.bulletin else "?"
                said = f"{kind.name.split(' (')[0].strip()}: {reason}"
                self.reasons[said] = self.reasons.get(said, 0) + 1
                if kind.over(event.at - started):
                    kind.notes.append(
                        f"over the bound: {charger} {event.at - started:.3f} s by {reason}, "
                        f"at {datetime.now(UTC):%H:%M:%S.%f} UTC"
                    )
            except AssertionError as exc:
                kind.failures += 1
                kind.notes.append(f"failed: {charger}: {exc}"[:200])
            finally:
                await self._revive(process)
            try:
                await self.feed.withdrawn(charger, OFFLINE, after=mark, timeout=30)
                await piles_up(self.rig, [charger])
            except (AssertionError, TimeoutError) as exc:
                kind.failures += 1
                kind.notes.append(f"failed: {charger} did not come back: {exc}"[:200])

    async def _hang(self, charger: str, process: ServiceProcess, mark: int, will: Kind) -> float:
        started = time.monotonic()
        process.signal(signal.SIGSTOP)
        # Keep it hung until its last will is out (or clearly is not coming), for the record.
        await self.feed.raised(charger, OFFLINE, after=mark, timeout=30)
        at = await self.statuses.will_after(charger, started, 1.5 * self.keepalive + 8)
        if at is None:
            will.failures += 1
        else:
            will.latencies.append(at - started)
        return started

    async def _revive(self, process: ServiceProcess) -> None:
        if process.running():
            process.signal(signal.SIGCONT)
            return
        async with self.quiet:
            for attempt in range(RESTARTS):
                try:
                    await asyncio.to_thread(process.start, 60)
                    return
                except RuntimeError:
                    # Its free port, picked at the start, can be taken by another program's
                    # outgoing connection while the collector is dead: try again.
                    if attempt == RESTARTS - 1:
                        raise
                    await asyncio.sleep(1.0)


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    silent: int
    availability: int
    kills_per_collector: int
    hangs_per_collector: int
    cpu_window: float
    spacing: float
    logs: Path | None = None
    """Keep the station's logs (and databases) here; a temporary folder otherwise."""


async def bench(plan: Plan, t1: float, misses: int, keepalive: int, seed: int) -> None:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="bench-detection-") as tmp,
        Mosquitto(data_dir=Path(tmp) / "broker") as broker,
    ):
        rig = StationRig(
            broker_url=broker.url,
            layout=LAYOUT,
            data_dir=plan.logs or Path(tmp) / "station",
            ports=Ports.free(LAYOUT.chargers),
            t1=t1,
            env={
                "collector": {"misses": str(misses), "keepalive": str(keepalive)},
                "faults": {"misses": str(misses)},
            },
        )
        began = time.monotonic()
        options = SimulatorOptions(meter_interval=1.0, speedup=Decimal(1))
        sim = Simulator(broker.url, LAYOUT, options)
        try:
            await asyncio.to_thread(rig.start, 120)
            await sim.__aenter__()
            await piles_up(rig, LAYOUT.charger_ids(), timeout=60)
            print(f"station up: {LAYOUT} piles in {time.monotonic() - began:.0f} s")
            await run_plan(
                plan, rig, sim, BrokerAddress.parse(broker.url), t1, misses, keepalive, rng
            )
        finally:
            await asyncio.to_thread(rig.stop)
            # A collector restart still under way in a worker thread (after a failure) would
            # outlive the rig: wait for it, then stop what it started.
            await asyncio.get_running_loop().shutdown_default_executor()
            rig.stop()
            await leave(sim)
    print(f"whole run: {time.monotonic() - began:.0f} s")


async def leave(sim: Simulator, timeout: float = 10.0) -> None:
    """Stop the simulated piles, giving up after ``timeout``: a bridge can hang in its
    shutdown, and the broker's end (which comes next) ends its connection anyway."""
    closing = asyncio.create_task(sim.__aexit__(None, None, None))
    done, _ = await asyncio.wait({closing}, timeout=timeout)
    if not done:
        print(f"(the simulator had not shut down after {timeout:g} s; the broker's end stops it)")


async def run_plan(
    plan: Plan,
    rig: StationRig,
    sim: Simulator,
    address: BrokerAddress,
    t1: float,
    misses: int,
    keepalive: int,
    rng: random.Random,
) -> None:
    await asyncio.sleep(misses * t1)  # past the start-up's own pile faults
    cpu = await steady_cpu(rig, plan.cpu_window)

    answers, statuses = Answers(address), Statuses(address)
    silent = Kind("silent pile (from last answer)", misses * t1 + SLACK)
    availability = Kind("Zigbee2MQTT offline (from message)", SLACK)
    killed = Kind("killed collector (SIGKILL)", SLACK)
    hung = Kind("hung collector (SIGSTOP)", 1.5 * keepalive + SLACK)
    # The broker's own keep-alive verdict comes later than the missed breaths (mosquitto
    # checks keep-alives on its own schedule): timed for the record, the bulletin is above.
    will = Kind("  its last will (keep-alive)", None)
    async with (
        BulletinFeed(str(address)) as feed,
        watching(answers.run, statuses.run),
        aiomqtt.Client(address.host, address.port) as zigbee2mqtt,
    ):
        piles = PileBench(sim, feed, answers, zigbee2mqtt, rng)
        phase = time.monotonic()
        await piles.run(silent, plan.silent, plan.spacing, by_availability=False)
        await piles.run(availability, plan.availability, plan.spacing, by_availability=True)
        pile_seconds = time.monotonic() - phase

        collectors = CollectorBench(rig, feed, statuses, keepalive, rng)
        mark, phase = feed.mark(), time.monotonic()
        await collectors.kills(killed, plan.kills_per_collector)
        await collectors.hangs(hung, will, plan.hangs_per_collector)
        collector_seconds = time.monotonic() - phase
        spurious = sorted(
            {event.key for event in feed.news_since(mark) if event.bulletin is not None}
            - {(charger, OFFLINE) for charger in LAYOUT.charger_ids()}
        )

    report(
        [silent, availability, killed, hung, will],
        cpu,
        plan,
        t1=t1,
        misses=misses,
        keepalive=keepalive,
        reasons=collectors.reasons,
        spurious=spurious,
        seconds=(pile_seconds, collector_seconds),
    )


def report(
    kinds: list[Kind],
    cpu: dict[str, float],
    plan: Plan,
    *,
    t1: float,
    misses: int,
    keepalive: int,
    reasons: dict[str, int],
    spurious: list[tuple[str, str]],
    seconds: tuple[float, float],
) -> None:
    print()
    print(
        f"Detection latency: {LAYOUT} piles, T1 = {t1:g} s, misses {misses}, collector "
        f"keep-alive {keepalive} s; until the bulletin is on the broker"
    )
    header = f"{'kind':<34} {'n':>4}  {'p50':>11}  {'p99':>11}  {'max':>11}  {'bound':>11}"
    print(f"{header}  {'within':>9} {'failed':>3}")
    for kind in kinds:
        print(kind.row())
    print(
        f"pile disconnects: {plan.silent} + {plan.availability}, started every "
        f"~{plan.spacing:g} s over the 48 piles, several at once ({seconds[0]:.0f} s)"
    )
    collectors = LAYOUT.chargers
    print(
        f"collector disconnects: {plan.kills_per_collector * collectors} kills and "
        f"{plan.hangs_per_collector * collectors} hangs ({plan.kills_per_collector} and "
        f"{plan.hangs_per_collector} per collector, the {collectors} side by side; a kill "
        f"never while another collector starts or dies) ({seconds[1]:.0f} s)"
    )
    print(f"collector bulletins said why: {dict(sorted(reasons.items()))}")
    print(f"other bulletins during the collector disconnects (should be none): {spurious}")
    for kind in kinds:
        for note in kind.notes[:5]:
            print(f"  {kind.name.strip()}: {note}")
    print()
    print(f"CPU over {plan.cpu_window:.0f} s of steady state (every pile breathing, no fault):")
    for name, share in cpu.items():
        print(f"  {name:<14} {share:.3f} CPU s per wall s ({share * 100:.1f} % of one core)")
    total = sum(share for name, share in cpu.items() if name.startswith("collector"))
    print(f"  collectors together {total:.3f}; faults {cpu['faults']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer disconnects, a 15 s window")
    parser.add_argument("--t1", type=float, default=1.0)
    parser.add_argument("--misses", type=int, default=3)
    parser.add_argument("--keepalive", type=int, default=2, help="the collectors' keep-alive")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--logs", type=Path, help="keep the station's logs in this folder")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    plan = (
        Plan(20, 20, 2, 2, cpu_window=15.0, spacing=0.35)
        if arguments.quick
        else Plan(100, 100, 25, 25, cpu_window=60.0, spacing=0.35)
    )
    if arguments.logs is not None:
        plan = replace(plan, logs=arguments.logs.resolve())
    asyncio.run(bench(plan, arguments.t1, arguments.misses, arguments.keepalive, arguments.seed))


if __name__ == "__main__":
    main()
