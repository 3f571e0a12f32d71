"""Fault reports from the collectors and the services: each raises or clears one bulletin.

Reports are retained per (source, code), so this service reads the standing condition of
every collector and service when it (re)connects: the subscriptions are not shared
(retained messages are never sent to a shared subscription), every replica sees every
report, and the database keeps them from announcing a fault twice.

A report whose topic and payload disagree, or that names a code the catalogue does not
know, is dropped and counted: a bulletin always names causes and remedies from the
catalogue, and a collector speaks only for its own piles. An empty retained payload (the
report deleted) clears, like ``active: false``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from station_faults.announcer import FaultAnnouncer
from station_faults.decoding import drop, read
from station_faults.episodes import Sighting
from station_faults.metrics import FaultMetrics, MessageKind
from station_protocol import channels
from station_protocol.catalogue import Catalogue
from station_protocol.ids import charger_of, is_pile_id
from station_protocol.messages import FaultReport, ServiceFaultReport
from station_protocol.topics import CollectorFaultTopic, ServiceFaultTopic, StationTopics
from station_runtime.bus import Bus, by_topic
from station_runtime.deliveries import Incoming

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
    metrics: FaultMetrics

    def register(self) -> None:
        # A lane per report topic: one (source, code) in order, different faults side by side.
        for topics, handler in (
            (channels.COLLECTOR_FAULT.filter(), self.on_collector_report),
            (channels.SERVICE_FAULT.filter(), self.on_service_report),
        ):
            self.bus.add_route(topics, handler, lane=by_topic)

    async def on_collector_report(self, message: Incoming) -> None:
        where = StationTopics.collector_fault_of_topic(message.topic)
        if where is None:
            drop(message, MessageKind.REPORT, "bad_topic", self.metrics)
            return
        if not self._usable(message, where.source, where.code):
            return
        if not message.payload:
            await self.announcer.clear_fault(where.source, where.code)
            return
        report = read(FaultReport, message, MessageKind.REPORT, self.metrics)
        if report is None:
            return
        pile_id = report.pile_id or (report.source if is_pile_id(report.source) else None)
        if not _collector_agrees(where, report, pile_id):
            drop(message, MessageKind.REPORT, "topic_mismatch", self.metrics)
            return
        if not report.active:
            await self.announcer.clear_fault(where.source, where.code)
            return
        await self._raise(
            _Raise(
                where.source,
                where.code,
                where.charger,
                pile_id,
                report.since,
                report.detected_at,
                report.detail,
            )
        )

    async def on_service_report(self, message: Incoming) -> None:
        where = StationTopics.service_fault_of_topic(message.topic)
        if where is None:
            drop(message, MessageKind.REPORT, "bad_topic", self.metrics)
            return
        if not self._usable(message, where.source, where.code):
            return
        if not message.payload:
            await self.announcer.clear_fault(where.source, where.code)
            return
        report = read(ServiceFaultReport, message, MessageKind.REPORT, self.metrics)
        if report is None:
            return
        if not _service_agrees(where, report):
            drop(message, MessageKind.REPORT, "topic_mismatch", self.metrics)
            return
        if not report.active:
            await self.announcer.clear_fault(where.source, where.code)
            return
        detail = {"service": where.service, **report.detail}
        await self._raise(
            _Raise(where.source, where.code, None, None, report.since, report.detected_at, detail)
        )

    def _usable(self, message: Incoming, source: str, code: str) -> bool:
        if not SOURCE_PATTERN.match(source):
            drop(message, MessageKind.REPORT, "bad_topic", self.metrics)
            return False
        if self.catalogue.get(code) is None:
            drop(message, MessageKind.REPORT, "unknown_code", self.metrics)
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


def _collector_agrees(where: CollectorFaultTopic, report: FaultReport, pile_id: str | None) -> bool:
    """The payload says what the topic says, and the pile is one of the collector's own."""
    return (
        report.charger == where.charger
        and report.source == where.source
        and report.code == where.code
        and (pile_id is None or charger_of(pile_id) == where.charger)
        and (pile_id is None or not is_pile_id(where.source) or pile_id == where.source)
    )


def _service_agrees(where: ServiceFaultTopic, report: ServiceFaultReport) -> bool:
    return (
        report.service == where.service
        and report.source == where.source
        and report.code == where.code
    )
