"""Benchmark: the board of a busy station, live.

Every pile of a 4 x 12 station charges and its collector republishes its status once a
second (what collectors do while energy flows). A real mosquitto and a real console
process; the board is followed as the page follows it, over ``/api/v1/events``. For every
status published, the time from the publish on the broker to the ``pile`` event that shows
its energy is measured; with ``--browser`` also to the moment the open board page in a real
Chromium shows it in the pile's tile. Prints p50/p99/max of each and the console's CPU.

    python tools/bench/bench_console.py [--seconds 60] [--chargers 4] [--piles 12] [--browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import PileBoardState, PileStatus, ServiceStatus
from station_protocol.zigbee import OnlineState
from station_tools.browser import CHROMIUM, CHROMIUM_ARGS
from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess

POWER = Decimal("60.0")
STEP = Decimal("0.017")
"""kWh a 60 kW pile delivers in about a second."""


@dataclass
class Latencies:
    """Publish times by (pile, energy), and how long each took to reach each observer."""

    sent: dict[tuple[str, str], float] = field(default_factory=dict)
    events: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)

    def seen(self, pile: str, energy: str, at: float, into: list[float]) -> None:
        published = self.sent.get((pile, energy))
        if published is not None:
            into.append((at - published) * 1000)


def cpu_seconds(process: ServiceProcess) -> float:
    """User + system CPU time the process has used so far (Linux ``/proc``)."""
    if process.pid is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(pile: str, charger: str, energy: Decimal) -> PileStatus:
    return PileStatus(
        pile_id=pile,
        charger=charger,
        state=PileBoardState.CHARGING,
        power=POWER,
        energy=energy,
        session_energy=energy,
        linkquality=120,
        last_seen=datetime.now(UTC),
        session_id=None,
        updated_at=datetime.now(UTC),
    )


async def publish(broker: Mosquitto, layout: Layout, seconds: float, lat: Latencies) -> int:
    """Each pile's status once a second, spread over the second as real collectors' are."""
    piles = layout.pile_ids()
    energy = dict.fromkeys(piles, Decimal(0))
    count = 0
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-collectors") as bus:
        for charger in layout.charger_ids():
            online = ServiceStatus(state=OnlineState.ONLINE, service="collector", charger=charger)
            topic = channels.COLLECTOR_STATUS.topic(charger=charger)
            await bus.publish(topic, channels.COLLECTOR_STATUS.encode(online), qos=1, retain=True)
        start = time.monotonic()
        gap = 1.0 / len(piles)
        while time.monotonic() < start + seconds:
            for pile in piles:
                await asyncio.sleep(max(0.0, start + count * gap - time.monotonic()))
                energy[pile] += STEP
                message = status(pile, pile.split("-")[0], energy[pile])
                lat.sent[(pile, str(energy[pile]))] = time.time()
                topic = channels.PILE_STATUS.topic(pile=pile)
                payload = channels.PILE_STATUS.encode(message)
                await bus.publish(topic, payload, qos=1, retain=True)
                count += 1
    return count


async def follow_events(url: str, lat: Latencies, stop: asyncio.Event) -> None:
    """Read the board's event stream as the page does; note when each energy arrives."""
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{url}/api/v1/events") as stream,
    ):
        event = ""
        async for line in stream.aiter_lines():
            if stop.is_set():
                return
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "pile":
                view: dict[str, Any] = json.loads(line[5:])
                if view.get("session_energy_kwh") is not None:
                    energy = str(Decimal(view["session_energy_kwh"]))
                    lat.seen(view["id"], energy, time.time(), lat.events)


async def follow_page(url: str, lat: Latencies, stop: asyncio.Event) -> None:
    """The board page in a real Chromium: a MutationObserver stamps each tile's new energy."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.goto(url)
        await page.wait_for_selector("[data-pile]")
        await page.evaluate(
            """() => {
                window.benchSeen = [];
                new MutationObserver(() => {
                    const at = Date.now();
                    for (const tile of document.querySelectorAll('[data-pile]')) {
                        const kwh = tile.getAttribute('data-session-energy');
                        if (kwh && tile.dataset.benchLast !== kwh) {
                            tile.dataset.benchLast = kwh;
                            window.benchSeen.push([tile.getAttribute('data-pile'), kwh, at]);
                        }
                    }
                }).observe(document.body, {subtree: true, attributes: true, childList: true,
                                           characterData: true});
            }"""
        )
        while not stop.is_set():
            await asyncio.sleep(0.5)
            seen = await page.evaluate("() => window.benchSeen.splice(0)")
            for pile, kwh, at in seen:
                lat.seen(pile, str(Decimal(kwh)), at / 1000, lat.page)
        await browser.close()


def figures(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: nothing measured"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name}: {len(values)} changes, p50 {statistics.median(ordered):.1f} ms, "
        f"p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    layout = Layout(args.chargers, args.piles)
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    with Mosquitto(data_dir=work / "broker") as broker:
        console = ServiceProcess.station_service(
            "console", broker=broker.url, work=work, layout=str(layout), log_level="WARNING"
        )
        console.start()
        try:
            url = console.base_url
            lat, stop = Latencies(), asyncio.Event()
            followers = [asyncio.create_task(follow_events(url, lat, stop))]
            if args.browser:
                followers.append(asyncio.create_task(follow_page(url, lat, stop)))
            await asyncio.sleep(2.0)  # the stream and the page are open
            cpu_before, wall_before = cpu_seconds(console), time.monotonic()
            published = await publish(broker, layout, args.seconds, lat)
            await asyncio.sleep(1.0)
            cpu = cpu_seconds(console) - cpu_before
            wall = time.monotonic() - wall_before
            stop.set()
            await asyncio.wait(followers, timeout=5)
            for task in followers:
                task.cancel()
        finally:
            console.stop()
    print(f"station {layout} ({len(layout.pile_ids())} piles), {published} statuses published")
    print(f"{published / args.seconds:.0f} statuses/s for {args.seconds:.0f} s")
    print(figures("broker -> board event", lat.events))
    if args.browser:
        print(figures("broker -> board page (Chromium)", lat.page))
    print(f"console CPU: {100 * cpu / wall:.1f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chargers", type=int, default=4)
    parser.add_argument("--piles", type=int, default=12)
    parser.add_argument("--browser", action="store_true", help="also measure the page")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
