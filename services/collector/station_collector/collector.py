"""One charger's collector: pile messages in, charge flow decisions carried out.

The flow itself is :mod:`station_collector.flow` (pure); this module does the I/O around
it: check what the piles say, ask verification and billing over the bus, command the piles,
and put text on their displays. Messages arrive decoded by their channels
(``station_protocol.channels``); the bus drops what cannot be read and :meth:`count_drop`
counts it in ``station_collector_dropped_messages``, beside the collector's own refusals.
Round trips run as tasks, so that the bus loop keeps reading (the replies come through it).

Order of a start (no energy without a verified card and an open session, invariant 1 of
``docs/invariants.md``):
verify the card -> billing opens the session with the meter reading now -> only then the
pile is told to charge. Order of a stop: the pile is told to stop -> its final meter
reading -> billing prices and stores the record -> the receipt goes to the display.

A card at the console's kiosk (``KIOSK``) is a swipe at the pile's reader: :meth:`swipe`
decides both at once, in message order, and hands back the work that carries the decision
out and says what came of it (:class:`~station_collector.outcome.Outcome`), which the kiosk
answers with. The board's status of each pile (``PILE_STATUS``) is :mod:`.status`'s, its
word :mod:`.board_state`'s; maintenance is the console's retained word (:mod:`.maintenance`).

Which piles it serves is the console's word too (``STATION_PILES``, followed by
:class:`~station_runtime.pile_set.PileSet`; the ``piles`` setting is only the set before that
word is heard). A pile added is served from then on as any pile not yet heard; a pile removed
is forgotten at once (no breath, no bulletin, its retained reports and status deleted),
unless a session runs on it: then it is *retiring*, refuses new starts and is served until
that session checks out, so that no session is ever lost. A message on the charger's
Zigbee2MQTT from any device that is not a pile served here (an IEEE address not renamed
yet, another charger's pile, a decommissioned one) is a *stranger*: never acted on, counted
in ``station_collector_stranger_messages`` (and, as always, ``unknown_pile`` drops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from station_collector import display
from station_collector.board_state import PileFacts, board_state
from station_collector.conditions import Conditions
from station_collector.core.config import Settings
from station_collector.faults import FaultBoard
from station_collector.flow import Busy, Decision, Phase, PileFlow, Prompt, Stop, Verify
from station_collector.maintenance import Maintenance
from station_collector.metrics import CollectorMetrics
from station_collector.outcome import Outcome, done
from station_collector.readings import DropKind, PileReadings, drop_kind
from station_collector.status import PileStatuses
from station_collector.watch import Watch
from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import charger_of, pile_id
from station_protocol.messages import (
    AuthorizationWithdrawal,
    CheckoutReply,
    CheckoutRequest,
    CollectorLink,
    KioskIntent,
    KioskOutcome,
    KioskRefusal,
    KioskReply,
    KioskRequest,
    MeterReading,
    PileSession,
    PileStatus,
    ServiceStatus,
    SessionAnswer,
    SessionOpenRequest,
    SessionQuery,
    SessionStatus,
    StopReason,
    StopRequest,
    TariffDisplay,
    VerificationReply,
    VerificationRequest,
    VerificationResult,
)
from station_protocol.plausibility import Verdict
from station_protocol.zigbee import (
    BridgeState,
    ChargeCommand,
    Display,
    DisplayCommand,
    OnlineState,
    PileAction,
    PileCommand,
    PileState,
)
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.deliveries import Delivery, Dropped
from station_runtime.pile_set import PileSet, PileSetChange
from station_runtime.tasks import RoundTrips

log = logging.getLogger("station.collector")

CHECKOUT_RETRY_MAX = 5.0
NO_RESPONSE_TOPIC = "no_response_topic"
"""The drop reason of a kiosk request nobody could be answered on: it is not acted on."""


@dataclass
class Pile:
    flow: PileFlow
    readings: PileReadings = field(default_factory=PileReadings)
    meter_start: Decimal | None = None
    """The meter reading the running session opened at (unknown for a resumed one)."""
    last_seen: datetime | None = None
    """When the pile last said anything (station clock)."""
    reconciling: bool = False
    """Billing is being asked what the pile's session is (one question at a time)."""


@dataclass
class Collector:
    settings: Settings
    bus: Bus
    metrics: CollectorMetrics
    piles: dict[str, Pile] = field(default_factory=dict)
    _trips: RoundTrips = field(default_factory=lambda: RoundTrips("collector"))
    tariffs: dict[str, TariffDisplay] = field(default_factory=dict)
    """The price in effect on each of the charger's piles (billing's retained word), shown on
    plug; kept for piles not served too, so that a pile added later shows its price."""
    retiring: set[str] = field(default_factory=set)
    """Piles the console removed while a session ran on them: served until it checks out."""
    status_followed: set[str] = field(default_factory=set)
    """Piles whose status topic this collector reads (its own word coming back)."""

    def __post_init__(self) -> None:
        settings = self.settings
        index = int(settings.charger[1:])
        configured = [pile_id(index, j) for j in range(1, settings.piles + 1)]
        self.pile_set = PileSet.of(configured, charger=settings.charger)
        for pile in self.pile_set.pile_ids():
            self.piles[pile] = self._new_pile(pile)
        self.zigbee = ZigbeeChannels.for_charger(settings.charger, settings.zigbee_root)
        # The drops that are pile messages (this charger's Zigbee2MQTT), counted by kind.
        zigbee = self.zigbee
        self.pile_kinds = frozenset(
            channel.name
            for channel in (zigbee.pile_state, zigbee.pile_availability, zigbee.bridge_state)
        )
        # The drops that are a device's own messages (not its bridge's): a stranger's, if
        # the device is no pile served here.
        self.device_kinds = frozenset((zigbee.pile_state.name, zigbee.pile_availability.name))
        served = tuple(self.piles)
        self.statuses = PileStatuses(
            self.bus, served, self.pile_status, self._spawn, settings.status_interval
        )
        self.maintenance = Maintenance(self.bus, served, self._maintenance_changed, self._spawn)
        self.board = FaultBoard(settings.charger, self.bus, on_change=self.statuses.changed)
        self.conditions = Conditions(
            self.board, settings.weak_link_below, settings.meter_stuck_after
        )
        self.watch = Watch.of(
            list(self.piles),
            charger=settings.charger,
            t1=settings.t1,
            misses=settings.misses,
            bus=self.bus,
            zigbee=self.zigbee,
            board=self.board,
            metrics=self.metrics,
            spawn=self._spawn,
            rejoin=self.bus.options.longest_retry,
            startup_grace=settings.startup_grace,
            on_change=self.statuses.changed,
        )
        self._count_piles()

    def _new_pile(self, pile: str) -> Pile:
        settings = self.settings
        return Pile(
            PileFlow(pile, settings.pairing_window, settings.repeat_window),
            PileReadings(meter=settings.meter_credit(pile)),
        )

    @property
    def charger(self) -> str:
        return self.settings.charger

    def register(self) -> None:
        """Subscribe to this charger's Zigbee2MQTT topics and to the sessions of its piles."""
        bus, zigbee, only_ours = self.bus, self.zigbee, {"charger": self.charger}
        bus.subscribe(zigbee.pile_state, self.on_pile_state)
        bus.subscribe(zigbee.pile_availability, self.on_pile_availability)
        bus.subscribe(zigbee.bridge_state, self.on_bridge_state)
        bus.subscribe(channels.COLLECTOR_FAULT, self.board.on_retained, only=only_ours)
        bus.on_connect(self.board.republish)
        bus.subscribe(channels.PILE_SESSION, self.on_pile_session)
        bus.subscribe(channels.PILE_TARIFF, self.on_pile_tariff)
        bus.subscribe(channels.COLLECTOR_STOP, self.on_stop_request, only=only_ours)
        bus.subscribe(
            channels.SERVICE_STATUS,
            self.on_local_server_status,
            only={"service": channels.LOCAL_SERVER},
        )
        bus.subscribe(channels.KIOSK, self.on_kiosk, only=only_ours)
        bus.subscribe(channels.COLLECTOR_LINK, self.on_station_link, only=only_ours)
        self.maintenance.register()
        for pile in self.piles:
            self._follow_status(pile)
        bus.on_connect(self.statuses.republish)
        self.pile_set.on_change(self.on_pile_set)
        self.pile_set.register(bus)

    def _follow_status(self, pile: str) -> None:
        """Read the pile's status topic, to restore our word when someone else overwrites it.

        Once per pile for good (a removed pile's echoes are ignored): a subscription made
        while connected is made on the broker at once, else at the next connection.
        """
        if pile in self.status_followed:
            return
        self.status_followed.add(pile)
        self.bus.subscribe(
            channels.PILE_STATUS,
            self.statuses.on_echo,
            only={"pile": pile},
            on_clear=self.statuses.on_cleared,
        )
        if self.bus.connected:
            self._spawn(self.bus.look_again(channels.PILE_STATUS, only={"pile": pile}))

    # -- the pile set ---------------------------------------------------------------------

    def on_pile_set(self, change: PileSetChange) -> None:
        """The console's word changed the charger's piles: serve the added ones from now on,
        forget the removed ones (or retire those a session still runs on)."""
        for added in change.added:
            self._serve(added, change.revision)
        for removed in change.removed:
            self._unserve(removed, change.revision)
        self._count_piles()

    def _serve(self, pile_id: str, revision: int | None) -> None:
        """A pile added: not yet seen, breathed to from the next breath, its maintenance
        word, tariff and status followed as any pile's."""
        context = {"pile_id": pile_id, "collector": self.charger, "revision": revision}
        if pile_id in self.retiring:
            self.retiring.discard(pile_id)
            log.info("retiring pile added back: served as before", extra=context)
            return
        if pile_id in self.piles:
            return
        self.piles[pile_id] = self._new_pile(pile_id)
        self.board.serve(pile_id)
        self.maintenance.add(pile_id)
        self._follow_status(pile_id)
        self.statuses.add(pile_id)
        self.watch.add(pile_id)
        log.info("pile added: served from now on", extra=context)

    def _unserve(self, pile_id: str, revision: int | None) -> None:
        """A pile removed: forgotten now, unless a session runs on it (then retiring)."""
        pile = self.piles.get(pile_id)
        if pile is None:
            return
        if _busy(pile):
            self.retiring.add(pile_id)
            log.info(
                "pile removed while a session runs on it: retiring until it checks out",
                extra={**_ids(pile.flow), "collector": self.charger, "revision": revision},
            )
            return
        self._forget(pile_id)
        log.info(
            "pile removed: no longer served",
            extra={"pile_id": pile_id, "collector": self.charger, "revision": revision},
        )

    def _retire_if_done(self, pile: Pile) -> None:
        """A retiring pile whose session is over is forgotten, as if removed just now."""
        pile_id = pile.flow.pile_id
        if pile_id not in self.retiring or _busy(pile) or self.piles.get(pile_id) is not pile:
            return
        self.retiring.discard(pile_id)
        self._forget(pile_id)
        self._count_piles()
        log.info(
            "retiring pile's session is over: no longer served",
            extra={"pile_id": pile_id, "collector": self.charger},
        )

    def _forget(self, pile_id: str) -> None:
        """No breath, no judgement, no bulletin; its retained reports and status deleted."""
        del self.piles[pile_id]
        self.watch.remove(pile_id)
        self.statuses.remove(pile_id)
        self.conditions.forget(pile_id)
        self._spawn(self.board.withdraw(pile_id))
        with contextlib.suppress(KeyError):
            self.metrics.linkquality.remove(self.charger, pile_id)

    def _count_piles(self) -> None:
        self.metrics.piles.labels(self.charger).set(len(self.piles))

    async def start(self) -> None:
        """Begin breathing and sweeping the piles' statuses; the bus connects in the
        background and both wait for it."""
        self._spawn(self.watch.run())
        self._spawn(self.statuses.run())

    async def close(self) -> None:
        """Stop breathing and end every round trip under way, however they take it."""
        self.watch.close()
        await self._trips.close()

    # -- incoming -------------------------------------------------------------------------

    def count_drop(self, dropped: Dropped) -> None:
        """The bus's sink: count a refused pile message under its existing ``kind`` label.

        Only this charger's Zigbee2MQTT messages are pile messages; one from a device that
        is no pile served here is a stranger's, counted in
        ``station_collector_stranger_messages`` too (its bridge's topics are never a
        stranger's). A drop on a station channel (an unreadable session or stop request, a
        forged or late reply) is counted
        in ``station_collector_refused_messages`` by channel and reason.
        """
        if dropped.kind in self.pile_kinds:
            kind = drop_kind(dropped, self.piles)
            self.metrics.dropped.labels(self.charger, kind.value).inc()
            if kind is DropKind.UNKNOWN_PILE and dropped.kind in self.device_kinds:
                self.metrics.strangers.labels(self.charger).inc()
        else:
            self.metrics.refused.labels(self.charger, dropped.kind, dropped.reason).inc()

    async def on_pile_availability(self, delivery: Delivery[BridgeState]) -> None:
        pile_id = delivery.params["pile"]
        if pile_id not in self.piles:
            self.bus.drop(delivery, DropKind.UNKNOWN_PILE, self.zigbee.pile_availability.name)
            return
        self.watch.availability(pile_id, delivery.body.state is OnlineState.ONLINE)

    async def on_station_link(self, delivery: Delivery[CollectorLink]) -> None:
        """Our own broker's bridge to the station broker came up or went down."""
        connected = delivery.body.connected
        self.metrics.station_link.labels(self.charger).set(1 if connected else 0)
        log.log(
            logging.INFO if connected else logging.WARNING,
            "station link up" if connected else "station link down",
            extra={"charger": self.charger},
        )

    async def on_local_server_status(self, delivery: Delivery[ServiceStatus]) -> None:
        status = delivery.body
        self.watch.local_server_status(status.state is OnlineState.ONLINE, bool(status.stopped))

    async def on_bridge_state(self, delivery: Delivery[BridgeState]) -> None:
        self.watch.bridge(delivery.body.state is OnlineState.ONLINE)

    async def on_pile_state(self, delivery: Delivery[PileState]) -> None:
        pile_id = delivery.params["pile"]
        pile = self.piles.get(pile_id)
        if pile is None:
            # A well-formed pile id, but of another charger or beyond this one's piles.
            self.bus.drop(delivery, DropKind.UNKNOWN_PILE, self.zigbee.pile_state.name)
            return
        state = delivery.body
        pile.last_seen = datetime.now(UTC)
        if state.breath_ack is not None:
            self.watch.acked(pile_id, state.breath_ack)
        previous_gun, was_charging = pile.readings.gun, pile.readings.charging
        now = time.monotonic()
        refused = pile.readings.update(state, now)
        if state.action is PileAction.CARD_SWIPE and state.card_uid is None:
            refused.append(DropKind.SWIPE_WITHOUT_CARD)
        for kind in refused:
            self.bus.drop(delivery, kind, self.zigbee.pile_state.name)
        if state.linkquality is not None:
            self.metrics.linkquality.labels(self.charger, pile_id).set(state.linkquality)
        if state.energy is not None and pile.readings.verdict is Verdict.BELIEVED:
            self._spawn(self._forward_meter(pile))
        faulty_before = self.conditions.has_error(pile_id)
        await self.conditions.observe(pile_id, state, pile.readings, refused, now)
        faulty = self.conditions.has_error(pile_id)
        if faulty:
            self._act(pile, pile.flow.stop_requested(StopReason.PILE_FAULT))
        if faulty != faulty_before:
            self._spawn(self._show(pile_id, self._idle_screen(pile_id)))
        if state.gun is not None and state.gun != previous_gun:
            plugged = state.gun == "plugged"
            self._act(pile, pile.flow.plugged(now) if plugged else pile.flow.unplugged(now))
        if state.action is PileAction.CARD_SWIPE and state.card_uid is not None:
            self._spawn(self.swipe(pile, state.card_uid, now))
        if state.charging and not was_charging and pile.flow.phase is Phase.IDLE:
            # Charging with no session here (this collector restarted, or was away while
            # billing closed it): billing's word says whether to resume it or stop the pile.
            self._spawn(self._reconcile(pile))
        self.statuses.changed(pile_id)
        self._retire_if_done(pile)

    def out_of_service(self, pile_id: str) -> bool:
        """A pile that reports an error, whose meter cannot be believed, or that does not
        answer may not start a charge."""
        return self.out_of_order(pile_id) or not self.watch.is_up(pile_id)

    def out_of_order(self, pile_id: str) -> bool:
        """The pile reports an error, or its meter cannot be believed."""
        return self.conditions.has_error(pile_id) or self.conditions.meter_untrusted(pile_id)

    def pile_status(self, pile_id: str) -> PileStatus:
        """The pile's board status now: its word, telemetry, session and active faults."""
        pile = self.piles[pile_id]
        flow, readings = pile.flow, pile.readings
        facts = PileFacts(
            phase=flow.phase,
            up=self.watch.is_up(pile_id),
            out_of_order=self.out_of_order(pile_id),
            in_maintenance=self.maintenance.active(pile_id),
            gun_plugged=flow.gun_plugged,
        )
        running = flow.phase in (Phase.CHARGING, Phase.STOPPING)
        return PileStatus(
            pile_id=pile_id,
            charger=self.charger,
            state=board_state(facts),
            power=readings.power,
            energy=readings.energy,
            session_energy=_session_energy(pile) if running else None,
            linkquality=readings.linkquality,
            last_seen=pile.last_seen,
            session_id=flow.session_id if running else None,
            faults=sorted(self.board.active_codes(pile_id))[:64],
            updated_at=datetime.now(UTC),
        )

    def _idle_screen(self, pile_id: str) -> Display:
        """What a pile with no charge under way shows: why it may not charge, or ready."""
        if self.out_of_order(pile_id):
            return display.out_of_service(sorted(self.board.active_codes(pile_id)))
        if self.maintenance.active(pile_id):
            return display.maintenance()
        return display.available()

    def _maintenance_changed(self, pile_id: str, active: bool) -> None:
        """Into maintenance: its connectivity faults come down (it may be switched off);
        back: what is still wrong is reported again. The display says which, unless a
        charge is under way (it finishes as usual)."""
        pile = self.piles.get(pile_id)
        if pile is None:
            return  # a pile no longer served: its word is kept for if it comes back
        if active:
            self._spawn(self.board.hush(pile_id))
        else:
            self.board.unhush(pile_id)
            self.watch.recheck(pile_id)
        if pile.flow.phase is Phase.IDLE:
            self._spawn(self._show(pile_id, self._idle_screen(pile_id)))
        self.statuses.changed(pile_id)

    async def on_pile_session(self, delivery: Delivery[PileSession]) -> None:
        """News of a pile's session (retained): worth asking billing about, never obeyed.

        Anyone who may publish could have written it, so it only tells the collector when to
        ask: an active session it does not know (it restarted), or the end of the one it is
        charging (billing closed it). Billing's answer decides (:meth:`_reconcile`).
        """
        pile_id = delivery.params["pile"]
        pile = self.piles.get(pile_id)
        if pile is None or delivery.body.pile_id != pile_id:
            return  # another charger's pile, or a message on the wrong topic
        session, flow = delivery.body, pile.flow
        unknown_active = session.status is SessionStatus.ACTIVE and flow.phase is Phase.IDLE
        ours_ended = (
            session.status is SessionStatus.COMPLETED
            and flow.session_id == session.session_id
            and flow.phase is Phase.CHARGING
        )
        if unknown_active or ours_ended:
            self._spawn(self._reconcile(pile))

    async def _ask_billing(self, pile_id: str) -> SessionAnswer | None:
        return await self.bus.ask(
            channels.SESSION_QUERY,
            SessionQuery(pile_id=pile_id),
            timeout=self.settings.request_timeout,
            answers=lambda answer: answer.session is None or answer.session.pile_id == pile_id,
        )

    async def _reconcile(self, pile: Pile) -> None:
        """Follow billing's word on the pile: resume its active session, or end a closed one
        (also one the pile charges for while this collector knows of none)."""
        if pile.reconciling:
            return
        pile.reconciling = True
        try:
            await self._follow_billing(pile)
        finally:
            pile.reconciling = False
            self._retire_if_done(pile)

    async def _follow_billing(self, pile: Pile) -> None:
        flow = pile.flow
        answer = await self._ask_billing(flow.pile_id)
        delay = 0.5
        while answer is None:
            # Billing is restarting: its word is needed (a driver's charge may be running).
            log.warning("billing did not say what the pile's session is", extra=_ids(flow))
            await asyncio.sleep(delay)
            delay = min(delay * 2, CHECKOUT_RETRY_MAX)
            answer = await self._ask_billing(flow.pile_id)
        session = answer.session
        active = session is not None and session.status is SessionStatus.ACTIVE
        if active and session is not None and flow.resume(session.session_id, session.card_uid):
            pile.meter_start = None  # billing's word carries no opening reading
            log.info("resumed session", extra=_ids(flow))
            self.statuses.changed(flow.pile_id)
        elif flow.phase is Phase.CHARGING and (
            not active or session is None or session.session_id != flow.session_id
        ):
            assert flow.session_id is not None
            log.warning("billing closed the session charging here: stopped", extra=_ids(flow))
            stop = ChargeCommand(charge="stop", session_id=flow.session_id)
            flow.checked_out()
            self.statuses.changed(flow.pile_id)
            await self._command(flow.pile_id, stop)
            await self._show(flow.pile_id, self._idle_screen(flow.pile_id))
        elif flow.phase is Phase.IDLE and not active and pile.readings.charging:
            stray = pile.readings.session_id or (session.session_id if session else "")
            log.warning(
                "the pile charges for a session billing does not hold open: stopped",
                extra={"pile_id": flow.pile_id, "session_id": stray},
            )
            await self._command(flow.pile_id, ChargeCommand(charge="stop", session_id=stray))
            await self._show(flow.pile_id, self._idle_screen(flow.pile_id))

    async def _free_pile(self, pile: Pile, opening: str) -> bool:
        """Billing refused an opening: if it holds the pile for a session this collector is
        not charging (lost in a restart, forged into the retained state), check that one
        out at the pile's meter, so the pile is never busy for a session nobody charges."""
        answer = await self._ask_billing(pile.flow.pile_id)
        held = answer.session if answer is not None else None
        if held is None or held.status is not SessionStatus.ACTIVE or held.session_id == opening:
            return False
        request = CheckoutRequest(
            session_id=held.session_id,
            pile_id=held.pile_id,
            meter_stop=pile.readings.energy,
            stop_reason=StopReason.EV_DISCONNECTED,
        )
        reply = await self._checkout(request)
        log.warning(
            "a session billing held on the pile was checked out",
            extra={"pile_id": held.pile_id, "session_id": held.session_id, "billed": reply.ok},
        )
        return reply.ok

    async def on_pile_tariff(self, delivery: Delivery[TariffDisplay]) -> None:
        pile_id = delivery.params["pile"]
        if charger_of(pile_id) == self.charger:
            self.tariffs[pile_id] = delivery.body

    async def on_stop_request(self, delivery: Delivery[StopRequest]) -> None:
        """Billing asks for a stop (operator, balance used up): the same path as a swipe."""
        request = delivery.body
        pile = self.piles.get(request.pile_id)
        if pile is None:
            log.warning("stop request for a pile not here", extra={"pile_id": request.pile_id})
            return
        if pile.flow.session_id == request.session_id:
            self._act(pile, pile.flow.stop_requested(request.reason))
            self.statuses.changed(request.pile_id)
            return
        if pile.flow.phase is not Phase.IDLE:
            log.warning(
                "stop request for another session than the pile's: ignored",
                extra={**_ids(pile.flow), "stop_session_id": request.session_id},
            )
            return
        # A session billing has and this collector does not (lost in a restart): the stop
        # still ends it, whatever the collector remembers.
        log.warning(
            "stop request for a session not charging here: checked out at the pile's meter",
            extra={"pile_id": request.pile_id, "session_id": request.session_id},
        )
        self._spawn(self._stop_unknown(pile, request))

    async def _stop_unknown(self, pile: Pile, request: StopRequest) -> None:
        await self._command(
            request.pile_id, ChargeCommand(charge="stop", session_id=request.session_id)
        )
        checkout = CheckoutRequest(
            session_id=request.session_id,
            pile_id=request.pile_id,
            meter_stop=pile.readings.energy,
            stop_reason=request.reason,
        )
        await self._checkout(checkout)

    async def _forward_meter(self, pile: Pile) -> None:
        readings = pile.readings
        if readings.energy is None:
            return
        reading = MeterReading(
            pile_id=pile.flow.pile_id,
            session_id=pile.flow.session_id,
            energy=readings.energy,
            power=readings.power,
            current=readings.current,
            charging=readings.charging,
            gun_plugged=readings.gun == "plugged" if readings.gun is not None else None,
        )
        with contextlib.suppress(BusUnavailable):
            # Telemetry (QoS 0 on its channel): billing prices from the readings it has; a
            # lost one is not a lost kWh.
            await self.bus.send(channels.PILE_METER, reading, pile=pile.flow.pile_id)

    # -- swipes and the kiosk ---------------------------------------------------------------

    def swipe(
        self, pile: Pile, card_uid: str, now: float, *, reader: bool = True
    ) -> Coroutine[Any, Any, Outcome]:
        """A card at the pile: decided now (in message order), carried out by the work
        returned, which says what came of it.

        ``reader``: the pile's own card reader (which repeats itself), not the kiosk. A pile
        with no charge under way that may not charge (in maintenance, out of service)
        refuses the card at once, with the reason on its display.
        """
        flow = pile.flow
        refusal = self._idle_refusal(flow.pile_id) if flow.phase is Phase.IDLE else None
        if refusal is not None:
            self.metrics.swipes.labels(self.charger, refusal.value).inc()
            log.info(
                "swipe refused",
                extra={"pile_id": flow.pile_id, "card_uid": card_uid, "reason": refusal.value},
            )
            return self._refuse(flow.pile_id, refusal)
        decision = flow.swiped(card_uid, now, reader=reader)
        self.metrics.swipes.labels(self.charger, swipe_outcome(decision)).inc()
        if decision is None:
            return done(_repeated(flow, card_uid))
        return self._decide(pile, decision)

    def _idle_refusal(self, pile_id: str) -> KioskRefusal | None:
        """Why a pile with no charge under way may not start one, if it may not."""
        if pile_id in self.retiring:
            return KioskRefusal.OUT_OF_SERVICE
        if self.maintenance.active(pile_id):
            return KioskRefusal.MAINTENANCE
        if self.out_of_service(pile_id):
            return KioskRefusal.OUT_OF_SERVICE
        return None

    async def _refuse(self, pile_id: str, refusal: KioskRefusal) -> Outcome:
        if refusal is KioskRefusal.MAINTENANCE:
            await self._show(pile_id, display.refused_in_maintenance())
        else:
            await self._show(
                pile_id, display.out_of_service(sorted(self.board.active_codes(pile_id)))
            )
        return Outcome.refused(refusal)

    async def on_kiosk(self, delivery: Delivery[KioskRequest]) -> None:
        """A card at the console's kiosk for one of this charger's piles: a swipe there.

        Decided now, in order with the piles' own messages; answered once the outcome is
        known (a start: after verification and billing), from a task, since the answers
        of verification and billing come through this same message loop.
        """
        if delivery.incoming.response_topic is None:
            # Nobody could be told what came of it: a driver would not know a charge began.
            self.bus.drop(delivery, NO_RESPONSE_TOPIC, channels.KIOSK.name)
            return
        self._spawn(self._answer_kiosk(delivery, self.kiosk(delivery.body)))

    def kiosk(self, request: KioskRequest) -> Coroutine[Any, Any, Outcome]:
        """What a kiosk request comes to: a swipe at the pile, unless its intent cannot be
        (a stop with no session of the card's, a start of a card already charging there)."""
        pile = self.piles.get(request.pile_id)
        if pile is None:
            return done(Outcome.refused(KioskRefusal.OUT_OF_SERVICE))
        refusal = _intent_refusal(pile.flow, request)
        if refusal is not None:
            return done(Outcome.refused(refusal))
        work = self.swipe(pile, request.card_uid, time.monotonic(), reader=False)
        self.statuses.changed(request.pile_id)
        return work

    async def _answer_kiosk(
        self, delivery: Delivery[KioskRequest], work: Coroutine[Any, Any, Outcome]
    ) -> None:
        request = delivery.body
        outcome = await work
        reason = outcome.reason.value if outcome.reason is not None else ""
        self.metrics.kiosk.labels(self.charger, outcome.outcome.value, reason).inc()
        log.info(
            "kiosk request",
            extra={
                "pile_id": request.pile_id,
                "card_uid": request.card_uid,
                "session_id": outcome.session_id,
                "intent": request.intent.value,
                "outcome": outcome.outcome.value,
                "reason": reason,
            },
        )
        reply = KioskReply(
            pile_id=request.pile_id,
            card_uid=request.card_uid,
            intent=request.intent,
            outcome=outcome.outcome,
            reason=outcome.reason,
            session_id=outcome.session_id,
        )
        try:
            await self.bus.answer(channels.KIOSK, delivery, reply)
        except BusUnavailable:
            log.warning("broker unavailable, kiosk answer lost", extra={"pile_id": request.pile_id})

    # -- decisions ------------------------------------------------------------------------

    def _act(self, pile: Pile, decision: Decision) -> None:
        """Carry out a decision nobody waits to hear the outcome of (a plug, a stop)."""
        if decision is not None:
            self._spawn(self._decide(pile, decision))

    def _decide(
        self, pile: Pile, decision: Verify | Stop | Busy | Prompt
    ) -> Coroutine[Any, Any, Outcome]:
        pile_id = pile.flow.pile_id
        match decision:
            case Verify(session_id=session_id, card_uid=card_uid):
                refusal = self._idle_refusal(pile_id)
                if refusal is None:
                    return self._start(pile, session_id, card_uid)
                pile.flow.start_failed(time.monotonic())
                log.warning(
                    "pile may not charge, charge not started",
                    extra={
                        "pile_id": pile_id,
                        "card_uid": card_uid,
                        "reason": refusal.value,
                        "faults": sorted(self.board.active_codes(pile_id)),
                    },
                )
                return self._refuse(pile_id, refusal)
            case Stop(session_id=session_id, reason=reason):
                self._spawn(self._stop(pile, session_id, reason))
                return done(Outcome(KioskOutcome.STOPPING, session_id=session_id))
            case Busy():
                return self._showing(pile_id, display.busy(), Outcome.refused(KioskRefusal.BUSY))
            case Prompt(waiting_for=what):
                return self._showing(
                    pile_id, self._prompt(pile, what), Outcome(KioskOutcome.WAITING_FOR_GUN)
                )

    def _prompt(self, pile: Pile, what: str) -> Display:
        """The prompt for the other half of a start, with the price; a pile in maintenance
        says so instead of asking for a card."""
        pile_id = pile.flow.pile_id
        if self.maintenance.active(pile_id):
            return display.maintenance()
        tariff = self.tariffs.get(pile_id)
        return display.waiting_for(what, pile.flow.window, tariff.lines if tariff else [])

    async def _showing(self, pile_id: str, screen: Display, outcome: Outcome) -> Outcome:
        await self._show(pile_id, screen)
        return outcome

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        self._trips.spawn(work)

    async def _start(self, pile: Pile, session_id: str, card_uid: str) -> Outcome:
        """Verify, open the session, then start the pile; what came of it."""
        outcome = await self._try_start(pile, session_id, card_uid)
        self.statuses.changed(pile.flow.pile_id)
        self._retire_if_done(pile)
        return outcome

    async def _try_start(self, pile: Pile, session_id: str, card_uid: str) -> Outcome:
        pile_id = pile.flow.pile_id
        context = {"pile_id": pile_id, "session_id": session_id, "card_uid": card_uid}
        await self._show(pile_id, display.verifying())
        reply = await self._verify(pile_id, session_id, card_uid)
        result = reply.result.value if reply is not None else "timeout"
        self.metrics.verifications.labels(self.charger, result).inc()
        if result != VerificationResult.ACCEPTED:
            log.info("card refused", extra={**context, "result": result})
            pile.flow.start_failed(time.monotonic())
            refusal = (
                display.refused(reply.result)
                if reply is not None
                else display.unavailable("Verification")
            )
            await self._show(pile_id, refusal)
            return Outcome.card_refused(reply.result if reply is not None else None)
        if pile.flow.session_id != session_id or not pile.flow.gun_plugged:
            log.info("gun unplugged during verification", extra=context)
            pile.flow.start_failed(time.monotonic())
            await self._release(pile_id, session_id, card_uid)
            return Outcome.refused(KioskRefusal.NOT_STARTED)
        if pile_id in self.retiring:
            log.info("pile removed during verification, charge not started", extra=context)
            pile.flow.start_failed(time.monotonic())
            await self._release(pile_id, session_id, card_uid)
            await self._show(pile_id, display.out_of_service([]))
            return Outcome.refused(KioskRefusal.OUT_OF_SERVICE)
        assert reply is not None
        if not await self._open_session(pile, session_id, card_uid, reply.balance):
            pile.flow.start_failed(time.monotonic())
            await self._release(pile_id, session_id, card_uid)
            await self._show(pile_id, display.unavailable("Billing"))
            return Outcome.refused(KioskRefusal.BILLING_UNAVAILABLE)
        command = ChargeCommand(
            charge="start", session_id=session_id, max_current=self.settings.max_current
        )
        pending = pile.flow.started()
        self.metrics.sessions_started.labels(self.charger).inc()
        log.info("charge started", extra=context)
        await self._command(pile_id, command)
        await self._show(pile_id, display.charging())
        if pending is not None:
            log.info("stop asked for while starting: stopping now", extra=context)
            self._act(pile, pending)
        return Outcome(KioskOutcome.STARTED, session_id=session_id)

    async def _release(self, pile_id: str, session_id: str, card_uid: str) -> None:
        """The card was accepted but its charge will not start: let verification free it."""
        withdrawal = AuthorizationWithdrawal(
            session_id=session_id, pile_id=pile_id, card_uid=card_uid
        )
        try:
            await self.bus.send(channels.WITHDRAWAL, withdrawal)
        except BusUnavailable:
            log.warning(
                "broker unavailable: the card is freed when its hold lapses",
                extra={"pile_id": pile_id, "session_id": session_id, "card_uid": card_uid},
            )

    async def _verify(
        self, pile_id: str, session_id: str, card_uid: str
    ) -> VerificationReply | None:
        request = VerificationRequest(session_id=session_id, pile_id=pile_id, card_uid=card_uid)
        return await self.bus.ask(
            channels.VERIFICATION,
            request,
            timeout=self.settings.request_timeout,
            answers=lambda reply: (reply.session_id, reply.card_uid) == (session_id, card_uid),
        )

    async def _open_session(
        self, pile: Pile, session_id: str, card_uid: str, balance: Decimal | None
    ) -> bool:
        """Billing opens the session; the balance lets it stop the charge when it runs out."""
        meter = pile.readings.energy
        if meter is None:
            log.warning("no meter reading yet, cannot bill", extra={"pile_id": pile.flow.pile_id})
            return False
        request = SessionOpenRequest(
            session_id=session_id,
            pile_id=pile.flow.pile_id,
            card_uid=card_uid,
            meter_start=meter,
            balance=balance,
        )
        reply = await self.bus.ask(
            channels.SESSION_OPEN,
            request,
            timeout=self.settings.request_timeout,
            answers=lambda reply: reply.session_id == session_id,
        )
        if reply is not None and not reply.opened and await self._free_pile(pile, session_id):
            # Billing held the pile for a session this collector had lost; it is closed now.
            reply = await self.bus.ask(
                channels.SESSION_OPEN,
                request,
                timeout=self.settings.request_timeout,
                answers=lambda reply: reply.session_id == session_id,
            )
        if reply is None:
            # Billing may have stored the session and lost its answer (killed right after,
            # the broker restarting): unless withdrawn, it would hold the pile busy for ever.
            self._spawn(self._withdraw(request))
            return False
        if reply.opened:
            pile.meter_start = meter
        return reply.opened

    async def _withdraw(self, opening: SessionOpenRequest) -> None:
        """Check out a session whose opening went unanswered, at its opening meter reading.

        The pile was never told to charge, so the session delivered nothing: billing either
        never heard of it (``unknown session``) or closes it with a record of no energy.
        Sent right after the unanswered open, so billing, which takes requests in order,
        sees it after that open and before any later one for the pile.
        """
        request = CheckoutRequest(
            session_id=opening.session_id,
            pile_id=opening.pile_id,
            meter_stop=opening.meter_start,
            stop_reason=StopReason.START_FAILED,
        )
        reply = await self._checkout(request)
        log.info(
            "unanswered session opening withdrawn",
            extra={
                "pile_id": opening.pile_id,
                "session_id": opening.session_id,
                "card_uid": opening.card_uid,
                "billed": reply.ok,
            },
        )

    async def _stop(self, pile: Pile, session_id: str, reason: StopReason) -> None:
        pile_id = pile.flow.pile_id
        context = {"pile_id": pile_id, "session_id": session_id, "stop_reason": reason}
        await self._command(pile_id, ChargeCommand(charge="stop", session_id=session_id))
        await self._show(pile_id, display.finishing())
        await pile.readings.wait_not_charging(self.settings.stop_settle)
        request = CheckoutRequest(
            session_id=session_id,
            pile_id=pile_id,
            meter_stop=pile.readings.energy,
            stop_reason=reason,
        )
        reply = await self._checkout(request)
        pile.flow.checked_out()
        pile.meter_start = None
        self.statuses.changed(pile_id)
        self._retire_if_done(pile)
        self.metrics.sessions_stopped.labels(self.charger, reason).inc()
        log.info("session checked out", extra=context)
        if reply.receipt is not None:
            await self._show(pile_id, Display(lines=reply.receipt.lines, qr=reply.receipt.qr))
        else:
            await self._show(pile_id, Display(lines=["Charge ended", reply.error or ""]))

    async def _checkout(self, request: CheckoutRequest) -> CheckoutReply:
        """Until billing has the record; checkout is idempotent by session id, so retry freely."""
        delay = 0.5
        while True:
            reply = await self.bus.ask(
                channels.CHECKOUT,
                request,
                timeout=self.settings.request_timeout,
                answers=lambda reply: reply.session_id == request.session_id,
            )
            if reply is not None:
                return reply
            await asyncio.sleep(delay)
            delay = min(delay * 2, CHECKOUT_RETRY_MAX)

    async def _command(self, pile_id: str, command: ChargeCommand) -> None:
        await self._publish_to_pile(pile_id, command)

    async def _show(self, pile_id: str, screen: Display) -> None:
        await self._publish_to_pile(pile_id, DisplayCommand(display=screen))

    async def _publish_to_pile(self, pile_id: str, command: PileCommand) -> None:
        try:
            # QoS 1: a charge command or a screen must arrive (a lost breath, QoS 0, is
            # itself what the watch measures).
            await self.bus.send(self.zigbee.pile_set, command, qos=1, pile=pile_id)
        except BusUnavailable:
            log.warning("broker unavailable, pile command lost", extra={"pile_id": pile_id})


def _busy(pile: Pile) -> bool:
    """A session runs on the pile (or is being started, stopped or asked billing about):
    removed now, it would be lost."""
    return pile.flow.phase is not Phase.IDLE or pile.reconciling


def _session_energy(pile: Pile) -> Decimal | None:
    """kWh delivered in the running session: the meter now less its opening reading."""
    energy, start = pile.readings.energy, pile.meter_start
    if energy is None or start is None:
        return None
    return max(energy - start, Decimal(0))


def _intent_refusal(flow: PileFlow, request: KioskRequest) -> KioskRefusal | None:
    """Why a kiosk request cannot be the swipe it would be: a stop with no session of the
    card's on the pile, or a start of the card already charging there (a swipe would stop
    it). Anything else is decided by the swipe itself."""
    under_way = flow.phase is not Phase.IDLE
    ours = under_way and flow.card_uid == request.card_uid
    if request.intent is KioskIntent.STOP:
        if not under_way:
            return KioskRefusal.NO_SESSION
        return None if ours else KioskRefusal.BUSY
    if ours and flow.phase is Phase.CHARGING:
        return KioskRefusal.ALREADY_CHARGING
    return None


def _repeated(flow: PileFlow, card_uid: str) -> Outcome:
    """What a swipe that changed nothing comes to: the card's own start or stop already
    under way, or the reader repeating a card still waiting for the gun."""
    if flow.card_uid == card_uid and flow.phase is Phase.STOPPING:
        return Outcome(KioskOutcome.STOPPING, session_id=flow.session_id)
    if flow.card_uid == card_uid and flow.phase is Phase.CHARGING:
        return Outcome(KioskOutcome.STARTED, session_id=flow.session_id)
    if flow.phase is Phase.IDLE:
        return Outcome(KioskOutcome.WAITING_FOR_GUN)
    return Outcome.refused(KioskRefusal.BUSY)


def _ids(flow: PileFlow) -> dict[str, str | None]:
    return {"pile_id": flow.pile_id, "session_id": flow.session_id, "card_uid": flow.card_uid}


def swipe_outcome(decision: Decision) -> str:
    """What a swipe came to, for ``station_collector_swipes``: every swipe is counted once."""
    match decision:
        case Verify():
            return "verify"
        case Stop():
            return "stop"
        case Busy():
            return "busy"
        case Prompt():
            return "waiting_for_gun"
        case _:
            return "repeated"
