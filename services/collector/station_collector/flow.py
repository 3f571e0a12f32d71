"""The charge flow of one pile as a pure state machine (S101-S108, S201-S205).

Pure so that every edge (either order, late signals, repeated swipes) can be reasoned about
and tested without a broker: events go in with the time they happened, decisions come out,
and :class:`~station_collector.collector.Collector` carries the decisions out.

Pairing rule: a plug and a swipe pair when the later of the two comes within the pairing
window of the earlier one, in either order. A lone plug or a lone swipe does nothing, and
an old one does not pair with a new one (a driver who swiped an hour ago has gone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from station_protocol.messages import StopReason


class Phase(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    """Pairing done; verification and session opening under way."""
    CHARGING = "charging"
    STOPPING = "stopping"
    """Stop commanded; checkout under way."""


@dataclass(frozen=True)
class Verify:
    """Ask verification whether ``card_uid`` may charge here as ``session_id``."""

    session_id: str
    card_uid: str


@dataclass(frozen=True)
class Stop:
    session_id: str
    reason: StopReason


@dataclass(frozen=True)
class Busy:
    """Another card was swiped on a pile that is already in a session."""

    card_uid: str


@dataclass(frozen=True)
class Prompt:
    """The gun is plugged but no card yet (or the other way round): tell the driver."""

    waiting_for: str


Decision = Verify | Stop | Busy | Prompt | None


@dataclass(frozen=True)
class Signal:
    at: float
    card_uid: str | None = None


@dataclass
class PileFlow:
    """The flow state of one pile; times are monotonic seconds."""

    pile_id: str
    window: float
    repeat_window: float = 1.0
    """A card reader repeats itself: the same card again within this many seconds is one swipe."""
    phase: Phase = Phase.IDLE
    gun_plugged: bool = False
    plug: Signal | None = None
    swipe_signal: Signal | None = None
    session_id: str | None = None
    card_uid: str | None = None
    last_read: Signal | None = None
    stop_pending: StopReason | None = None
    """A stop asked for while the start was still under way: carried out once it charges."""

    def plugged(self, now: float) -> Decision:
        self.gun_plugged = True
        if self.phase is not Phase.IDLE:
            return None
        self.plug = Signal(now)
        if self.swipe_signal is not None and now - self.swipe_signal.at <= self.window:
            assert self.swipe_signal.card_uid is not None
            return self._pair(self.swipe_signal.card_uid)
        self.swipe_signal = None
        return Prompt("card")

    def unplugged(self, now: float) -> Decision:
        self.gun_plugged = False
        self.plug = None
        if self.phase is Phase.CHARGING and self.session_id is not None:
            self.phase = Phase.STOPPING
            return Stop(self.session_id, StopReason.EV_DISCONNECTED)
        return None

    def swiped(self, card_uid: str, now: float, *, reader: bool = True) -> Decision:
        """``reader``: read by the pile's card reader, which repeats itself; a card at the
        console's kiosk is a request of its own each time."""
        if reader and self._repeated(card_uid, now):
            return None
        if self.phase is Phase.CHARGING:
            if card_uid != self.card_uid:
                return Busy(card_uid)
            assert self.session_id is not None
            self.phase = Phase.STOPPING
            return Stop(self.session_id, StopReason.LOCAL)
        if self.phase is not Phase.IDLE:
            return Busy(card_uid) if card_uid != self.card_uid else None
        if self.gun_plugged and self.plug is not None and now - self.plug.at <= self.window:
            return self._pair(card_uid)
        self.swipe_signal = Signal(now, card_uid)
        return Prompt("gun")

    def _repeated(self, card_uid: str, now: float) -> bool:
        previous, self.last_read = self.last_read, Signal(now, card_uid)
        return (
            previous is not None
            and previous.card_uid == card_uid
            and now - previous.at < self.repeat_window
        )

    def _pair(self, card_uid: str) -> Verify:
        self.phase = Phase.STARTING
        self.plug = None
        self.swipe_signal = None
        self.session_id = str(uuid.uuid4())
        self.card_uid = card_uid
        return Verify(self.session_id, card_uid)

    def start_failed(self, now: float) -> None:
        """Refused or unanswered: back to waiting; a plugged gun may pair with a new swipe."""
        self._clear()
        if self.gun_plugged:
            self.plug = Signal(now)

    def started(self) -> Stop | None:
        """The pile charges; the stop asked for meanwhile, if any, is due now."""
        self.phase = Phase.CHARGING
        reason, self.stop_pending = self.stop_pending, None
        if reason is None or self.session_id is None:
            return None
        self.phase = Phase.STOPPING
        return Stop(self.session_id, reason)

    def stop_requested(self, reason: StopReason) -> Stop | None:
        """A stop from outside the pile (balance used up, operator): once. One that comes
        while the session is starting (billing has opened it, the pile is not yet told to
        charge) is kept and carried out as soon as the pile charges: it is never lost."""
        if self.phase is Phase.STARTING and self.session_id is not None:
            self.stop_pending = self.stop_pending or reason
            return None
        if self.phase is not Phase.CHARGING or self.session_id is None:
            return None
        self.phase = Phase.STOPPING
        return Stop(self.session_id, reason)

    def checked_out(self) -> None:
        self._clear()

    def resume(self, session_id: str, card_uid: str) -> bool:
        """Take up a session billing says is active here (after a collector restart)."""
        if self.phase is not Phase.IDLE:
            return False
        self.phase = Phase.CHARGING
        self.session_id = session_id
        self.card_uid = card_uid
        return True

    def _clear(self) -> None:
        self.phase = Phase.IDLE
        self.session_id = None
        self.card_uid = None
        self.plug = None
        self.swipe_signal = None
        self.stop_pending = None
