"""The price before charging: a retained tariff display per pile (``channels.PILE_TARIFF``).

When a gun is plugged the collector shows this on the pile, so the driver knows the price
before swiping. It says the prices in effect on the pile now for a session starting now
(per kWh, per hour charging, per hour parking, a start fee), including VAT, in the
station's currency. Billing publishes it again whenever it may change: at start, when a
tariff or an assignment changes (the REST API pokes it), at the next time-band boundary of
the tariff in effect (local time, daylight-saving aware), when an assignment or a tariff's
validity starts or ends, and at least every ``display_max_wait`` seconds. A display is only
published when its content changed, so a pile's retained message is always the latest.

The piles shown are the station's pile set (:mod:`station_billing.billable_piles`): a pile
the console approves shows its price at once, and a pile it removes has its retained display
deleted, so that no pile that is not there any more offers a price. Before billing knows the
set (no layout, no word from the console yet) the piles shown are those it has heard of.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from station_billing.billable_piles import BillablePiles
from station_billing.compiled_tariffs import CompiledTariffs
from station_billing.metrics import BillingMetrics
from station_billing.pile_store import PileStore
from station_billing.pricing import CompiledTariff
from station_billing.pricing.localtime import (
    StationZone,
    from_us,
    instants_of_wall_time,
    to_us,
    wall_time,
)
from station_billing.tariff_in_effect import TariffsInEffect
from station_protocol import channels
from station_protocol.messages import TariffDisplay
from station_runtime.bus import Bus, BusUnavailable
from station_runtime.pile_set import PileSetChange
from station_runtime.tasks import stop_if_cancelled

log = logging.getLogger("station.billing.displays")

ZERO = Decimal(0)
SHOWN = Decimal("0.0001")
HORIZON = timedelta(days=2)


def price_text(amount: Decimal) -> str:
    """A unit price as a driver reads it: cents always, up to four places if the tariff has them."""
    text = f"{amount.quantize(SHOWN, rounding=ROUND_HALF_UP):f}"
    whole, _, places = text.partition(".")
    return f"{whole}.{places.rstrip('0').ljust(2, '0')}"


def display_for(
    pile_id: str,
    compiled: CompiledTariff,
    zone: StationZone,
    now: datetime,
    valid_until: datetime | None,
) -> TariffDisplay:
    """What the pile shows: the components a session starting now would be priced with."""
    choice = compiled.select(zone.local(to_us(now)), ZERO, 0, None, None, None, None)
    energy, time, parking, flat = (
        compiled.components[index].price_incl_vat if index >= 0 else None for index in choice
    )
    currency = compiled.currency
    lines = ["Price now / 当前价格"]
    for label, unit, value in (
        ("Energy", f"{currency}/kWh", energy),
        ("Charging", f"{currency}/h", time),
        ("Parking", f"{currency}/h", parking),
        ("Start fee", currency, flat),
    ):
        if value is not None:
            lines.append(f"{label} {price_text(value)} {unit}")
    if len(lines) == 1:
        lines.append("Free of charge / 免费")
    if valid_until is not None and valid_until - now < timedelta(days=1):
        lines.append(f"Until {from_us(zone.local(to_us(valid_until))):%H:%M}")
    return TariffDisplay(
        pile_id=pile_id,
        tariff_id=compiled.tariff.id,
        currency=currency,
        energy_price=energy,
        time_price=time,
        parking_price=parking,
        flat_price=flat,
        lines=lines,
        valid_until=valid_until,
        published_at=now,
    )


def next_band_change(compiled: CompiledTariff, zone: StationZone, now: datetime) -> datetime | None:
    """The next instant after ``now`` where the tariff's local time bands or days turn."""
    cuts = compiled.cuts
    moments = set(cuts.times_of_day)
    if cuts.calendar:
        moments.add(0)
    if not moments:
        return None
    now_us = to_us(now)
    today = from_us(zone.local(now_us)).date()
    found = [
        at
        for day in (today, today + timedelta(days=1), today + timedelta(days=2))
        for moment in moments
        for at in instants_of_wall_time(zone.tz, day, wall_time(moment))
        if at > now_us
    ]
    return from_us(min(found)) if found else None


@dataclass
class TariffDisplays:
    bus: Bus
    in_effect: TariffsInEffect
    piles: PileStore
    compiled: CompiledTariffs
    zone: StationZone
    clock: Callable[[], datetime]
    metrics: BillingMetrics
    billable: BillablePiles
    max_wait: float
    _published: dict[str, str] = field(default_factory=dict)
    _leaving: set[str] = field(default_factory=set)
    """Piles removed from the set whose retained display is still to be deleted."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Something changed (a tariff, an assignment, a new pile): publish again soon.

        Safe from any thread (the REST routes run in FastAPI's thread pool).
        """
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def piles_changed(self, change: PileSetChange) -> None:
        """The pile set changed: show the new piles' price, delete the removed ones'."""
        self._leaving.update(change.removed)
        self._leaving.difference_update(change.added)
        self.poke()

    def pile_ids(self) -> list[str]:
        """The piles to show a price on: the pile set, or before it is known the piles
        billing heard of (blocking)."""
        piles = self.billable.pile_ids()
        return piles if piles is not None else sorted(self.piles.all())

    def _displays(self, now: datetime) -> tuple[list[TariffDisplay], datetime | None]:
        """Every pile's display now, and when the next one may change (blocking)."""
        edges = [edge for edge in self.in_effect.edges_after(now) if edge - now < HORIZON]
        displays = []
        for pile_id in self.pile_ids():
            stored = self.in_effect.on(pile_id, now)
            compiled = self.compiled.of_stored(stored)
            band = next_band_change(compiled, self.zone, now)
            changes = [edge for edge in [*edges, band] if edge is not None]
            displays.append(
                display_for(pile_id, compiled, self.zone, now, min(changes) if changes else None)
            )
        return displays, min(
            [*edges, *(d.valid_until for d in displays if d.valid_until)],
            default=None,
        )

    async def refresh(self) -> datetime | None:
        """Publish every display that changed; when to look again."""
        now = self.clock()
        displays, next_change = await asyncio.to_thread(self._displays, now)
        for display in displays:
            content = display.model_dump_json(exclude={"published_at"})
            if self._published.get(display.pile_id) == content:
                continue
            await self.bus.send(channels.PILE_TARIFF, display, pile=display.pile_id)
            self._published[display.pile_id] = content
            self.metrics.tariff_displays.inc()
        shown = {display.pile_id for display in displays}
        for pile_id in sorted((self._leaving | self._published.keys()) - shown):
            await self._withdraw(pile_id)
        return next_change

    async def _withdraw(self, pile_id: str) -> None:
        """An empty retained message deletes the pile's display on the broker."""
        await self.bus.clear(channels.PILE_TARIFF, pile=pile_id)
        self._published.pop(pile_id, None)
        self._leaving.discard(pile_id)
        log.info("tariff display withdrawn: the pile left the station", extra={"pile_id": pile_id})

    async def run(self) -> None:
        """Until cancelled: publish, then wait for the next change, a poke, or ``max_wait``."""
        self._loop = asyncio.get_running_loop()
        await self.bus.wait_connected(3600)
        while True:
            self._wake.clear()
            next_change: datetime | None = None
            try:
                next_change = await self.refresh()
            except BusUnavailable:
                log.warning("tariff displays not published: broker unavailable")
            except Exception:
                log.exception("tariff displays failed")
            stop_if_cancelled()
            wait = self.max_wait
            if next_change is not None:
                wait = min(wait, max((next_change - self.clock()).total_seconds(), 0.0) + 0.001)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                if wait >= self.max_wait:
                    # Now and then publish all again: a broker that lost its retained
                    # messages (no persistence) gets them back.
                    self._published.clear()
