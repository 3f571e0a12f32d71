"""The faults service as a real process, configured by its environment as a container is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from station_protocol.zigbee import OnlineState
from station_tools.mosquitto import Mosquitto
from station_tools.processes import ServiceProcess

T1 = 0.2
STARTUP_GRACE = 1.0


@pytest.fixture
def faults_process(own_mosquitto: Mosquitto, tmp_path: Path) -> Any:
    # A short start-up grace: a collector not yet seen by a (re)started service is announced
    # a second after it started, not two minutes.
    service = ServiceProcess.station_service(
        "faults",
        broker=own_mosquitto.url,
        work=tmp_path,
        layout="2x4",
        startup_grace=str(STARTUP_GRACE),
    )
    try:
        service.start()
        yield service, service.base_url
    finally:
        service.stop()


async def test_the_service_announces_clears_watches_collectors_and_survives_a_kill(
    faults_process: Any, station: Any, board: Any
) -> None:
    service, base = faults_process
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        began = datetime.now(UTC) - timedelta(seconds=2)
        await station.report("c1", "c1-p01", "pile_unreachable", since=began)
        bulletin = await board.shown("c1-p01", "pile_unreachable")
        assert bulletin.title.en == "Pile not answering breath frames"
        english = (await http.get("/api/v1/faults")).json()
        assert [(f["id"], f["source"], f["pile_id"]) for f in english] == [
            (bulletin.id, "c1-p01", "c1-p01")
        ]
        assert english[0]["remedies"][0].startswith("Look at the pile")
        chinese = (await http.get("/api/v1/faults", params={"lang": "zh"})).json()
        assert chinese[0]["title"] == "充电桩失联（心跳无应答）"
        assert chinese[0]["causes"][0].startswith("充电桩失电")

        await station.report("c1", "c1-p01", "pile_unreachable", active=False)
        await board.withdrawn("c1-p01", "pile_unreachable")
        [episode] = (await http.get("/api/v1/faults/history")).json()
        assert episode["duration_seconds"] >= 2
        assert (await http.get("/api/v1/faults")).json() == []

        await station.status("c1", OnlineState.OFFLINE)
        offline = await board.shown("c1", "collector_offline", timeout=2)
        assert offline.detail == {"reason": "last_will"}
        await station.status("c1", OnlineState.ONLINE)
        await board.withdrawn("c1", "collector_offline")

        ack = await station.breathe("c2", 1, T1)
        assert (ack.charger, ack.seq) == ("c2", 1)
        silent = await board.shown("c2", "collector_offline", timeout=3)
        assert silent.detail["reason"] == "breaths_missed"
        for seq in range(2, 12):
            await station.breathe("c2", seq, T1)
            await asyncio.sleep(T1 / 2)
        await board.withdrawn("c2", "collector_offline", timeout=1)
        metrics = (await http.get("/metrics")).text
        assert 'station_bulletins_raised_total{code="collector_offline"} 2.0' in metrics

    # an active fault survives kill -9 of the service: same episode, same retained bulletin
    await station.report("c2", "c2-p03", "pile_high_temperature")
    before = await board.shown("c2-p03", "pile_high_temperature")

    service.kill()
    await asyncio.to_thread(service.start)

    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        active = {(f["source"], f["code"]): f for f in (await http.get("/api/v1/faults")).json()}
        assert active[("c2-p03", "pile_high_temperature")]["id"] == before.id
        assert await board.retained("c2-p03", "pile_high_temperature") == before
        # c2 stopped breathing before the kill: the new process still expects its breaths,
        # and announces it once its start-up grace is over
        offline = await board.shown("c2", "collector_offline", timeout=3 + STARTUP_GRACE)
        assert offline.charger == "c2"
        await station.report("c2", "c2-p03", "pile_high_temperature", active=False)
        await board.withdrawn("c2-p03", "pile_high_temperature")
        history = (await http.get("/api/v1/faults/history", params={"source": "c2-p03"})).json()
        assert [(e["id"], e["active"]) for e in history] == [(before.id, False)]
