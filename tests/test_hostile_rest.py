"""Hostile input on every REST API (issue 10, item 7), end to end on real processes.

Schemathesis draws positive and negative cases for every operation of every service's
OpenAPI (``station_tools.hostile_rest``: verification, billing, faults, sync, central, the
console, each collector), a share of them aimed at the station's real piles, sessions, tariffs and
faults, while a driver charges. Then the checks of ``station_tools.hostile_checks``: no 5xx,
every service alive and ready, no error logged, exact ledgers and billing, no session left
open, every pile still charging once the piles the fuzzing put in maintenance are lifted.
``tools/bench/fuzz.py`` runs a larger budget.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from station_tools.hostile_checks import failed
from station_tools.hostile_rest import hostile_rest
from station_tools.rig import StationRig
from station_tools.simulator import Simulator

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

BUDGET = 6
"""Cases per operation and mode (about 50 operations: a few hundred requests)."""
SEED = 20261204

log = logging.getLogger("tests.hostile")


@pytest.mark.timeout(300)
async def test_hostile_rest_input_leaves_the_station_whole(
    station: StationRig, piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    run = await hostile_rest(station, piles, verification, billing, budget=BUDGET, seed=SEED)
    log.info("%s", run.text())

    services = {key.split()[0] for key in run.report.endpoints}
    assert {"verification", "billing", "faults", "sync", "central", "console", "collector-c1"} <= (
        services
    )
    fuzzed = [e for e in run.report.endpoints.values() if "stream" not in e.unsatisfiable]
    assert all(sum(e.modes.values()) for e in fuzzed), run.report.table()
    assert len(fuzzed) == len(run.report.endpoints) - 1  # only the board's event stream
    assert run.report.total >= 200, run.report.table()
    assert not run.report.problems, run.text()
    assert not failed(run.verdicts), run.text()
