"""One charger's Zigbee2MQTT, as the collector sees it on the broker.

Each charger gets its own MQTT connection, because each real collector runs its own
Zigbee2MQTT: its ``bridge/state`` last will must fire for that charger alone when the
connection drops, and a test must be able to kill one charger's bridge while the others
keep talking.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import time
import uuid
from collections.abc import Callable

import aiomqtt
from pydantic import TypeAdapter, ValidationError

from station_protocol.channels import ZigbeeChannels
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
    BreathCommand,
    BridgeEvent,
    BridgeEventData,
    BridgeState,
    ChargeCommand,
    DisplayCommand,
    OnlineState,
    PileCommand,
    encode,
)
from station_runtime.bus import BrokerAddress
from station_tools.simulator.options import SimulatorOptions
from station_tools.simulator.pile import SimulatedPile

log = logging.getLogger("station.simulator")

BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0
KILL_GRACE = 5.0
"""Seconds a killed bridge's loop gets to notice its dead socket before it is cancelled."""


_COMMANDS: TypeAdapter[PileCommand] = TypeAdapter(PileCommand)


def parse_command(payload: bytes) -> PileCommand | None:
    """A pile command, or ``None`` for anything a pile would not understand."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return _COMMANDS.validate_json(payload)
    except ValidationError:
        return None


def ieee_address(pile_id: str) -> str:
    """A stable, made-up Zigbee IEEE address for a simulated pile."""
    return "0x" + hashlib.sha256(pile_id.encode()).hexdigest()[:16]


class Bridge:
    """``start()`` connects in the background (reconnecting like Zigbee2MQTT) until stopped."""

    def __init__(
        self,
        charger: str,
        piles: list[SimulatedPile],
        broker: BrokerAddress,
        options: SimulatorOptions,
        changed: Callable[[], None],
    ) -> None:
        self.charger = charger
        self.topics = ZigbeeChannels.for_charger(charger, options.root)
        self.piles = {pile.pile_id: pile for pile in piles}
        self._broker = broker
        self._options = options
        self._changed = changed
        self._client: aiomqtt.Client | None = None
        self._online = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._killed = False

    @property
    def online(self) -> bool:
        return self._online.is_set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._killed = False
        self._task = asyncio.create_task(self._run(), name=f"bridge-{self.charger}")

    async def wait_online(self, timeout: float) -> None:
        await asyncio.wait_for(self._online.wait(), timeout)

    async def stop(self) -> None:
        """Shut down as Zigbee2MQTT does: ``offline`` (retained), then a clean disconnect."""
        client = self._client
        if client is not None and self.online:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(self._publish_bridge_state(client, OnlineState.OFFLINE), 2)
        self._killed = True  # down until start(): the connection loop must not come back
        await self._end_task(grace=0.0)

    async def kill(self) -> None:
        """Drop the connection without a DISCONNECT, as a crashed Zigbee2MQTT or a cut cable.

        The broker then publishes the last will (``bridge/state`` offline). The bridge stays
        down until :meth:`start`.
        """
        self._killed = True
        client = self._client
        if client is not None:
            raw = client._client.socket()  # aiomqtt has no public way to drop a connection
            if isinstance(raw, socket.socket):
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_RDWR)
        await self._end_task(grace=KILL_GRACE)
        log.info("bridge killed", extra={"charger": self.charger})

    async def _end_task(self, grace: float) -> None:
        """End the connection task, however it takes its cancellation.

        Cancelled again until it is done: on Python 3.11 a ``wait_for`` inside aiomqtt can
        swallow a cancellation that meets its timeout, and the task would go on reconnecting
        (``_killed`` also stops that loop), leaving whoever awaits it waiting for ever.
        """
        task, self._task = self._task, None
        if task is None:
            return
        if grace:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), grace)
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "bridge ended with an error",
                extra={"charger": self.charger, "error": str(task.exception())},
            )

    async def publish_state(self, pile: SimulatedPile, swiped_card: str | None = None) -> bool:
        """Publish the pile's full state; ``False`` if its radio or the bridge is down."""
        if pile.silenced or not pile.joined:
            return False
        client = self._client
        if client is None:
            return False
        payload = encode(pile.state(swiped_card))
        try:
            await client.publish(
                self.topics.pile_state.topic(pile=pile.pile_id), payload, qos=self._options.qos
            )
        except aiomqtt.MqttError as exc:
            log.warning(
                "pile state not published",
                extra={"pile_id": pile.pile_id, "card_uid": swiped_card, "error": str(exc)},
            )
            return False
        return True

    async def announce_join(self, pile: SimulatedPile) -> None:
        """A pile joins the network: joined, interviewed, available, then its state."""
        client = self._client
        if client is None:
            return
        for event in ("device_joined", "device_interview"):
            await self._publish_event(client, pile, event)
        await self._publish_availability(client, pile, OnlineState.ONLINE)
        await self.publish_state(pile)

    async def announce_leave(self, pile: SimulatedPile) -> None:
        client = self._client
        if client is not None:
            await self._publish_event(client, pile, "device_leave")

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while not self._killed:
            try:
                async with self._make_client() as client:
                    await self._on_connect(client)
                    delay = BACKOFF_MIN
                    async for message in client.messages:
                        await self._on_message(message)
            except aiomqtt.MqttError as exc:
                if not self._killed:
                    log.warning(
                        "bridge lost the broker, retrying",
                        extra={"charger": self.charger, "error": str(exc), "retry_in": delay},
                    )
            finally:
                self._client = None
                self._online.clear()
            if self._killed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _make_client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(
            self.topics.bridge_state.topic(),
            encode(BridgeState(state=OnlineState.OFFLINE)),
            qos=1,
            retain=True,
        )
        return aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            identifier=f"zigbee2mqtt-sim-{self.charger}-{uuid.uuid4().hex[:8]}",
            will=will,
            keepalive=self._options.keepalive,
            timeout=5,
        )

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        """Subscribe before announcing ``online``, so no command sent on it is missed."""
        self._client = client
        await client.subscribe([(self.topics.pile_set.topic(pile=pile), 1) for pile in self.piles])
        await self._publish_bridge_state(client, OnlineState.ONLINE)
        for pile in self.piles.values():
            if pile.joined:
                await self._publish_availability(client, pile, OnlineState.ONLINE)
        for pile in self.piles.values():
            await self.publish_state(pile)
        self._online.set()
        self._changed()
        log.info("bridge online", extra={"charger": self.charger, "broker": str(self._broker)})

    async def _publish_bridge_state(self, client: aiomqtt.Client, state: OnlineState) -> None:
        await client.publish(
            self.topics.bridge_state.topic(), encode(BridgeState(state=state)), qos=1, retain=True
        )

    async def _publish_availability(
        self, client: aiomqtt.Client, pile: SimulatedPile, state: OnlineState
    ) -> None:
        await client.publish(
            self.topics.pile_availability.topic(pile=pile.pile_id),
            encode(BridgeState(state=state)),
            qos=1,
            retain=True,
        )

    async def _publish_event(self, client: aiomqtt.Client, pile: SimulatedPile, kind: str) -> None:
        data = BridgeEventData(
            friendly_name=pile.pile_id,
            ieee_address=ieee_address(pile.pile_id),
            status="successful" if kind == "device_interview" else None,
        )
        event = BridgeEvent.model_validate({"type": kind, "data": data})
        await client.publish(self.topics.bridge_event.topic(), encode(event), qos=1)

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        pile = self.piles.get(self.topics.pile_set.param(topic, "pile") or "")
        if pile is None:
            log.warning("message on an unexpected topic ignored", extra={"topic": topic})
            return
        if pile.silenced or not pile.joined:
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        command = parse_command(payload)
        if command is None:
            log.warning(
                "malformed pile command ignored",
                extra={"pile_id": pile.pile_id, "payload": payload[:200].decode(errors="replace")},
            )
            return
        await self._obey(pile, command)

    async def _obey(self, pile: SimulatedPile, command: PileCommand) -> None:
        """Apply a command, then report the state, as a pile answers every command it gets."""
        options = self._options
        now = time.monotonic()
        if isinstance(command, BreathCommand):
            pile.breath_ack = command.breath
        elif isinstance(command, ChargeCommand) and command.charge == "start":
            if not pile.start(command, now):
                log.info(
                    "charge start refused",
                    extra={
                        "pile_id": pile.pile_id,
                        "session_id": command.session_id,
                        "gun": pile.gun,
                        "error_code": pile.error_code,
                    },
                )
        elif isinstance(command, ChargeCommand):
            pile.stop(command, now, options.speedup)
        elif isinstance(command, DisplayCommand):
            pile.displays.append(command.display)
            self._changed()
            return
        self._changed()
        await self.publish_state(pile)
