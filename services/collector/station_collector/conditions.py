"""Conditions read from a pile's own state messages: errors, weak links, meter trouble.

Each is raised once when it begins and cleared once when it ends (see :mod:`.faults`);
thresholds have hysteresis so a value hovering at the edge does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from station_collector.faults import FaultBoard
from station_collector.readings import DropKind, PileReadings
from station_protocol.faults import PILE_ERROR_CODES, FaultCode
from station_protocol.zigbee import ChargePointErrorCode, PileState

LINK_HYSTERESIS = 10
PILE_ERRORS = frozenset(PILE_ERROR_CODES.values())
METER_FAULTS = frozenset({FaultCode.ENERGY_BACKWARDS, FaultCode.METER_IMPLAUSIBLE})
"""While one is active the pile's meter cannot be billed from: no new charge starts."""
METER_DROP_FAULTS = {
    DropKind.ENERGY_BACKWARDS: FaultCode.ENERGY_BACKWARDS,
    DropKind.METER_IMPLAUSIBLE: FaultCode.METER_IMPLAUSIBLE,
}


@dataclass
class MeterProgress:
    energy: object = None
    changed_at: float = 0.0


@dataclass
class Conditions:
    board: FaultBoard
    weak_link_below: int
    meter_stuck_after: float
    progress: dict[str, MeterProgress] = field(default_factory=dict)

    async def observe(
        self,
        pile_id: str,
        state: PileState,
        readings: PileReadings,
        refused: list[DropKind],
        now: float,
    ) -> None:
        await self._error(pile_id, state.error_code)
        await self._link(pile_id, state.linkquality)
        await self._meter(pile_id, state, readings, refused, now)
        await self._reader(pile_id, state, refused)

    def forget(self, pile_id: str) -> None:
        """A pile no longer served: its meter's progress is not watched any more."""
        self.progress.pop(pile_id, None)

    def has_error(self, pile_id: str) -> bool:
        return bool(self.board.active_codes(pile_id) & PILE_ERRORS)

    def meter_untrusted(self, pile_id: str) -> bool:
        return bool(self.board.active_codes(pile_id) & METER_FAULTS)

    async def _error(self, pile_id: str, error: ChargePointErrorCode | None) -> None:
        if error is None:
            return
        current = PILE_ERROR_CODES.get(error)
        for code in self.board.active_codes(pile_id) & PILE_ERRORS:
            if code != current:
                await self.board.clear_fault(pile_id, code)
        if current is not None:
            await self.board.raise_fault(pile_id, current, detail={"error_code": error.value})

    async def _link(self, pile_id: str, quality: int | None) -> None:
        if quality is None:
            return
        if quality < self.weak_link_below:
            await self.board.raise_fault(
                pile_id, FaultCode.WEAK_ZIGBEE_LINK, detail={"linkquality": str(quality)}
            )
        elif quality >= self.weak_link_below + LINK_HYSTERESIS:
            await self.board.clear_fault(pile_id, FaultCode.WEAK_ZIGBEE_LINK)

    async def _meter(
        self,
        pile_id: str,
        state: PileState,
        readings: PileReadings,
        refused: list[DropKind],
        now: float,
    ) -> None:
        if state.energy is not None:
            await self._meter_rule(pile_id, state.energy, readings, refused)
        progress = self.progress.setdefault(pile_id, MeterProgress(readings.energy, now))
        if readings.energy != progress.energy or not readings.charging:
            progress.energy, progress.changed_at = readings.energy, now
            await self.board.clear_fault(pile_id, FaultCode.METER_STUCK)
        elif (readings.power or 0) > 0 and now - progress.changed_at >= self.meter_stuck_after:
            await self.board.raise_fault(
                pile_id, FaultCode.METER_STUCK, detail={"energy": str(readings.energy)}
            )

    async def _meter_rule(
        self, pile_id: str, reported: Decimal, readings: PileReadings, refused: list[DropKind]
    ) -> None:
        """Raise what the meter rule refused; a believed reading clears both meter faults."""
        detail = {"last_good": str(readings.energy), "reported": str(reported)}
        for kind, code in METER_DROP_FAULTS.items():
            if kind in refused:
                verdict = readings.verdict.value if readings.verdict is not None else ""
                await self.board.raise_fault(pile_id, code, detail={**detail, "why": verdict})
            else:
                await self.board.clear_fault(pile_id, code)

    async def _reader(self, pile_id: str, state: PileState, refused: list[DropKind]) -> None:
        if DropKind.SWIPE_WITHOUT_CARD in refused:
            await self.board.raise_fault(pile_id, FaultCode.CARD_READER_FAILURE)
        elif state.card_uid is not None:
            await self.board.clear_fault(pile_id, FaultCode.CARD_READER_FAILURE)
