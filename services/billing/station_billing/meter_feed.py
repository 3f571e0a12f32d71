"""The piles' meter readings: timed by billing, kept as samples, and watched against balances.

Each reading the collector forwards (``channels.PILE_METER``) is timed with billing's own
clock when it arrives. It is kept as a sample of its session when something price-relevant
changed (the pile started or stopped charging, the current or power crossed a limit of the
session's tariff) or when the last sample is ``meter_sample_interval`` old; the samples are
what the charging periods are built from (:mod:`station_billing.metering`, pure).

Each reading is first judged by the meter rule (``station_protocol.plausibility``), per
pile, as the collector judged it: what the pile cannot have counted is dropped and counted
(``implausible``, ``backwards``) and never enters a bill, even from a client that got past
the collector. The last believed reading of each pile is also what a session's opening
reading is checked against (:meth:`MeterFeed.plausible_start`).

Every ``running_cost_interval`` the session's running cost is worked out from its samples
and this reading, by the same function that prices the record at checkout
(:func:`station_billing.session_cost.session_cost`); when it reaches the card's balance at
the start, billing asks the pile's collector to stop the charge with
``insufficient_balance`` (again after ``stop_repeat_interval`` if the session is still
charging).

The subscription is shared (``$share/billing/...``): a reading is work to do once (time it,
keep it, check the balance), and every replica prices from the database, so no replica
needs to see every reading. Readings are not retained, so a shared subscription (which gets
no retained messages) misses nothing. With several replicas, each keeps its own notion of
the last sample, so a session may keep a few more samples than with one; the running cost
reads the samples from the database each time, so it sees every replica's.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from station_billing.billable_piles import BillablePiles
from station_billing.compiled_tariffs import CompiledTariffs
from station_billing.core.config import Settings
from station_billing.metering import MeterSample
from station_billing.metrics import BillingMetrics, MeterOutcome
from station_billing.models import ChargingSession
from station_billing.pile_store import PileStore
from station_billing.pricing.localtime import StationZone
from station_billing.sample_store import SampleStore
from station_billing.session_cost import PricedSession, session_cost
from station_billing.session_store import SessionStore
from station_protocol import channels
from station_protocol.ids import charger_of
from station_protocol.messages import MeterReading, SessionStatus, StopReason, StopRequest
from station_protocol.plausibility import MeterCredit, Verdict
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.deliveries import Delivery

log = logging.getLogger("station.billing.meters")

SHARE_GROUP = "billing"
ACTIVE = SessionStatus.ACTIVE.value


@dataclass
class _Tracked:
    """What this replica remembers of a charging session between readings."""

    kept: MeterSample | None
    """The last sample kept (by this replica)."""
    charging: bool
    band: tuple[int, int]
    latest: MeterSample | None = None
    checked_at: datetime | None = None


def _charging(reading: MeterReading) -> bool | None:
    """The pile's word if it gave one, else whether it draws power, else unknown."""
    if reading.charging is not None:
        return reading.charging
    if reading.power is not None:
        return reading.power > 0
    return None


@dataclass
class MeterFeed:
    """The bus side of metering: readings in, samples kept, stops asked."""

    bus: Bus
    sessions: SessionStore
    samples: SampleStore
    piles: PileStore
    compiled: CompiledTariffs
    zone: StationZone
    clock: Callable[[], datetime]
    metrics: BillingMetrics
    settings: Settings
    billable: BillablePiles
    on_new_pile: Callable[[], None] = lambda: None
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _piles: set[str] = field(default_factory=set)
    _meters: dict[str, MeterCredit] = field(default_factory=dict)
    """The meter rule's judge of each pile's readings, as this replica received them."""

    def register(self) -> None:
        self.bus.subscribe(channels.PILE_METER, self.on_reading, share=SHARE_GROUP)

    def forget(self, session_id: str) -> None:
        self._tracked.pop(session_id, None)

    def latest(self, session_id: str) -> MeterSample | None:
        """The latest reading of the session this replica believed, if any."""
        tracked = self._tracked.get(session_id)
        return tracked.latest if tracked is not None else None

    def plausible_start(self, pile_id: str, meter_start: Decimal, now: datetime) -> bool:
        """Could the pile's meter read ``meter_start`` now, after what billing last believed?

        Without a believed reading of the pile (billing just started) there is nothing to
        hold it against, and it is taken.
        """
        meter = self._meters.get(pile_id)
        if meter is None or meter.energy is None:
            return True
        return copy.copy(meter).judge(meter_start, now.timestamp()) is Verdict.BELIEVED

    def opened(self, pile_id: str, meter_start: Decimal, now: datetime) -> None:
        """A session opened at ``meter_start``: the pile's meter stood there, if billing had
        no believed reading of it yet (the collector judged it by the same rule)."""
        meter = self._meter(pile_id)
        if meter.energy is None:
            meter.judge(meter_start, now.timestamp())

    def _meter(self, pile_id: str) -> MeterCredit:
        meter = self._meters.get(pile_id)
        if meter is None:
            meter = self._meters[pile_id] = self.settings.meter_credit(pile_id)
        return meter

    def _judge(self, reading: MeterReading, now: datetime) -> Verdict:
        meter = self._meter(reading.pile_id)
        verdict = meter.judge(reading.energy, now.timestamp())
        if verdict is not Verdict.BELIEVED:
            outcome = (
                MeterOutcome.BACKWARDS if verdict is Verdict.BACKWARDS else MeterOutcome.IMPLAUSIBLE
            )
            self.metrics.meter_readings.labels(outcome.value).inc()
            log.warning(
                "meter reading the pile cannot have counted: dropped",
                extra={
                    "pile_id": reading.pile_id,
                    "session_id": reading.session_id,
                    "energy": str(reading.energy),
                    "last_believed": str(meter.energy),
                    "why": verdict.value,
                },
            )
        return verdict

    async def remember_pile(self, pile_id: str) -> None:
        if pile_id in self._piles:
            return
        self._piles.add(pile_id)
        await asyncio.to_thread(self.piles.remember, pile_id, self.clock())
        self.on_new_pile()

    async def on_reading(self, delivery: Delivery[MeterReading]) -> None:
        reading = delivery.body
        now = self.clock()
        if not await self._billable(reading.pile_id):
            # Nothing to bill, and no pile to remember (a forged stream of made-up piles
            # would otherwise grow the tariff displays without end).
            self.metrics.meter_readings.labels(MeterOutcome.UNKNOWN_PILE.value).inc()
            return
        await self.remember_pile(reading.pile_id)
        if self._judge(reading, now) is not Verdict.BELIEVED:
            return
        session = await asyncio.to_thread(self._session_for, reading)
        if session is None:
            if reading.session_id is not None:
                self.forget(reading.session_id)
            self.metrics.meter_readings.labels(MeterOutcome.NO_SESSION.value).inc()
            return
        tracked = await self._tracked_for(session)
        sample = MeterSample(
            at=now,
            energy=reading.energy,
            charging=_charging(reading),
            current=reading.current,
            power=reading.power,
        )
        last_energy = (tracked.latest or tracked.kept or _opening(session)).energy
        if sample.energy < last_energy:
            self.metrics.meter_readings.labels(MeterOutcome.BACKWARDS.value).inc()
            log.warning(
                "meter reading below the session's last one: dropped",
                extra={"session_id": session.id, "pile_id": session.pile_id},
            )
            return
        await self._keep(session, tracked, sample)
        tracked.latest = sample
        await self._check_balance(session.id, tracked, now)

    async def _billable(self, pile_id: str) -> bool:
        """A pile of the set, or one that left it with a session still running there: that
        session's readings are still its bill."""
        if self.billable.accepts(pile_id):
            return True
        if not self.billable.has_departed(pile_id):
            return False
        return await asyncio.to_thread(self.sessions.active_on_pile, pile_id) is not None

    def _session_for(self, reading: MeterReading) -> ChargingSession | None:
        if reading.session_id is not None:
            session = self.sessions.get(reading.session_id)
            if session is not None and session.status == ACTIVE:
                return session if session.pile_id == reading.pile_id else None
        return self.sessions.active_on_pile(reading.pile_id)

    async def _tracked_for(self, session: ChargingSession) -> _Tracked:
        tracked = self._tracked.get(session.id)
        if tracked is None:
            kept = await asyncio.to_thread(self.samples.of, session.id)
            last = kept[-1] if kept else None
            charging = next((s.charging for s in reversed(kept) if s.charging is not None), True)
            band = self._band(session, last) if last is not None else (-1, -1)
            tracked = self._tracked[session.id] = _Tracked(last, charging, band)
        return tracked

    def _band(self, session: ChargingSession, sample: MeterSample) -> tuple[int, int]:
        """Where the current and power stand among the tariff's limits."""
        cuts = self.compiled.of_session(session).cuts
        current = (
            bisect_right(sorted(cuts.currents), sample.current)
            if sample.current is not None
            else -1
        )
        power = bisect_right(sorted(cuts.powers), sample.power) if sample.power is not None else -1
        return current, power

    async def _keep(self, session: ChargingSession, tracked: _Tracked, sample: MeterSample) -> None:
        charging = tracked.charging if sample.charging is None else sample.charging
        band = self._band(session, sample)
        interval = timedelta(seconds=self.settings.meter_sample_interval)
        keep = (
            tracked.kept is None
            or charging != tracked.charging
            or band != tracked.band
            or sample.at - tracked.kept.at >= interval
        )
        if not keep:
            self.metrics.meter_readings.labels(MeterOutcome.SEEN.value).inc()
            return
        await asyncio.to_thread(self.samples.add, session.id, sample)
        tracked.kept, tracked.charging, tracked.band = sample, charging, band
        self.metrics.meter_readings.labels(MeterOutcome.SAMPLED.value).inc()

    async def running(self, session: ChargingSession) -> PricedSession:
        """The session's cost so far, to the latest reading billing has."""
        now = self.clock()
        samples = await asyncio.to_thread(self.samples.of, session.id)
        tracked = self._tracked.get(session.id)
        latest = tracked.latest if tracked is not None and tracked.latest is not None else None
        if latest is None:
            latest = samples[-1] if samples else _opening(session)
        compiled = self.compiled.of_session(session)
        energy = max(latest.energy, session.meter_start)
        return await asyncio.to_thread(
            session_cost,
            session,
            samples,
            max(now, session.started_at),
            energy,
            compiled,
            self.zone,
        )

    async def _check_balance(self, session_id: str, tracked: _Tracked, now: datetime) -> None:
        interval = timedelta(seconds=self.settings.running_cost_interval)
        if tracked.checked_at is not None and now - tracked.checked_at < interval:
            return
        tracked.checked_at = now
        session = await asyncio.to_thread(self.sessions.get, session_id)
        if session is None or session.status != ACTIVE or session.balance_at_start is None:
            return
        cost = (await self.running(session)).totals.total_cost.incl_vat
        if cost < session.balance_at_start:
            return
        repeat = timedelta(seconds=self.settings.stop_repeat_interval)
        if session.stop_requested_at is not None and now - session.stop_requested_at < repeat:
            return
        await self._ask_stop(session, cost, now)

    async def _ask_stop(self, session: ChargingSession, cost: Decimal, now: datetime) -> None:
        extra = {
            "session_id": session.id,
            "pile_id": session.pile_id,
            "card_uid": session.card_uid,
            "running_cost": str(cost),
            "balance": str(session.balance_at_start),
        }
        request = StopRequest(
            session_id=session.id, pile_id=session.pile_id, reason=StopReason.INSUFFICIENT_BALANCE
        )
        try:
            await self.bus.send(
                channels.COLLECTOR_STOP, request, charger=charger_of(session.pile_id)
            )
        except BusUnavailable:
            log.warning("could not ask for a stop: broker unavailable", extra=extra)
            return
        await asyncio.to_thread(self.sessions.stop_requested, session.id, now)
        self.metrics.stop_requests.inc()
        log.info("running cost reached the card's balance: stop asked", extra=extra)


def _opening(session: ChargingSession) -> MeterSample:
    return MeterSample(at=session.started_at, energy=session.meter_start, charging=True)
