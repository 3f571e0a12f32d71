"""The collector's I/O shell against a real broker: what a driver, a pile and billing see.

The collector app runs its real lifespan (bus connected to the test run's mosquitto, breath
loop running) with small timings. The test plays the rest of the station over the broker:
Zigbee2MQTT and its piles (a bridge that says it is online, piles that answer every breath,
report their gun, card reader and meter, and keep what they are told to do and show), and
verification and billing (answering requests with ``bus.serve``). Assertions are on what
leaves the collector: the commands and screens a pile receives, the requests the station
services get, and the collector's ``/metrics``.

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
    BreathAck,
    CheckoutReply,
    CheckoutRequest,
    CollectorBreath,
    MeterReading,
    Receipt,
    SessionOpenReply,
    SessionOpenRequest,
    StopReason,
    StopRequest,
    VerificationReply,
    VerificationRequest,
    VerificationResult,
)
from station_protocol.ocpi import Price
from station_protocol.zigbee import (
    MAX_PAYLOAD_BYTES,
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
from station_runtime.deliveries import Delivery, Incoming
from station_tools.mosquitto import Mosquitto

T1 = 0.1
PILES = 2
GOOD_CARD = "CARD-GOOD"
UNKNOWN_CARD = "CARD-STRANGER"
BALANCE = Decimal("20.00")
START_METER = Decimal("12.5")

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

    def register(self) -> None:
        self.bus.serve(channels.VERIFICATION, self.verify)
        self.bus.serve(channels.SESSION_OPEN, self.open)
        self.bus.serve(channels.CHECKOUT, self.checkout)
        self.bus.serve(channels.COLLECTOR_BREATH, self.breath)
        self.bus.subscribe(channels.PILE_METER, self.meter)

    async def verify(self, delivery: Delivery[VerificationRequest]) -> VerificationReply:
        request = delivery.body
        self.events.append("verify")
        self.verifications.append(request)
        known = request.card_uid == GOOD_CARD
        return VerificationReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=VerificationResult.ACCEPTED if known else VerificationResult.UNKNOWN,
            balance=BALANCE if known else None,
        )

    async def open(self, delivery: Delivery[SessionOpenRequest]) -> SessionOpenReply:
        self.events.append("open")
        self.openings.append(delivery.body)
        return SessionOpenReply(session_id=delivery.body.session_id, opened=True)

    async def checkout(self, delivery: Delivery[CheckoutRequest]) -> CheckoutReply:
        request = delivery.body
        self.events.append("checkout")
        self.checkouts.append(request)
        [opening] = [o for o in self.openings if o.session_id == request.session_id]
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

    async def breath(self, delivery: Delivery[CollectorBreath]) -> BreathAck:
        return BreathAck(charger=delivery.body.charger, seq=delivery.body.seq)

    async def meter(self, delivery: Delivery[MeterReading]) -> None:
        self.meters.append(delivery.body)


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
async def running_collector(broker: Mosquitto) -> AsyncIterator[Rig]:
    index, charger = new_charger()
    piles = [pile_id(index, j) for j in range(1, PILES + 1)]
    events: list[str] = []
    zigbee = Zigbee(
        plain_bus(broker, f"z2m-{charger}"), ZigbeeChannels.for_charger(charger), events
    )
    station = Station(plain_bus(broker, "station"), events)
    zigbee.register()
    station.register()
    settings = Settings(
        broker=broker.url,
        charger=charger,
        piles=PILES,
        t1=T1,
        misses=3,
        repeat_window=0.0,
        stop_settle=2.0,
        request_timeout=2.0,
    )
    async with zigbee.bus, station.bus:
        await zigbee.bus.wait_connected(5)
        await station.bus.wait_connected(5)
        await zigbee.bridge_online()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await app.state.service.bus.wait_connected(5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
                rig = Rig(charger, piles, http, zigbee, station, events)
                for pile in piles:
                    await zigbee.report(pile, gun="unplugged", energy=START_METER, linkquality=120)
                for pile in piles:
                    await eventually(lambda pile=pile: _up(rig, pile))
                yield rig
    await clear_retained(broker, zigbee.zigbee.everything, f"station/v1/collectors/{charger}/#")


async def clear_retained(broker: Mosquitto, *filters: str) -> None:
    """Delete what a test left retained under ``filters``: the broker outlives the test, and
    other tests (other services') read every collector's status and fault reports."""
    bus = plain_bus(broker, "cleaner")
    found: set[str] = set()

    async def keep(message: Incoming) -> None:
        if message.retain and message.payload:
            found.add(message.topic)

    for topic_filter in filters:
        bus.add_route(topic_filter, keep)
    async with bus:
        await bus.wait_connected(5)
        await asyncio.sleep(0.3)  # the broker sends what it retains right after subscribing
        for topic in found:
            await bus.publish(topic, b"", retain=True)


async def _up(rig: Rig, pile: str) -> bool:
    return bool((await rig.pile_view(pile))["up"])


async def _down(rig: Rig, pile: str) -> bool:
    return not await _up(rig, pile)


@pytest.fixture
async def rig(mosquitto: Mosquitto) -> AsyncIterator[Rig]:
    async with running_collector(mosquitto) as running:
        yield running


# -- the charge flow -----------------------------------------------------------------------


async def test_plug_and_swipe_verify_open_the_session_then_start_the_pile(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)

    command = await rig.start_charge(pile)

    [asked] = rig.station.verifications
    assert (asked.pile_id, asked.card_uid) == (pile, GOOD_CARD)
    [opening] = rig.station.openings
    assert (opening.session_id, opening.pile_id, opening.card_uid) == (
        asked.session_id,
        pile,
        GOOD_CARD,
    )
    assert opening.meter_start == START_METER
    assert opening.balance == BALANCE
    # No energy before a verified card and an open session (docs/invariants.md, 1).
    assert rig.events == ["verify", "open", "charge start"]
    assert command == ChargeCommand(charge="start", session_id=asked.session_id, max_current=32)
    shown = [screen.lines[0] for screen in device.screens]
    assert shown == ["Gun connected", "Checking card...", "Charging"]
    view = await rig.pile_view(pile)
    assert (view["phase"], view["session_id"], view["card_uid"]) == (
        "charging",
        asked.session_id,
        GOOD_CARD,
    )
    assert await rig.metric("station_collector_sessions_started_total", charger=rig.charger) == 1
    verified = await rig.metric(
        "station_collector_verifications_total", charger=rig.charger, result="accepted"
    )
    assert verified == 1


async def test_an_unknown_card_is_refused_and_the_display_says_why(rig: Rig) -> None:
    pile = rig.piles[1]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.plug(pile)
    await eventually(lambda: "Gun connected" in device.shown)

    await rig.zigbee.swipe(pile, UNKNOWN_CARD)

    await eventually(lambda: device.shown[:1] == ["Charge refused"])
    assert device.shown == [
        "Charge refused",
        "Card not recognised",
        "卡片无法识别",
        "reason: unknown",
    ]
    [asked] = rig.station.verifications
    assert asked.card_uid == UNKNOWN_CARD
    assert rig.station.openings == []
    assert device.commands == []
    assert rig.events == ["verify"]
    assert (await rig.pile_view(pile))["phase"] == "idle"
    refused = await rig.metric(
        "station_collector_verifications_total", charger=rig.charger, result="unknown"
    )
    assert refused == 1


async def test_a_second_swipe_stops_the_pile_checks_out_and_shows_the_receipt(
    rig: Rig,
) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)
    final = Decimal("15.75")
    await rig.zigbee.meter(pile, final)
    await eventually(lambda: any(m.energy == final for m in rig.station.meters))

    await rig.zigbee.swipe(pile, GOOD_CARD)

    await eventually(lambda: device.shown[:1] == ["Thank you"])
    assert device.commands[1:] == [ChargeCommand(charge="stop", session_id=start.session_id)]
    [checkout] = rig.station.checkouts
    assert checkout.session_id == start.session_id
    assert checkout.meter_stop == final
    assert checkout.stop_reason is StopReason.LOCAL
    assert device.screens[-1] == Display(
        lines=["Thank you", "3.25 kWh", "EUR 1.10"],
        qr=f"https://receipts.example/{start.session_id}",
    )
    assert "Finishing..." in [screen.lines[0] for screen in device.screens]
    assert rig.events == ["verify", "open", "charge start", "charge stop", "checkout"]
    # Billing was sent the pile's readings as they came, with the session they belong to.
    metered = [m for m in rig.station.meters if m.energy == final]
    assert metered[0].session_id == start.session_id
    assert metered[0].pile_id == pile
    assert (await rig.pile_view(pile))["phase"] == "idle"
    stopped = await rig.metric(
        "station_collector_sessions_stopped_total", charger=rig.charger, reason="local"
    )
    assert stopped == 1


async def test_a_stop_request_from_billing_stops_the_active_session(
    rig: Rig, mosquitto: Mosquitto
) -> None:
    pile = rig.piles[1]
    device = rig.zigbee.pile(pile)
    start = await rig.start_charge(pile)
    stop = StopRequest(session_id=start.session_id, pile_id=pile, reason=StopReason.OPERATOR)
    stranger = stop.model_copy(update={"session_id": "not-this-session"})

    await rig.station.bus.send(channels.COLLECTOR_STOP, stranger, charger=rig.charger)
    await rig.station.bus.send(channels.COLLECTOR_STOP, stop, charger=rig.charger)

    await eventually(lambda: device.shown[:1] == ["Thank you"])
    assert device.commands == [start, ChargeCommand(charge="stop", session_id=start.session_id)]
    [checkout] = rig.station.checkouts
    assert (checkout.session_id, checkout.stop_reason) == (start.session_id, StopReason.OPERATOR)
    assert checkout.meter_stop == START_METER
    stopped = await rig.metric(
        "station_collector_sessions_stopped_total", charger=rig.charger, reason="operator"
    )
    assert stopped == 1


# -- what the collector refuses -------------------------------------------------------------


async def test_malformed_and_oversized_pile_states_are_counted_by_kind(rig: Rig) -> None:
    pile = rig.piles[0]
    device = rig.zigbee.pile(pile)
    await rig.zigbee.raw(pile, b'{"gun": "plugged",')
    await rig.zigbee.raw(pile, b'{"energy": "lots", "gun": 7}')
    await rig.zigbee.raw(pile, b'{"padding": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}')
    await rig.zigbee.report(pile, energy=START_METER - 1)  # the meter going backwards
    await rig.zigbee.report(pile, action=PileAction.CARD_SWIPE)  # a swipe with no card

    for kind in ("bad_json", "wrong_type", "oversized", "energy_backwards", "swipe_without_card"):
        await eventually(lambda kind=kind: _dropped_once(rig, kind))
    assert await rig.dropped("unknown_pile") == 0
    # None of it changed the pile: still up, not plugged, its last good meter reading kept.
    view = await rig.pile_view(pile)
    assert (view["up"], view["gun"], Decimal(str(view["energy"]))) == (
        True,
        "unplugged",
        START_METER,
    )
    assert device.commands == []


async def _dropped_once(rig: Rig, kind: str) -> bool:
    return await rig.dropped(kind) == 1


async def test_a_pile_that_is_not_this_chargers_is_an_unknown_pile(rig: Rig) -> None:
    other_charger = f"c{int(rig.charger[1:]) + 500}-p01"
    beyond = pile_id(int(rig.charger[1:]), PILES + 1)
    plugged = PileState(gun="plugged")
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_state, plugged, pile=other_charger)
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_state, plugged, pile=beyond)
    await rig.zigbee.raw("not-a-pile", b'{"gun": "plugged"}')
    # A pile of another charger is unknown here before its payload is even read.
    await rig.zigbee.raw(other_charger, b'{"gun": ')

    await eventually(lambda: _dropped(rig, "unknown_pile", 4))
    assert await rig.dropped("bad_json") == 0
    for pile in rig.piles:
        assert (await rig.pile_view(pile))["gun"] == "unplugged"
    assert (await rig.http.get(f"/api/v1/piles/{beyond}")).status_code == 404


async def _dropped(rig: Rig, kind: str, count: int) -> bool:
    return await rig.dropped(kind) == count


# -- who is up ----------------------------------------------------------------------------


async def test_zigbee2mqtt_offline_in_its_bare_1x_word_takes_the_piles_down(rig: Rig) -> None:
    bridge = rig.zigbee.zigbee.bridge_state.topic()
    rig.zigbee.silent.update(rig.piles)  # a bridge that is down passes nothing on

    await rig.zigbee.bus.publish(bridge, b"offline", qos=1, retain=True)

    for pile in rig.piles:
        await eventually(lambda pile=pile: _down(rig, pile))
        up = await rig.metric("station_collector_pile_up", charger=rig.charger, pile=pile)
        assert up == 0
    rig.zigbee.silent.clear()
    await rig.zigbee.bus.publish(bridge, b"online", qos=1, retain=True)
    for pile in rig.piles:
        await eventually(lambda pile=pile: _up(rig, pile))
    # The bare words are Zigbee2MQTT 1.x, not malformed messages.
    assert await rig.dropped("bad_json") == 0
    assert await rig.dropped("wrong_type") == 0


async def test_a_pile_zigbee2mqtt_marks_offline_starts_no_charge(rig: Rig) -> None:
    pile, other = rig.piles
    device = rig.zigbee.pile(pile)
    rig.zigbee.silent.add(pile)
    offline = BridgeState(state=OnlineState.OFFLINE)

    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_availability, offline, pile=pile)

    await eventually(lambda: _down(rig, pile))
    assert await _up(rig, other)
    assert "pile_unreachable" in (await rig.pile_view(pile))["faults"]
    await rig.zigbee.plug(pile)
    await rig.zigbee.swipe(pile, GOOD_CARD)
    await eventually(lambda: device.shown[:1] == ["Out of service"])
    assert device.shown == ["Out of service", "暂停服务", "pile_unreachable"]
    assert rig.station.verifications == []
    assert device.commands == []

    rig.zigbee.silent.discard(pile)
    online = BridgeState(state=OnlineState.ONLINE)
    await rig.zigbee.bus.send(rig.zigbee.zigbee.pile_availability, online, pile=pile)
    await eventually(lambda: _up(rig, pile))
