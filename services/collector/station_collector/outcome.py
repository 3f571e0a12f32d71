"""What a swipe came to, in the kiosk's words.

A card at the console's kiosk is a swipe at the pile's reader, so both go down the same path
and that path says what came of it; the pile's reader has nobody to tell, the kiosk answers
the console with it (``KioskReply``).
"""

from __future__ import annotations

from dataclasses import dataclass

from station_protocol.messages import KioskOutcome, KioskRefusal, VerificationResult

CARD_REFUSALS: dict[VerificationResult, KioskRefusal] = {
    VerificationResult.UNKNOWN: KioskRefusal.UNKNOWN,
    VerificationResult.BLOCKED: KioskRefusal.BLOCKED,
    VerificationResult.EXPIRED: KioskRefusal.EXPIRED,
    VerificationResult.INSUFFICIENT_BALANCE: KioskRefusal.INSUFFICIENT_BALANCE,
    VerificationResult.ALREADY_CHARGING: KioskRefusal.ALREADY_CHARGING,
}
"""Verification's refusals, in the kiosk's words (the same words)."""


@dataclass(frozen=True)
class Outcome:
    outcome: KioskOutcome
    reason: KioskRefusal | None = None
    session_id: str | None = None

    @classmethod
    def refused(cls, reason: KioskRefusal) -> Outcome:
        return cls(KioskOutcome.REFUSED, reason)

    @classmethod
    def card_refused(cls, result: VerificationResult | None) -> Outcome:
        """Verification's answer (``None``: no answer in time)."""
        if result is None:
            return cls.refused(KioskRefusal.VERIFICATION_UNAVAILABLE)
        return cls.refused(CARD_REFUSALS.get(result, KioskRefusal.UNKNOWN))


async def done(outcome: Outcome) -> Outcome:
    """An outcome known at once, as the work a swipe returns."""
    return outcome
