"""Messages of the station's own bus (under ``station/v1``), version 1.

Every message carries ``v`` so that a later shape can be told apart on the same topic.
Timestamps are timezone-aware and come from the station's clock, never a pile's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from station_protocol.ids import ChargerId, Layout, PileId, charger_of
from station_protocol.ocpi import Price
from station_protocol.plausibility import METER_MAX
from station_protocol.zigbee import CardUid, OnlineState

SessionId = str

MAX_AMOUNT = Decimal(1_000_000_000)
"""No session, balance or debit on the bus is a billion or more (in any currency unit)."""


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


class AuthorizationWithdrawal(_Message):
    """Collector -> verification: the accepted card's session did not start; free the card.

    Sent when a start fails after verification accepted (billing refused or did not answer
    the opening, the gun was unplugged, the pile went out of service), so that the card's
    ``already_charging`` hold ends with the session that never was, not after a TTL.
    Verification frees the card only if billing has no active session of that id.
    """

    session_id: SessionId = Field(min_length=1, max_length=36)
    pile_id: PileId
    card_uid: CardUid


class SessionOpenRequest(_Message):
    """Collector -> billing: a verified card is about to charge; open its session first."""

    session_id: SessionId = Field(min_length=1, max_length=36)
    pile_id: PileId
    card_uid: CardUid
    meter_start: Decimal = Field(ge=0, le=METER_MAX, allow_inf_nan=False)
    balance: Decimal | None = Field(
        default=None, gt=-MAX_AMOUNT, lt=MAX_AMOUNT, allow_inf_nan=False
    )
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
    meter_stop: Decimal | None = Field(default=None, ge=0, le=METER_MAX, allow_inf_nan=False)
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
    """Retained per pile: the session on it now, or the last one that ended there.

    A retained message can be written by anyone who may publish there, so nobody decides
    from it alone: a collector that reads a state it cannot reconcile asks billing
    (:class:`SessionQuery`) and follows billing's answer.
    """

    session_id: SessionId
    pile_id: PileId
    card_uid: CardUid
    status: SessionStatus
    started_at: AwareDatetime
    stopped_at: AwareDatetime | None = None
    stop_reason: StopReason | None = None
    total_cost: Price | None = None
    """The record's cost once the session is completed (what its debit may be at most)."""
    total_energy: Decimal | None = Field(default=None, ge=0, le=METER_MAX, allow_inf_nan=False)
    """kWh billed, once the session is completed (for boards and their day's totals)."""


class SessionQuery(_Message):
    """Anyone -> billing (req/resp): billing's word on one session, or on a pile's session now.

    Exactly one of ``session_id`` and ``pile_id``. By pile, the answer is the pile's active
    session, else the last one that ended there.
    """

    session_id: SessionId | None = Field(default=None, min_length=1, max_length=36)
    pile_id: PileId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SessionQuery:
        if (self.session_id is None) == (self.pile_id is None):
            raise ValueError("name exactly one of session_id and pile_id")
        return self


class SessionAnswer(_Message):
    """Billing's answer to a :class:`SessionQuery`: the session, or none (never heard of)."""

    session: PileSession | None = None


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

    ``session_id`` is the session the collector believes is charging, if any. Only readings
    the meter rule believes are forwarded (``station_protocol.plausibility``): one that went
    backwards, out of range or faster than the pile's rated power is counted and reported as
    a fault instead. Billing applies the same rule again to what it receives.
    """

    pile_id: PileId
    session_id: SessionId | None = None
    energy: Decimal = Field(ge=0, le=METER_MAX, allow_inf_nan=False)
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
    NOT_BILLED = "not_billed"
    """Billing did not confirm a completed record of this session on this card for at least
    the amount (not yet, or never): nothing booked. Billing asks again later."""


class DebitRequest(_Message):
    """Billing -> verification (req/resp): take this session's cost from the card's balance.

    Idempotent by ``session_id``: billing sends it again until it is answered, and a session
    is debited exactly once however often it arrives.
    """

    session_id: SessionId = Field(min_length=1, max_length=36)
    card_uid: CardUid
    pile_id: PileId
    amount: Decimal = Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)
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
    stopped: bool | None = None
    """``True`` on the ``offline`` a service publishes itself as it stops on purpose (SIGTERM:
    an update, a restart). Absent from the last will, so that a crash is told from a stop:
    whoever watches the service waits a grace for it to come back before calling it missing,
    instead of raising at once. Absent in older messages, which read as not stopped."""


# -- the console: what people see and do ----------------------------------------------------


class PileBoardState(StrEnum):
    """One word for a pile on the display board, decided by its collector.

    ``offline`` is also what the console shows for every pile of a collector that is itself
    offline (its retained statuses are then stale)."""

    AVAILABLE = "available"
    PLUGGED = "plugged"
    """The gun is in; no session yet (waiting for a card, or verifying one)."""
    CHARGING = "charging"
    FINISHING = "finishing"
    """A stop was commanded; the session is being priced."""
    FAULTED = "faulted"
    """Out of service: the pile reports an error, or its meter cannot be believed."""
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"
    """Not answering breath frames, or not heard since its collector started."""


class PileStatus(_Message):
    """A collector's retained word on one of its piles, republished whenever it changes.

    Telemetry (``power``, ``energy``) changes every reading, so a collector republishes for
    those at most about once a second per pile; state changes go out at once.
    """

    pile_id: PileId
    charger: ChargerId
    state: PileBoardState
    power: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    """kW, as the pile last reported it."""
    energy: Decimal | None = Field(default=None, ge=0, le=METER_MAX, allow_inf_nan=False)
    """kWh, the pile's meter register (last believed reading)."""
    session_energy: Decimal | None = Field(default=None, ge=0, le=METER_MAX, allow_inf_nan=False)
    """kWh delivered in the running session so far (``None`` when there is none)."""
    linkquality: int | None = Field(default=None, ge=0, le=255)
    last_seen: AwareDatetime | None = None
    """When the pile last said anything (station clock)."""
    session_id: SessionId | None = None
    faults: list[str] = Field(default_factory=list, max_length=64)
    """The codes of the pile's active conditions, as its collector reports them."""
    updated_at: AwareDatetime


class PileMaintenance(_Message):
    """The console's retained word that a pile is (or is no longer) in maintenance.

    A pile in maintenance refuses new charges with a clear reason on its display, finishes
    a session already running, and is not reported faulty for being switched off.
    """

    pile_id: PileId
    active: bool
    reason: str = Field(default="", max_length=200)
    since: AwareDatetime


class StationPiles(_Message):
    """The console's retained word on which piles the station has, charger by charger.

    The station's pile set is data: at the console's first start it is the configured
    layout, and afterwards it changes only when an operator approves a new pile or
    decommissions one. Collectors breathe to exactly these piles, faults expects exactly
    these, billing opens sessions only on these. ``revision`` counts the changes (0 is the
    configured layout), so a log line or a test can tell one set from the next.
    """

    chargers: dict[ChargerId, list[PileId]]
    revision: int = Field(ge=0)
    changed_at: AwareDatetime

    @model_validator(mode="after")
    def _piles_of_their_charger(self) -> StationPiles:
        for charger, piles in self.chargers.items():
            if len(set(piles)) != len(piles):
                raise ValueError(f"{charger} lists a pile twice")
            strangers = [pile for pile in piles if charger_of(pile) != charger]
            if strangers:
                raise ValueError(f"{strangers} are not piles of {charger}")
        return self

    @classmethod
    def of_layout(cls, layout: Layout, at: datetime) -> StationPiles:
        """The configured layout as the first pile set (revision 0)."""
        chargers = {charger: layout.piles_of(charger) for charger in layout.charger_ids()}
        return cls(chargers=chargers, revision=0, changed_at=at)

    def piles_of(self, charger: str) -> list[str]:
        return list(self.chargers.get(charger, []))

    def pile_ids(self) -> list[str]:
        return [pile for piles in self.chargers.values() for pile in piles]

    def has_pile(self, pile: str) -> bool:
        return pile in self.chargers.get(_charger_or_none(pile) or "", [])


def _charger_or_none(pile: str) -> str | None:
    try:
        return charger_of(pile)
    except ValueError:
        return None


class CollectorLink(BaseModel):
    """Whether a collector's own broker is connected to the station broker.

    Written by mosquitto's bridge itself (``notifications``), as a bare ``1`` or ``0``, not
    JSON: the bridge writes ``1`` on both brokers when it connects, and its last will
    writes ``0`` on the station broker when the link dies.
    """

    model_config = ConfigDict(frozen=True)

    connected: bool

    @classmethod
    def parse(cls, payload: bytes) -> CollectorLink:
        word = payload.strip()
        if word not in (b"0", b"1"):
            raise ValueError(f"a bridge notification is 0 or 1, not {payload[:20]!r}")
        return cls(connected=word == b"1")


class KioskIntent(StrEnum):
    START = "start"
    STOP = "stop"


class KioskOutcome(StrEnum):
    STARTED = "started"
    """The pile was told to charge; the answer carries the session id."""
    STOPPING = "stopping"
    """The pile was told to stop; the record follows as for a swipe at the pile."""
    WAITING_FOR_GUN = "waiting_for_gun"
    """The card counts as swiped: the charge starts if the gun is plugged within the
    pairing window, as at the pile's own reader."""
    REFUSED = "refused"


class KioskRefusal(StrEnum):
    """Why a kiosk start or stop was refused (card results are verification's own words)."""

    UNKNOWN = "unknown"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    ALREADY_CHARGING = "already_charging"
    BUSY = "busy"
    """Another card's session runs on the pile."""
    NO_SESSION = "no_session"
    OUT_OF_SERVICE = "out_of_service"
    MAINTENANCE = "maintenance"
    VERIFICATION_UNAVAILABLE = "verification_unavailable"
    BILLING_UNAVAILABLE = "billing_unavailable"
    NOT_STARTED = "not_started"
    """Accepted, but the gun was unplugged before the charge could start."""


class KioskRequest(_Message):
    """The console -> a pile's collector: this card, at the kiosk, for this pile.

    Treated as a swipe of the card at the pile's own reader (same pairing and refusal
    rules); the collector answers once the outcome is known."""

    pile_id: PileId
    card_uid: CardUid
    intent: KioskIntent


class KioskReply(_Message):
    pile_id: PileId
    card_uid: CardUid
    intent: KioskIntent
    outcome: KioskOutcome
    reason: KioskRefusal | None = None
    session_id: SessionId | None = None
