"""Collectors alive or not: breath answers, missed breaths, and the collector's last will."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from station_protocol import channels
from station_protocol.messages import CollectorBreath
from station_protocol.zigbee import OnlineState
from station_tools.mosquitto import Mosquitto

T1 = 0.1
"""A fast breath period: a collector is missed after 3 x T1 = 0.3 s."""


async def keep_breathing(station: Any, charger: str, first_seq: int) -> None:
    """A collector back to normal: a breath every T1 until cancelled."""
    seq = first_seq
    while True:
        await station.breathe(charger, seq, T1)
        seq += 1
        await asyncio.sleep(T1)


async def test_every_breath_is_answered_with_its_sequence(faults: Any, station: Any) -> None:
    acks = [await station.breathe("c1", seq, T1) for seq in (41, 42, 43)]

    assert [(ack.charger, ack.seq) for ack in acks] == [("c1", 41), ("c1", 42), ("c1", 43)]
    assert await faults.metric("station_faults_breaths_answered_total", charger="c1") == 3


async def test_a_collector_that_stops_breathing_is_offline_until_its_next_breath(
    faults: Any, station: Any, board: Any
) -> None:
    for seq in range(5):
        await station.breathe("c2", seq, T1)
        await asyncio.sleep(T1)
    last_breath = datetime.now(UTC)

    bulletin = await board.shown("c2", "collector_offline")

    assert bulletin.scope == "collector" and bulletin.charger == "c2"
    assert bulletin.detail["reason"] == "breaths_missed"
    assert bulletin.detail["last_seq"] == "4"
    assert abs((bulletin.since - last_breath).total_seconds()) < 0.5
    silence = (bulletin.detected_at - bulletin.since).total_seconds()
    assert 3 * T1 <= silence < 3 * T1 + 1.0
    view = await faults.active_on("c2", "collector_offline", lang="zh")
    assert view["title"] == "数据采集器离线"
    assert await faults.metric("station_pile_up", charger="c2") == 0  # its 4 piles
    assert await faults.metric("station_pile_up", charger="c1") == 4

    breathing = asyncio.create_task(keep_breathing(station, "c2", first_seq=5))
    try:
        await board.withdrawn("c2", "collector_offline")
        [episode] = await faults.history(source="c2")
        assert episode["active"] is False
        assert episode["duration_seconds"] >= 3 * T1
        await asyncio.sleep(6 * T1)
        assert await board.retained("c2", "collector_offline") is None
    finally:
        breathing.cancel()
    assert (
        await faults.metric(
            "station_fault_detection_latency_seconds_count",
            stage="publish",
            code="collector_offline",
        )
        == 1
    )


async def test_a_collector_that_keeps_breathing_is_never_offline(
    faults: Any, station: Any, board: Any
) -> None:
    for seq in range(15):
        await station.breathe("c1", seq, T1)
        await asyncio.sleep(T1 / 2)

    assert board.messages("c1", "collector_offline") == []
    assert await faults.history() == []


async def test_the_last_will_raises_at_once_and_online_clears(
    faults: Any, station: Any, board: Any
) -> None:
    await station.status("c1", OnlineState.ONLINE)
    await station.status("c1", OnlineState.OFFLINE)  # what the broker writes for its last will

    bulletin = await board.shown("c1", "collector_offline", timeout=2)

    assert bulletin.detail == {"reason": "last_will"}
    assert bulletin.remedies[0].en.startswith("Check that the cabinet has power")
    await station.status("c1", OnlineState.ONLINE)
    await board.withdrawn("c1", "collector_offline")


async def test_a_collector_back_online_that_never_breathes_is_missed(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    """Back online is not alive: one that hangs before its first breath is still seen."""
    for seq in range(3):
        await station.breathe("c2", seq, T1)
    await station.status("c2", OnlineState.OFFLINE)  # its connection dropped: its last will
    await board.shown("c2", "collector_offline", timeout=2)
    await asyncio.sleep(5 * T1)  # past the deadline of its last breath, while known offline
    await station.status("c2", OnlineState.ONLINE)  # back, and hung before its first breath

    def missed() -> bool:
        said = board.messages("c2", "collector_offline")
        return None in said and said[-1] is not None and said.index(None) < len(said) - 1

    await eventually(missed, what="withdrawn, then raised for missed breaths")
    bulletin = board.messages("c2", "collector_offline")[-1]
    assert bulletin is not None and bulletin.detail["reason"] == "breaths_missed"
    assert bulletin.detail["last_seq"] == "2"


async def test_a_restarted_collector_has_its_whole_grace_from_coming_back(
    faults: Any, station: Any, board: Any
) -> None:
    """The deadline its earlier life left passes before the new life's first breath; that
    is not silence: the new life has misses x T1 from the moment it said it is back."""
    t1 = 1.0  # slow breaths here, for wide margins: deadlines 3 s after
    await station.breathe("c3", 1, t1)
    await station.status("c3", OnlineState.OFFLINE)  # killed: its last will
    await board.shown("c3", "collector_offline", timeout=2)
    await asyncio.sleep(1.5)
    await station.status("c3", OnlineState.ONLINE)  # restarted: its new deadline is 3 s on
    await board.withdrawn("c3", "collector_offline", timeout=2)
    await asyncio.sleep(2.0)  # past the old deadline, well before the new one
    await station.breathe("c3", 1, t1)  # the new life's first breath
    await asyncio.sleep(0.3)

    said = [m.detail["reason"] for m in board.messages("c3", "collector_offline") if m]
    assert said == ["last_will"]


async def test_bad_breaths_are_counted_and_dropped(
    faults: Any, station: Any, eventually: Any
) -> None:
    await station.bus.publish(channels.COLLECTOR_BREATH.topic(charger="c1"), b"\x00garbage")
    wrong_charger = CollectorBreath(charger="c2", seq=1, sent_at=datetime.now(UTC), t1=T1)
    await station.bus.publish(channels.COLLECTOR_BREATH.topic(charger="c1"), wrong_charger)

    async def dropped() -> bool:
        count = await faults.metric("station_faults_dropped_messages_total", kind="breath")
        return bool(count == 2)

    await eventually(dropped, what="two breaths dropped")
    assert (await station.breathe("c1", 7, T1)).seq == 7


async def test_bad_statuses_are_counted_as_statuses(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    """The ``kind`` label stays ``status`` (the alerts' and the board's), not the channel's
    name; an unreadable status is no news about the collector."""
    topic = channels.COLLECTOR_STATUS.topic(charger="c1")
    await station.bus.publish(topic, b'{"state": "sleepy"}', retain=True)
    await station.bus.publish(topic, b"\x00garbage", retain=True)

    async def dropped() -> bool:
        count = await faults.metric(
            "station_faults_dropped_messages_total", kind="status", reason="malformed"
        )
        return bool(count == 2)

    await eventually(dropped, what="two statuses dropped")
    assert board.messages("c1", "collector_offline") == []


CHILD = """
import asyncio, sys
from station_protocol import channels
from station_runtime.bus import BrokerAddress, Bus, BusOptions
async def main():
    charger = sys.argv[2]
    options = BusOptions(
        BrokerAddress.parse(sys.argv[1]), f"collector-{charger}", "collector", charger=charger,
        status_topic=channels.COLLECTOR_STATUS.topic(charger=charger),
    )
    async with Bus(options) as bus:
        await bus.wait_connected(5)
        print("up", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_a_killed_collector_is_offline_by_its_last_will(
    faults: Any, board: Any, own_mosquitto: Mosquitto
) -> None:
    """A real process with the bus's last will, killed with SIGKILL: no goodbye but the will."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, own_mosquitto.url, "c2"],
        stdout=subprocess.PIPE,
        env=os.environ,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"up"
        await asyncio.sleep(0.2)
        assert board.messages("c2", "collector_offline") == []

        child.send_signal(signal.SIGKILL)
        child.wait()

        bulletin = await board.shown("c2", "collector_offline", timeout=3)
        assert bulletin.detail == {"reason": "last_will"}
    finally:
        child.kill()
        child.wait()


GRACE = 1.0
"""A short start-up grace (120 s by default)."""


async def test_a_collector_not_yet_seen_is_announced_only_after_the_start_up_grace(
    start_faults: Any, settings: Any, station: Any, board: Any, eventually: Any
) -> None:
    """A last will on the broker from before this service started (or a collector that died
    before this service ever heard it): not yet seen, announced once the grace is over."""
    async with start_faults(settings.model_copy(update={"startup_grace": GRACE})):
        started = datetime.now(UTC)
        await station.status("c1", OnlineState.OFFLINE)
        await asyncio.sleep(GRACE / 2)
        assert board.messages("c1", "collector_offline") == []

        bulletin = await board.shown("c1", "collector_offline", timeout=GRACE + 2)
        assert bulletin.detail == {"reason": "last_will"}
        assert (bulletin.detected_at - started).total_seconds() >= GRACE - 0.1
        await station.status("c1", OnlineState.ONLINE)
        await eventually(
            lambda: None in board.messages("c1", "collector_offline")[1:],
            what="collector_offline on c1 withdrawn",
        )


async def test_a_collector_stopped_on_purpose_and_back_within_the_grace_raises_nothing(
    start_faults: Any, settings: Any, station: Any, board: Any
) -> None:
    async with start_faults(settings.model_copy(update={"startup_grace": GRACE})) as faults:
        await station.status("c1", OnlineState.ONLINE)
        for seq in range(3):
            await station.breathe("c1", seq, T1)
            await asyncio.sleep(T1 / 2)
        await station.status("c1", OnlineState.OFFLINE, stopped=True)
        await asyncio.sleep(GRACE * 0.7)  # away past misses x T1, a restart
        await station.status("c1", OnlineState.ONLINE)
        for seq in range(10):
            await station.breathe("c1", seq, T1)
            await asyncio.sleep(T1 / 2)

        assert board.messages("c1", "collector_offline") == []
        assert await faults.history() == []


async def test_a_collector_stopped_on_purpose_that_stays_away_is_announced_after_the_grace(
    start_faults: Any, settings: Any, station: Any, board: Any, eventually: Any
) -> None:
    async with start_faults(settings.model_copy(update={"startup_grace": GRACE})):
        await station.status("c2", OnlineState.ONLINE)
        await station.breathe("c2", 1, T1)
        await station.status("c2", OnlineState.OFFLINE, stopped=True)
        stopped = datetime.now(UTC)
        await asyncio.sleep(GRACE / 2)
        assert board.messages("c2", "collector_offline") == []

        bulletin = await board.shown("c2", "collector_offline", timeout=GRACE + 2)
        assert bulletin.detail == {"reason": "stopped"}
        assert (bulletin.detected_at - stopped).total_seconds() >= GRACE - 0.1
        await station.status("c2", OnlineState.ONLINE)
        # Withdrawn when it says it is back (it breathes no more here, so missed breaths
        # may raise the fault again a few T1 later: the withdrawal is looked for in order).
        await eventually(
            lambda: None in board.messages("c2", "collector_offline")[1:],
            what="collector_offline on c2 withdrawn",
        )
