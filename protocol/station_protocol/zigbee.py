"""The pile as a Zigbee2MQTT device (``docs/contracts/pile-device.md``).

Real piles and outside test rigs rely on these shapes exactly. Pile state messages keep
unknown fields (``extra="allow"``) and ignore them, as Zigbee2MQTT devices grow new exposes.
"""

from __future__ import annotations

import json
import secrets
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

MAX_PAYLOAD_BYTES = 16 * 1024
"""A pile message larger than this is refused unread (a pile state is a few hundred bytes)."""

CardUid = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")]
"""A card id as the reader sends it: printable ASCII, 1 to 64 characters."""


Reading = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
"""A meter or sensor reading: exact in memory, a JSON number on the wire as piles write it."""


class Gun(StrEnum):
    PLUGGED = "plugged"
    UNPLUGGED = "unplugged"


class PileAction(StrEnum):
    CARD_SWIPE = "card_swipe"


class ChargePointErrorCode(StrEnum):
    """OCPP 1.6 ChargePointErrorCode, as a pile reports it in ``error_code``."""

    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    INTERNAL_ERROR = "InternalError"
    LOCAL_LIST_CONFLICT = "LocalListConflict"
    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    OVER_CURRENT_FAILURE = "OverCurrentFailure"
    OVER_VOLTAGE = "OverVoltage"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    READER_FAILURE = "ReaderFailure"
    RESET_FAILURE = "ResetFailure"
    UNDER_VOLTAGE = "UnderVoltage"
    WEAK_SIGNAL = "WeakSignal"


class OnlineState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class BridgeState(BaseModel):
    """``<base>/bridge/state`` and ``<base>/<pile>/availability`` (retained, JSON in 2.x)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    state: OnlineState

    @classmethod
    def parse(cls, payload: bytes) -> BridgeState:
        """Accept 2.x JSON and the bare 1.x strings ``online``/``offline``."""
        text = payload.decode("utf-8", errors="replace").strip()
        if text in (OnlineState.ONLINE, OnlineState.OFFLINE):
            return cls(state=OnlineState(text))
        return cls.model_validate_json(payload)


Availability = BridgeState


IEEE_PATTERN = r"^0x[0-9a-f]{16}$"
IeeeAddress = Annotated[str, StringConstraints(pattern=IEEE_PATTERN)]
"""A Zigbee IEEE address as Zigbee2MQTT writes it: ``0x`` and 16 lower-case hex digits."""


def new_ieee_address() -> str:
    """A random IEEE address, for a simulated device that joins for the first time."""
    return "0x" + secrets.token_hex(8)


class BridgeEventType(StrEnum):
    DEVICE_JOINED = "device_joined"
    DEVICE_INTERVIEW = "device_interview"
    DEVICE_LEAVE = "device_leave"
    DEVICE_ANNOUNCE = "device_announce"


class InterviewStatus(StrEnum):
    """How far Zigbee2MQTT got asking a new device what it is."""

    STARTED = "started"
    SUCCESSFUL = "successful"
    FAILED = "failed"


class DeviceDefinition(BaseModel):
    """What Zigbee2MQTT recognised a device as (``exposes`` and the rest are kept as extras).

    A registration shows an operator the model and vendor before it names the device a pile.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    model: str
    vendor: str
    description: str | None = None


class BridgeEventData(BaseModel):
    """The device an event is about; ``status`` and the rest only on ``device_interview``.

    Until it is renamed, a new device's ``friendly_name`` is its IEEE address.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    friendly_name: str
    ieee_address: str
    status: InterviewStatus | None = None
    supported: bool | None = None
    """On a successful interview: whether Zigbee2MQTT has a definition for the device."""
    definition: DeviceDefinition | None = None
    """On a successful interview of a supported device."""


class BridgeEvent(BaseModel):
    """``<base>/bridge/event``: a device joined, was interviewed, announced itself or left.

    A new device goes ``device_joined``, ``device_interview`` started, then successful (with
    its ``definition``) or failed.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    type: BridgeEventType
    data: BridgeEventData


class BridgeInfo(BaseModel):
    """``<base>/bridge/info`` (retained), sent again whenever one of its fields changes.

    Only the joining window is modelled; the rest (version, coordinator, network, config...)
    is kept as extras. A console shows from it whether a charger accepts new devices now.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    permit_join: bool = False
    permit_join_end: int | None = None
    """When the joining window closes, in milliseconds since the epoch; absent when closed."""


# -- Zigbee2MQTT's request/response API ---------------------------------------------------
# Not MQTT v5 request/response: a request goes to <base>/bridge/request/<name>, its answer
# comes on <base>/bridge/response/<name>, shared by every asker, with the request's
# ``transaction`` copied back unchanged. The asker matches its answer on that.

TransactionId = str | int
"""Zigbee2MQTT types it a string, its documentation shows numbers; it echoes either."""

PERMIT_JOIN_MAX = 254
"""The longest joining window Zigbee2MQTT 2.x opens, in seconds."""


def new_transaction() -> str:
    """A fresh ``transaction`` for a bridge request, unique across askers."""
    return uuid.uuid4().hex


def transaction_of(payload: bytes) -> TransactionId | None:
    """The ``transaction`` of a request, even one that is otherwise not understood.

    Zigbee2MQTT echoes it on an error answer too, so an asker learns that its own malformed
    request failed instead of waiting for an answer that never comes.
    """
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    found = value.get("transaction")
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None


class BridgeRequest(BaseModel):
    # Unknown fields are ignored, as Zigbee2MQTT ignores what it does not use.
    model_config = ConfigDict(frozen=True, extra="ignore")

    transaction: TransactionId | None = None
    """Copied back in the answer; set one (:func:`new_transaction`) to find your answer."""


class PermitJoinRequest(BridgeRequest):
    """``bridge/request/permit_join``: open joining for ``time`` seconds, or close it (0).

    The 1.x form ``{"value": true}`` is refused by 2.x, and here.
    """

    time: int = Field(ge=0, le=PERMIT_JOIN_MAX)
    device: str | None = None
    """Open joining only through this router (a friendly name); the whole network if absent."""


class PermitJoinData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    time: int
    device: str | None = None


class DeviceRenameRequest(BridgeRequest):
    """``bridge/request/device/rename``: ``{"from": <ieee or name>, "to": <new name>}``.

    ``from`` is a Python keyword: the field is ``from_`` in code, ``from`` on the wire (either
    name is accepted when building one).
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_by_name=True, serialize_by_alias=True
    )

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    homeassistant_rename: bool | None = None


class DeviceRenameData(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="allow", validate_by_name=True, serialize_by_alias=True
    )

    from_: str = Field(alias="from")
    to: str
    homeassistant_rename: bool = False


class DeviceRemoveRequest(BridgeRequest):
    """``bridge/request/device/remove``: the device leaves the network and is forgotten.

    ``force`` only deletes it from Zigbee2MQTT's database (for a device that does not answer);
    it then sends no ``device_leave``.
    """

    id: str = Field(min_length=1)
    force: bool | None = None
    block: bool | None = None


class DeviceRemoveData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    force: bool = False
    block: bool = False


class ResponseStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


D = TypeVar("D", bound=BaseModel)


class BridgeResponse(BaseModel, Generic[D]):
    """``bridge/response/<name>``: ``{"status", "data", "error"?, "transaction"?}``.

    On an error Zigbee2MQTT 2.x always sends ``"data": {}``; here ``data`` is then ``None``,
    so that ``data`` is either the whole answer or nothing.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    status: ResponseStatus
    data: D | None = None
    error: str | None = None
    transaction: TransactionId | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_data_on_error(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("status") == ResponseStatus.ERROR:
            return {**value, "data": None}
        return value

    @model_serializer(mode="wrap")
    def _data_always(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Zigbee2MQTT always sends ``data``; an asker may index it without looking first.
        dumped = handler(self)
        if isinstance(dumped, dict) and dumped.get("data") is None:
            dumped["data"] = {}
        return dumped

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.OK

    def answers(self, request: BridgeRequest) -> bool:
        """Is this the answer to ``request``? Only a request with a transaction can tell."""
        return request.transaction is not None and self.transaction == request.transaction


class PileState(BaseModel):
    """``<base>/<pile>``: the pile's state, any subset of fields in one message.

    ``energy`` is the pile's cumulative meter register in kWh. A JSON number is taken as the
    shortest decimal that prints it (``12.345`` stays ``12.345``), never as a binary float.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    gun: Gun | None = None
    action: PileAction | None = None
    card_uid: CardUid | None = None
    energy: Reading | None = None
    power: Reading | None = None
    current: Reading | None = None
    voltage: Reading | None = None
    charging: bool | None = None
    session_id: str | None = Field(default=None, max_length=64)
    error_code: ChargePointErrorCode | None = None
    breath_ack: int | None = Field(default=None, ge=0)
    linkquality: int | None = Field(default=None, ge=0, le=255)


class BreathCommand(BaseModel):
    model_config = ConfigDict(frozen=True)

    breath: int = Field(ge=0)


class ChargeCommand(BaseModel):
    """``{"charge": "start"|"stop", "session_id": ..., "max_current": A}``."""

    model_config = ConfigDict(frozen=True)

    charge: Literal["start", "stop"]
    session_id: str
    max_current: int | None = Field(default=None, gt=0)


class Display(BaseModel):
    model_config = ConfigDict(frozen=True)

    lines: list[str]
    qr: str | None = None


class DisplayCommand(BaseModel):
    """``{"display": {"lines": [...], "qr": "..."}}``: what the pile's screen shows."""

    model_config = ConfigDict(frozen=True)

    display: Display


PileCommand = BreathCommand | ChargeCommand | DisplayCommand


def encode(command: BaseModel) -> bytes:
    """Commands leave without ``null`` fields, as a pile expects only what it is told."""
    return command.model_dump_json(exclude_none=True).encode()
