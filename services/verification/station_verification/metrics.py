"""The service's Prometheus metrics, on the app's own registry (no process-wide state)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

from station_protocol.messages import DebitResult, VerificationResult
from station_runtime.deliveries import Dropped, DropReason


class DropKind(StrEnum):
    """Why a bus message was dropped unanswered."""

    MALFORMED_REQUEST = "malformed_request"
    NO_RESPONSE_TOPIC = "no_response_topic"
    SESSION_CONFLICT = "session_conflict"
    MALFORMED_PILE_SESSION = "malformed_pile_session"
    MALFORMED_DEBIT = "malformed_debit"
    MALFORMED_BALANCE = "malformed_balance"


@dataclass(frozen=True)
class VerificationMetrics:
    verifications: Counter
    dropped: Counter
    debits: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> VerificationMetrics:
        metrics = cls(
            verifications=Counter(
                "station_verification_verifications",
                "Verification answers given, by result",
                ["result"],
                registry=registry,
            ),
            dropped=Counter(
                "station_verification_dropped_messages",
                "Bus messages dropped unanswered (logged), by kind",
                ["kind"],
                registry=registry,
            ),
            debits=Counter(
                "station_verification_debits",
                "Session debit requests answered, by result (already_booked: a redelivery)",
                ["result"],
                registry=registry,
            ),
        )
        # Every series exists from the start, so that a rate over it is never "no data".
        for result in VerificationResult:
            metrics.verifications.labels(result.value)
        for kind in DropKind:
            metrics.dropped.labels(kind.value)
        for debit in DebitResult:
            metrics.debits.labels(debit.value)
        return metrics

    def count_drop(self, dropped: Dropped) -> None:
        """A message unreadable on its channel is ``malformed_<channel>``; a handler's own
        refusal keeps its reason (``no_response_topic``, ``session_conflict``)."""
        if dropped.reason == DropReason.UNSOLICITED:
            self.dropped.labels(f"unsolicited_{dropped.kind}").inc()
            return
        unreadable = dropped.reason in DropReason.__members__.values()
        self.dropped.labels(f"malformed_{dropped.kind}" if unreadable else dropped.reason).inc()
