"""Request and response bodies of the REST API.

Money travels as a decimal string (``"12.50"``); a JSON number is refused, since a client
that sends one has already passed the amount through a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from station_protocol.zigbee import CardUid
from station_runtime.api_types import Instant, Money
from station_verification.cards import CardView
from station_verification.models import CardStatus, LedgerEntry, LedgerKind
from station_verification.money import MONEY_PLACES, money_text

_WHOLE_PLACES = 14
"""Digits before the point: the ledger's 64-bit column holds 9.2e14 at four places."""

_ABOVE_ZERO = Money(places=MONEY_PLACES, whole=_WHOLE_PLACES, positive=True)
_ZERO_OR_MORE = Money(places=MONEY_PLACES, whole=_WHOLE_PLACES, positive=False)
PositiveMoney = Annotated[Decimal, _ABOVE_ZERO.check, _ABOVE_ZERO.digits, _ABOVE_ZERO.schema]
"""A top-up or a refund: a zero one means nothing, so the schema and the handler refuse it."""
NonNegativeMoney = Annotated[
    Decimal, _ZERO_OR_MORE.check, _ZERO_OR_MORE.digits, _ZERO_OR_MORE.schema
]
"""A card's opening balance."""
Holder = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$")
]


class _Body(BaseModel):
    # A misspelt field ("expiry") must fail loudly instead of silently doing nothing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardCreate(_Body):
    uid: CardUid
    holder: Holder
    status: CardStatus = CardStatus.ACTIVE
    expires_at: Instant | None = None
    balance: NonNegativeMoney = Decimal("0")
    """The opening balance: the card's first ledger entry."""


class CardUpdate(_Body):
    """Block, unblock, or change the expiry; ``"expires_at": null`` removes the expiry."""

    status: CardStatus | None = None
    expires_at: Instant | None = None

    @model_validator(mode="after")
    def _status_is_not_null(self) -> Self:
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status may be active or blocked, not null")
        return self


class TopUp(_Body):
    amount: PositiveMoney
    reference: Reference | None = None
    """The payment's reference; sending the same one again books the top-up once."""


class RefundIn(_Body):
    """An operator's refund: how much, why, and optionally which session it refunds."""

    amount: PositiveMoney
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=36)] | None = None
    """The refunded session: at most its debit is refunded, all refunds together."""
    reference: Reference | None = None
    """Sending the same reference again books the refund once."""


class LedgerEntryOut(BaseModel):
    id: int
    kind: LedgerKind
    amount: str
    """Signed: debits are negative."""
    session_id: str | None
    reason: str | None
    reference: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerEntryOut:
        assert entry.id is not None
        return cls(
            id=entry.id,
            kind=LedgerKind(entry.kind),
            amount=money_text(entry.amount),
            session_id=entry.session_id,
            reason=entry.reason,
            reference=entry.reference,
            created_at=entry.created_at,
        )


class LedgerOut(BaseModel):
    """A card's ledger; ``balance`` is the sum of ``entries``, always."""

    card_uid: str
    balance: str
    entries: list[LedgerEntryOut]


class RefundOut(BaseModel):
    card_uid: str
    balance: str
    entry: LedgerEntryOut


class CardOut(BaseModel):
    uid: str
    holder: str
    status: CardStatus
    expires_at: datetime | None
    balance: str
    created_at: datetime

    @classmethod
    def of(cls, view: CardView) -> CardOut:
        card = view.card
        return cls(
            uid=card.uid,
            holder=card.holder,
            status=CardStatus(card.status),
            expires_at=card.expires_at,
            balance=money_text(view.balance),
            created_at=card.created_at,
        )
