"""Fault reports from the collectors and the services: each raises or clears one bulletin.

Reports are retained per (source, code), so this service reads the standing condition of
every collector and service when it (re)connects: the subscriptions are not shared
(retained messages are never sent to a shared subscription), every replica sees every
report, and the database keeps them from announcing a fault twice.

Reports arrive decoded by their channel: the bus drops and counts one it cannot read. A
report whose topic and payload disagree, or that names a code the catalogue does not know,
is dropped and counted here: a bulletin always names causes and remedies from the
catalogue, and a collector speaks only for its own piles. A collector's report about a
charger outside the station's layout, or about a pile outside the station's pile set (the
console's word, the layout until it is heard: :mod:`station_faults.piles`), is dropped and
counted as ``unknown_pile``, raise or clear: a bulletin for ``c9-p01`` on a 4 x 12 station, or
for a pile decommissioned yesterday, would send someone to repair a pile that is not there.
An empty retained payload (the report deleted) clears, like ``active: false``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from station_faults.announcer import FaultAnnouncer
from station_faults.episodes import Sighting
from station_faults.metrics import DropRefusal, MessageKind
from station_faults.piles import ExpectedPiles
from station_protocol import channels
from station_protocol.catalogue import Catalogue
from station_protocol.ids import charger_of, is_pile_id
from station_protocol.messages import FaultReport, ServiceFaultReport
from station_runtime.bus import Bus, by_topic
from station_runtime.deliveries import Cleared, Delivery

log = logging.getLogger("station.faults.reports")

SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class _Raise:
    """What either kind of report says about a fault that is active."""

    source: str
    code: str
    charger: str | None
    pile_id: str | None
    since: datetime
    detected_at: datetime
    detail: dict[str, str]


@dataclass(frozen=True)
class ReportHandler:
    bus: Bus
    announcer: FaultAnnouncer
    catalogue: Catalogue
    piles: ExpectedPiles

    def register(self) -> None:
        # A lane per report topic: one (source, code) in order, different faults side by side.
        self.bus.subscribe(
            channels.COLLECTOR_FAULT,
            self.on_collector_report,
            lane=by_topic,
            kind=MessageKind.REPORT,
            on_clear=self.on_report_deleted,
        )
        self.bus.subscribe(
            channels.SERVICE_FAULT,
            self.on_service_report,
            lane=by_topic,
            kind=MessageKind.REPORT,
            on_clear=self.on_report_deleted,
        )

    async def on_collector_report(self, delivery: Delivery[FaultReport]) -> None:
        where = delivery.params
        if not self._usable(delivery):
            return
        report = delivery.body
        pile_id = report.pile_id or (report.source if is_pile_id(report.source) else None)
        if not _collector_agrees(where, report, pile_id):
            self.bus.drop(delivery, DropRefusal.TOPIC_MISMATCH, MessageKind.REPORT)
            return
        if not self._in_station(where["charger"], pile_id):
            self.bus.drop(delivery, DropRefusal.UNKNOWN_PILE, MessageKind.REPORT)
            return
        if not report.active:
            await self.announcer.clear_fault(where["source"], where["code"])
            return
        await self._raise(
            _Raise(
                where["source"],
                where["code"],
                where["charger"],
                pile_id,
                report.since,
                report.detected_at,
                report.detail,
            )
        )

    async def on_service_report(self, delivery: Delivery[ServiceFaultReport]) -> None:
        where = delivery.params
        if not self._usable(delivery):
            return
        report = delivery.body
        if not _service_agrees(where, report):
            self.bus.drop(delivery, DropRefusal.TOPIC_MISMATCH, MessageKind.REPORT)
            return
        if not report.active:
            await self.announcer.clear_fault(where["source"], where["code"])
            return
        detail = {"service": where["service"], **report.detail}
        await self._raise(
            _Raise(
                where["source"],
                where["code"],
                None,
                None,
                report.since,
                report.detected_at,
                detail,
            )
        )

    async def on_report_deleted(self, cleared: Cleared) -> None:
        """A collector's or a service's report deleted: its fault is over, as ``active: false``."""
        if not self._usable(cleared):
            return
        source, charger = cleared.params["source"], cleared.params.get("charger")
        if charger is not None and not self._in_station(
            charger, source if is_pile_id(source) else None
        ):
            self.bus.drop(cleared, DropRefusal.UNKNOWN_PILE, MessageKind.REPORT)
            return
        await self.announcer.clear_fault(source, cleared.params["code"])

    def _in_station(self, charger: str, pile_id: str | None) -> bool:
        """The charger is one of the layout's, and the pile, if the report names one, is one of
        the pile set's."""
        if not self.piles.has_charger(charger):
            return False
        return pile_id is None or self.piles.has_pile(pile_id)

    def _usable(
        self, message: Delivery[FaultReport] | Delivery[ServiceFaultReport] | Cleared
    ) -> bool:
        if not SOURCE_PATTERN.match(message.params["source"]):
            self.bus.drop(message, DropRefusal.BAD_TOPIC, MessageKind.REPORT)
            return False
        if self.catalogue.get(message.params["code"]) is None:
            self.bus.drop(message, DropRefusal.UNKNOWN_CODE, MessageKind.REPORT)
            return False
        return True

    async def _raise(self, fault: _Raise) -> None:
        sighting = Sighting(
            code=fault.code,
            severity=self.catalogue[fault.code].severity.value,
            source=fault.source,
            charger=fault.charger,
            pile_id=fault.pile_id,
            since=fault.since,
            detected_at=fault.detected_at,
            detail=dict(fault.detail),
        )
        await self.announcer.raise_fault(sighting, due=fault.detected_at)


def _collector_agrees(where: Mapping[str, str], report: FaultReport, pile_id: str | None) -> bool:
    """The payload says what the topic (charger, source, code) says, and the pile is one of
    the collector's own."""
    charger, source = where["charger"], where["source"]
    return (
        report.charger == charger
        and report.source == source
        and report.code == where["code"]
        and (pile_id is None or charger_of(pile_id) == charger)
        and (pile_id is None or not is_pile_id(source) or pile_id == source)
    )


def _service_agrees(where: Mapping[str, str], report: ServiceFaultReport) -> bool:
    """The payload says what the topic (service, source, code) says."""
    return (
        report.service == where["service"]
        and report.source == where["source"]
        and report.code == where["code"]
    )
