"""The collector's Prometheus metrics, on the service's own registry (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class CollectorMetrics:
    dropped: Counter
    verifications: Counter
    sessions_started: Counter
    sessions_stopped: Counter
    breath_rtt: Histogram
    detection_latency: Histogram
    pile_up: Gauge
    linkquality: Gauge

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
            breath_rtt=Histogram(
                "station_collector_breath_rtt_seconds",
                "Breath frame to answer, for piles (breath_ack) and the local server (BreathAck)",
                ["charger", "peer"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            detection_latency=Histogram(
                "station_collector_detection_latency_seconds",
                "How late a disconnect was decided after its deadline (misses x T1)",
                ["charger", "kind"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            pile_up=Gauge(
                "station_collector_pile_up",
                "1 while the pile answers breaths (and its Zigbee2MQTT bridge is online)",
                ["charger", "pile"],
                registry=registry,
            ),
            linkquality=Gauge(
                "station_pile_linkquality",
                "The pile's Zigbee link quality (0-255) as Zigbee2MQTT reports it",
                ["charger", "pile"],
                registry=registry,
            ),
        )
