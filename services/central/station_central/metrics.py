"""Central's Prometheus metrics, on the app's own registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class CentralMetrics:
    records: Counter
    batches: Counter
    refused_calls: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> CentralMetrics:
        return cls(
            records=Counter(
                "station_central_records",
                "Records received, by outcome (stored, duplicate, conflict)",
                ["outcome"],
                registry=registry,
            ),
            batches=Counter(
                "station_central_batches", "Record batches answered", registry=registry
            ),
            refused_calls=Counter(
                "station_central_refused_calls",
                "Calls refused for their credentials (401 no or unknown token, 403 not allowed)",
                ["status"],
                registry=registry,
            ),
        )
