"""What the collector knows of each pile: its last readings, kept from its state messages.

A reading that cannot be true (energy going backwards) is refused here, so that the meter
values handed to billing are always consistent with each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from station_protocol.zigbee import ChargePointErrorCode, Gun, PileState


class DropKind(StrEnum):
    """Why a pile message (or a part of it) was not used."""

    BAD_JSON = "bad_json"
    WRONG_TYPE = "wrong_type"
    OVERSIZED = "oversized"
    UNKNOWN_PILE = "unknown_pile"
    ENERGY_BACKWARDS = "energy_backwards"
    SWIPE_WITHOUT_CARD = "swipe_without_card"


@dataclass
class PileReadings:
    energy: Decimal | None = None
    power: Decimal | None = None
    current: Decimal | None = None
    gun: Gun | None = None
    charging: bool | None = None
    error_code: ChargePointErrorCode | None = None
    linkquality: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, state: PileState) -> list[DropKind]:
        """Take the fields ``state`` carries; returns what had to be refused."""
        refused: list[DropKind] = []
        if state.energy is not None:
            if self.energy is not None and state.energy < self.energy:
                refused.append(DropKind.ENERGY_BACKWARDS)
            else:
                self.energy = state.energy
        if state.power is not None:
            self.power = state.power
        if state.current is not None:
            self.current = state.current
        if state.gun is not None:
            self.gun = state.gun
        if state.charging is not None:
            self.charging = state.charging
        if state.error_code is not None:
            self.error_code = state.error_code
        if state.linkquality is not None:
            self.linkquality = state.linkquality
        self.changed.set()
        self.changed = asyncio.Event()
        return refused

    async def wait_not_charging(self, within: float) -> None:
        """Until the pile reports it stopped metering, or ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.charging and loop.time() < deadline:
            try:
                await asyncio.wait_for(self.changed.wait(), deadline - loop.time())
            except TimeoutError:
                return
