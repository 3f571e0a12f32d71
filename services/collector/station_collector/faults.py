"""The collector's word on what is wrong: one retained FaultReport per (source, code).

Retained, so that the faults service (or a second replica of it) learns the current state
on connect, and so that a restarted collector learns what its earlier run had raised and can
clear it. Only changes are published: a condition that stays active is said once.

A report that could not be published (the connection dropped under it) is said again after
the reconnection: an active one because it is still active, a clear because otherwise the
broker keeps the retained ``active`` report and the bulletin never comes down.

A pile the console removed from the station is *withdrawn*: every retained report this
collector said or found of it is deleted (an empty retained payload, which the faults service
takes as a clear), and nothing is raised for it again until the console adds it back. A
decommissioned pile leaves no bulletin and no stale report on the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from station_protocol import channels
from station_protocol.faults import FaultCode
from station_protocol.ids import is_pile_id
from station_protocol.messages import FaultReport
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.deliveries import Delivery

log = logging.getLogger("station.collector.faults")

CONNECTIVITY = frozenset({FaultCode.PILE_UNREACHABLE, FaultCode.WEAK_ZIGBEE_LINK})
"""What a pile in maintenance is not reported for: an operator may switch it off."""


def _unchanged(source: str) -> None:
    """The default listener: nobody to tell."""


@dataclass
class FaultBoard:
    """What this collector has said is active, by (source, code)."""

    charger: str
    bus: Bus
    active: dict[tuple[str, str], FaultReport] = field(default_factory=dict)
    unsent_clears: dict[tuple[str, str], FaultReport] = field(default_factory=dict)
    """Clears the broker may not have, to be said again on reconnection."""
    on_change: Callable[[str], None] = _unchanged
    """Told the source whose active codes changed (the piles' board statuses show them)."""
    hushed: set[str] = field(default_factory=set)
    """Piles in maintenance: their connectivity faults are not raised."""
    said: set[tuple[str, str]] = field(default_factory=set)
    """Every (source, code) with a report retained on the broker, active or cleared."""
    withdrawn: set[str] = field(default_factory=set)
    """Piles no longer served: nothing is raised for them."""
    unsent_withdrawals: set[tuple[str, str]] = field(default_factory=set)
    """Deletions the broker may not have, to be said again on reconnection."""

    def is_active(self, source: str, code: str) -> bool:
        return (source, code) in self.active

    def active_codes(self, source: str) -> set[str]:
        return {code for (src, code) in self.active if src == source}

    async def raise_fault(
        self,
        source: str,
        code: str,
        *,
        since: datetime | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> bool:
        """Raise once; ``False`` when it was already active (or is hushed)."""
        if (source, code) in self.active or source in self.withdrawn:
            return False
        if source in self.hushed and code in CONNECTIVITY:
            log.info(
                "fault not raised: the pile is in maintenance",
                extra={"collector": self.charger, "source": source, "code": code},
            )
            return False
        now = datetime.now(UTC)
        report = FaultReport(
            charger=self.charger,
            source=source,
            pile_id=source if is_pile_id(source) else None,
            code=code,
            active=True,
            since=since or now,
            detected_at=now,
            detail=dict(detail or {}),
        )
        self.active[(source, code)] = report
        self.unsent_clears.pop((source, code), None)
        self.on_change(source)
        log.warning(
            "fault raised",
            extra={"collector": self.charger, "source": source, "code": code, **report.detail},
        )
        await self._publish(report)
        return True

    async def clear_fault(self, source: str, code: str) -> bool:
        """Clear once; ``False`` when it was not active."""
        raised = self.active.pop((source, code), None)
        if raised is None:
            return False
        self.on_change(source)
        now = datetime.now(UTC)
        cleared = raised.model_copy(update={"active": False, "detected_at": now})
        log.info("fault cleared", extra={"collector": self.charger, "source": source, "code": code})
        if not await self._publish(cleared):
            self.unsent_clears[(source, code)] = cleared
        return True

    def hush(self, pile_id: str) -> Coroutine[Any, Any, None]:
        """The pile went into maintenance: from now on its connectivity faults are not
        raised; the work returned clears those that are active."""
        self.hushed.add(pile_id)
        return self._clear_connectivity(pile_id)

    async def _clear_connectivity(self, pile_id: str) -> None:
        for code in sorted(CONNECTIVITY):
            await self.clear_fault(pile_id, code)

    def unhush(self, pile_id: str) -> None:
        """Back from maintenance: what is still wrong is raised by whoever watches it."""
        self.hushed.discard(pile_id)

    def serve(self, pile_id: str) -> None:
        """The console added the pile (again): its faults are raised as any pile's."""
        self.withdrawn.discard(pile_id)

    async def withdraw(self, pile_id: str) -> None:
        """The pile is no longer served: delete each of its retained reports (a clear for the
        faults service) and raise nothing for it from now on."""
        self.withdrawn.add(pile_id)
        self.hushed.discard(pile_id)
        keys = {key for key in (*self.active, *self.said) if key[0] == pile_id}
        for key in sorted(keys):
            self.active.pop(key, None)
            self.unsent_clears.pop(key, None)
            self.said.discard(key)
            if not await self._delete(*key):
                self.unsent_withdrawals.add(key)
        if keys:
            self.on_change(pile_id)
            log.info(
                "fault reports withdrawn: the pile is no longer served",
                extra={
                    "collector": self.charger,
                    "source": pile_id,
                    "codes": ",".join(code for _, code in sorted(keys)),
                },
            )

    async def republish(self) -> None:
        """After a reconnection: the broker may have lost what we said while we were away."""
        for report in list(self.active.values()):
            await self._publish(report)
        for key, cleared in list(self.unsent_clears.items()):
            if await self._publish(cleared) and self.unsent_clears.get(key) is cleared:
                del self.unsent_clears[key]
        for key in sorted(self.unsent_withdrawals):
            if key[0] in self.withdrawn and await self._delete(*key):
                self.unsent_withdrawals.discard(key)

    async def on_retained(self, delivery: Delivery[FaultReport]) -> None:
        """An earlier run's report: adopt an active one so that it can be cleared now.

        Subscribed with ``only={"charger": ...}`` to this charger's reports; a live one (not
        from the broker's store) is this run's own word coming back, already on the board.
        """
        if not delivery.retained:
            return
        report = delivery.body
        if report.charger != self.charger:
            return
        self.said.add((report.source, report.code))
        if report.source in self.withdrawn:
            # A report of a pile no longer served (its deletion was lost): deleted again.
            await self.withdraw(report.source)
        elif report.active:
            self.active.setdefault((report.source, report.code), report)
            self.on_change(report.source)
            if report.source in self.hushed and report.code in CONNECTIVITY:
                await self.clear_fault(report.source, report.code)

    async def _delete(self, source: str, code: str) -> bool:
        try:
            await self.bus.clear(
                channels.COLLECTOR_FAULT, charger=self.charger, source=source, code=code
            )
        except BusUnavailable:
            log.error(
                "could not withdraw fault report",
                extra={"collector": self.charger, "source": source, "code": code},
            )
            return False
        return True

    async def _publish(self, report: FaultReport) -> bool:
        self.said.add((report.source, report.code))
        try:
            await self.bus.send(
                channels.COLLECTOR_FAULT,
                report,
                charger=self.charger,
                source=report.source,
                code=report.code,
            )
        except BusUnavailable:
            log.error(
                "could not publish fault report",
                extra={"collector": self.charger, "source": report.source, "code": report.code},
            )
            return False
        return True
