"""What the collector knows of each pile: its last readings, kept from its state messages.

A meter reading that cannot be true (out of range, going backwards, or faster than the pile's
rated power could deliver: ``station_protocol.plausibility``) is refused here, so that the
meter values handed to billing are only ones the pile could have counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from station_protocol.plausibility import MeterCredit, Verdict
from station_protocol.zigbee import ChargePointErrorCode, Gun, PileState
from station_runtime.deliveries import Dropped, DropReason


class DropKind(StrEnum):
    """Why a pile message (or a part of it) was not used: the ``kind`` label of
    ``station_collector_dropped_messages``, which dashboards and alert rules know."""

    BAD_JSON = "bad_json"
    WRONG_TYPE = "wrong_type"
    OVERSIZED = "oversized"
    UNKNOWN_PILE = "unknown_pile"
    ENERGY_BACKWARDS = "energy_backwards"
    METER_IMPLAUSIBLE = "meter_implausible"
    """Out of the register's range, or more energy than the pile's rating allows."""
    SWIPE_WITHOUT_CARD = "swipe_without_card"


UNREADABLE: dict[str, DropKind] = {
    DropReason.BAD_JSON: DropKind.BAD_JSON,
    DropReason.INVALID: DropKind.WRONG_TYPE,
    DropReason.OVERSIZED: DropKind.OVERSIZED,
    DropReason.BAD_TOPIC: DropKind.UNKNOWN_PILE,
}
"""The bus's reasons for a message it could not read, as the collector has always named them.
A bad topic under a charger's Zigbee2MQTT base is a device name that is no pile id."""


def drop_kind(dropped: Dropped, piles: Container[str]) -> DropKind:
    """The ``kind`` a dropped pile message is counted under.

    A message about a pile that is not one of ``piles`` is ``unknown_pile`` whatever else is
    wrong with it: the pile is checked before its payload is read.
    """
    pile = dropped.params.get("pile")
    if pile is not None and pile not in piles:
        return DropKind.UNKNOWN_PILE
    return UNREADABLE.get(dropped.reason) or DropKind(dropped.reason)


METER_DROPS = {
    Verdict.BACKWARDS: DropKind.ENERGY_BACKWARDS,
    Verdict.OUT_OF_RANGE: DropKind.METER_IMPLAUSIBLE,
    Verdict.TOO_FAST: DropKind.METER_IMPLAUSIBLE,
}


@dataclass
class PileReadings:
    meter: MeterCredit = field(default_factory=MeterCredit)
    """Judges each energy reading; ``energy`` is its last believed one."""
    verdict: Verdict | None = None
    """What the meter rule said of the last energy reading."""
    energy: Decimal | None = None
    power: Decimal | None = None
    current: Decimal | None = None
    gun: Gun | None = None
    charging: bool | None = None
    session_id: str | None = None
    """The session the pile says it charges for (its own word, never billing's)."""
    error_code: ChargePointErrorCode | None = None
    linkquality: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, state: PileState, now: float) -> list[DropKind]:
        """Take the fields ``state`` (arrived at ``now``) carries; returns what was refused."""
        refused: list[DropKind] = []
        if state.energy is not None:
            self.verdict = self.meter.judge(state.energy, now)
            if self.verdict is Verdict.BELIEVED:
                self.energy = state.energy
            else:
                refused.append(METER_DROPS[self.verdict])
        if state.power is not None:
            self.power = state.power
        if state.current is not None:
            self.current = state.current
        if state.gun is not None:
            self.gun = state.gun
        if state.charging is not None:
            self.charging = state.charging
        if state.session_id is not None:
            self.session_id = state.session_id
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
