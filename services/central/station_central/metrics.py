"""Central's Prometheus metrics, on the app's own registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class CentralMetrics:
    records: Counter
    batches: Counter
    refused_calls: Counter
    standby_connected: Gauge
    replication_synchronous: Gauge
    replication_sync_configured: Gauge
    replication_lag_seconds: Gauge
    replication_lag_bytes: Gauge
    replication_samples: Counter

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
            standby_connected=Gauge(
                "station_central_standby_connected",
                "1 while a standby streams from central's primary (pg_stat_replication)",
                registry=registry,
            ),
            replication_synchronous=Gauge(
                "station_central_replication_synchronous",
                "1 while commits wait for a standby (its sync_state is sync or quorum)",
                registry=registry,
            ),
            replication_sync_configured=Gauge(
                "station_central_replication_sync_configured",
                "1 when central is set to synchronous replication (STATION_CENTRAL_REPLICATION)",
                registry=registry,
            ),
            replication_lag_seconds=Gauge(
                "station_central_replication_lag_seconds",
                "How long the standby takes to flush what the primary wrote (flush_lag); "
                "NaN without a standby",
                registry=registry,
            ),
            replication_lag_bytes=Gauge(
                "station_central_replication_lag_bytes",
                "WAL the primary wrote that the standby has not flushed; NaN without a standby",
                registry=registry,
            ),
            replication_samples=Counter(
                "station_central_replication_samples",
                "Reads of pg_stat_replication, by outcome (read, failed)",
                ["outcome"],
                registry=registry,
            ),
        )
