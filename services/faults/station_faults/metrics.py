"""The faults service's Prometheus metrics, on the app's own registry.

``station_fault_active`` and ``station_pile_up`` are computed at scrape time from the
bulletins on the broker (:class:`~station_faults.board.ActiveBulletins`), so they are
never out of step with what the display boards show, and every replica exports the same.

``station_fault_detection_latency_seconds`` has two stages (label ``stage``):

* ``detect``: ``detected_at - since`` as the reporter gave them, raw. For a silent pile this
  is the time from its last answered breath to the collector's decision, so it includes the
  allowed ``misses x T1`` by design: it is how long the station was blind.
* ``publish``: the moment this service published the bulletin minus the moment the fault
  was due: the report's ``detected_at``; for a collector that stopped breathing, its last
  breath plus ``misses x T1``; for a collector's last will, its arrival. This is the
  service's own share, the part invariant 4 of ``docs/invariants.md`` allows 100 ms for.

Both are recorded once per episode (not for a flap within the hold-down). Negative
differences (clocks of two machines) are recorded as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from station_protocol.ids import charger_of
from station_runtime.deliveries import Dropped, DropReason

if TYPE_CHECKING:
    from station_faults.board import ActiveBulletins

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class MessageKind(StrEnum):
    """The ``kind`` label of a dropped message: what it claimed to be.

    The names of the channels they came on, but for the collectors' statuses (channel
    ``collector_status``), whose label has always been ``status``: each subscription names
    its kind, so a channel renamed does not rename a series the alerts and the board read.
    """

    REPORT = "report"
    BREATH = "breath"
    STATUS = "status"
    BULLETIN = "bulletin"


MALFORMED_REASON = "malformed"
MALFORMED = {
    DropReason.BAD_JSON.value: MALFORMED_REASON,
    DropReason.INVALID.value: MALFORMED_REASON,
    DropReason.OVERSIZED.value: MALFORMED_REASON,
}
"""The bus's reasons for a payload it could not read, all one reason in this metric."""


class DropRefusal(StrEnum):
    """Why a handler refuses a message the bus could read (the ``reason`` label)."""

    BAD_TOPIC = DropReason.BAD_TOPIC.value
    """A report's source is not a name a bulletin can carry."""
    TOPIC_MISMATCH = "topic_mismatch"
    """The payload does not say what its topic says."""
    UNKNOWN_CODE = "unknown_code"
    """A report names a fault the catalogue lacks: no causes and remedies to announce."""
    UNKNOWN_PILE = "unknown_pile"
    """A report names a charger outside the station's layout or a pile outside its pile
    set: nothing to repair."""


class LatencyStage(StrEnum):
    DETECT = "detect"
    PUBLISH = "publish"


@dataclass(frozen=True)
class FaultMetrics:
    bulletins_raised: Counter
    bulletins_reopened: Counter
    detection_latency: Histogram
    dropped_messages: Counter
    breaths_answered: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> FaultMetrics:
        return cls(
            bulletins_raised=Counter(
                "station_bulletins_raised",
                "New fault episodes announced (a return within the hold-down is not counted)",
                ["code"],
                registry=registry,
            ),
            bulletins_reopened=Counter(
                "station_bulletins_reopened",
                "Faults that came back within the hold-down and continued their episode",
                ["code"],
                registry=registry,
            ),
            detection_latency=Histogram(
                "station_fault_detection_latency_seconds",
                "detect: detected_at - since; publish: bulletin published - fault due",
                ["stage", "code"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            dropped_messages=Counter(
                "station_faults_dropped_messages",
                "Bus messages that could not be used (bad JSON, fields, topic), logged and dropped",
                ["kind", "reason"],
                registry=registry,
            ),
            breaths_answered=Counter(
                "station_faults_breaths_answered",
                "Collector breath frames answered with a BreathAck",
                ["charger"],
                registry=registry,
            ),
        )

    def count_drop(self, dropped: Dropped) -> None:
        """The bus's drop sink: a message it could not read (bad JSON, a wrong shape, too
        large) is ``malformed``, as before the bus read them; ``bad_topic`` and a handler's
        own refusals (``topic_mismatch``, ``unknown_code``, ``unknown_pile``) keep their reason."""
        reason = MALFORMED.get(dropped.reason, dropped.reason)
        self.dropped_messages.labels(dropped.kind, reason).inc()

    def latency(self, stage: LatencyStage, code: str, seconds: float) -> None:
        self.detection_latency.labels(stage.value, code).observe(max(seconds, 0.0))


@dataclass(frozen=True, eq=False)
class BoardCollector(Collector):
    """``station_fault_active`` and ``station_pile_up``, read from the board at scrape time."""

    board: ActiveBulletins
    piles: Callable[[], Iterable[str]]
    """The piles the station has now (its pile set), so a pile with no fault is exported as
    up, and a pile removed from the set is not exported at all."""
    unreachable_codes: frozenset[str]

    def collect(self) -> Iterator[Metric]:
        shown = self.board.snapshot().values()
        active = GaugeMetricFamily(
            "station_fault_active",
            "1 while a fault bulletin is up",
            labels=["code", "severity", "source", "charger", "pile"],
        )
        down: set[str] = set()
        for bulletin in shown:
            active.add_metric(
                [
                    bulletin.code,
                    bulletin.severity.value,
                    bulletin.source,
                    bulletin.charger or "",
                    bulletin.pile_id or "",
                ],
                1,
            )
            if bulletin.code in self.unreachable_codes:
                down.add(bulletin.pile_id or bulletin.charger or bulletin.source)
        yield active
        up = GaugeMetricFamily(
            "station_pile_up",
            "0 while the station cannot reach the pile (pile, its Zigbee2MQTT or its collector)",
            labels=["pile", "charger"],
        )
        for pile in self.piles():
            charger = charger_of(pile)
            up.add_metric([pile, charger], 0 if pile in down or charger in down else 1)
        yield up
