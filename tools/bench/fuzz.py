"""Benchmark-style fuzzing: hostile bus and REST input on a real station, with a large budget.

The same runs as ``tests/test_hostile_bus.py`` and ``tests/test_hostile_rest.py``
(``station_tools.hostile``, ``station_tools.hostile_rest``), each on a station of its own
(mosquitto, every service as a process, simulated piles), with budgets of their own:

* bus: hypothesis draws ``--bus-budget`` inputs for each channel a service reads (every
  ``station/v1`` channel, every charger's Zigbee2MQTT pile state, availability and bridge
  topics), plus the known attacks, and races as many forged replies against real requests,
  while drivers charge;
* REST: schemathesis draws ``--rest-budget`` positive and as many negative cases for every
  operation of every service's OpenAPI.

Prints the inputs per parser and the requests per endpoint, then the checks (services alive
and ready, no handler error or logged error, no 5xx, exact ledgers and billing, no session
left open, every pile still charging). Exits 1 if a check fails.

    uv run python tools/bench/fuzz.py [--bus-budget 200] [--rest-budget 50] [--only bus|rest]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx

from station_protocol.ids import Layout
from station_tools.hostile import hostile_bus
from station_tools.hostile_checks import Verdict, failed
from station_tools.hostile_rest import hostile_rest
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions

COLLECTOR = {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}
"""The end-to-end tests' collector settings, so that a run takes seconds, not minutes."""

Run = Callable[
    [StationRig, Simulator, httpx.Client, httpx.Client], Awaitable[tuple[str, list[Verdict]]]
]


SPEEDUP = Decimal(100)
"""Simulated seconds per real second, so that a run's charges move money quickly."""
RATED_POWER = Decimal(7) * SPEEDUP * 2
"""kW the collectors and billing rate the sped-up 7 kW piles at (twice what they draw),
or the meter rule would rightly refuse their readings as faster than a pile can charge."""


async def on_station(layout: Layout, work: Path, run: Run) -> tuple[str, list[Verdict]]:
    """``run`` on a fresh station in ``work``: broker, services, simulated piles."""
    with Mosquitto(data_dir=work / "broker") as broker:
        rig = StationRig(
            broker_url=broker.url,
            layout=layout,
            data_dir=work / "station",
            ports=Ports.free(layout.chargers),
            t2=1.0,
            rated_power=RATED_POWER,
            env={"collector": COLLECTOR},
        )
        try:
            rig.start()
            options = SimulatorOptions(meter_interval=0.1, speedup=SPEEDUP)
            async with Simulator(broker.url, layout, options) as piles:
                await every_pile_up(rig)
                with (
                    httpx.Client(base_url=rig.url("verification"), timeout=5) as verification,
                    httpx.Client(base_url=rig.url("billing"), timeout=5) as billing,
                ):
                    return await run(rig, piles, verification, billing)
        finally:
            rig.stop()


async def every_pile_up(rig: StationRig, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                views = [
                    (await client.get(f"{rig.collector_url(charger)}/api/v1/piles")).json()
                    for charger in rig.layout.charger_ids()
                ]
                if all(pile["up"] for view in views for pile in view):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("the piles did not come up")


async def bench(arguments: argparse.Namespace) -> int:
    layout = Layout.parse(arguments.layout)
    results: list[Verdict] = []

    async def bus(
        rig: StationRig, piles: Simulator, verification: httpx.Client, billing: httpx.Client
    ) -> tuple[str, list[Verdict]]:
        run = await hostile_bus(
            rig, piles, verification, billing, budget=arguments.bus_budget, seed=arguments.seed
        )
        return run.text(), run.verdicts

    async def rest(
        rig: StationRig, piles: Simulator, verification: httpx.Client, billing: httpx.Client
    ) -> tuple[str, list[Verdict]]:
        run = await hostile_rest(
            rig, piles, verification, billing, budget=arguments.rest_budget, seed=arguments.seed
        )
        return run.text(), run.verdicts

    parts = {"bus": bus, "rest": rest}
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        for name, run in parts.items():
            if arguments.only not in (None, name):
                continue
            started = time.monotonic()
            text, verdicts = await on_station(layout, Path(tmp) / name, run)
            print(f"== {name} ({time.monotonic() - started:.0f} s on a {layout} station)")
            print(text, flush=True)
            results += verdicts
    bad = failed(results)
    print(f"== {len(results) - len(bad)} checks passed, {len(bad)} failed")
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bus-budget", type=int, default=200, help="inputs per bus parser")
    parser.add_argument("--rest-budget", type=int, default=50, help="cases per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layout", default="2x4", help="chargers x piles (default 2x4)")
    parser.add_argument("--only", choices=("bus", "rest"), default=None)
    sys.exit(asyncio.run(bench(parser.parse_args())))


if __name__ == "__main__":
    main()
