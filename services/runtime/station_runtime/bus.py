"""The station bus client: one MQTT v5 connection per service, owned by its lifespan.

Why a client of our own around aiomqtt: every service needs the same four behaviours, and
they are part of the contract between services rather than of any one service:

* a retained ``online`` status on connect and an MQTT last will that writes ``offline``, so
  that the station sees a dead service at once (socket closed) or within 1.5 x keep-alive;
  a service that stops on purpose says ``offline`` with ``stopped``, so that a restart is
  not taken for a crash;
* reconnect with exponential backoff and jitter, then re-subscribe and re-publish the status;
* MQTT v5 request/response (response topic + correlation data), with the replies matched to
  waiting callers;
* messages routed to handlers by topic filter; a handler that raises is logged and counted,
  never allowed to stop the loop.

Handlers run one at a time in arrival order (per-pile order matters to the collector). A
handler must therefore never await :meth:`Bus.request` itself, since the reply is read by
the same loop: start a task for a round trip instead.

A route may instead name a *lane* for each message (:data:`by_topic`, say): messages of one
lane are handled one at a time in arrival order, lanes side by side and apart from the
message loop. A service whose handlers wait on a database (the faults service) uses lanes so
that one slow write does not hold up every other pile's bulletin behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt import client as mqtt_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel

from station_protocol import channels
from station_protocol.channels import Channel, RequestChannel, shared, unshare
from station_protocol.messages import ServiceStatus
from station_protocol.zigbee import OnlineState
from station_runtime.deliveries import (
    Cleared,
    ClearHandler,
    Delivery,
    DropLog,
    Dropped,
    DropReason,
    DropSink,
    Handler,
    Incoming,
    decode,
    no_count,
)
from station_runtime.tasks import cancel_until_done, stop_if_cancelled

log = logging.getLogger("station.bus")
M = TypeVar("M")
R = TypeVar("R")
CONNECTION_GONE = frozenset({mqtt_client.MQTT_ERR_NO_CONN, mqtt_client.MQTT_ERR_CONN_LOST})
"""What a publish on a connection that died unnoticed fails with."""
RETRY_PUBLISH = 0.05
"""Seconds between tries of such a publish, while the bus reconnects."""
PENDING_CALLS_WARNING = 500
"""aiomqtt logs a warning above this many publishes waiting for their acknowledgement."""
JITTER = (0.5, 1.5)
"""Each wait between reconnection tries is the backoff delay times a random factor in here,
so that clients cut off together do not all come back in the same instant."""

Payload = BaseModel | bytes | str


RawHandler = Callable[[Incoming], Awaitable[None]]


class BusUnavailable(Exception):
    """The broker could not be reached in time; the caller decides whether to retry."""


class RequestTimeout(Exception):
    """No reply came in time; the request may or may not have been handled."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://host:port`` (the port defaults to 1883)."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"broker must be mqtt://HOST:PORT, got {url!r}")
        return cls(parts.hostname, parts.port or 1883)

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@dataclass(frozen=True)
class BusOptions:
    """How one service connects; frozen so a running bus never changes under its feet."""

    broker: BrokerAddress
    client_id: str
    service: str
    charger: str | None = None
    status_topic: str | None = None
    """Retained status topic; default ``station/v1/services/<service>/status``."""
    username: str | None = None
    password: str | None = None
    keepalive: int = 10
    session_expiry: int = 0
    """Seconds the broker keeps our subscriptions and QoS 1 messages while we are away."""
    backoff_min: float = 0.2
    backoff_max: float = 5.0

    @property
    def longest_retry(self) -> float:
        """The longest a client waits between tries (the backoff cap, jittered up by half):
        how long after the broker is back every client has had a chance to reconnect."""
        return self.backoff_max * JITTER[1]

    @property
    def status(self) -> str:
        return self.status_topic or channels.SERVICE_STATUS.topic(service=self.service)


Lane = Callable[[Incoming], Hashable]
"""Which lane a message goes in: same lane, same order."""


def by_topic(message: Incoming) -> Hashable:
    """One lane per topic: a retained report per (source, code) keeps its order."""
    return message.topic


@dataclass
class _Route:
    topic_filter: str
    qos: int
    handler: RawHandler
    lane: Lane | None = None


@dataclass
class _Lanes:
    """Tasks that run each lane's messages in order, lanes side by side."""

    tails: dict[Hashable, asyncio.Task[None]] = field(default_factory=dict)

    def submit(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._after(self.tails.get(key), work))
        self.tails[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    @staticmethod
    async def _after(
        previous: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await work()

    def _forget(self, key: Hashable, done: asyncio.Task[None]) -> None:
        if self.tails.get(key) is done:
            del self.tails[key]

    async def close(self) -> None:
        await cancel_until_done(list(self.tails.values()))


@dataclass
class _Metrics:
    connected: Gauge
    handler_errors: Counter
    reconnects: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry | None) -> _Metrics:
        return cls(
            connected=Gauge(
                "station_bus_connected", "1 while the broker connection is up", registry=registry
            ),
            handler_errors=Counter(
                "station_bus_handler_errors",
                "Messages whose handler raised (logged, then dropped)",
                ["topic_filter"],
                registry=registry,
            ),
            reconnects=Counter(
                "station_bus_reconnects", "Broker connections lost and retried", registry=registry
            ),
        )


@dataclass
class Bus:
    """``async with Bus(options) as bus``: connected in the background until the block ends."""

    options: BusOptions
    registry: CollectorRegistry | None = None
    on_drop: DropSink = no_count
    """Counts a dropped message in the service's own metric (the bus logs it)."""
    _routes: list[_Route] = field(default_factory=list)
    _pending: dict[bytes, asyncio.Future[bytes]] = field(default_factory=dict)
    _client: aiomqtt.Client | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _metrics: _Metrics | None = None
    _on_connect_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    _lanes: _Lanes = field(default_factory=_Lanes)
    _drop_log: DropLog = field(default_factory=DropLog)

    @property
    def reply_topic(self) -> str:
        return channels.replies(self.options.client_id)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def route(
        self, topic_filter: str, qos: int = 1, lane: Lane | None = None
    ) -> Callable[[RawHandler], RawHandler]:
        """Decorator: send messages matching ``topic_filter`` to the decorated handler."""

        def register(handler: RawHandler) -> RawHandler:
            self.add_route(topic_filter, handler, qos, lane)
            return handler

        return register

    def add_route(
        self, topic_filter: str, handler: RawHandler, qos: int = 1, lane: Lane | None = None
    ) -> None:
        """``lane``: handle in that message's lane (see the module), not in the message loop."""
        self._routes.append(_Route(topic_filter, qos, handler, lane))

    # -- typed channels --------------------------------------------------------------------

    def subscribe(
        self,
        channel: Channel[M],
        handler: Handler[M],
        *,
        only: Mapping[str, str] | None = None,
        share: str | None = None,
        lane: Lane | None = None,
        kind: str | None = None,
        on_clear: ClearHandler | None = None,
    ) -> None:
        """Hand ``handler`` every good message of ``channel``, decoded once; drop the rest.

        ``only`` fixes parameters (``{"charger": "c1"}``); ``share`` names an MQTT v5 shared
        subscription group, so that replicas split the work; ``kind`` is the label a dropped
        message is counted under (default the channel's name); ``on_clear`` is called when a
        retained message of the channel is deleted (ignored without it).
        """
        label = kind or channel.name

        async def receive(incoming: Incoming) -> None:
            decoded = decode(channel, incoming, label)
            if decoded.dropped is not None:
                self._dropped(decoded.dropped)
            elif decoded.cleared is not None:
                if on_clear is not None:
                    await on_clear(decoded.cleared)
            elif decoded.delivery is not None:
                await handler(decoded.delivery)

        self.add_route(self._filter(channel, only, share), receive, channel.qos, lane)

    def serve(
        self,
        channel: RequestChannel[M, R],
        handler: Callable[[Delivery[M]], Awaitable[R | None]],
        *,
        share: str | None = None,
        lane: Lane | None = None,
        kind: str | None = None,
        only: Mapping[str, str] | None = None,
        after_reply: Callable[[Delivery[M], R], Awaitable[None]] | None = None,
    ) -> None:
        """Answer the requests of ``channel``: the handler's reply goes back to the asker
        with its correlation data; ``None`` answers nothing (the handler dropped it).

        ``after_reply``: work that follows a reply sent (a database write, say), in the same
        lane, so that the asker does not wait for it and the next request still does.
        """

        async def answer(delivery: Delivery[M]) -> None:
            reply = await handler(delivery)
            if reply is not None:
                await self.answer(channel, delivery, reply)
                if after_reply is not None:
                    await after_reply(delivery, reply)

        self.subscribe(channel, answer, only=only, share=share, lane=lane, kind=kind)

    async def answer(self, channel: RequestChannel[M, R], request: Delivery[M], reply: R) -> None:
        """Answer ``request`` on its response topic, encoded by its channel: what
        :meth:`serve` does with a handler's reply, for a handler that must answer before it
        is done (billing answers a checkout, then publishes the pile's session)."""
        await self.reply(request.incoming, channel.encode_reply(reply))

    async def look_again(
        self, channel: Channel[M], *, only: Mapping[str, str] | None = None
    ) -> None:
        """Have the broker send again what it retains on a subscription of ``channel``.

        A live message on a retained topic is anyone's word, published retained or not; the
        retained one is the standing word. Subscribing again to the same filter replaces the
        subscription, and the broker sends its retained messages again, flagged retained
        (MQTT 5 retain handling 0), through the subscription's own handler. Nothing happens
        while the connection is down: the broker sends them anyway when it comes back.
        """
        client = self._client
        if client is None or not self.connected:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.subscribe(self._filter(channel, only, None), qos=channel.qos)

    async def ask(
        self,
        channel: RequestChannel[M, R],
        request: M,
        *,
        timeout: float,
        quiet: bool = False,
        answers: Callable[[R], bool] | None = None,
        **params: str,
    ) -> R | None:
        """The reply to ``request``, or ``None`` when there is none in time or it is unreadable
        (logged; the caller decides whether to ask again). ``quiet``: an unanswered request is
        the caller's measurement, not news (a breath every T1), so it is logged at debug.
        ``answers``: whether a reply is about what was asked (its session, its card); one
        that is not is dropped as ``unsolicited`` and counts as no answer."""
        topic = channel.topic(**params)
        try:
            raw = await self.request(topic, channel.encode(request), timeout=timeout)
        except (RequestTimeout, BusUnavailable) as exc:
            level = logging.DEBUG if quiet else logging.WARNING
            log.log(level, "no answer", extra={"topic": topic, "error": str(exc)})
            return None
        try:
            reply = channel.decode_reply(raw)
        except ValueError as exc:
            self._dropped(Dropped(f"{channel.name}_reply", DropReason.INVALID, topic, str(exc)))
            return None
        if answers is not None and not answers(reply):
            error = "the reply is about another question"
            self._dropped(Dropped(f"{channel.name}_reply", DropReason.UNSOLICITED, topic, error))
            return None
        return reply

    async def send(
        self,
        channel: Channel[M],
        message: M,
        *,
        qos: int | None = None,
        wait: float = 5.0,
        **params: str,
    ) -> None:
        """Publish ``message`` on its channel (the channel's QoS and retain flag)."""
        await self.publish(
            channel.topic(**params),
            channel.encode(message),
            qos=channel.qos if qos is None else qos,
            retain=channel.retain,
            wait=wait,
        )

    async def clear(self, channel: Channel[M], *, wait: float = 5.0, **params: str) -> None:
        """Delete the retained message of a topic of ``channel`` (an empty retained payload)."""
        if not channel.retain:
            raise ValueError(f"{channel.name} keeps no retained messages to clear")
        topic = channel.topic(**params)
        await self.publish(topic, b"", qos=channel.qos, retain=True, wait=wait)

    def drop(
        self, delivery: Delivery[Any] | Cleared, reason: str, kind: str, error: str = ""
    ) -> None:
        """A handler refuses a message it decoded (its topic and payload disagree, it names
        something unknown): logged and counted like the bus's own drops."""
        incoming = delivery.incoming
        self._dropped(Dropped(kind, reason, incoming.topic, error, delivery.params))

    def _dropped(self, dropped: Dropped) -> None:
        self._drop_log(dropped)
        self.on_drop(dropped)

    @staticmethod
    def _filter(channel: Channel[Any], only: Mapping[str, str] | None, share: str | None) -> str:
        topic_filter = channel.filter(**(only or {}))
        return topic_filter if share is None else shared(share, topic_filter)

    def on_connect(self, hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``hook`` after every (re)connection, e.g. to republish what the broker lost."""
        self._on_connect_hooks.append(hook)

    async def __aenter__(self) -> Bus:
        self._metrics = _Metrics.on(self.registry)
        self._task = asyncio.create_task(self._run(), name=f"bus-{self.options.client_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None and self.connected:
            # Stopped on purpose, unlike the last will's offline: whoever watches this
            # service gives it a grace to come back instead of calling it missing at once.
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(self._publish_status(OnlineState.OFFLINE, stopped=True), 2)
        if self._task is not None:
            await cancel_until_done([self._task])
        await self._lanes.close()
        for future in self._pending.values():
            future.cancel()

    async def wait_connected(self, timeout: float) -> None:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that meets the event being set (see station_runtime.tasks).
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError as exc:
            raise BusUnavailable(f"no broker connection after {timeout} s") from exc

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 1,
        retain: bool = False,
        wait: float = 5.0,
        properties: Properties | None = None,
    ) -> None:
        """Publish, waiting up to ``wait`` seconds for a broker connection.

        A connection can die before the bus has noticed (the broker restarting): a publish
        that finds it dead waits, within the same ``wait``, for the bus to reconnect.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            await self.wait_connected(max(deadline - loop.time(), 0.0))
            client = self._client
            if client is None:
                # The connection dropped between the wait and now: the same as no connection.
                raise BusUnavailable("broker connection lost")
            try:
                await client.publish(
                    topic, _encode(payload), qos=qos, retain=retain, properties=properties
                )
                return
            except aiomqtt.MqttError as exc:
                if not self._gone(client, exc) or loop.time() >= deadline:
                    raise BusUnavailable(str(exc)) from exc
                # At least once, as QoS 1 is: it may have arrived before its ack was lost.
                await asyncio.sleep(RETRY_PUBLISH)

    def _gone(self, client: aiomqtt.Client, error: aiomqtt.MqttError) -> bool:
        """The publish failed because its connection died (replaced since, or refused)."""
        replaced = self._client is not client
        refused = isinstance(error, aiomqtt.MqttCodeError) and error.rc in CONNECTION_GONE
        return replaced or refused

    async def request(self, topic: str, payload: Payload, *, timeout: float = 5.0) -> bytes:
        """MQTT v5 request/response: publish with our reply topic and wait for the answer."""
        correlation = uuid.uuid4().bytes
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self.reply_topic
        properties.CorrelationData = correlation
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        try:
            await self.publish(topic, payload, qos=1, wait=timeout, properties=properties)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise RequestTimeout(f"no reply on {topic} within {timeout} s") from exc
        finally:
            self._pending.pop(correlation, None)

    async def reply(self, request: Incoming, payload: Payload) -> None:
        """Answer a request on its response topic, echoing its correlation data."""
        if request.response_topic is None:
            log.warning("request without a response topic", extra={"topic": request.topic})
            return
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if request.correlation is not None:
            properties.CorrelationData = request.correlation
        await self.publish(request.response_topic, payload, qos=1, properties=properties)

    async def _run(self) -> None:
        delay = self.options.backoff_min
        while True:
            try:
                async with self._make_client() as client:
                    self._client = client
                    await self._on_connect(client)
                    delay = self.options.backoff_min
                    async for message in client.messages:
                        await self._dispatch(message)
                        # A handler's publish can swallow this task's cancellation (aiomqtt
                        # waits for the ack with wait_for, which does on Python 3.11): end
                        # here, or the loop waits for the next message with no cancel due.
                        stop_if_cancelled()
            except aiomqtt.MqttError as exc:
                log.warning(
                    "broker connection lost, retrying",
                    extra={
                        "broker": str(self.options.broker),
                        "error": str(exc),
                        "retry_in": delay,
                    },
                )
            finally:
                self._connected.clear()
                self._client = None
                self._set_connected(0)
            assert self._metrics is not None
            self._metrics.reconnects.inc()
            await asyncio.sleep(delay * random.uniform(*JITTER))
            delay = min(delay * 2, self.options.backoff_max)

    def _make_client(self) -> aiomqtt.Client:
        options = self.options
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if options.session_expiry:
            connect.SessionExpiryInterval = options.session_expiry
        will = aiomqtt.Will(
            options.status,
            _encode(self._status(OnlineState.OFFLINE)),
            qos=1,
            retain=True,
        )
        client = aiomqtt.Client(
            options.broker.host,
            options.broker.port,
            identifier=options.client_id,
            username=options.username,
            password=options.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=options.keepalive,
            clean_start=options.session_expiry == 0,
            properties=connect,
            timeout=5,
            # Bulletins and breaths are small and late ones are wrong: no Nagle delay.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # A whole station's bulletins or breaths at once is normal here, not worth a warning.
        client.pending_calls_threshold = PENDING_CALLS_WARNING
        return client

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.reply_topic, qos=1)
        for route in self._routes:
            await client.subscribe(route.topic_filter, qos=route.qos)
        # The status goes out before anyone is told the bus is connected: a publish of theirs
        # must not find this one still waiting for its acknowledgement on a connection that
        # died meanwhile, which would hold up the loop that notices the death.
        await self._publish_status(OnlineState.ONLINE)
        self._connected.set()
        self._set_connected(1)
        log.info("connected to the broker", extra={"broker": str(self.options.broker)})
        for hook in self._on_connect_hooks:
            task = asyncio.create_task(hook())
            task.add_done_callback(_log_hook_failure)

    def _status(self, state: OnlineState, stopped: bool | None = None) -> ServiceStatus:
        return ServiceStatus(
            state=state,
            service=self.options.service,
            charger=self.options.charger,
            stopped=stopped,
        )

    async def _publish_status(self, state: OnlineState, stopped: bool | None = None) -> None:
        assert self._client is not None
        await self._client.publish(
            self.options.status, _encode(self._status(state, stopped)), qos=1, retain=True
        )

    def _set_connected(self, value: int) -> None:
        if self._metrics is not None:
            self._metrics.connected.set(value)

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else b""
        properties = message.properties
        correlation = getattr(properties, "CorrelationData", None) if properties else None
        if topic == self.reply_topic:
            future = self._pending.get(bytes(correlation)) if correlation else None
            if future is not None and not future.done():
                future.set_result(payload)
            else:
                # A forged, late or repeated answer: the first one to a question counts.
                self._dropped(Dropped("reply", DropReason.UNSOLICITED, topic))
            return
        incoming = Incoming(
            topic=topic,
            payload=payload,
            retain=bool(message.retain),
            response_topic=getattr(properties, "ResponseTopic", None) if properties else None,
            correlation=bytes(correlation) if correlation else None,
        )
        for route in self._routes:
            if not message.topic.matches(unshare(route.topic_filter)):
                continue
            if route.lane is None:
                await self._call(route, incoming)
            else:
                work = functools.partial(self._call, route, incoming)
                self._lanes.submit(route.lane(incoming), work)

    async def _call(self, route: _Route, incoming: Incoming) -> None:
        try:
            await route.handler(incoming)
        except Exception:
            assert self._metrics is not None
            self._metrics.handler_errors.labels(route.topic_filter).inc()
            log.exception("handler failed", extra={"topic": incoming.topic})


def _log_hook_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("on-connect hook failed", exc_info=task.exception())


def _encode(payload: Payload) -> bytes:
    if isinstance(payload, BaseModel):
        return payload.model_dump_json(exclude_none=True).encode()
    if isinstance(payload, str):
        return payload.encode()
    return payload
