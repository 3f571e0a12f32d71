"""Request and response bodies of the REST API.

Money travels as a decimal string (``"12.50"``); a JSON number is refused, since a client
that sends one has already passed the amount through a float.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from station_protocol.zigbee import CardUid
from station_runtime.api_types import Instant
from station_verification.cards import CardView
from station_verification.models import CardStatus, LedgerEntry, LedgerKind
from station_verification.money import MONEY_PLACES, money_text

_WHOLE_PLACES = 14
"""Digits before the point: the ledger's 64-bit column holds 9.2e14 at four places."""
_PLACES = f"\\.[0-9]{{1,{MONEY_PLACES}}}0*"
"""Up to four places; zeros after them change nothing and are let through."""

NON_NEGATIVE_MONEY_PATTERN = rf"^0*[0-9]{{1,{_WHOLE_PLACES}}}({_PLACES})?$"
POSITIVE_MONEY_PATTERN = (
    rf"^(0*[1-9][0-9]{{0,{_WHOLE_PLACES - 1}}}({_PLACES})?"
    rf"|0+\.[0-9]{{0,{MONEY_PLACES - 1}}}[1-9]0*)$"
)
"""Some digit other than 0 in the whole part or the first four places: more than zero."""


def _checked(pattern: str, what: str) -> BeforeValidator:
    """The handler's check of a money field: exactly the pattern its schema shows."""
    matcher = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f'money must be a decimal string such as "12.50" ({what})')
        if not matcher.match(value):
            raise ValueError(f'money must be {what} such as "12.50", got {value!r}')
        return value

    return BeforeValidator(check)


def _schema(pattern: str, what: str) -> WithJsonSchema:
    """``type: string`` with the pattern, not the "number or string" pydantic writes for a
    Decimal: a JSON number is refused, since a client that sends one has already passed the
    amount through a float, and a string the pattern refuses (``"0"`` for a top-up, more
    than four places, a sign) is what the handler refuses too."""
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": pattern,
            "description": f"{what}, as a decimal string, at most {MONEY_PLACES} places",
            "examples": ["12.50"],
        }
    )


_DIGITS = Field(
    max_digits=_WHOLE_PLACES + MONEY_PLACES, decimal_places=MONEY_PLACES, allow_inf_nan=False
)
_ABOVE_ZERO = "an amount above zero"
_ZERO_OR_MORE = "an amount of zero or more"

PositiveMoney = Annotated[
    Decimal,
    _checked(POSITIVE_MONEY_PATTERN, _ABOVE_ZERO),
    _DIGITS,
    _schema(POSITIVE_MONEY_PATTERN, _ABOVE_ZERO),
]
"""A top-up or a refund: a zero one means nothing, so the schema and the handler refuse it."""
NonNegativeMoney = Annotated[
    Decimal,
    _checked(NON_NEGATIVE_MONEY_PATTERN, _ZERO_OR_MORE),
    _DIGITS,
    _schema(NON_NEGATIVE_MONEY_PATTERN, _ZERO_OR_MORE),
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
