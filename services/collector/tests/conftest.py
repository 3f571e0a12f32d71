"""The collector under test, against a real broker: the ``rig`` fixture.

The collector app runs its real lifespan (bus connected to the test run's mosquitto, breath
loop running) with small timings. The test plays the rest of the station over the broker:
Zigbee2MQTT and its piles (a bridge that says it is online, piles that answer every breath,
report their gun, card reader and meter, and keep what they are told to do and show), and
verification and billing (answering requests with ``bus.serve``), the faults service's
reading of the collector's fault reports, and the console (statuses, maintenance, kiosk and
its word on the station's piles). Assertions are on what leaves the collector: the commands
and screens a pile receives, the requests the station services get, the fault reports and
statuses on the broker, and the collector's ``/metrics``.

Each test has a charger of its own, so that retained messages (the bridge state, the
collector's fault reports) from one test never reach another on the shared broker; they are
deleted when it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from station_collector.core.config import Settings
from station_collector.main import create_app
from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import pile_id
from station_protocol.messages import (
    AuthorizationWithdrawal,
    BreathAck,
    CheckoutReply,
    CheckoutRequest,
    CollectorBreath,
    FaultReport,
    KioskIntent,
    KioskReply,
    KioskRequest,
    MeterReading,
    PileBoardState,
    PileMaintenance,
    PileSession,
    PileStatus,
    Receipt,
    SessionAnswer,
    SessionOpenReply,
    SessionOpenRequest,
    SessionQuery,
    SessionStatus,
    StationPiles,
    VerificationReply,
    VerificationRequest,
    VerificationResult,
)
from station_protocol.ocpi import Price
from station_protocol.zigbee import (
    BreathCommand,
    BridgeState,
    ChargeCommand,
    Display,
    DisplayCommand,
    OnlineState,
    PileAction,
    PileCommand,
    PileState,
)
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Cleared, Delivery, Incoming
from station_tools.mosquitto import Mosquitto

T1 = 0.1
PILES = 2
GOOD_CARD = "CARD-GOOD"
OTHER_CARD = "CARD-OTHER"
"""Another driver's card, as good as the first."""
UNKNOWN_CARD = "CARD-STRANGER"
BALANCE = Decimal("20.00")
START_METER = Decimal("12.5")
SMALL_PILE_KW = Decimal(22)

_chargers = itertools.count(100)


def new_charger() -> tuple[int, str]:
    index = next(_chargers)
    return index, f"c{index}"


def plain_bus(broker: Mosquitto, name: str) -> Bus:
    """A bus client of the test's own, in the seat of another part of the station.

    Its retained status goes under ``test/``, where no station service looks for services.
    """
    client_id = f"{name}-{uuid.uuid4().hex[:8]}"
    options = BusOptions(
        BrokerAddress.parse(broker.url),
        client_id=client_id,
        service=name,
        status_topic=f"test/{client_id}/status",
    )
    return Bus(options)


# -- Zigbee2MQTT and the piles ------------------------------------------------------------


@dataclass
class Pile:
    """One pile as the collector reaches it: what it was told, what it shows, its meter."""

    energy: Decimal = START_METER
    charging: bool = False
    breaths: list[int] = field(default_factory=list)
    """The breath frames the pile was sent, in order."""
    commands: list[ChargeCommand] = field(default_factory=list)
    screens: list[Display] = field(default_factory=list)

    @property
    def shown(self) -> list[str]:
        return self.screens[-1].lines if self.screens else []


@dataclass
class Zigbee:
    """A charger's Zigbee2MQTT with its piles, over the broker as the real ones are."""

    bus: Bus
    zigbee: ZigbeeChannels
    events: list[str]
    piles: dict[str, Pile] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    """Piles whose breath answers are lost (a radio link gone, a bridge down)."""

    def register(self) -> None:
        self.bus.subscribe(self.zigbee.pile_set, self.on_set)

    def pile(self, pile: str) -> Pile:
        return self.piles.setdefault(pile, Pile())

    async def on_set(self, delivery: Delivery[PileCommand]) -> None:
        pile_id = delivery.params["pile"]
        pile = self.pile(pile_id)
        match delivery.body:
            case BreathCommand(breath=seq):
                pile.breaths.append(seq)
                if pile_id not in self.silent:
                    await self.report(pile_id, breath_ack=seq)
            case ChargeCommand() as command:
                self.events.append(f"charge {command.charge}")
                pile.commands.append(command)
                # As a pile does: start or stop metering, and say so with its meter reading.
                pile.charging = command.charge == "start"
                await self.report(pile_id, charging=pile.charging, energy=pile.energy)
            case DisplayCommand(display=screen):
                pile.screens.append(screen)

    async def bridge_online(self) -> None:
        await self.bus.send(self.zigbee.bridge_state, BridgeState(state=OnlineState.ONLINE))

    async def report(self, pile: str, **fields: Any) -> None:
        """A pile state message, any subset of its fields."""
        await self.bus.send(self.zigbee.pile_state, PileState(**fields), pile=pile)

    async def raw(self, pile: str, payload: bytes) -> None:
        """Whatever a broken or hostile client publishes on a pile's state topic."""
        await self.bus.publish(f"{self.zigbee.base}/{pile}", payload, qos=0)

    async def plug(self, pile: str) -> None:
        await self.report(pile, gun="plugged", energy=self.pile(pile).energy)

    async def swipe(self, pile: str, card_uid: str) -> None:
        await self.report(pile, action=PileAction.CARD_SWIPE, card_uid=card_uid)

    async def meter(self, pile: str, energy: Decimal) -> None:
        device = self.pile(pile)
        device.energy = energy
        await self.report(
            pile, energy=energy, power=Decimal("7.2"), current=Decimal("32"), charging=True
        )


# -- verification and billing --------------------------------------------------------------


@dataclass
class Station:
    """Verification, billing and the faults service's breath answers, as the collector asks."""

    bus: Bus
    events: list[str]
    verifications: list[VerificationRequest] = field(default_factory=list)
    openings: list[SessionOpenRequest] = field(default_factory=list)
    checkouts: list[CheckoutRequest] = field(default_factory=list)
    meters: list[MeterReading] = field(default_factory=list)
    withdrawals: list[AuthorizationWithdrawal] = field(default_factory=list)
    refuse_openings: bool = False
    open_delay: float = 0.0
    """Seconds billing takes to answer an opening it has made (a stop may come meanwhile)."""

    def register(self) -> None:
        self.bus.serve(channels.VERIFICATION, self.verify)
        self.bus.serve(channels.SESSION_OPEN, self.open)
        self.bus.serve(channels.CHECKOUT, self.checkout)
        self.bus.serve(channels.COLLECTOR_BREATH, self.breath)
        self.bus.serve(channels.SESSION_QUERY, self.query)
        self.bus.subscribe(channels.WITHDRAWAL, self.withdrawal)
        self.bus.subscribe(channels.PILE_METER, self.meter)

    async def verify(self, delivery: Delivery[VerificationRequest]) -> VerificationReply:
        request = delivery.body
        self.events.append("verify")
        self.verifications.append(request)
        known = request.card_uid in (GOOD_CARD, OTHER_CARD)
        return VerificationReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=VerificationResult.ACCEPTED if known else VerificationResult.UNKNOWN,
            balance=BALANCE if known else None,
        )

    async def open(self, delivery: Delivery[SessionOpenRequest]) -> SessionOpenReply:
        self.events.append("open")
        if self.refuse_openings:
            return SessionOpenReply(session_id=delivery.body.session_id, opened=False)
        self.openings.append(delivery.body)
        await asyncio.sleep(self.open_delay)
        return SessionOpenReply(session_id=delivery.body.session_id, opened=True)

    async def withdrawal(self, delivery: Delivery[AuthorizationWithdrawal]) -> None:
        self.withdrawals.append(delivery.body)

    async def checkout(self, delivery: Delivery[CheckoutRequest]) -> CheckoutReply:
        request = delivery.body
        self.events.append("checkout")
        self.checkouts.append(request)
        openings = [o for o in self.openings if o.session_id == request.session_id]
        if not openings:
            return CheckoutReply(session_id=request.session_id, ok=False, error="unknown session")
        [opening] = openings
        energy = (request.meter_stop or opening.meter_start) - opening.meter_start
        now = datetime.now(UTC)
        receipt = Receipt(
            session_id=request.session_id,
            pile_id=request.pile_id,
            card_uid=opening.card_uid,
            started_at=now,
            stopped_at=now,
            total_energy=energy,
            total_cost=Price(excl_vat=Decimal("1.00"), incl_vat=Decimal("1.10")),
            currency="EUR",
            lines=["Thank you", f"{energy} kWh", "EUR 1.10"],
            qr=f"https://receipts.example/{request.session_id}",
        )
        return CheckoutReply(session_id=request.session_id, ok=True, receipt=receipt)

    async def query(self, delivery: Delivery[SessionQuery]) -> SessionAnswer:
        """Billing's word on a pile: its last opening, completed once checked out."""
        self.events.append("query")
        on_pile = [o for o in self.openings if o.pile_id == delivery.body.pile_id]
        if not on_pile:
            return SessionAnswer(session=None)
        last = on_pile[-1]
        done = any(c.session_id == last.session_id for c in self.checkouts)
        session = PileSession(
            session_id=last.session_id,
            pile_id=last.pile_id,
            card_uid=last.card_uid,
            status=SessionStatus.COMPLETED if done else SessionStatus.ACTIVE,
            started_at=datetime.now(UTC),
        )
        return SessionAnswer(session=session)

    async def breath(self, delivery: Delivery[CollectorBreath]) -> BreathAck:
        return BreathAck(charger=delivery.body.charger, seq=delivery.body.seq)

    async def meter(self, delivery: Delivery[MeterReading]) -> None:
        self.meters.append(delivery.body)


# -- the faults service -------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """One fault report as the faults service reads it; ``active`` None: the report deleted."""

    source: str
    code: str
    active: bool | None


@dataclass
class Faults:
    """The faults service's side: every fault report of the charger's collector, in order."""

    bus: Bus
    charger: str
    reports: list[Said] = field(default_factory=list)

    def register(self) -> None:
        self.bus.subscribe(
            channels.COLLECTOR_FAULT,
            self.on_report,
            only={"charger": self.charger},
            on_clear=self.on_deleted,
        )

    async def on_report(self, delivery: Delivery[FaultReport]) -> None:
        report = delivery.body
        self.reports.append(Said(report.source, report.code, report.active))

    async def on_deleted(self, cleared: Cleared) -> None:
        self.reports.append(Said(cleared.params["source"], cleared.params["code"], None))

    def of(self, source: str) -> list[Said]:
        return [said for said in self.reports if said.source == source]

    def active(self, source: str) -> set[str]:
        """The codes the faults service holds active for ``source`` after what it read."""
        codes: set[str] = set()
        for said in self.of(source):
            if said.active:
                codes.add(said.code)
            else:
                codes.discard(said.code)
        return codes


# -- the console -------------------------------------------------------------------------


@dataclass
class Console:
    """The console's side of the bus: the piles' statuses it reads, its maintenance word
    and its kiosk requests."""

    bus: Bus
    charger: str
    statuses: list[PileStatus] = field(default_factory=list)
    """Every status of this charger's piles, in the order they arrived."""

    def register(self) -> None:
        self.bus.subscribe(channels.PILE_STATUS, self.on_status)

    async def on_status(self, delivery: Delivery[PileStatus]) -> None:
        if delivery.body.charger == self.charger:
            self.statuses.append(delivery.body)

    def of(self, pile: str) -> list[PileStatus]:
        return [status for status in self.statuses if status.pile_id == pile]

    def last(self, pile: str) -> PileStatus | None:
        mine = self.of(pile)
        return mine[-1] if mine else None

    def shows(self, pile: str, state: PileBoardState) -> bool:
        last = self.last(pile)
        return last is not None and last.state is state

    async def kiosk(self, pile: str, card_uid: str, intent: KioskIntent) -> KioskReply:
        request = KioskRequest(pile_id=pile, card_uid=card_uid, intent=intent)
        reply = await self.bus.ask(channels.KIOSK, request, timeout=10, charger=self.charger)
        assert reply is not None, "the collector did not answer the kiosk"
        return reply

    async def maintenance(self, pile: str, active: bool, reason: str = "") -> None:
        word = PileMaintenance(pile_id=pile, active=active, reason=reason, since=datetime.now(UTC))
        await self.bus.send(channels.PILE_MAINTENANCE, word, pile=pile)

    async def delete_maintenance(self, pile: str) -> None:
        await self.bus.clear(channels.PILE_MAINTENANCE, pile=pile)

    async def pile_set(self, piles: list[str], revision: int) -> None:
        """The console's word on the charger's piles, as after an approval or a
        decommissioning. Not retained here: the broker outlives the test, and the next
        test's collector (another charger) must start from its configured piles."""
        word = StationPiles(
            chargers={self.charger: piles}, revision=revision, changed_at=datetime.now(UTC)
        )
        await self.bus.publish(channels.STATION_PILES.topic(), word, qos=1)


# -- the collector, running ----------------------------------------------------------------


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds; the deadline is a safety net, not a speed target."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        holds = result if isinstance(result, bool) else await result
        if holds:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    charger: str
    piles: list[str]
    http: httpx.AsyncClient
    zigbee: Zigbee
    station: Station
    events: list[str]
    console: Console
    faults: Faults
    good_card: str = GOOD_CARD
    other_card: str = OTHER_CARD
    unknown_card: str = UNKNOWN_CARD
    start_meter: Decimal = START_METER
    balance: Decimal = BALANCE
    broker: Mosquitto | None = None

    async def eventually(
        self, check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0
    ) -> None:
        """Poll ``check`` until it holds (see :func:`eventually`)."""
        await eventually(check, timeout)

    async def up(self, pile: str) -> bool:
        return bool((await self.pile_view(pile))["up"])

    async def down(self, pile: str) -> bool:
        return not await self.up(pile)

    async def metric(self, name: str, **labels: str) -> float:
        """A sample from the collector's ``/metrics`` as Prometheus scrapes it (0 if absent)."""
        text = (await self.http.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    async def retained(self, *filters: str) -> set[str]:
        """The topics under ``filters`` the broker retains a message on now."""
        assert self.broker is not None
        return await retained(self.broker, *filters)

    async def strangers(self) -> float:
        return await self.metric("station_collector_stranger_messages_total", charger=self.charger)

    async def dropped(self, kind: str) -> float:
        return await self.metric(
            "station_collector_dropped_messages_total", charger=self.charger, kind=kind
        )

    async def pile_view(self, pile: str) -> dict[str, Any]:
        answer = await self.http.get(f"/api/v1/piles/{pile}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    async def start_charge(self, pile: str) -> ChargeCommand:
        """Plug and swipe the good card; the pile's start command once it has come."""
        device = self.zigbee.pile(pile)
        await self.zigbee.plug(pile)
        await eventually(lambda: "Gun connected" in device.shown)
        await self.zigbee.swipe(pile, GOOD_CARD)
        await eventually(lambda: bool(device.commands) and device.shown[0] == "Charging")
        [command] = device.commands
        return command


@asynccontextmanager
async def running_collector(broker: Mosquitto, **overrides: Any) -> AsyncIterator[Rig]:
    """``overrides``: collector settings other than the rig's (a short ``startup_grace``)."""
    index, charger = new_charger()
    piles = [pile_id(index, j) for j in range(1, PILES + 1)]
    events: list[str] = []
    zigbee = Zigbee(
        plain_bus(broker, f"z2m-{charger}"), ZigbeeChannels.for_charger(charger), events
    )
    station = Station(plain_bus(broker, "station"), events)
    console = Console(plain_bus(broker, "console"), charger)
    faults = Faults(plain_bus(broker, "faults"), charger)
    zigbee.register()
    station.register()
    console.register()
    faults.register()
    settings = Settings(
        broker=broker.url,
        charger=charger,
        piles=PILES,
        t1=T1,
        misses=3,
        repeat_window=0.0,
        stop_settle=2.0,
        request_timeout=2.0,
        # The tests' meters jump by a quarter kWh at once; the second pile is a 22 kW one.
        rated_power=Decimal(10_000),
        pile_rated_powers={piles[1]: SMALL_PILE_KW},
        **overrides,
    )
    async with zigbee.bus, station.bus, console.bus, faults.bus:
        await zigbee.bus.wait_connected(5)
        await station.bus.wait_connected(5)
        await console.bus.wait_connected(5)
        await faults.bus.wait_connected(5)
        await zigbee.bridge_online()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await app.state.service.bus.wait_connected(5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
                rig = Rig(
                    charger, piles, http, zigbee, station, events, console, faults, broker=broker
                )
                for pile in piles:
                    await zigbee.report(pile, gun="unplugged", energy=START_METER, linkquality=120)
                for pile in piles:
                    await eventually(lambda pile=pile: rig.up(pile))
                yield rig
    root = channels.STATION_ROOT
    # Every pile of the charger's a test may have added (c<i>-p01 .. c<i>-p99 is too many).
    known = {*piles, *(pile_id(index, j) for j in range(1, 16))}
    ours = [f"{root}/piles/{pile}/#" for pile in sorted(known)]
    await clear_retained(broker, zigbee.zigbee.everything, f"{root}/collectors/{charger}/#", *ours)


async def retained(broker: Mosquitto, *filters: str) -> set[str]:
    """The topics under ``filters`` the broker retains a message on now."""
    bus = plain_bus(broker, "reader")
    found: set[str] = set()

    async def keep(message: Incoming) -> None:
        if message.retain and message.payload:
            found.add(message.topic)

    for topic_filter in filters:
        bus.add_route(topic_filter, keep)
    async with bus:
        await bus.wait_connected(5)
        await asyncio.sleep(0.3)  # the broker sends what it retains right after subscribing
    return found


async def clear_retained(broker: Mosquitto, *filters: str) -> None:
    """Delete what a test left retained under ``filters``: the broker outlives the test, and
    other tests (other services') read every collector's status and fault reports."""
    found = await retained(broker, *filters)
    if not found:
        return
    bus = plain_bus(broker, "cleaner")
    async with bus:
        await bus.wait_connected(5)
        for topic in found:
            await bus.publish(topic, b"", retain=True)


@pytest.fixture
async def rig(mosquitto: Mosquitto) -> AsyncIterator[Rig]:
    async with running_collector(mosquitto) as running:
        yield running


QUICK_GRACE = 1.5
"""The start-up grace of ``quick_rig`` (120 s by default): fifteen breath periods."""


@pytest.fixture
async def quick_rig(mosquitto: Mosquitto) -> AsyncIterator[Rig]:
    """A rig whose collector's start-up grace is ``QUICK_GRACE`` seconds."""
    async with running_collector(mosquitto, startup_grace=QUICK_GRACE) as running:
        yield running
