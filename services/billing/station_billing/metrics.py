"""Billing's Prometheus metrics, on the app's own registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

from station_protocol.messages import DebitResult
from station_runtime.deliveries import Dropped


class MessageKind(StrEnum):
    """The ``kind`` label: which message a dropped one claimed to be (its channel's name)."""

    SESSION_OPEN = "session_open"
    CHECKOUT = "checkout"
    METER = "meter"


class MeterOutcome(StrEnum):
    """What became of a meter reading."""

    SAMPLED = "sampled"
    """Kept as a sample of its session."""
    SEEN = "seen"
    """Used for the running cost, not kept (the last sample is recent and alike)."""
    NO_SESSION = "no_session"
    """No active session on the pile: nothing to bill."""
    BACKWARDS = "backwards"
    """Below the pile's or the session's last reading: dropped."""
    IMPLAUSIBLE = "implausible"
    """Out of range, or more than the pile's rated power could deliver since: dropped."""
    UNKNOWN_PILE = "unknown_pile"
    """A pile outside the station's pile set (with no session still running there): dropped."""


@dataclass(frozen=True)
class BillingMetrics:
    sessions_opened: Counter
    sessions_completed: Counter
    sessions_refused: Counter
    dropped_messages: Counter
    meter_readings: Counter
    debits: Counter
    stop_requests: Counter
    tariff_displays: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> BillingMetrics:
        metrics = cls(
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
            sessions_refused=Counter(
                "station_billing_sessions_refused",
                "Session openings refused for what they claimed, by reason",
                ["reason"],
                registry=registry,
            ),
            dropped_messages=Counter(
                "station_billing_dropped_messages",
                "Bus messages that could not be read (bad JSON or fields), logged and dropped",
                ["kind"],
                registry=registry,
            ),
            meter_readings=Counter(
                "station_billing_meter_readings",
                "Meter readings received, by what became of them",
                ["outcome"],
                registry=registry,
            ),
            debits=Counter(
                "station_billing_debits",
                "Debit requests to verification, by answer ('unanswered': timed out; 'mismatched':"
                " a settled answer for another session, card or amount; both retried)",
                ["result"],
                registry=registry,
            ),
            stop_requests=Counter(
                "station_billing_stop_requests",
                "Stops asked of collectors because the running cost reached the balance",
                registry=registry,
            ),
            tariff_displays=Counter(
                "station_billing_tariff_displays",
                "Tariff displays published to piles (retained), only when they changed",
                registry=registry,
            ),
        )
        for result in [*DebitResult, "unanswered", "mismatched"]:
            metrics.debits.labels(str(result))
        for outcome in MeterOutcome:
            metrics.meter_readings.labels(outcome.value)
        return metrics

    def count_drop(self, dropped: Dropped) -> None:
        """A message of billing's own channels the bus could not read, by what it claimed to be.

        The channels' names are the label's values (``session_open``, ``checkout``,
        ``meter``). Anything else the bus drops (an unreadable reply to billing's own
        request) is logged by the bus and counted where its caller counts it (an unanswered
        debit), not here.
        """
        if dropped.kind in MessageKind.__members__.values():
            self.dropped_messages.labels(dropped.kind).inc()
