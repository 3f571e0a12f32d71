"""``python -m station_tools.simulator --broker mqtt://HOST:PORT --layout 4x12``.

Runs until SIGTERM or Ctrl-C, then says goodbye as Zigbee2MQTT does (bridges ``offline``)
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_runtime.logs import configure_logging
from station_tools.arguments import broker_arg, layout_arg, number_arg
from station_tools.simulator.control import RemoteControl
from station_tools.simulator.settings import SimulatorSettings
from station_tools.simulator.station import Simulator

log = logging.getLogger("station.simulator")


_positive = number_arg(
    Decimal, lambda value: value > 0, unreadable="not a number", refused="must be a positive number"
)
_reading = number_arg(
    Decimal, lambda value: value >= 0, unreadable="not a number", refused="must be 0 or more"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station-simulator",
        description="Simulated charging piles behind one Zigbee2MQTT per charger. "
        "Every option may also come from STATION_SIMULATOR_<OPTION>.",
    )
    parser.add_argument("--broker", type=broker_arg, help="mqtt://HOST:PORT")
    parser.add_argument("--layout", type=layout_arg, help="NxM chargers x piles (default 4x12)")
    parser.add_argument("--speedup", type=_positive, help="simulated seconds per real second")
    parser.add_argument("--power", type=_positive, help="kW a charging pile draws (default 7.0)")
    parser.add_argument(
        "--meter-interval", type=_positive, help="seconds between meter readings (default 1)"
    )
    parser.add_argument("--initial-energy", type=_reading, help="every meter's start (kWh)")
    parser.add_argument("--seed", type=int, help="seed of the per-pile meter start")
    parser.add_argument("--root", help="Zigbee2MQTT root topic (default zigbee2mqtt)")
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), help="QoS of pile states")
    parser.add_argument("--keepalive", type=int, help="MQTT keep-alive seconds (default 10)")
    parser.add_argument("--instance", help="name of this run in the retained status")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING")
    return parser


def settings_from(argv: Sequence[str] | None) -> SimulatorSettings:
    args = build_parser().parse_args(argv)
    given: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    if "meter_interval" in given:
        given["meter_interval"] = float(given["meter_interval"])
    for text in ("broker", "layout"):  # the settings hold them as written, checked above
        if text in given:
            given[text] = str(given[text])
    return SimulatorSettings(**given)


async def run(settings: SimulatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    instance = settings.instance or uuid.uuid4().hex
    layout = Layout.parse(settings.layout)
    async with (
        Simulator(
            settings.broker, layout, settings.options(), settings.charger_brokers
        ) as simulator,
        RemoteControl(simulator, instance),
    ):
        log.info("simulator ready", extra={"layout": str(layout), "instance": instance})
        await stop.wait()
    log.info("simulator stopped")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = settings_from(argv)
        Layout.parse(settings.layout)
        BrokerAddress.parse(settings.broker)
    except (ValidationError, ValueError) as exc:
        print(f"station-simulator: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("simulator", settings.log_level)
    try:
        asyncio.run(run(settings))
    except ConnectionError as exc:
        log.error("cannot start the simulator", extra={"error": str(exc)})
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
