"""Hostile input on the bus (issue 10, item 7), end to end on real processes.

Hypothesis draws hostile payloads for every channel a service reads (``station_tools.hostile``:
every ``station/v1`` channel, every charger's Zigbee2MQTT pile state, availability and bridge
topics, forged replies raced against real requests), plus the attacks the issue names, and
publishes them to the station's broker while three drivers charge. Then the checks of
``station_tools.hostile_checks``: every service alive and ready, no handler error and no error
logged, exact ledgers and billing, no session left open, every pile still charging. The
budget here is small (a few hundred inputs); ``tools/bench/fuzz.py`` runs a larger one.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from station_tools.hostile import hostile_bus, parsers
from station_tools.hostile_checks import failed
from station_tools.rig import StationRig
from station_tools.simulator import Simulator

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

BUDGET = 12
"""Inputs drawn per parser (27 parsers on the 2 x 4 test station: about 350 in all)."""
SEED = 20261204

log = logging.getLogger("tests.hostile")


@pytest.mark.timeout(300)
async def test_hostile_bus_input_leaves_the_station_whole(
    station: StationRig, piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    run = await hostile_bus(station, piles, verification, billing, budget=BUDGET, seed=SEED)
    log.info("%s", run.text())

    published = {label for label, kinds in run.report.counts.items() if sum(kinds.values())}
    fuzzed = {parser.label for parser in parsers(station.layout) if parser.reply_of is None}
    assert fuzzed <= published, f"parsers never fuzzed: {sorted(fuzzed - published)}"
    assert run.report.total >= len(fuzzed) * BUDGET // 2
    assert sum(run.report.raced.values()) > 0, "no forged reply was raced against a request"
    assert not failed(run.verdicts), run.text()
