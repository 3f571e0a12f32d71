"""The simulated station: N chargers x M piles, each charger behind its own Zigbee2MQTT.

Tests and demos drive it from Python (``async with Simulator(...) as sim``), the remote
control drives it from another process; both end up in the same methods, which change a
pile and publish its full state, as the pile and Zigbee2MQTT would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from station_protocol.ids import Layout
from station_protocol.simulator import (
    ChargerControl,
    ChargerControlCommand,
    PileControl,
    PileControlCommand,
)
from station_protocol.zigbee import ChargePointErrorCode, new_ieee_address
from station_runtime.bus import BrokerAddress
from station_tools import children
from station_tools.simulator.bridge import Bridge
from station_tools.simulator.options import SimulatorOptions
from station_tools.simulator.pile import SimulatedPile

log = logging.getLogger("station.simulator")


class Simulator(children.Opened):
    """``async with Simulator(broker_url, Layout.parse("2x3")) as sim``: every bridge online."""

    def __init__(
        self,
        broker_url: str,
        layout: Layout,
        options: SimulatorOptions | None = None,
        charger_brokers: Mapping[str, str] | None = None,
    ) -> None:
        """``charger_brokers``: a charger whose Zigbee2MQTT uses its collector's own broker
        (``station up --collector-brokers``) is simulated there; the others, and the remote
        control, use ``broker_url``."""
        self.broker = BrokerAddress.parse(broker_url)
        self.layout = layout
        self.options = options or SimulatorOptions()
        given = charger_brokers or {}
        own = {charger: BrokerAddress.parse(url) for charger, url in given.items()}
        self._bridges = {
            charger: Bridge(
                charger,
                [SimulatedPile.create(pile, self.options) for pile in layout.piles_of(charger)],
                own.get(charger, self.broker),
                self.options,
                self._notify,
            )
            for charger in layout.charger_ids()
        }
        self._change = asyncio.Event()
        self._meter: asyncio.Task[None] | None = None

    async def open(self) -> None:
        for bridge in self._bridges.values():
            bridge.start()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(bridge.wait_online(1e9) for bridge in self._bridges.values())),
                self.options.connect_timeout,
            )
        except TimeoutError as exc:
            await self._stop_bridges()
            raise ConnectionError(
                f"simulated bridges not online on {self.broker} "
                f"after {self.options.connect_timeout} s"
            ) from exc
        self._meter = asyncio.create_task(self._read_meters(), name="simulator-meters")
        log.info(
            "simulator running",
            extra={"layout": str(self.layout), "broker": str(self.broker)},
        )

    async def aclose(self) -> None:
        await children.cancel(self._meter)
        self._meter = None
        await self._stop_bridges()

    async def _stop_bridges(self) -> None:
        await asyncio.gather(*(bridge.stop() for bridge in self._bridges.values()))

    # -- looking at the station -------------------------------------------------------------

    def pile(self, pile_id: str) -> SimulatedPile:
        """The live pile (its ``energy``, ``charging``, ``session_id``, ``gun``, ``displays``).

        By friendly name (a pile id, or the IEEE address of a device not renamed yet) or by
        IEEE address. The piles of the layout, and devices that joined since, less those
        removed.
        """
        for bridge in self._bridges.values():
            found = bridge.device(pile_id)
            if found is not None:
                return found
        raise KeyError(f"{pile_id!r} is not a pile of the simulated {self.layout}")

    def has_pile(self, pile_id: str) -> bool:
        return any(bridge.device(pile_id) is not None for bridge in self._bridges.values())

    @property
    def piles(self) -> list[SimulatedPile]:
        return [pile for bridge in self._bridges.values() for pile in bridge.piles.values()]

    def bridge_online(self, charger: str) -> bool:
        return self._bridge(charger).online

    def joining_open(self, charger: str) -> bool:
        """Does the charger's Zigbee2MQTT take new devices now (``permit_join``)?"""
        return self._bridge(charger).joining_open

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` holds; ``TimeoutError`` if it does not within ``timeout``.

        Woken by every change of a pile, and re-checked at least every 50 ms for predicates
        that look at something else.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            change = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), min(remaining, 0.05))

    # -- what happens in front of a pile ----------------------------------------------------

    async def plug(self, pile_id: str) -> None:
        pile = self.pile(pile_id)
        if pile.plug():
            await self._report(pile)

    async def unplug(self, pile_id: str) -> None:
        pile = self.pile(pile_id)
        if pile.unplug(time.monotonic(), self.options.speedup):
            await self._report(pile)

    async def swipe(self, pile_id: str, card_uid: str) -> None:
        """A card at the reader: one state message with ``action`` and ``card_uid``."""
        pile = self.pile(pile_id)
        self._notify()
        await self._bridge_of(pile).publish_state(pile, swiped_card=card_uid)

    async def set_error(self, pile_id: str, code: ChargePointErrorCode | str) -> None:
        pile = self.pile(pile_id)
        if pile.fault(ChargePointErrorCode(code), time.monotonic(), self.options.speedup):
            await self._report(pile)

    async def silence(self, pile_id: str) -> None:
        """The pile's radio goes quiet: no breath answers, no state messages, until revived."""
        self.pile(pile_id).silenced = True
        self._notify()

    async def revive(self, pile_id: str) -> None:
        pile = self.pile(pile_id)
        if pile.silenced:
            pile.silenced = False
            await self._report(pile)

    async def leave(self, pile_id: str) -> None:
        """The pile leaves the Zigbee network (``bridge/event`` ``device_leave``)."""
        pile = self.pile(pile_id)
        if pile.joined:
            await self._bridge_of(pile).announce_leave(pile)
            pile.joined = False
            self._notify()

    async def join(self, pile_id: str) -> None:
        """The pile (re)joins: ``device_joined``, ``device_interview``, availability, state."""
        pile = self.pile(pile_id)
        if not pile.joined:
            pile.joined = True
            self._notify()
            await self._bridge_of(pile).announce_join(pile)

    async def new_device(self, charger: str, ieee_address: str | None = None) -> SimulatedPile:
        """A new pile asks to join ``charger``'s network, as when a technician pairs one.

        Raises :class:`~station_tools.simulator.bridge.JoiningClosed` unless joining is open
        there (a console opens it with ``permit_join``). The device is named by its IEEE
        address (a fresh one unless given) until it is renamed.
        """
        bridge = self._bridge(charger)
        address = ieee_address or new_ieee_address()
        if self.has_pile(address):
            raise ValueError(f"{address} is already a simulated device")
        return await bridge.admit(address)

    async def apply(self, pile_id: str, control: PileControl) -> None:
        """Carry out a remote-control message (from :mod:`station_tools.simulator.control`)."""
        match control.command:
            case PileControlCommand.PLUG:
                await self.plug(pile_id)
            case PileControlCommand.UNPLUG:
                await self.unplug(pile_id)
            case PileControlCommand.SWIPE:
                assert control.card_uid is not None
                await self.swipe(pile_id, control.card_uid)
            case PileControlCommand.FAULT:
                assert control.error_code is not None
                await self.set_error(pile_id, control.error_code)
            case PileControlCommand.SILENCE:
                await self.silence(pile_id)
            case PileControlCommand.REVIVE:
                await self.revive(pile_id)

    async def apply_to_charger(self, charger: str, control: ChargerControl) -> None:
        """Carry out a remote-control message for a charger."""
        match control.command:
            case ChargerControlCommand.JOIN:
                await self.new_device(charger, control.ieee_address)

    # -- what happens to a charger ----------------------------------------------------------

    async def kill_bridge(self, charger: str) -> None:
        """The charger's Zigbee2MQTT dies: its socket closes, the broker sends the last will."""
        await self._bridge(charger).kill()
        self._notify()

    async def start_bridge(self, charger: str, timeout: float = 10.0) -> None:
        """Bring a killed bridge back; returns once it is online again."""
        bridge = self._bridge(charger)
        bridge.start()
        await bridge.wait_online(timeout)

    # -- internals ----------------------------------------------------------------------------

    def _bridge(self, charger: str) -> Bridge:
        try:
            return self._bridges[charger]
        except KeyError:
            raise KeyError(f"{charger!r} is not a charger of the simulated {self.layout}") from None

    def _bridge_of(self, pile: SimulatedPile) -> Bridge:
        for bridge in self._bridges.values():
            if bridge.piles.get(pile.pile_id) is pile:
                return bridge
        raise KeyError(f"{pile.pile_id!r} is no longer on any simulated charger")

    async def _report(self, pile: SimulatedPile) -> None:
        self._notify()
        await self._bridge_of(pile).publish_state(pile)

    def _notify(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _read_meters(self) -> None:
        """Every ``meter_interval``: each charging pile counts its energy and reports it."""
        while True:
            await asyncio.sleep(self.options.meter_interval)
            now = time.monotonic()
            charging = [p for p in self.piles if p.advance(now, self.options.speedup)]
            if charging:
                self._notify()
            for pile in charging:
                await self._bridge_of(pile).publish_state(pile)
