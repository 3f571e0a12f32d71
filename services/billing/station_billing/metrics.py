"""Billing's Prometheus metrics, on the app's own registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter


class MessageKind(StrEnum):
    """The ``kind`` label: which request a dropped message claimed to be."""

    SESSION_OPEN = "session_open"
    CHECKOUT = "checkout"


@dataclass(frozen=True)
class BillingMetrics:
    sessions_opened: Counter
    sessions_completed: Counter
    dropped_messages: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> BillingMetrics:
        return cls(
            sessions_opened=Counter(
                "station_billing_sessions_opened",
                "Sessions opened (a redelivered open is not counted again)",
                registry=registry,
            ),
            sessions_completed=Counter(
                "station_billing_sessions_completed",
                "Sessions priced and stored as charging records (each once)",
                registry=registry,
            ),
            dropped_messages=Counter(
                "station_billing_dropped_messages",
                "Bus messages that could not be read (bad JSON or fields), logged and dropped",
                ["kind"],
                registry=registry,
            ),
        )
