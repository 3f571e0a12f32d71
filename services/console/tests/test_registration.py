"""Pile registration at the console against the simulated Zigbee2MQTT 2.x bridges, on a
real mosquitto: open joining, a device joins and waits, an operator approves it as a pile
(or rejects it), and the station's pile set (stored, retained) grows or shrinks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest

from station_console.core.config import Settings
from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import (
    PileSession,
    SessionStatus,
    StationPiles,
)
from station_tools.mosquitto import Mosquitto
from station_tools.simulator import Simulator, SimulatorOptions

from .conftest import Console, billing_answering


@pytest.fixture
def root() -> str:
    return f"z2m-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(settings: Settings, root: str) -> Settings:
    update = {"zigbee_root": root, "bridge_timeout": 1.5, "owner_timeout": 1.5}
    return settings.model_copy(update=update)


@pytest.fixture
async def simulator(own_mosquitto: Mosquitto, root: str) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(root=root, qos=1)
    async with Simulator(own_mosquitto.url, Layout.parse("2x3"), options) as sim:
        yield sim


async def retained_piles(broker: Mosquitto) -> StationPiles:
    """The pile set a collector connecting now would read."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(channels.STATION_PILES.topic(), qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return channels.STATION_PILES.decode(message.payload)
    raise AssertionError("no pile set retained")


async def joined(console: Console, simulator: Simulator, charger: str, eventually: Any) -> str:
    """Open joining on ``charger``, let a new simulated device join; its IEEE address."""
    window = {"seconds": 60}
    opened = await console.http.post(f"/api/v1/chargers/{charger}/permit-join", json=window)
    assert opened.status_code == 200, opened.text
    device = await simulator.new_device(charger)
    address = device.pile_id

    async def listed() -> bool:
        response = await console.http.get("/api/v1/registrations")
        return any(item["ieee_address"] == address for item in response.json())

    await eventually(listed, what=f"{address} listed as pending")
    return address


async def test_a_device_that_joins_is_listed_and_approved_as_a_new_pile(
    console: Console, simulator: Simulator, own_mosquitto: Mosquitto, eventually: Any
) -> None:
    first = await retained_piles(own_mosquitto)
    assert first.revision == 0
    assert first.piles_of("c1") == ["c1-p01", "c1-p02", "c1-p03"]

    opened = await console.http.post("/api/v1/chargers/c1/permit-join", json={"seconds": 60})
    assert opened.status_code == 200, opened.text
    assert opened.json()["until"] is not None
    assert simulator.joining_open("c1") and not simulator.joining_open("c2")

    device = await simulator.new_device("c1")
    address = device.pile_id

    async def pending() -> list[dict[str, Any]]:
        response = await console.http.get("/api/v1/registrations")
        listed: list[dict[str, Any]] = response.json()
        return listed

    listed = await eventually(pending, what="the new device listed")
    assert [item["ieee_address"] for item in listed] == [address]
    assert listed[0]["charger"] == "c1"
    assert listed[0]["model"] and listed[0]["vendor"], "Zigbee2MQTT's interview names it"
    datetime.fromisoformat(listed[0]["joined_at"])
    board = (await console.http.get("/api/v1/board")).json()
    assert [item["ieee_address"] for item in board["registrations"]] == [address]

    approved = await console.http.post(
        f"/api/v1/registrations/{address}/approve", json={"pile_id": "c1-p13"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["pile_id"] == "c1-p13"
    assert simulator.has_pile("c1-p13"), "Zigbee2MQTT renamed the device"
    assert await pending() == []

    word = await retained_piles(own_mosquitto)
    assert word.revision == 1
    assert word.piles_of("c1") == ["c1-p01", "c1-p02", "c1-p03", "c1-p13"]
    assert word.piles_of("c2") == ["c2-p01", "c2-p02", "c2-p03"]
    assert "c1-p13" in await console.piles()
    board = (await console.http.get("/api/v1/board")).json()
    assert board["chargers"]["c1"][-1] == "c1-p13"


async def test_the_pile_set_and_pending_devices_survive_a_restart(
    simulator: Simulator,
    settings: Settings,
    start_console: Any,
    own_mosquitto: Mosquitto,
    eventually: Any,
) -> None:
    async with start_console(settings) as console:
        first = await joined(console, simulator, "c1", eventually)
        second = await joined(console, simulator, "c2", eventually)
        approved = await console.http.post(
            f"/api/v1/registrations/{first}/approve", json={"pile_id": "c1-p05"}
        )
        assert approved.status_code == 200, approved.text

    async with start_console(settings) as again:
        assert "c1-p05" in await again.piles()
        listed = (await again.http.get("/api/v1/registrations")).json()
        assert [item["ieee_address"] for item in listed] == [second]
        word = await retained_piles(own_mosquitto)
        assert word.revision == 1 and word.has_pile("c1-p05")


async def test_approval_errors_change_nothing(
    console: Console, simulator: Simulator, own_mosquitto: Mosquitto, eventually: Any
) -> None:
    address = await joined(console, simulator, "c1", eventually)

    async def approve(pile_id: str, device: str = address) -> Any:
        return await console.http.post(
            f"/api/v1/registrations/{device}/approve", json={"pile_id": pile_id}
        )

    taken = await approve("c1-p02")
    assert taken.status_code == 409, taken.text
    assert "c1-p02" in taken.json()["detail"]
    wrong_charger = await approve("c2-p07")
    assert wrong_charger.status_code == 422, wrong_charger.text
    assert "c1" in wrong_charger.json()["detail"]
    for malformed in ("c1-p1", "pile-13", "c1-p013", ""):
        assert (await approve(malformed)).status_code == 422, malformed
    assert (await approve("c1-p09", device="0x00124b0000000000")).status_code == 404

    await simulator.kill_bridge("c1")
    silent = await approve("c1-p09")
    assert silent.status_code == 504, silent.text
    assert silent.json()["reason"] == "bridge_silent"
    await simulator.start_bridge("c1")

    assert (await retained_piles(own_mosquitto)).revision == 0, "nothing changed"
    listed = (await console.http.get("/api/v1/registrations")).json()
    assert [item["ieee_address"] for item in listed] == [address], "still pending"
    assert not simulator.has_pile("c1-p09")
    later = await approve("c1-p09")
    assert later.status_code == 200, later.text


async def test_joining_errors(console: Console, simulator: Simulator) -> None:
    unknown = await console.http.post("/api/v1/chargers/c9/permit-join", json={"seconds": 60})
    assert unknown.status_code == 404
    for seconds in (-1, 255, "long"):
        bad = await console.http.post("/api/v1/chargers/c1/permit-join", json={"seconds": seconds})
        assert bad.status_code == 422, seconds
    await simulator.kill_bridge("c2")
    silent = await console.http.post("/api/v1/chargers/c2/permit-join", json={"seconds": 60})
    assert silent.status_code == 504, silent.text
    closed = await console.http.post("/api/v1/chargers/c1/permit-join", json={"seconds": 0})
    assert closed.status_code == 200 and closed.json()["until"] is None
    assert not simulator.joining_open("c1")


async def test_a_rejected_device_is_removed_from_the_network(
    console: Console, simulator: Simulator, own_mosquitto: Mosquitto, eventually: Any
) -> None:
    address = await joined(console, simulator, "c2", eventually)
    rejected = await console.http.post(f"/api/v1/registrations/{address}/reject")
    assert rejected.status_code == 200, rejected.text
    assert not simulator.has_pile(address), "Zigbee2MQTT removed it"
    assert (await console.http.get("/api/v1/registrations")).json() == []
    assert (await retained_piles(own_mosquitto)).revision == 0
    again = await console.http.post(f"/api/v1/registrations/{address}/reject")
    assert again.status_code == 404


async def test_a_pile_is_decommissioned_only_without_a_running_session(
    console: Console, own_mosquitto: Mosquitto
) -> None:
    started = datetime.now(UTC)
    running = PileSession(
        session_id="s-running",
        pile_id="c1-p02",
        card_uid="CARD0001",
        status=SessionStatus.ACTIVE,
        started_at=started,
    )
    ended = replace_session(running, "c1-p03")
    async with billing_answering(own_mosquitto, {"c1-p02": running, "c1-p03": ended}):
        await decommission_after_asking_billing(console, own_mosquitto)


async def decommission_after_asking_billing(console: Console, own_mosquitto: Mosquitto) -> None:
    busy = await console.http.delete("/api/v1/piles/c1-p02")
    assert busy.status_code == 409, busy.text
    assert "s-running" in busy.json()["detail"]

    done = await console.http.delete("/api/v1/piles/c1-p03")
    assert done.status_code == 200, done.text
    assert done.json() == {"pile_id": "c1-p03", "revision": 1}
    piles = await console.piles()
    assert "c1-p03" not in piles and "c1-p02" in piles
    word = await retained_piles(own_mosquitto)
    assert word.piles_of("c1") == ["c1-p01", "c1-p02"]
    assert (await console.http.delete("/api/v1/piles/c1-p03")).status_code == 404
    assert (await console.http.get("/api/v1/piles/c1-p03")).status_code == 404


async def test_decommissioning_waits_for_billings_word(console: Console) -> None:
    """Nobody answers for billing: the pile stays, the operator is told who is away."""
    away = await console.http.delete("/api/v1/piles/c1-p01")
    assert away.status_code == 503, away.text
    assert away.json()["reason"] == "billing_unavailable"
    assert "c1-p01" in await console.piles()


def replace_session(session: PileSession, pile_id: str) -> PileSession:
    return session.model_copy(
        update={
            "session_id": "s-ended",
            "pile_id": pile_id,
            "status": SessionStatus.COMPLETED,
            "stopped_at": datetime.now(UTC),
        }
    )


async def test_a_forged_or_deleted_pile_set_is_put_right_at_once(
    console: Console, own_mosquitto: Mosquitto, eventually: Any
) -> None:
    ours = await retained_piles(own_mosquitto)
    forged = StationPiles(chargers={"c1": ["c1-p09"]}, revision=7, changed_at=datetime.now(UTC))
    async with aiomqtt.Client("127.0.0.1", own_mosquitto.port) as client:
        topic = channels.STATION_PILES.topic()
        await client.publish(topic, channels.STATION_PILES.encode(forged), qos=1, retain=True)
        await eventually(lambda: _equal(own_mosquitto, ours), what="the console's word back")
        await client.publish(topic, b"", qos=1, retain=True)
        await eventually(lambda: _equal(own_mosquitto, ours), what="the console's word back")
    assert "c1-p09" not in await console.piles()


async def _equal(broker: Mosquitto, word: StationPiles) -> bool:
    try:
        return await retained_piles(broker) == word
    except TimeoutError:
        return False
