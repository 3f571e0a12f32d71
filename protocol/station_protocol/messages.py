"""Messages of the station's own bus (under ``station/v1``), version 1.

Every message carries ``v`` so that a later shape can be told apart on the same topic.
Timestamps are timezone-aware and come from the station's clock, never a pile's.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from station_protocol.ids import ChargerId, PileId
from station_protocol.ocpi import Price
from station_protocol.zigbee import CardUid, OnlineState

SessionId = str


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal["v1"] = "v1"


class VerificationResult(StrEnum):
    """Why a card may or may not charge; shown to the driver on the pile display."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    ALREADY_CHARGING = "already_charging"


class StopReason(StrEnum):
    """Why a session ended (after OCPP 1.6 ``Reason``)."""

    LOCAL = "local"
    """The same card was swiped again at the pile."""
    EV_DISCONNECTED = "ev_disconnected"
    OPERATOR = "operator"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    PILE_FAULT = "pile_fault"
    START_FAILED = "start_failed"
    """The collector gave up on a start before the pile was told to charge: no energy."""


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"


class VerificationRequest(_Message):
    """Collector -> verification: may this card charge on this pile as this session?"""

    session_id: SessionId = Field(min_length=1, max_length=36)
    pile_id: PileId
    card_uid: CardUid


class VerificationReply(_Message):
    session_id: SessionId
    card_uid: CardUid
    result: VerificationResult
    balance: Decimal | None = None
    """The card's balance when it was checked (absent for an unknown card)."""


class SessionOpenRequest(_Message):
    """Collector -> billing: a verified card is about to charge; open its session first."""

    session_id: SessionId = Field(min_length=1, max_length=36)
    pile_id: PileId
    card_uid: CardUid
    meter_start: Decimal = Field(ge=0, allow_inf_nan=False)
    balance: Decimal | None = Field(default=None, allow_inf_nan=False)
    """The card's balance from the :class:`VerificationReply` that accepted it, if known.

    Billing stops the charge (``StopRequest(reason=insufficient_balance)``) when the running
    cost reaches it; without it billing asks verification (:class:`BalanceRequest`).
    """


class SessionOpenReply(_Message):
    session_id: SessionId
    opened: bool
    error: str | None = None


class CheckoutRequest(_Message):
    """Collector -> billing: the session on this pile has ended; price it and store it."""

    session_id: SessionId
    pile_id: PileId
    meter_stop: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    stop_reason: StopReason


class Receipt(_Message):
    """What the driver gets: the record's totals and the lines for the pile display."""

    session_id: SessionId
    pile_id: PileId
    card_uid: CardUid
    started_at: AwareDatetime
    stopped_at: AwareDatetime
    total_energy: Decimal
    total_cost: Price
    currency: str
    lines: list[str]
    qr: str


class CheckoutReply(_Message):
    session_id: SessionId
    ok: bool
    error: str | None = None
    receipt: Receipt | None = None


class PileSession(_Message):
    """Retained per pile: the session on it now, or the last one that ended there."""

    session_id: SessionId
    pile_id: PileId
    card_uid: CardUid
    status: SessionStatus
    started_at: AwareDatetime
    stopped_at: AwareDatetime | None = None
    stop_reason: StopReason | None = None


class StopRequest(_Message):
    """Billing -> a collector: stop this session's charge and check it out as usual.

    The collector carries it out exactly like a second swipe (stop the pile, take its final
    meter reading, check out), so that every stop is priced from the same readings.
    """

    session_id: SessionId
    pile_id: PileId
    reason: StopReason


class MeterReading(_Message):
    """A pile's meter as its collector saw it; billing times it with its own clock.

    ``session_id`` is the session the collector believes is charging, if any. Readings that
    went backwards are not forwarded (they are counted and reported as a meter anomaly).
    """

    pile_id: PileId
    session_id: SessionId | None = None
    energy: Decimal = Field(ge=0, allow_inf_nan=False)
    power: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    current: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    charging: bool | None = None
    gun_plugged: bool | None = None


class DebitResult(StrEnum):
    """What verification did with a session's debit."""

    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"
    """The session was debited before (a redelivery or a retry): nothing booked again."""
    UNKNOWN_CARD = "unknown_card"
    INVALID = "invalid"
    """The amount cannot be booked (negative, or finer than the ledger keeps)."""
    CONFLICT = "conflict"
    """The session was debited before with another amount or card; the first booking stands."""


class DebitRequest(_Message):
    """Billing -> verification (req/resp): take this session's cost from the card's balance.

    Idempotent by ``session_id``: billing sends it again until it is answered, and a session
    is debited exactly once however often it arrives.
    """

    session_id: SessionId = Field(min_length=1, max_length=36)
    card_uid: CardUid
    pile_id: PileId
    amount: Decimal = Field(ge=0, allow_inf_nan=False)
    """The record's ``total_cost.incl_vat``: what the driver pays."""


class DebitReply(_Message):
    session_id: SessionId
    card_uid: CardUid
    result: DebitResult
    amount: Decimal | None = None
    """The amount booked for the session (the first booking's, on a redelivery)."""
    balance: Decimal | None = None
    """The card's balance after the debit."""
    error: str | None = None

    @property
    def settled(self) -> bool:
        """The session's debit is on the ledger (now or before): billing stops retrying."""
        return self.result in (DebitResult.BOOKED, DebitResult.ALREADY_BOOKED)


class BalanceRequest(_Message):
    """Billing -> verification (req/resp): the card's balance now (its ledger's sum)."""

    card_uid: CardUid
    session_id: SessionId | None = None


class BalanceReply(_Message):
    card_uid: CardUid
    known: bool
    balance: Decimal | None = None


class TariffDisplay(_Message):
    """Retained per pile (billing): the price in effect now, shown before a driver swipes.

    Prices include VAT (what the driver pays) in ``currency``; ``None`` means that part is
    not charged now. ``valid_until`` is when billing will publish the next one (a time-band
    boundary or an assignment's end), if it knows.
    """

    pile_id: PileId
    tariff_id: str
    currency: str
    energy_price: Decimal | None = None
    """Per kWh."""
    time_price: Decimal | None = None
    """Per hour of charging."""
    parking_price: Decimal | None = None
    """Per hour plugged in and not charging."""
    flat_price: Decimal | None = None
    """Once per session."""
    lines: list[str]
    """Ready for the pile display, a few short lines."""
    valid_until: AwareDatetime | None = None
    published_at: AwareDatetime


class CollectorBreath(_Message):
    """Collector -> local server every T1 (req/resp): I am alive; are you?

    The faults service answers each with :class:`BreathAck`; a collector whose breaths stop
    arriving is disconnected from the local server, and one that gets no answers reports
    ``local_server_unreachable``.
    """

    charger: ChargerId
    seq: int = Field(ge=0)
    sent_at: AwareDatetime
    t1: float = Field(gt=0)
    """The collector's breath period, so the server knows when a breath is overdue."""


class BreathAck(_Message):
    charger: ChargerId
    seq: int = Field(ge=0)


class FaultReport(_Message):
    """A collector's retained word on one condition of one source (a pile or itself).

    ``active`` true raises, false clears; the faults service turns it into a bulletin from
    the fault catalogue. ``since`` is when the condition began as the collector saw it (for
    a silent pile: its last answered breath), ``detected_at`` when it was decided.
    """

    charger: ChargerId
    source: str
    """The pile id, or the charger id for a condition of the collector itself."""
    pile_id: PileId | None = None
    code: str = Field(min_length=1, max_length=64)
    active: bool
    since: AwareDatetime
    detected_at: AwareDatetime
    detail: dict[str, str] = Field(default_factory=dict)


class ServiceFaultReport(_Message):
    """A service's retained word on one condition of one source (central, a database...).

    The service-side twin of :class:`FaultReport`, which belongs to a collector (its
    ``charger`` is required). ``active`` true raises, false clears; ``since`` is when the
    condition began, ``detected_at`` when it was decided.
    """

    service: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)
    active: bool
    since: AwareDatetime
    detected_at: AwareDatetime
    detail: dict[str, str] = Field(default_factory=dict)


class ServiceStatus(_Message):
    """Retained status of a service or collector; its MQTT last will writes ``offline``."""

    state: OnlineState
    service: str
    charger: ChargerId | None = None
