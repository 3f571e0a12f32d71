"""The collector's Prometheus metrics, on the service's own registry (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class CollectorMetrics:
    dropped: Counter
    strangers: Counter
    refused: Counter
    verifications: Counter
    swipes: Counter
    kiosk: Counter
    sessions_started: Counter
    sessions_stopped: Counter
    breath_rtt: Histogram
    detection_latency: Histogram
    piles: Gauge
    pile_up: Gauge
    pile_seen: Gauge
    linkquality: Gauge
    station_link: Gauge

    @classmethod
    def on(cls, registry: CollectorRegistry) -> CollectorMetrics:
        return cls(
            dropped=Counter(
                "station_collector_dropped_messages",
                "Pile messages refused (malformed, impossible, unknown pile), by kind",
                ["charger", "kind"],
                registry=registry,
            ),
            strangers=Counter(
                "station_collector_stranger_messages",
                "Messages on the charger's Zigbee2MQTT from a device that is no pile this "
                "collector serves (an IEEE address not renamed yet, another charger's pile, a "
                "pile not in the station's pile set, a decommissioned one): never acted on",
                ["charger"],
                registry=registry,
            ),
            refused=Counter(
                "station_collector_refused_messages",
                "Station bus messages refused (unreadable, a reply to no open question), by "
                "channel and reason",
                ["charger", "channel", "reason"],
                registry=registry,
            ),
            verifications=Counter(
                "station_collector_verifications",
                "Card verifications by result (timeout: no answer in time)",
                ["charger", "result"],
                registry=registry,
            ),
            swipes=Counter(
                "station_collector_swipes",
                "Card swipes, by what came of them (verify, stop, busy, waiting_for_gun, "
                "repeated: the reader's echo or the same card while its start is under way; "
                "maintenance, out_of_service: refused on a pile that may not charge)",
                ["charger", "outcome"],
                registry=registry,
            ),
            kiosk=Counter(
                "station_collector_kiosk_requests",
                "Kiosk requests (a card at the console's kiosk for one of the piles), by "
                "outcome (started, stopping, waiting_for_gun, refused) and refusal reason "
                "(empty unless refused)",
                ["charger", "outcome", "reason"],
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
            piles=Gauge(
                "station_collector_piles",
                "Piles the collector serves: the console's pile set for its charger (its "
                "configured piles until the console's word is heard), with piles removed "
                "while a session runs on them until it checks out",
                ["charger"],
                registry=registry,
            ),
            pile_up=Gauge(
                "station_collector_pile_up",
                "1 while the pile answers breaths (and its Zigbee2MQTT bridge is online)",
                ["charger", "pile"],
                registry=registry,
            ),
            pile_seen=Gauge(
                "station_collector_pile_seen",
                "1 once the pile has answered a breath since the collector started; 0 while "
                "it is not yet seen (not up, and reported only after the start-up grace)",
                ["charger", "pile"],
                registry=registry,
            ),
            linkquality=Gauge(
                "station_pile_linkquality",
                "The pile's Zigbee link quality (0-255) as Zigbee2MQTT reports it",
                ["charger", "pile"],
                registry=registry,
            ),
            station_link=Gauge(
                "station_collector_station_link_up",
                "1 while the collector's own broker is bridged to the station broker, 0 while "
                "the link is down (absent when the collector uses the station broker itself)",
                ["charger"],
                registry=registry,
            ),
        )
