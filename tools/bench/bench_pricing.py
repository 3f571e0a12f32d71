"""Benchmark of the billing tariff engine: sessions priced per second on one core.

    uv run python tools/bench/bench_pricing.py [--sessions 100000] [--seed 7]

Prices realistic sessions (10 to 40 charging periods each: charging at 7-120 kW in
periods of 1-30 minutes, then sometimes parking) under a Chinese time-of-use tariff of six
elements (five peak/flat/valley bands of electricity plus service fee per kWh, and parking
after charging with a 15-minute step), the station's zone being Asia/Shanghai.

Two figures: the engine in-process (the sessions already read into the engine's input,
as the service prices a record), and the batch CLI as an operator runs it
(``station-billing price --cdrs FILE.jsonl``: JSON parsing, checking and printing
included, process start too). Both are pinned to one core; the rates are sessions per
second of CPU time on that core (the machine may be shared), the wall-clock ones beside.
The CLI's output is compared with the in-process totals, line by line, so the figures are
of correct prices.

A plain script, not a test: speed targets are never asserted in tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from station_billing.pricing import (
    compile_tariff,
    price_session,
    read_tariff,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone

ZONE = "Asia/Shanghai"
TARGET = 20_000
ROUNDS = 3
"""The in-process figure is the median of this many rounds over the same sessions."""


def time_of_use_tariff() -> dict[str, Any]:
    """Peak / flat / valley electricity plus a 0.80 service fee per kWh, 13 % VAT, parking."""

    def band(start: str, end: str, electricity: str) -> dict[str, Any]:
        price = Decimal(electricity) + Decimal("0.80")
        return {
            "price_components": [
                {"type": "ENERGY", "price": str(price), "vat": "13", "step_size": 1}
            ],
            "restrictions": {"start_time": start, "end_time": end},
        }

    return {
        "country_code": "CN",
        "party_id": "STN",
        "id": "tou-bench",
        "currency": "CNY",
        "elements": [
            band("10:00", "15:00", "1.0715"),  # peak
            band("18:00", "21:00", "1.0715"),  # peak
            band("07:00", "10:00", "0.6235"),  # flat
            band("15:00", "18:00", "0.6235"),  # flat
            band("21:00", "07:00", "0.3075"),  # valley, across midnight
            {
                "price_components": [
                    {"type": "PARKING_TIME", "price": "6.00", "vat": "6", "step_size": 900}
                ]
            },
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }


def session_cdr(rng: random.Random, number: int) -> dict[str, Any]:
    start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(31 * 86400))
    count = rng.randint(10, 40)
    parking = rng.randint(0, min(5, count - 5)) if rng.random() < 0.4 else 0
    power = Decimal(rng.choice([7, 11, 22, 60, 120]))
    at = start
    periods = []
    for index in range(count):
        seconds = rng.randint(60, 1800)
        hours = (Decimal(seconds) / 3600).quantize(Decimal("0.000001"))
        if index < count - parking:
            energy = (power * hours * Decimal(rng.randint(60, 100)) / 100).quantize(
                Decimal("0.001")
            )
            dimensions = [
                {"type": "ENERGY", "volume": str(energy)},
                {"type": "TIME", "volume": str(hours)},
            ]
        else:
            dimensions = [{"type": "PARKING_TIME", "volume": str(hours)}]
        periods.append({"start_date_time": at.isoformat(), "dimensions": dimensions})
        at += timedelta(seconds=seconds)
    return {
        "id": f"session-{number}",
        "start_date_time": start.isoformat(),
        "end_date_time": at.isoformat(),
        "charging_periods": periods,
    }


def one_core() -> int:
    """Pin this process (and the CLI it starts) to one core; which one."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--sessions", type=int, default=100_000)
    options.add_argument("--seed", type=int, default=7)
    args = options.parse_args()
    core = one_core()
    rng = random.Random(args.seed)
    tariff_data = time_of_use_tariff()
    zone = StationZone.named(ZONE)
    compiled = compile_tariff(read_tariff(json.loads(json.dumps(tariff_data), parse_float=Decimal)))
    print(f"building {args.sessions} sessions (seed {args.seed}), pinned to core {core} ...")
    cdrs = [session_cdr(rng, n) for n in range(args.sessions)]
    sessions = [session_from_cdr(cdr, zone) for cdr in cdrs]
    periods = sum(len(session.periods) for session in sessions)

    # The inputs are built: move them out of the collector's way, as a long-running service's
    # old objects are, so that the figure is the engine's and not the first GC passes'.
    gc.collect()
    gc.freeze()
    rates = []
    for round_number in range(1, ROUNDS + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        totals = [price_session(compiled, session) for session in sessions]
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        rates.append(args.sessions / cpu)
        print(
            f"in-process engine, round {round_number}: {args.sessions} sessions ({periods} "
            f"periods) in {cpu:.2f} s of CPU = {rates[-1]:,.0f} sessions/s, "
            f"{periods / cpu:,.0f} periods/s (wall {wall:.2f} s)"
        )
    median = sorted(rates)[len(rates) // 2]
    print(
        f"in-process engine: median {median:,.0f} sessions/s, best {max(rates):,.0f} "
        f"(target {TARGET:,}: {'met' if median >= TARGET else 'NOT met'})"
    )

    with tempfile.TemporaryDirectory(prefix="bench-pricing-") as folder:
        tariff_file = Path(folder) / "tariff.json"
        tariff_file.write_text(json.dumps(tariff_data))
        batch = Path(folder) / "month.jsonl"
        with batch.open("w") as out:
            for cdr in cdrs:
                out.write(json.dumps(cdr) + "\n")
        size = batch.stat().st_size
        command = [
            str(Path(sys.executable).with_name("station-billing")),
            "price",
            "--tariff",
            str(tariff_file),
            "--cdrs",
            str(batch),
            "--tz",
            ZONE,
        ]
        started = time.perf_counter()
        before = os.times()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        cli_seconds = time.perf_counter() - started
        after = os.times()
        cli_cpu = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        if done.returncode != 0:
            raise SystemExit(f"the CLI failed ({done.returncode}): {done.stderr[:500]}")
        lines = done.stdout.splitlines()
        expected = [json.dumps(totals_json(result)) for result in totals]
        same = sum(
            1
            for line, want in zip(lines, expected, strict=True)
            if {k: v for k, v in json.loads(line).items() if k != "id"} == json.loads(want)
        )
        print(
            f"batch CLI (parsing included): {args.sessions} sessions ({size / 1e6:.0f} MB of "
            f"JSON lines) in {cli_cpu:.2f} s of CPU = {args.sessions / cli_cpu:,.0f} sessions/s "
            f"(wall {cli_seconds:.2f} s = {args.sessions / cli_seconds:,.0f} sessions/s)"
        )
        print(f"CLI totals equal to the in-process totals: {same} of {len(lines)}")
        if same != args.sessions:
            raise SystemExit("the CLI and the engine disagree")


if __name__ == "__main__":
    main()
