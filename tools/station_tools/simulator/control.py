"""The simulator's remote control: what other processes (the ``station`` CLI, end-to-end
tests) use to plug cars, swipe cards, inject faults and pair new piles in a running
simulator.

The simulator keeps one more MQTT connection for this, apart from the bridges, so that
killing a charger's bridge never takes the remote control down with it. Its retained
status (with a last will) tells a caller whether a simulator is listening at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

import aiomqtt
from pydantic import ValidationError

from station_protocol import channels
from station_protocol.channels import Z2M_ROOT, Channel, ZigbeeChannels
from station_protocol.ids import charger_of
from station_protocol.messages import StationPiles
from station_protocol.simulator import (
    ChargerControl,
    ChargerControlCommand,
    PileControl,
    SimulatorStatus,
)
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
    BridgeEvent,
    BridgeEventType,
    BridgeInfo,
    Display,
    DisplayCommand,
    InterviewStatus,
    OnlineState,
    encode,
    new_ieee_address,
)
from station_runtime.bus import BrokerAddress
from station_tools import children
from station_tools.simulator.bridge import JoiningClosed
from station_tools.simulator.station import Simulator

log = logging.getLogger("station.simulator")


class RemoteControl(children.Opened):
    """``async with RemoteControl(sim, instance)``: obeys ``simulator/v1/piles/+/control``
    and ``simulator/v1/chargers/+/control``."""

    def __init__(self, simulator: Simulator, instance: str) -> None:
        self._simulator = simulator
        self._instance = instance
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _status(self, state: OnlineState) -> SimulatorStatus:
        return SimulatorStatus(
            state=state,
            instance=self._instance,
            layout=str(self._simulator.layout),
            root=self._simulator.options.root,
        )

    async def open(self) -> None:
        self._task = asyncio.create_task(self._run(), name="simulator-control")
        try:
            await asyncio.wait_for(self._connected.wait(), self._simulator.options.connect_timeout)
        except TimeoutError as exc:
            await self._cancel()
            raise ConnectionError(
                f"remote control not connected to {self._simulator.broker}"
            ) from exc

    async def aclose(self) -> None:
        client = self._client
        if client is not None and self._connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(
                        channels.SIMULATOR_STATUS.topic(),
                        encode(self._status(OnlineState.OFFLINE)),
                        qos=1,
                        retain=True,
                    ),
                    2,
                )
        await self._cancel()

    async def _cancel(self) -> None:
        await children.cancel(self._task, aiomqtt.MqttError)
        self._task = None

    async def _run(self) -> None:
        broker = self._simulator.broker
        will = aiomqtt.Will(
            channels.SIMULATOR_STATUS.topic(),
            encode(self._status(OnlineState.OFFLINE)),
            qos=1,
            retain=True,
        )
        delay = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    broker.host,
                    broker.port,
                    identifier=f"simulator-control-{self._instance}",
                    will=will,
                    keepalive=self._simulator.options.keepalive,
                    timeout=5,
                ) as client:
                    self._client = client
                    await client.subscribe(
                        [
                            (channels.PILE_CONTROL.filter(), 1),
                            (channels.CHARGER_CONTROL.filter(), 1),
                        ]
                    )
                    await client.publish(
                        channels.SIMULATOR_STATUS.topic(),
                        encode(self._status(OnlineState.ONLINE)),
                        qos=1,
                        retain=True,
                    )
                    self._connected.set()
                    delay = 0.2
                    async for message in client.messages:
                        await self._on_message(message)
            except aiomqtt.MqttError as exc:
                log.warning("remote control lost the broker", extra={"error": str(exc)})
            finally:
                self._client = None
                self._connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else b""
        charger = channels.CHARGER_CONTROL.param(topic, "charger")
        if charger is not None:
            await self._on_charger_control(charger, payload)
            return
        pile = channels.PILE_CONTROL.param(topic, "pile")
        if pile is None or not self._simulator.has_pile(pile):
            log.warning("control for an unknown pile ignored", extra={"topic": topic})
            return
        try:
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError("control message too large")
            control = PileControl.model_validate_json(payload)
        except (ValidationError, ValueError) as exc:
            log.warning(
                "malformed control message ignored", extra={"pile_id": pile, "error": str(exc)}
            )
            return
        log.info(
            "control",
            extra={"pile_id": pile, "command": control.command, "card_uid": control.card_uid},
        )
        try:
            await self._simulator.apply(pile, control)
        except Exception:
            log.exception("control failed", extra={"pile_id": pile})

    async def _on_charger_control(self, charger: str, payload: bytes) -> None:
        if charger not in self._simulator.layout.charger_ids():
            log.warning("control for an unknown charger ignored", extra={"charger": charger})
            return
        try:
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError("control message too large")
            control = ChargerControl.model_validate_json(payload)
        except (ValidationError, ValueError) as exc:
            log.warning(
                "malformed control message ignored", extra={"charger": charger, "error": str(exc)}
            )
            return
        log.info("control", extra={"charger": charger, "command": control.command})
        try:
            await self._simulator.apply_to_charger(charger, control)
        except (JoiningClosed, ValueError) as exc:
            # The sender learns it from the absent bridge events, as with a real pile.
            log.warning("join refused", extra={"charger": charger, "error": str(exc)})
        except Exception:
            log.exception("control failed", extra={"charger": charger})


M = TypeVar("M")


def _client(broker: BrokerAddress, timeout: float) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"station-cli-{uuid.uuid4().hex[:12]}",
        timeout=timeout,
    )


async def _retained(broker: BrokerAddress, channel: Channel[M], timeout: float) -> M | None:
    """The retained message of a parameterless ``channel``; ``None`` if there is none (or it
    is unreadable). Raises ``aiomqtt.MqttError`` when the broker cannot be reached."""
    async with _client(broker, timeout) as client:
        await client.subscribe(channel.topic(), qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    try:
                        return channel.decode(payload)
                    except ValueError:
                        return None
    return None


async def simulator_status(broker: BrokerAddress, timeout: float = 2.0) -> SimulatorStatus | None:
    """The simulator's retained status on ``broker``; ``None`` if none ever announced itself.

    Raises ``aiomqtt.MqttError`` when the broker cannot be reached.
    """
    return await _retained(broker, channels.SIMULATOR_STATUS, timeout)


async def station_piles(broker: BrokerAddress, timeout: float = 1.0) -> StationPiles | None:
    """The console's retained pile set on ``broker``; ``None`` if no console ever said it.

    Raises ``aiomqtt.MqttError`` when the broker cannot be reached.
    """
    return await _retained(broker, channels.STATION_PILES, timeout)


async def wait_simulator_online(broker: BrokerAddress, instance: str, timeout: float) -> bool:
    """Wait until the simulator ``instance`` says it is online (all its bridges are)."""
    async with _client(broker, timeout) as client:
        await client.subscribe(channels.SIMULATOR_STATUS.topic(), qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    with contextlib.suppress(ValidationError):
                        status = SimulatorStatus.model_validate_json(payload)
                        if status.instance == instance and status.state == OnlineState.ONLINE:
                            return True
    return False


class JoinFailed(Exception):
    """A device sent to join a simulated charger did not (the text says why)."""


class JoinNotOpen(JoinFailed):
    """The charger's Zigbee2MQTT says joining is closed (its retained ``bridge/info``)."""


async def join_device(
    broker: BrokerAddress,
    charger: str,
    *,
    root: str = Z2M_ROOT,
    timeout: float = 5.0,
) -> str:
    """Make a new device join ``charger`` of a running simulator; its IEEE address.

    Looks first at the charger's ``bridge/info`` to refuse clearly when joining is closed,
    then names the device itself (a fresh IEEE address) so that the bridge events telling
    it joined and was interviewed can be told from any other device's.
    """
    topics = ZigbeeChannels.for_charger(charger, root)
    address = new_ieee_address()
    async with _client(broker, timeout) as client:
        await client.subscribe([(topics.bridge_info.topic(), 1), (topics.bridge_event.topic(), 1)])
        info = await _retained_info(client, topics, timeout)
        if info is None or not info.permit_join:
            raise JoinNotOpen(f"joining is not open on {charger}")
        control = ChargerControl(command=ChargerControlCommand.JOIN, ieee_address=address)
        await client.publish(
            channels.CHARGER_CONTROL.topic(charger=charger), encode(control), qos=1
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in client.messages:
                    if message.topic.value != topics.bridge_event.topic():
                        continue
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    with contextlib.suppress(ValueError):
                        event = topics.bridge_event.decode(payload)
                        if _interviewed(event, address):
                            return address
    raise JoinFailed(f"{charger} did not take the device within {timeout:g} s")


async def _retained_info(
    client: aiomqtt.Client, topics: ZigbeeChannels, timeout: float
) -> BridgeInfo | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                if message.topic.value == topics.bridge_info.topic():
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    try:
                        return topics.bridge_info.decode(payload)
                    except ValueError:
                        return None
    return None


def _interviewed(event: BridgeEvent, address: str) -> bool:
    return (
        event.type == BridgeEventType.DEVICE_INTERVIEW
        and event.data.ieee_address == address
        and event.data.status == InterviewStatus.SUCCESSFUL
    )


async def send_control(
    broker: BrokerAddress,
    pile: str,
    control: PileControl,
    timeout: float = 5.0,
    *,
    watch: float = 0.0,
    root: str = Z2M_ROOT,
    show: Callable[[Display], None] | None = None,
) -> None:
    """Publish one control message (QoS 1: the broker has it when this returns).

    With ``watch``, stay ``watch`` seconds and hand every display command the pile receives
    to ``show``: what a driver standing at the pile would read on its screen.
    """
    topics = ZigbeeChannels.for_charger(charger_of(pile), root)
    async with _client(broker, timeout) as client:
        if watch > 0:
            await client.subscribe(topics.pile_set.topic(pile=pile), qos=1)
        await client.publish(channels.PILE_CONTROL.topic(pile=pile), encode(control), qos=1)
        if watch <= 0 or show is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(watch):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    with contextlib.suppress(ValidationError):
                        show(DisplayCommand.model_validate_json(payload).display)
