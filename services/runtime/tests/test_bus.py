"""The bus client against a real mosquitto: request/response, status and last will."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import aiomqtt
import pytest

from station_protocol import channels
from station_protocol.channels import shared
from station_protocol.messages import ServiceStatus
from station_protocol.zigbee import OnlineState
from station_runtime.bus import BrokerAddress, Bus, BusOptions, by_topic
from station_runtime.deliveries import Incoming
from station_tools.mosquitto import Mosquitto


def options(broker: Mosquitto, name: str) -> BusOptions:
    return BusOptions(broker=BrokerAddress.parse(broker.url), client_id=name, service=name)


async def test_request_is_answered_with_its_correlation(mosquitto: Mosquitto) -> None:
    server = Bus(options(mosquitto, "echo-server"))

    @server.route(shared("echo", "test/echo"))
    async def echo(message: Incoming) -> None:
        await server.reply(message, b"echo:" + message.payload)

    async with server, Bus(options(mosquitto, "echo-client")) as client:
        await server.wait_connected(5)
        await client.wait_connected(5)
        await asyncio.sleep(0.1)
        answers = await asyncio.gather(
            *(client.request("test/echo", f"n{i}".encode(), timeout=5) for i in range(20))
        )
    assert answers == [f"echo:n{i}".encode() for i in range(20)]


async def test_a_failing_handler_does_not_stop_the_loop(mosquitto: Mosquitto) -> None:
    bus = Bus(options(mosquitto, "fragile"))
    seen: list[bytes] = []

    @bus.route("test/fragile")
    async def handle(message: Incoming) -> None:
        if message.payload == b"boom":
            raise ValueError("boom")
        seen.append(message.payload)

    async with bus:
        await bus.wait_connected(5)
        await bus.publish("test/fragile", b"boom")
        await bus.publish("test/fragile", b"fine")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen == [b"fine"]


async def test_lanes_keep_order_within_and_do_not_wait_across(mosquitto: Mosquitto) -> None:
    """A lane held up (a slow database write) holds up its own messages, not another lane's."""
    bus = Bus(options(mosquitto, "laned"))
    release = asyncio.Event()
    handled: list[tuple[str, bytes]] = []
    fast_done = asyncio.Event()

    @bus.route("test/lanes/+", lane=by_topic)
    async def handle(message: Incoming) -> None:
        if message.payload == b"slow":
            await release.wait()
        handled.append((message.topic, message.payload))
        if message.topic == "test/lanes/fast" and message.payload == b"3":
            fast_done.set()

    async with bus:
        await bus.wait_connected(5)
        await bus.publish("test/lanes/slow", b"slow")
        await bus.publish("test/lanes/slow", b"after")
        for n in (1, 2, 3):
            await bus.publish("test/lanes/fast", str(n).encode())
        await asyncio.wait_for(fast_done.wait(), 5)
        # The fast lane went through while the slow one waited, and nothing overtook in it.
        assert handled == [
            ("test/lanes/fast", b"1"),
            ("test/lanes/fast", b"2"),
            ("test/lanes/fast", b"3"),
        ]
        release.set()
        for _ in range(100):
            if len(handled) == 5:
                break
            await asyncio.sleep(0.02)
    assert handled[3:] == [("test/lanes/slow", b"slow"), ("test/lanes/slow", b"after")]


async def retained_status(broker: Mosquitto, service: str) -> ServiceStatus:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(channels.SERVICE_STATUS.topic(service=service))
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return ServiceStatus.model_validate_json(message.payload)
    raise AssertionError("no status")


CHILD = """
import asyncio, sys
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Incoming
async def main():
    async with Bus(BusOptions(BrokerAddress.parse(sys.argv[1]), "doomed", "doomed")) as bus:
        await bus.wait_connected(5)
        print("up", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_status_goes_offline_by_last_will_on_kill(mosquitto: Mosquitto) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mosquitto.url], stdout=subprocess.PIPE, env=os.environ
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"up"
        status = await asyncio.wait_for(retained_status(mosquitto, "doomed"), 5)
        assert status.state == OnlineState.ONLINE
        child.send_signal(signal.SIGKILL)
        child.wait()
        await asyncio.sleep(0.3)
        status = await asyncio.wait_for(retained_status(mosquitto, "doomed"), 5)
        assert status.state == OnlineState.OFFLINE
    finally:
        child.kill()
        child.wait()


async def test_reconnects_after_the_broker_restarts(own_mosquitto: Mosquitto) -> None:
    bus = Bus(options(own_mosquitto, "survivor"))
    seen: list[bytes] = []

    @bus.route("test/after")
    async def handle(message: Incoming) -> None:
        seen.append(message.payload)

    async with bus:
        await bus.wait_connected(5)
        own_mosquitto.restart()
        await asyncio.sleep(0.5)
        await bus.wait_connected(15)
        await bus.publish("test/after", b"again")
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen == [b"again"]


def test_broker_address_rejects_other_schemes() -> None:
    assert BrokerAddress.parse("mqtt://10.0.0.1:1884") == BrokerAddress("10.0.0.1", 1884)
    assert BrokerAddress.parse("localhost") == BrokerAddress("localhost", 1883)
    with pytest.raises(ValueError, match="mqtt://"):
        BrokerAddress.parse("http://x:1")


async def test_a_publish_right_after_a_broker_restart_waits_for_the_reconnection(
    own_mosquitto: Mosquitto,
) -> None:
    """The connection died and the bus has not noticed yet: the publish goes out once the
    bus is back, within its wait, instead of failing."""
    bus = Bus(options(own_mosquitto, "eager"))
    seen: list[bytes] = []

    @bus.route("test/eager")
    async def handle(message: Incoming) -> None:
        seen.append(message.payload)

    async with bus:
        await bus.wait_connected(5)
        own_mosquitto.restart()
        await bus.publish("test/eager", b"right away", wait=15)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen == [b"right away"]
