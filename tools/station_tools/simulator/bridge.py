"""One charger's Zigbee2MQTT, as the collector sees it on the broker.

Each charger gets its own MQTT connection, because each real collector runs its own
Zigbee2MQTT: its ``bridge/state`` last will must fire for that charger alone when the
connection drops, and a test must be able to kill one charger's bridge while the others
keep talking.

It also answers the part of Zigbee2MQTT 2.x's bridge API that registering a pile uses
(``permit_join``, ``device/rename``, ``device/remove``), so that a console can be tried
against it: a new device joins only while joining is open, publishes under its IEEE
address until renamed, and is then a pile like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiomqtt
from pydantic import BaseModel, TypeAdapter, ValidationError

from station_protocol.channels import BridgeCall, ZigbeeChannels
from station_protocol.ids import charger_of, is_pile_id
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
    BreathCommand,
    BridgeEvent,
    BridgeEventData,
    BridgeEventType,
    BridgeInfo,
    BridgeRequest,
    BridgeResponse,
    BridgeState,
    ChargeCommand,
    DeviceRemoveData,
    DeviceRemoveRequest,
    DeviceRenameData,
    DeviceRenameRequest,
    DisplayCommand,
    InterviewStatus,
    OnlineState,
    PermitJoinData,
    PermitJoinRequest,
    PileCommand,
    ResponseStatus,
    encode,
    transaction_of,
)
from station_runtime.bus import BrokerAddress
from station_tools import children
from station_tools.simulator.options import SimulatorOptions
from station_tools.simulator.pile import DEFINITION, SimulatedPile

log = logging.getLogger("station.simulator")

BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0
KILL_GRACE = 5.0
"""Seconds a killed bridge's loop gets to notice its dead socket before it is cancelled."""


_COMMANDS: TypeAdapter[PileCommand] = TypeAdapter(PileCommand)

Q = TypeVar("Q", bound=BridgeRequest)
D = TypeVar("D", bound=BaseModel)


class JoiningClosed(RuntimeError):
    """A device tried to join a charger whose joining window is closed."""


class Refused(Exception):
    """A bridge request Zigbee2MQTT would answer with an error; the text is its ``error``."""


def parse_command(payload: bytes) -> PileCommand | None:
    """A pile command, or ``None`` for anything a pile would not understand."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return _COMMANDS.validate_json(payload)
    except ValidationError:
        return None


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
        """The devices on this charger's network, by friendly name."""
        self._broker = broker
        self._options = options
        self._changed = changed
        self._client: aiomqtt.Client | None = None
        self._online = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._killed = False
        self._join_end: float | None = None
        """Wall-clock second the joining window closes at; ``None`` while closed."""
        self._join_timer: asyncio.Task[None] | None = None

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
        self._join_end = None  # a Zigbee2MQTT (re)started has joining closed
        self._task = asyncio.create_task(self._run(), name=f"bridge-{self.charger}")

    async def wait_online(self, timeout: float) -> None:
        await asyncio.wait_for(self._online.wait(), timeout)

    @property
    def joining_open(self) -> bool:
        return self._join_end is not None and time.time() < self._join_end

    def device(self, name: str) -> SimulatedPile | None:
        """A device by friendly name or IEEE address, as Zigbee2MQTT resolves ``from``/``id``."""
        found = self.piles.get(name)
        if found is not None:
            return found
        return next((pile for pile in self.piles.values() if pile.ieee_address == name), None)

    async def admit(self, ieee_address: str) -> SimulatedPile:
        """A new device joins: ``device_joined``, its interview (started, then successful).

        Only while joining is open, as a real coordinator refuses a join otherwise. The
        device is named by its IEEE address and reports its state under it: a stranger to
        the station until an operator renames it.
        """
        if not self.joining_open:
            raise JoiningClosed(f"joining is not open on {self.charger}")
        if self.device(ieee_address) is not None:
            raise ValueError(f"{ieee_address} is already on the network of {self.charger}")
        pile = SimulatedPile.create(ieee_address, self._options, ieee_address=ieee_address)
        self.piles[pile.pile_id] = pile
        self._changed()
        log.info("device joined", extra={"charger": self.charger, "ieee_address": ieee_address})
        client = self._client
        if client is not None:
            await self._publish_event(client, pile, BridgeEventType.DEVICE_JOINED)
            await self._publish_event(
                client, pile, BridgeEventType.DEVICE_INTERVIEW, InterviewStatus.STARTED
            )
            await self._publish_event(
                client, pile, BridgeEventType.DEVICE_INTERVIEW, InterviewStatus.SUCCESSFUL
            )
        await self.publish_state(pile)
        return pile

    async def stop(self) -> None:
        """Shut down as Zigbee2MQTT does: ``offline`` (retained), then a clean disconnect."""
        client = self._client
        if client is not None and self.online:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(self._publish_bridge_state(client, OnlineState.OFFLINE), 2)
        self._killed = True  # down until start(): the connection loop must not come back
        await children.cancel(self._join_timer)
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
        await children.cancel(self._join_timer)
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
                self.topics.device_state.topic(device=pile.pile_id),
                payload,
                qos=self._options.qos,
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
        await self._publish_event(client, pile, BridgeEventType.DEVICE_JOINED)
        await self._publish_event(
            client, pile, BridgeEventType.DEVICE_INTERVIEW, InterviewStatus.SUCCESSFUL
        )
        await self._publish_availability(client, pile, OnlineState.ONLINE)
        await self.publish_state(pile)

    async def announce_leave(self, pile: SimulatedPile) -> None:
        client = self._client
        if client is not None:
            await self._publish_event(client, pile, BridgeEventType.DEVICE_LEAVE)

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
        # Every device's commands, whatever its name now: a rename needs no new subscription.
        requests = [(call.request.topic(), 1) for call in self.topics.bridge_calls]
        await client.subscribe([(self.topics.device_set.filter(), 1), *requests])
        await self._publish_bridge_state(client, OnlineState.ONLINE)
        await self._publish_info(client)
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

    async def _publish_info(self, client: aiomqtt.Client) -> None:
        end = self._join_end if self.joining_open else None
        info = BridgeInfo(
            permit_join=end is not None,
            permit_join_end=None if end is None else int(end * 1000),
        )
        channel = self.topics.bridge_info
        await client.publish(channel.topic(), channel.encode(info), qos=channel.qos, retain=True)

    async def _publish_availability(
        self, client: aiomqtt.Client, pile: SimulatedPile, state: OnlineState | None
    ) -> None:
        """``None`` deletes the retained availability (a device renamed away or removed).

        Only piles have an availability topic here: the station never reads a stranger's.
        """
        if not is_pile_id(pile.pile_id):
            return
        await client.publish(
            self.topics.pile_availability.topic(pile=pile.pile_id),
            b"" if state is None else encode(BridgeState(state=state)),
            qos=1,
            retain=True,
        )

    async def _publish_event(
        self,
        client: aiomqtt.Client,
        pile: SimulatedPile,
        kind: BridgeEventType,
        status: InterviewStatus | None = None,
    ) -> None:
        successful = status == InterviewStatus.SUCCESSFUL
        data = BridgeEventData(
            friendly_name=pile.pile_id,
            ieee_address=pile.ieee_address,
            status=status,
            supported=True if successful else None,
            definition=DEFINITION if successful else None,
        )
        event = BridgeEvent(type=kind, data=data)
        await client.publish(self.topics.bridge_event.topic(), encode(event), qos=1)

    # -- the bridge API --------------------------------------------------------------------

    async def _serve(
        self,
        call: BridgeCall[Q, D],
        payload: bytes,
        handle: Callable[[aiomqtt.Client, Q], Awaitable[D]],
    ) -> None:
        """Answer one request on its response topic, echoing its ``transaction``."""
        client = self._client
        if client is None:
            return
        response: BridgeResponse[D]
        try:
            request = call.request.decode(payload)
        except ValueError as exc:
            log.warning(
                "malformed bridge request refused", extra={"request": call.name, "error": str(exc)}
            )
            response = BridgeResponse[D](
                status=ResponseStatus.ERROR,
                error=f"Invalid payload for {call.name}",
                transaction=transaction_of(payload),
            )
        else:
            try:
                data = await handle(client, request)
            except Refused as exc:
                log.info("bridge request refused", extra={"request": call.name, "error": str(exc)})
                response = BridgeResponse[D](
                    status=ResponseStatus.ERROR, error=str(exc), transaction=request.transaction
                )
            else:
                response = BridgeResponse[D](
                    status=ResponseStatus.OK, data=data, transaction=request.transaction
                )
        await client.publish(call.response.topic(), call.response.encode(response), qos=1)

    async def _permit_join(
        self, client: aiomqtt.Client, request: PermitJoinRequest
    ) -> PermitJoinData:
        """Open or close the joining window; ``bridge/info`` says so, and again when it ends."""
        if request.device is not None and self.device(request.device) is None:
            raise Refused(f"Device '{request.device}' does not exist")
        await children.cancel(self._join_timer)
        self._join_timer = None
        if request.time == 0:
            self._join_end = None
        else:
            self._join_end = time.time() + request.time
            self._join_timer = asyncio.create_task(
                self._close_joining(request.time), name=f"permit-join-{self.charger}"
            )
        log.info("permit join", extra={"charger": self.charger, "seconds": request.time})
        await self._publish_info(client)
        self._changed()
        return PermitJoinData(time=request.time, device=request.device)

    async def _close_joining(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._join_end = None
        self._changed()
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish_info(client)

    async def _rename(
        self, client: aiomqtt.Client, request: DeviceRenameRequest
    ) -> DeviceRenameData:
        """Name a device; from then on it is what that name says (a pile, to the station)."""
        pile = self.device(request.from_)
        if pile is None:
            raise Refused(f"Device '{request.from_}' does not exist")
        new, old = request.to, pile.pile_id
        if new != old:
            if self.device(new) is not None:
                raise Refused(f"Friendly name '{new}' is already in use")
            if not is_pile_id(new) or charger_of(new) != self.charger:
                raise Refused(
                    f"a simulated pile of {self.charger} is named {self.charger}-p<jj>, not '{new}'"
                )
            await self._publish_availability(client, pile, None)
            del self.piles[old]
            pile.pile_id = new
            self.piles[new] = pile
            log.info(
                "device renamed",
                extra={"charger": self.charger, "ieee_address": pile.ieee_address, "pile_id": new},
            )
            self._changed()
            if pile.joined:
                await self._publish_availability(client, pile, OnlineState.ONLINE)
            await self.publish_state(pile)
        return DeviceRenameData(
            from_=request.from_, to=new, homeassistant_rename=bool(request.homeassistant_rename)
        )

    async def _remove(
        self, client: aiomqtt.Client, request: DeviceRemoveRequest
    ) -> DeviceRemoveData:
        """The device leaves (``device_leave``, unless forced) and is heard no more."""
        pile = self.device(request.id)
        if pile is None:
            raise Refused(f"Device '{request.id}' does not exist")
        if not request.force:
            await self._publish_event(client, pile, BridgeEventType.DEVICE_LEAVE)
        await self._publish_availability(client, pile, None)
        del self.piles[pile.pile_id]
        pile.joined = False
        log.info(
            "device removed",
            extra={
                "charger": self.charger,
                "ieee_address": pile.ieee_address,
                "force": request.force,
            },
        )
        self._changed()
        return DeviceRemoveData(id=request.id, force=bool(request.force), block=bool(request.block))

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else b""
        topics = self.topics
        if topic == topics.permit_join.request.topic():
            await self._serve(topics.permit_join, payload, self._permit_join)
            return
        if topic == topics.device_rename.request.topic():
            await self._serve(topics.device_rename, payload, self._rename)
            return
        if topic == topics.device_remove.request.topic():
            await self._serve(topics.device_remove, payload, self._remove)
            return
        name = topics.device_set.param(topic, "device")
        # Zigbee2MQTT takes a device's IEEE address wherever it takes its name.
        pile = None if name is None else self.device(name)
        if pile is None:
            log.warning("message on an unexpected topic ignored", extra={"topic": topic})
            return
        if pile.silenced or not pile.joined:
            return
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
