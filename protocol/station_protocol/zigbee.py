"""The pile as a Zigbee2MQTT device (``docs/contracts/pile-device.md``).

Real piles and outside test rigs rely on these shapes exactly. Pile state messages keep
unknown fields (``extra="allow"``) and ignore them, as Zigbee2MQTT devices grow new exposes.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

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


class BridgeEventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    friendly_name: str
    ieee_address: str
    status: str | None = None


class BridgeEvent(BaseModel):
    """``<base>/bridge/event``: a device joined, was interviewed or left."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: Literal["device_joined", "device_interview", "device_leave", "device_announce"]
    data: BridgeEventData


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
