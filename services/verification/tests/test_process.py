"""The service as a real process, configured by environment variables as a container is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from station_protocol.messages import VerificationResult
from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess


@pytest.fixture
def verification_process(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess.station_service("verification", broker=mosquitto.url, work=tmp_path)
    with process:
        yield process


async def test_the_process_verifies_a_card_over_the_bus_and_keeps_it_across_restarts(
    verification_process: ServiceProcess, verify: Any, poll: Any, tmp_path: Path
) -> None:
    base = verification_process.base_url
    async with httpx.AsyncClient(base_url=base) as http:

        async def ready() -> bool:
            return (await http.get("/ready")).status_code == 200

        await poll(ready, timeout=10)
        issued = await http.post(
            "/api/v1/cards", json={"uid": "04:AB:CD", "holder": "Ada", "balance": "15.00"}
        )
        assert issued.status_code == 201

        reply = await verify("04:AB:CD", "c1-p03", "s-process")
        assert reply.result == VerificationResult.ACCEPTED

        verification_process.restart()
        await poll(ready, timeout=10)

        card = (await http.get("/api/v1/cards/04%3AAB%3ACD")).json()
        assert card["balance"] == "15.00"
        assert (await verify("04:AB:CD", "c1-p04")).result == VerificationResult.ALREADY_CHARGING
        assert (await verify("04:AB:CD", "c1-p03", "s-process")).result == "accepted"
        metrics = (await http.get("/metrics")).text
    assert 'station_verification_verifications_total{result="already_charging"} 1.0' in metrics
    assert (tmp_path / "verification" / "verification.db").exists()
    logged = verification_process.log_file.read_text()
    assert '"card_uid": "04:AB:CD"' in logged
