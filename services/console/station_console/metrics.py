"""The console's own metrics: what it refused, who watches, what the kiosk did."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from station_runtime.deliveries import Dropped


@dataclass(frozen=True)
class ConsoleMetrics:
    refused: Counter
    watchers: Gauge
    kiosk: Counter
    actions: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> ConsoleMetrics:
        return cls(
            refused=Counter(
                "station_console_refused_messages_total",
                "Bus messages the console did not show: unreadable, or about no pile of "
                "this station, or whose topic and body disagree.",
                ["kind", "reason"],
                registry=registry,
            ),
            watchers=Gauge(
                "station_console_board_watchers",
                "Open live feeds (board pages).",
                registry=registry,
            ),
            kiosk=Counter(
                "station_console_kiosk_requests_total",
                "Kiosk starts and stops, by intent and outcome.",
                ["intent", "outcome"],
                registry=registry,
            ),
            actions=Counter(
                "station_console_operator_actions_total",
                "Operator actions taken from the console, by action and result.",
                ["action", "result"],
                registry=registry,
            ),
        )

    def count_drop(self, dropped: Dropped) -> None:
        self.refused.labels(dropped.kind, dropped.reason).inc()
