"""Messages of the pile simulator's remote control (topics under ``simulator/v1``).

They stand for what happens in front of a pile (a car plugged in, a card held to the
reader, a fault in the hardware), so that demos and end-to-end tests can drive a simulator
that runs in another process. Real piles never see these messages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from station_protocol.zigbee import CardUid, ChargePointErrorCode, IeeeAddress, OnlineState


class PileControlCommand(StrEnum):
    PLUG = "plug"
    """A car's gun is plugged into the pile."""
    UNPLUG = "unplug"
    SWIPE = "swipe"
    """A card is held to the pile's reader (needs ``card_uid``)."""
    FAULT = "fault"
    """The pile reports ``error_code`` (``NoError`` clears a fault)."""
    SILENCE = "silence"
    """The pile's radio goes quiet: no breath answers, no state messages."""
    REVIVE = "revive"


class PileControl(BaseModel):
    """``simulator/v1/piles/<pile>/control``: one thing happening at one pile."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal["v1"] = "v1"
    command: PileControlCommand
    card_uid: CardUid | None = None
    error_code: ChargePointErrorCode | None = None

    @model_validator(mode="after")
    def _arguments_present(self) -> PileControl:
        if self.command == PileControlCommand.SWIPE and self.card_uid is None:
            raise ValueError("a swipe needs card_uid")
        if self.command == PileControlCommand.FAULT and self.error_code is None:
            raise ValueError("a fault needs error_code")
        return self


class ChargerControlCommand(StrEnum):
    JOIN = "join"
    """A new device asks to join the charger's Zigbee network (taken only while it is open)."""


class ChargerControl(BaseModel):
    """``simulator/v1/chargers/<charger>/control``: one thing happening at one charger.

    ``ieee_address`` lets the sender name the new device, so that it knows which
    ``bridge/event`` messages are about it; the simulator picks one when it is absent.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal["v1"] = "v1"
    command: ChargerControlCommand
    ieee_address: IeeeAddress | None = None


class SimulatorStatus(BaseModel):
    """``simulator/v1/status`` (retained): a running simulator and what it simulates.

    ``instance`` tells a simulator just started from a stale retained status of an earlier one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal["v1"] = "v1"
    state: OnlineState
    instance: str = Field(min_length=1, max_length=64)
    layout: str | None = None
    """``NxM`` as on the command line."""
    root: str | None = None
    """The Zigbee2MQTT root its piles live under (``zigbee2mqtt`` unless told otherwise)."""
