"""Sync's Prometheus metrics, on the app's own registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge

from station_sync.outbox import Backlog


class RefusedReason(StrEnum):
    CONFLICT = "conflict"
    """Central holds another record under the same id."""
    UNREADABLE = "unreadable"
    """The outbox payload is not a record of this station."""


@dataclass(frozen=True)
class SyncMetrics:
    backlog: Gauge
    overdue: Gauge
    oldest_age: Gauge
    refused_records: Gauge
    central_up: Gauge
    sent: Counter
    send_failures: Counter
    refused: Counter
    database_errors: Counter
    relay_errors: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> SyncMetrics:
        return cls(
            backlog=Gauge(
                "station_sync_backlog_records",
                "Records in billing's outbox not yet confirmed by central (refused excluded)",
                registry=registry,
            ),
            overdue=Gauge(
                "station_sync_overdue_records",
                "Unsent records stored more than T2 ago (due now)",
                registry=registry,
            ),
            oldest_age=Gauge(
                "station_sync_oldest_unsent_age_seconds",
                "Seconds since the oldest unsent record was stored (0 when none)",
                registry=registry,
            ),
            refused_records=Gauge(
                "station_sync_refused_records",
                "Records central refused for good, waiting for an operator",
                registry=registry,
            ),
            central_up=Gauge(
                "station_sync_central_up",
                "1 if the last send to central got through, 0 if it failed",
                registry=registry,
            ),
            sent=Counter(
                "station_sync_sent",
                "Records central confirmed (stored or duplicate)",
                registry=registry,
            ),
            send_failures=Counter(
                "station_sync_send_failures",
                "Batches that did not get through to central (retried with backoff)",
                registry=registry,
            ),
            refused=Counter(
                "station_sync_refused",
                "Records set aside for good, by reason",
                ["reason"],
                registry=registry,
            ),
            database_errors=Counter(
                "station_sync_database_errors",
                "Outbox reads or updates that failed (retried with backoff)",
                registry=registry,
            ),
            relay_errors=Counter(
                "station_sync_relay_errors",
                "Relay passes that failed unexpectedly (logged with a trace, retried)",
                registry=registry,
            ),
        )

    def show(self, backlog: Backlog) -> None:
        self.backlog.set(backlog.unsent)
        self.overdue.set(backlog.overdue)
        self.oldest_age.set(backlog.oldest_age)
        self.refused_records.set(backlog.refused)
