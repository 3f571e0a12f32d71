"""Typed channels: every topic of the station declared once, with what travels on it.

A :class:`Channel` binds a topic pattern (``station/v1/sessions/{pile}``) to its payload
type, QoS and retain flag; a :class:`RequestChannel` adds the reply type of an MQTT v5
request/response pair. Topics are built (:meth:`Channel.topic`), subscribed to
(:meth:`Channel.filter`) and parsed (:meth:`Channel.parse`) from that one declaration, and
payloads decoded and encoded by it, so that a message's shape is bound to its topic in code,
not only in prose. The bus client (``station_runtime.bus``) takes channels, decodes once and
drops a bad message in one place; handlers receive models, never bytes.

Parameters are named: ``{pile}`` must be a pile id (``c1-p01``), ``{charger}`` a charger id
(``c1``), any other a single non-empty topic level. A topic whose parameter is not what its
name says does not belong to the channel (:meth:`Channel.parse` answers ``None``), so a
message on ``station/v1/sessions/c9-x`` is refused before any handler sees it.

``docs/contracts/topics.md`` has the whole tree as a table.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from station_protocol.bulletins import Bulletin
from station_protocol.ids import CHARGER_PATTERN, is_pile_id
from station_protocol.messages import (
    AuthorizationWithdrawal,
    BalanceReply,
    BalanceRequest,
    BreathAck,
    CheckoutReply,
    CheckoutRequest,
    CollectorBreath,
    CollectorLink,
    DebitReply,
    DebitRequest,
    FaultReport,
    KioskReply,
    KioskRequest,
    MeterReading,
    PileMaintenance,
    PileSession,
    PileStatus,
    ServiceFaultReport,
    ServiceStatus,
    SessionAnswer,
    SessionOpenReply,
    SessionOpenRequest,
    SessionQuery,
    StationPiles,
    StopRequest,
    TariffDisplay,
    VerificationReply,
    VerificationRequest,
)
from station_protocol.simulator import ChargerControl, PileControl, SimulatorStatus
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
    BridgeEvent,
    BridgeInfo,
    BridgeResponse,
    BridgeState,
    DeviceRemoveData,
    DeviceRemoveRequest,
    DeviceRenameData,
    DeviceRenameRequest,
    PermitJoinData,
    PermitJoinRequest,
    PileCommand,
    PileState,
)

M = TypeVar("M")
R = TypeVar("R")
Q = TypeVar("Q", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)

Z2M_ROOT = "zigbee2mqtt"
STATION_ROOT = "station/v1"
SIMULATOR_ROOT = "simulator/v1"

_CHARGER = re.compile(CHARGER_PATTERN)


def _is_charger_id(text: str) -> bool:
    return _CHARGER.match(text) is not None


def _is_level(text: str) -> bool:
    return bool(text) and not any(char in text for char in "/+#")


PARAM_CHECKS: Mapping[str, Callable[[str], bool]] = {"pile": is_pile_id, "charger": _is_charger_id}
"""What a parameter of each name must be; a name not listed is any single topic level."""


def _encode_json(adapter: TypeAdapter[Any], message: Any) -> bytes:
    # Absent optional fields are left out, as a pile or an older reader expects only
    # what it is told.
    return adapter.dump_json(message, exclude_none=True)


@dataclass(frozen=True, eq=False)
class Channel(Generic[M]):
    """One topic pattern and the messages on it. Frozen: a contract does not change at run time."""

    name: str
    """A short name for logs and the ``kind`` label of dropped messages (``pile_session``)."""
    pattern: str
    """``station/v1/sessions/{pile}``: literal levels and ``{named}`` parameters."""
    adapter: TypeAdapter[M]
    qos: int = 1
    retain: bool = False
    max_bytes: int | None = None
    """A larger payload is refused unread."""
    decoder: Callable[[bytes], M] | None = None
    """How to read a payload, where JSON of the model is not the whole story."""
    doc: str = ""

    @cached_property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("/"))

    @cached_property
    def params(self) -> tuple[str, ...]:
        """The parameter names, in topic order."""
        return tuple(
            name for _, name, _, _ in string.Formatter().parse(self.pattern) if name is not None
        )

    def topic(self, **params: str) -> str:
        """The topic for these parameter values; a wrong or missing value is a caller's bug."""
        if set(params) != set(self.params):
            raise ValueError(f"{self.name} needs {self.params}, got {tuple(params)}")
        for name, value in params.items():
            if not _valid(name, value):
                raise ValueError(f"{self.name}: {value!r} is not a valid {name}")
        return self.pattern.format(**params)

    def filter(self, **fixed: str) -> str:
        """The subscription filter: the parameters given fixed, every other one ``+``."""
        unknown = set(fixed) - set(self.params)
        if unknown:
            raise ValueError(f"{self.name} has no parameter {sorted(unknown)}")
        return self.pattern.format(**{name: fixed.get(name, "+") for name in self.params})

    def parse(self, topic: str) -> dict[str, str] | None:
        """The parameter values of ``topic``, or ``None`` if it is not a topic of this channel."""
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return None
        values: dict[str, str] = {}
        for level, part in zip(self.levels, parts, strict=True):
            if level.startswith("{") and level.endswith("}"):
                name = level[1:-1]
                if not _valid(name, part):
                    return None
                values[name] = part
            elif level != part:
                return None
        return values

    def param(self, topic: str, name: str) -> str | None:
        """One parameter of ``topic`` (``PILE_SESSION.param(topic, "pile")``), if it is ours."""
        values = self.parse(topic)
        return None if values is None else values.get(name)

    def decode(self, payload: bytes) -> M:
        """The message in ``payload``; raises ``ValueError`` (pydantic's ``ValidationError``)."""
        if self.max_bytes is not None and len(payload) > self.max_bytes:
            raise PayloadTooLarge(f"{len(payload)} bytes on {self.name}, at most {self.max_bytes}")
        if self.decoder is not None:
            return self.decoder(payload)
        return self.adapter.validate_json(payload)

    def encode(self, message: M) -> bytes:
        return _encode_json(self.adapter, message)


@dataclass(frozen=True, eq=False)
class RequestChannel(Channel[M], Generic[M, R]):
    """A request topic of an MQTT v5 request/response pair, and the type of its reply.

    The request carries the asker's response topic (:data:`REPLIES`) and correlation data;
    the answer goes there with the same correlation data.
    """

    reply: TypeAdapter[R] = field(kw_only=True)

    def decode_reply(self, payload: bytes) -> R:
        return self.reply.validate_json(payload)

    def encode_reply(self, message: R) -> bytes:
        return _encode_json(self.reply, message)


class PayloadTooLarge(ValueError):
    """A payload over its channel's ``max_bytes``: refused unread."""


def _valid(name: str, value: str) -> bool:
    check = PARAM_CHECKS.get(name)
    return _is_level(value) and (check is None or check(value))


def channel(
    name: str,
    pattern: str,
    payload: type[M],
    *,
    qos: int = 1,
    retain: bool = False,
    doc: str = "",
) -> Channel[M]:
    return Channel(name, pattern, TypeAdapter(payload), qos=qos, retain=retain, doc=doc)


def request_channel(
    name: str, pattern: str, payload: type[M], reply: type[R], *, doc: str = ""
) -> RequestChannel[M, R]:
    return RequestChannel(name, pattern, TypeAdapter(payload), reply=TypeAdapter(reply), doc=doc)


# -- the station's own services, under station/v1 ----------------------------------------

COLLECTOR_STATUS = channel(
    "collector_status",
    f"{STATION_ROOT}/collectors/{{charger}}/status",
    ServiceStatus,
    retain=True,
    doc="A collector's online/offline status; its MQTT last will writes offline.",
)
SERVICE_STATUS = channel(
    "service_status",
    f"{STATION_ROOT}/services/{{service}}/status",
    ServiceStatus,
    retain=True,
    doc="A service's online/offline status; its MQTT last will writes offline.",
)
LOCAL_SERVER = "faults"
"""The service that answers collector breaths: its ``SERVICE_STATUS`` says when it stops."""
COLLECTOR_BREATH = request_channel(
    "breath",
    f"{STATION_ROOT}/collectors/{{charger}}/breath",
    CollectorBreath,
    BreathAck,
    doc="Collector -> local server every T1; the faults service answers each breath.",
)
COLLECTOR_FAULT = channel(
    "report",
    f"{STATION_ROOT}/collectors/{{charger}}/faults/{{source}}/{{code}}",
    FaultReport,
    retain=True,
    doc="A collector's word on one condition of a pile or itself; deleted or inactive clears.",
)
SERVICE_FAULT = channel(
    "report",
    f"{STATION_ROOT}/services/{{service}}/faults/{{source}}/{{code}}",
    ServiceFaultReport,
    retain=True,
    doc="A service's word on one condition (central, a database...); deleted or inactive clears.",
)
COLLECTOR_STOP = channel(
    "stop",
    f"{STATION_ROOT}/collectors/{{charger}}/stop",
    StopRequest,
    doc="Billing (operator stop, balance used up) -> the collector: stop this session.",
)
FAULT_BULLETIN = channel(
    "bulletin",
    f"{STATION_ROOT}/faults/bulletins/{{source}}/{{code}}",
    Bulletin,
    retain=True,
    doc="The bulletin of one active fault, with causes and remedies; deleted when it clears.",
)
VERIFICATION = request_channel(
    "request",
    f"{STATION_ROOT}/verification/requests",
    VerificationRequest,
    VerificationReply,
    doc="Collector -> verification: may this card charge on this pile as this session?",
)
DEBIT = request_channel(
    "debit",
    f"{STATION_ROOT}/verification/debits",
    DebitRequest,
    DebitReply,
    doc="Billing -> verification: debit a session from its card, once.",
)
WITHDRAWAL = channel(
    "withdrawal",
    f"{STATION_ROOT}/verification/withdrawals",
    AuthorizationWithdrawal,
    doc="Collector -> verification: an accepted card's session did not start; free the card.",
)
BALANCE = request_channel(
    "balance",
    f"{STATION_ROOT}/verification/balances",
    BalanceRequest,
    BalanceReply,
    doc="Billing -> verification: a card's balance now.",
)
SESSION_OPEN = request_channel(
    "session_open",
    f"{STATION_ROOT}/billing/open",
    SessionOpenRequest,
    SessionOpenReply,
    doc="Collector -> billing: open a verified card's session before the pile charges.",
)
CHECKOUT = request_channel(
    "checkout",
    f"{STATION_ROOT}/billing/checkout",
    CheckoutRequest,
    CheckoutReply,
    doc="Collector -> billing: the session ended; price it, store its record, answer a receipt.",
)
SESSION_QUERY = request_channel(
    "session_query",
    f"{STATION_ROOT}/billing/sessions",
    SessionQuery,
    SessionAnswer,
    doc="Anyone -> billing: billing's word on a session (by id) or on a pile's session now.",
)
PILE_SESSION = channel(
    "pile_session",
    f"{STATION_ROOT}/sessions/{{pile}}",
    PileSession,
    retain=True,
    doc="Billing's word on the session of a pile: the active one, or the last one ended.",
)
PILE_METER = channel(
    "meter",
    f"{STATION_ROOT}/piles/{{pile}}/meter",
    MeterReading,
    qos=0,
    doc="A pile's meter readings, forwarded by its collector; billing times them.",
)
PILE_TARIFF = channel(
    "tariff",
    f"{STATION_ROOT}/piles/{{pile}}/tariff",
    TariffDisplay,
    retain=True,
    doc="Billing: the price in effect on a pile now, shown before a driver swipes.",
)
PILE_STATUS = channel(
    "pile_status",
    f"{STATION_ROOT}/piles/{{pile}}/status",
    PileStatus,
    retain=True,
    doc="A collector: one pile's state for the board (state, power, energy, faults).",
)
PILE_MAINTENANCE = channel(
    "maintenance",
    f"{STATION_ROOT}/piles/{{pile}}/maintenance",
    PileMaintenance,
    retain=True,
    doc="The console -> the pile's collector: the pile is in maintenance (or back).",
)
KIOSK = request_channel(
    "kiosk",
    f"{STATION_ROOT}/collectors/{{charger}}/kiosk",
    KioskRequest,
    KioskReply,
    doc="The console -> a collector: a card at the kiosk, as if swiped at the pile.",
)
STATION_PILES = channel(
    "station_piles",
    f"{STATION_ROOT}/console/piles",
    StationPiles,
    retain=True,
    doc="The console: the station's piles, charger by charger (registration changes it).",
)
COLLECTOR_LINK = Channel(
    "collector_link",
    f"{STATION_ROOT}/collectors/{{charger}}/link",
    TypeAdapter(CollectorLink),
    retain=True,
    decoder=CollectorLink.parse,
    doc="Whether a collector's own broker is bridged to the station broker: 1 or 0 (mosquitto).",
)
REPLIES_PATTERN = f"{STATION_ROOT}/replies/{{client_id}}"
"""Where the answers to one bus client's requests arrive (its MQTT v5 response topic)."""


def replies(client_id: str) -> str:
    return REPLIES_PATTERN.format(client_id=client_id)


# -- a collector's Zigbee2MQTT, under zigbee2mqtt/<charger> --------------------------------


def _bridge_state(payload: bytes) -> BridgeState:
    return BridgeState.parse(payload)


@dataclass(frozen=True, eq=False)
class BridgeCall(Generic[Q, D]):
    """One request of Zigbee2MQTT's bridge API and the channel its answers come on.

    Not an MQTT v5 pair (:class:`RequestChannel`): Zigbee2MQTT answers every asker on the
    one ``response`` topic, so an asker subscribes to it before sending, puts a fresh
    ``transaction`` in its request and takes the answer whose ``transaction`` is the same
    (:meth:`BridgeResponse.answers <station_protocol.zigbee.BridgeResponse.answers>`).
    """

    name: str
    """The request's name in Zigbee2MQTT's API (``device/rename``)."""
    request: Channel[Q]
    response: Channel[BridgeResponse[D]]


def _bridge_call(
    base: str, name: str, request: type[Q], response: type[BridgeResponse[D]], doc: str
) -> BridgeCall[Q, D]:
    kind = name.replace("/", "_")
    return BridgeCall(
        name,
        Channel(
            f"bridge_request_{kind}",
            f"{base}/bridge/request/{name}",
            TypeAdapter(request),
            doc=doc,
        ),
        Channel(
            f"bridge_response_{kind}",
            f"{base}/bridge/response/{name}",
            TypeAdapter(response),
            doc=f"The answer to {name}, with the request's transaction.",
        ),
    )


@dataclass(frozen=True)
class ZigbeeChannels:
    """The channels of one Zigbee2MQTT instance, whose base topic is ``<root>/<charger>``.

    Zigbee2MQTT subscribes to everything under its base topic, so the station publishes
    there only what Zigbee2MQTT is meant to receive: the piles' ``set`` commands.
    """

    base: str

    @classmethod
    def for_charger(cls, charger: str, root: str = Z2M_ROOT) -> ZigbeeChannels:
        return cls(f"{root}/{charger}")

    @cached_property
    def bridge_state(self) -> Channel[BridgeState]:
        return Channel(
            "bridge_state",
            f"{self.base}/bridge/state",
            TypeAdapter(BridgeState),
            retain=True,
            decoder=_bridge_state,
            doc="Zigbee2MQTT online/offline (its last will); JSON in 2.x, a bare word in 1.x.",
        )

    @cached_property
    def bridge_event(self) -> Channel[BridgeEvent]:
        return Channel("bridge_event", f"{self.base}/bridge/event", TypeAdapter(BridgeEvent), qos=0)

    @cached_property
    def bridge_info(self) -> Channel[BridgeInfo]:
        return Channel(
            "bridge_info",
            f"{self.base}/bridge/info",
            TypeAdapter(BridgeInfo),
            qos=0,
            retain=True,
            doc="Zigbee2MQTT's settings and state; here, whether joining is open and until when.",
        )

    @cached_property
    def permit_join(self) -> BridgeCall[PermitJoinRequest, PermitJoinData]:
        return _bridge_call(
            self.base,
            "permit_join",
            PermitJoinRequest,
            BridgeResponse[PermitJoinData],
            "Open joining for new devices for N seconds (0-254), or close it (0).",
        )

    @cached_property
    def device_rename(self) -> BridgeCall[DeviceRenameRequest, DeviceRenameData]:
        return _bridge_call(
            self.base,
            "device/rename",
            DeviceRenameRequest,
            BridgeResponse[DeviceRenameData],
            "Give a device (by IEEE address or name) a new friendly name: a pile id.",
        )

    @cached_property
    def device_remove(self) -> BridgeCall[DeviceRemoveRequest, DeviceRemoveData]:
        return _bridge_call(
            self.base,
            "device/remove",
            DeviceRemoveRequest,
            BridgeResponse[DeviceRemoveData],
            "Make a device leave the network and forget it.",
        )

    @property
    def bridge_calls(self) -> tuple[BridgeCall[Any, Any], ...]:
        """Every bridge request the station makes."""
        return (self.permit_join, self.device_rename, self.device_remove)

    @cached_property
    def device_state(self) -> Channel[PileState]:
        """Any device's state by its friendly name, a pile id or not.

        A device that joined and is not named yet publishes under its IEEE address: a
        stranger to the station, seen here and by nothing that reads :attr:`pile_state`.
        """
        return Channel(
            "device_state",
            f"{self.base}/{{device}}",
            TypeAdapter(PileState),
            qos=0,
            max_bytes=MAX_PAYLOAD_BYTES,
            doc="Any device's state, under its friendly name (an IEEE address until renamed).",
        )

    @cached_property
    def device_set(self) -> Channel[PileCommand]:
        adapter: TypeAdapter[PileCommand] = TypeAdapter(PileCommand)
        return Channel("device_set", f"{self.base}/{{device}}/set", adapter)

    @cached_property
    def pile_state(self) -> Channel[PileState]:
        return Channel(
            "pile_state",
            f"{self.base}/{{pile}}",
            TypeAdapter(PileState),
            qos=0,
            max_bytes=MAX_PAYLOAD_BYTES,
            doc="The pile's state, any subset of its fields in one message.",
        )

    @cached_property
    def pile_availability(self) -> Channel[BridgeState]:
        return Channel(
            "pile_availability",
            f"{self.base}/{{pile}}/availability",
            TypeAdapter(BridgeState),
            retain=True,
            decoder=_bridge_state,
        )

    @cached_property
    def pile_set(self) -> Channel[PileCommand]:
        adapter: TypeAdapter[PileCommand] = TypeAdapter(PileCommand)
        return Channel("pile_set", f"{self.base}/{{pile}}/set", adapter)

    def bridge_request(self, name: str) -> str:
        return f"{self.base}/bridge/request/{name}"

    def bridge_response(self, name: str) -> str:
        return f"{self.base}/bridge/response/{name}"

    @property
    def everything(self) -> str:
        return f"{self.base}/#"


# -- the pile simulator's remote control, under simulator/v1 -------------------------------
# A root of its own: not under zigbee2mqtt/ (Zigbee2MQTT would take it as its own) and not
# under station/ (no station service may ever act on a simulated car).

SIMULATOR_STATUS = channel(
    "simulator_status",
    f"{SIMULATOR_ROOT}/status",
    SimulatorStatus,
    retain=True,
    doc="Whether a simulator runs, and which layout; its last will writes offline.",
)
PILE_CONTROL = channel(
    "pile_control",
    f"{SIMULATOR_ROOT}/piles/{{pile}}/control",
    PileControl,
    doc="Commands for one simulated pile: plug, unplug, swipe, faults.",
)
CHARGER_CONTROL = channel(
    "charger_control",
    f"{SIMULATOR_ROOT}/chargers/{{charger}}/control",
    ChargerControl,
    doc="Commands for one simulated charger: a new device joins its network.",
)

STATION_CHANNELS: tuple[Channel[Any], ...] = (
    COLLECTOR_STATUS,
    SERVICE_STATUS,
    COLLECTOR_BREATH,
    COLLECTOR_FAULT,
    SERVICE_FAULT,
    COLLECTOR_STOP,
    FAULT_BULLETIN,
    VERIFICATION,
    DEBIT,
    WITHDRAWAL,
    BALANCE,
    SESSION_OPEN,
    CHECKOUT,
    SESSION_QUERY,
    PILE_SESSION,
    PILE_METER,
    PILE_TARIFF,
    PILE_STATUS,
    PILE_MAINTENANCE,
    KIOSK,
    STATION_PILES,
    COLLECTOR_LINK,
)
"""Every channel under ``station/v1`` (the documentation is checked against this list)."""


def shared(group: str, topic_filter: str) -> str:
    """An MQTT v5 shared subscription, so that replicas split the work instead of doubling it."""
    return f"$share/{group}/{topic_filter}"


def unshare(topic_filter: str) -> str:
    """The plain filter behind a shared subscription (the filter messages are matched with)."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter
