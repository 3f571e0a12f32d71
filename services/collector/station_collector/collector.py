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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from station_collector import display
from station_collector.conditions import Conditions
from station_collector.core.config import Settings
from station_collector.faults import FaultBoard
from station_collector.flow import Busy, Decision, Phase, PileFlow, Prompt, Stop, Verify
from station_collector.metrics import CollectorMetrics
from station_collector.readings import DropKind, PileReadings, drop_kind
from station_collector.watch import Watch
from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import pile_id
from station_protocol.messages import (
    CheckoutReply,
    CheckoutRequest,
    MeterReading,
    PileSession,
    SessionOpenRequest,
    SessionStatus,
    StopReason,
    StopRequest,
    TariffDisplay,
    VerificationReply,
    VerificationRequest,
    VerificationResult,
)
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
from station_runtime.tasks import cancel_until_done

log = logging.getLogger("station.collector")

CHECKOUT_RETRY_MAX = 5.0


@dataclass
class Pile:
    flow: PileFlow
    readings: PileReadings = field(default_factory=PileReadings)


@dataclass
class Collector:
    settings: Settings
    bus: Bus
    metrics: CollectorMetrics
    piles: dict[str, Pile] = field(default_factory=dict)
    _tasks: set[asyncio.Task[object]] = field(default_factory=set)
    tariffs: dict[str, TariffDisplay] = field(default_factory=dict)
    """The price in effect on each pile (billing's retained word), shown on plug."""

    def __post_init__(self) -> None:
        settings = self.settings
        index = int(settings.charger[1:])
        for j in range(1, settings.piles + 1):
            pile = pile_id(index, j)
            self.piles[pile] = Pile(PileFlow(pile, settings.pairing_window, settings.repeat_window))
        self.zigbee = ZigbeeChannels.for_charger(settings.charger, settings.zigbee_root)
        # The drops that are pile messages (this charger's Zigbee2MQTT), counted by kind.
        zigbee = self.zigbee
        self.pile_kinds = frozenset(
            channel.name
            for channel in (zigbee.pile_state, zigbee.pile_availability, zigbee.bridge_state)
        )
        self.board = FaultBoard(settings.charger, self.bus)
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

    async def start(self) -> None:
        """Begin breathing; the bus connects in the background and the watch waits for it."""
        self._spawn(self.watch.run())

    async def close(self) -> None:
        """Stop breathing and end every round trip under way, however they take it."""
        self.watch.close()
        await cancel_until_done(self._tasks)

    # -- incoming -------------------------------------------------------------------------

    def count_drop(self, dropped: Dropped) -> None:
        """The bus's sink: count a refused pile message under its existing ``kind`` label.

        Only this charger's Zigbee2MQTT messages are pile messages; a drop on a station
        channel (an unreadable session or stop request, a reply) is logged by the bus alone.
        """
        if dropped.kind in self.pile_kinds:
            kind = drop_kind(dropped, self.piles)
            self.metrics.dropped.labels(self.charger, kind.value).inc()

    async def on_pile_availability(self, delivery: Delivery[BridgeState]) -> None:
        pile_id = delivery.params["pile"]
        if pile_id not in self.piles:
            self.bus.drop(delivery, DropKind.UNKNOWN_PILE, self.zigbee.pile_availability.name)
            return
        self.watch.availability(pile_id, delivery.body.state is OnlineState.ONLINE)

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
        if state.breath_ack is not None:
            self.watch.acked(pile_id, state.breath_ack)
        previous_gun = pile.readings.gun
        refused = pile.readings.update(state)
        if state.action is PileAction.CARD_SWIPE and state.card_uid is None:
            refused.append(DropKind.SWIPE_WITHOUT_CARD)
        for kind in refused:
            self.bus.drop(delivery, kind, self.zigbee.pile_state.name)
        if state.linkquality is not None:
            self.metrics.linkquality.labels(self.charger, pile_id).set(state.linkquality)
        if state.energy is not None and DropKind.ENERGY_BACKWARDS not in refused:
            self._spawn(self._forward_meter(pile))
        now = time.monotonic()
        faulty_before = self.conditions.has_error(pile_id)
        await self.conditions.observe(pile_id, state, pile.readings, refused, now)
        faulty = self.conditions.has_error(pile_id)
        if faulty:
            self._decide(pile, pile.flow.stop_requested(StopReason.PILE_FAULT))
        if faulty != faulty_before:
            codes = sorted(self.board.active_codes(pile_id))
            screen = display.out_of_service(codes) if faulty else display.available()
            self._spawn(self._show(pile_id, screen))
        if state.gun is not None and state.gun != previous_gun:
            plugged = state.gun == "plugged"
            self._decide(pile, pile.flow.plugged(now) if plugged else pile.flow.unplugged(now))
        if state.action is PileAction.CARD_SWIPE and state.card_uid is not None:
            self._decide(pile, pile.flow.swiped(state.card_uid, now))

    def out_of_service(self, pile_id: str) -> bool:
        """A pile that reports an error or does not answer may not start a charge."""
        return self.conditions.has_error(pile_id) or not self.watch.is_up(pile_id)

    async def on_pile_session(self, delivery: Delivery[PileSession]) -> None:
        """Billing's retained word on a pile's session: resume after a restart, or end."""
        pile_id = delivery.params["pile"]
        pile = self.piles.get(pile_id)
        if pile is None:
            return  # another charger's pile
        session = delivery.body
        flow = pile.flow
        if session.status is SessionStatus.ACTIVE and flow.resume(
            session.session_id, session.card_uid
        ):
            log.info(
                "resumed session",
                extra={"pile_id": pile_id, "session_id": session.session_id},
            )
        elif (
            session.status is SessionStatus.COMPLETED
            and flow.session_id == session.session_id
            and flow.phase is Phase.CHARGING
        ):
            stop = ChargeCommand(charge="stop", session_id=session.session_id)
            self._spawn(self._command(flow.pile_id, stop))
            flow.checked_out()

    async def on_pile_tariff(self, delivery: Delivery[TariffDisplay]) -> None:
        pile_id = delivery.params["pile"]
        if pile_id in self.piles:
            self.tariffs[pile_id] = delivery.body

    async def on_stop_request(self, delivery: Delivery[StopRequest]) -> None:
        """Billing asks for a stop (operator, balance used up): the same path as a swipe."""
        request = delivery.body
        pile = self.piles.get(request.pile_id)
        if pile is None or pile.flow.session_id != request.session_id:
            log.warning(
                "stop request for a session not charging here",
                extra={"pile_id": request.pile_id, "session_id": request.session_id},
            )
            return
        self._decide(pile, pile.flow.stop_requested(request.reason))

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

    # -- decisions ------------------------------------------------------------------------

    def _decide(self, pile: Pile, decision: Decision) -> None:
        pile_id = pile.flow.pile_id
        match decision:
            case Verify(session_id=session_id, card_uid=card_uid):
                if self.out_of_service(pile_id):
                    pile.flow.start_failed(time.monotonic())
                    codes = sorted(self.board.active_codes(pile_id))
                    log.warning(
                        "pile out of service, charge not started",
                        extra={"pile_id": pile_id, "card_uid": card_uid, "faults": codes},
                    )
                    self._spawn(self._show(pile_id, display.out_of_service(codes)))
                else:
                    self._spawn(self._start(pile, session_id, card_uid))
            case Stop(session_id=session_id, reason=reason):
                self._spawn(self._stop(pile, session_id, reason))
            case Busy():
                self._spawn(self._show(pile_id, display.busy()))
            case Prompt(waiting_for=what):
                tariff = self.tariffs.get(pile_id)
                screen = display.waiting_for(
                    what, pile.flow.window, tariff.lines if tariff is not None else []
                )
                self._spawn(self._show(pile_id, screen))
            case None:
                pass

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("collector task failed", exc_info=task.exception())

    async def _start(self, pile: Pile, session_id: str, card_uid: str) -> None:
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
            return
        if pile.flow.session_id != session_id or not pile.flow.gun_plugged:
            log.info("gun unplugged during verification", extra=context)
            pile.flow.start_failed(time.monotonic())
            return
        assert reply is not None
        if not await self._open_session(pile, session_id, card_uid, reply.balance):
            pile.flow.start_failed(time.monotonic())
            await self._show(pile_id, display.unavailable("Billing"))
            return
        command = ChargeCommand(
            charge="start", session_id=session_id, max_current=self.settings.max_current
        )
        pile.flow.started()
        self.metrics.sessions_started.labels(self.charger).inc()
        log.info("charge started", extra=context)
        await self._command(pile_id, command)
        await self._show(pile_id, display.charging())

    async def _verify(
        self, pile_id: str, session_id: str, card_uid: str
    ) -> VerificationReply | None:
        request = VerificationRequest(session_id=session_id, pile_id=pile_id, card_uid=card_uid)
        return await self.bus.ask(
            channels.VERIFICATION, request, timeout=self.settings.request_timeout
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
            channels.SESSION_OPEN, request, timeout=self.settings.request_timeout
        )
        if reply is None:
            # Billing may have stored the session and lost its answer (killed right after,
            # the broker restarting): unless withdrawn, it would hold the pile busy for ever.
            self._spawn(self._withdraw(request))
            return False
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
                channels.CHECKOUT, request, timeout=self.settings.request_timeout
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
