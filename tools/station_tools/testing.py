"""The test rig as a pytest plugin: a private mosquitto per test session, and helpers.

Every test that needs a broker gets one the run started itself on a free loopback port, so
that it can be killed and restarted without touching the machine's own services.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station_tools.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker shared by the tests of a run that do not kill it."""
    with Mosquitto(data_dir=tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test, which it may stop, kill and restart."""
    with Mosquitto(data_dir=tmp_path / "mosquitto") as broker:
        yield broker
