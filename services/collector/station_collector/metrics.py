"""The collector's Prometheus metrics, on the service's own registry (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class CollectorMetrics:
    dropped: Counter
    verifications: Counter
    sessions_started: Counter
    sessions_stopped: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> CollectorMetrics:
        return cls(
            dropped=Counter(
                "station_collector_dropped_messages",
                "Pile messages refused (malformed, impossible, unknown pile), by kind",
                ["charger", "kind"],
                registry=registry,
            ),
            verifications=Counter(
                "station_collector_verifications",
                "Card verifications by result (timeout: no answer in time)",
                ["charger", "result"],
                registry=registry,
            ),
            sessions_started=Counter(
                "station_collector_sessions_started",
                "Charges started on a pile after verification and session opening",
                ["charger"],
                registry=registry,
            ),
            sessions_stopped=Counter(
                "station_collector_sessions_stopped",
                "Sessions checked out, by stop reason",
                ["charger", "reason"],
                registry=registry,
            ),
        )
