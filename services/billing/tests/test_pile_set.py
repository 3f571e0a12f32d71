"""Billing follows the console's word on the station's piles: sessions open only on its
piles, an approved pile shows its price at once, a removed one loses its display and takes
no new session, and a session already running there still ends in a record.

Each test has a broker of its own: the console's word is retained, and would otherwise
bound the piles of every later test's billing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest

from station_billing.core.config import Settings
from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import StationPiles, TariffDisplay
from station_runtime.bus import BrokerAddress
from station_tools.mosquitto import Mosquitto

NO_SUCH_PILE = "no such pile at this station"


def sid() -> str:
    return str(uuid.uuid4())


def word(revision: int, **chargers: list[str]) -> StationPiles:
    return StationPiles(chargers=chargers, revision=revision, changed_at=datetime.now(UTC))


@asynccontextmanager
async def station(
    own_mosquitto: Mosquitto,
    settings: Settings,
    layout: Layout | None,
    parts: tuple[Any, Any, Any, Any],
) -> AsyncIterator[tuple[Any, Any]]:
    """Billing with ``layout`` on the test's own broker, its ledger, and a collector."""
    clock, start_billing, ledger_for, collector_for = parts
    broker = BrokerAddress.parse(own_mosquitto.url)
    own = settings.model_copy(update={"broker": broker, "layout": layout})
    async with (
        ledger_for(own_mosquitto.url),
        start_billing(own, clock) as billing,
        collector_for(own_mosquitto.url, clock) as collector,
    ):
        yield billing, collector


async def say(collector: Any, piles: StationPiles) -> None:
    """What the console publishes: retained, so a service (re)connecting hears it too."""
    await collector.bus.publish(channels.STATION_PILES.topic(), piles, qos=1, retain=True)


Parts = tuple[Any, Any, Any, Any]
"""Billing's clock, its starter, the ledger and the collector playing the bus."""


@pytest.fixture
def parts(clock: Any, start_billing: Any, ledger_for: Any, collector_for: Any) -> Parts:
    return (clock, start_billing, ledger_for, collector_for)


async def retained_display(broker: Mosquitto, pile: str) -> TariffDisplay | None:
    """What a pile's collector connecting now gets as its tariff display."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(channels.PILE_TARIFF.topic(pile=pile), qos=1)
        try:
            async with asyncio.timeout(0.3):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    return TariffDisplay.model_validate_json(message.payload)
        except TimeoutError:
            return None
    return None


async def until_display(broker: Mosquitto, pile: str, shown: bool, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await retained_display(broker, pile) is not None) != shown:
        if loop.time() > deadline:
            raise AssertionError(f"the display of {pile} is {'not ' if shown else ''}retained")
        await asyncio.sleep(0.05)


async def test_an_approved_pile_beyond_the_layout_shows_its_price_and_takes_a_session(
    own_mosquitto: Mosquitto,
    settings: Settings,
    parts: Parts,
) -> None:
    async with station(own_mosquitto, settings, Layout(1, 4), parts) as (billing, collector):
        refused = await collector.open(sid(), "c1-p13", "CARD-1", meter_start="0")
        assert (refused.opened, refused.error) == (False, NO_SUCH_PILE)
        await until_display(own_mosquitto, "c1-p04", shown=True)
        assert await retained_display(own_mosquitto, "c1-p13") is None

        await say(collector, word(1, c1=["c1-p01", "c1-p02", "c1-p03", "c1-p04", "c1-p13"]))

        await until_display(own_mosquitto, "c1-p13", shown=True)
        display = await retained_display(own_mosquitto, "c1-p13")
        assert display is not None and display.energy_price == Decimal("1.20")
        session = sid()
        opened = await collector.open(session, "c1-p13", "CARD-1", meter_start="0")
        assert opened.opened, opened.error
        reply = await collector.checkout(session, "c1-p13", meter_stop="7.5")
        assert reply.ok and reply.receipt is not None
        assert (await billing.session(session))["total_energy"] == "7.5"


async def test_a_removed_pile_takes_no_new_session_but_its_running_one_checks_out(
    own_mosquitto: Mosquitto,
    settings: Settings,
    parts: Parts,
) -> None:
    async with station(own_mosquitto, settings, Layout(1, 4), parts) as (billing, collector):
        running = sid()
        assert (await collector.open(running, "c1-p02", "CARD-1", meter_start="100")).opened
        await until_display(own_mosquitto, "c1-p02", shown=True)

        await say(collector, word(1, c1=["c1-p01", "c1-p03", "c1-p04"]))

        await until_display(own_mosquitto, "c1-p02", shown=False)
        assert await retained_display(own_mosquitto, "c1-p01") is not None
        refused = await collector.open(sid(), "c1-p02", "CARD-2", meter_start="100")
        assert (refused.opened, refused.error) == (False, NO_SUCH_PILE)
        # the session running there is still billed: its readings count, its checkout answers
        billing.clock.advance(minutes=30)
        await collector.reading("c1-p02", running, energy="105", power="10", charging=True)
        await billing.settled("station_billing_meter_readings_total", 1, 'outcome="sampled"')
        billing.clock.advance(minutes=30)
        reply = await collector.checkout(running, "c1-p02", meter_stop="110")
        assert reply.ok and reply.receipt is not None
        record = await billing.session(running)
        assert (record["status"], record["total_energy"]) == ("completed", "10")
        assert record["total_cost"]["incl_vat"] == "12.00"
        # with the session over, the pile's readings are nobody's bill
        await collector.reading("c1-p02", None, energy="111")
        await billing.settled("station_billing_meter_readings_total", 1, 'outcome="unknown_pile"')


async def test_without_a_layout_any_pile_until_the_console_names_the_piles(
    own_mosquitto: Mosquitto,
    settings: Settings,
    parts: Parts,
) -> None:
    async with station(own_mosquitto, settings, None, parts) as (_, collector):
        assert (await collector.open(sid(), "c9-p07", "CARD-1", meter_start="0")).opened
        await until_display(own_mosquitto, "c9-p07", shown=True)

        await say(collector, word(1, c1=["c1-p01"]))

        await until_display(own_mosquitto, "c1-p01", shown=True)
        await until_display(own_mosquitto, "c9-p07", shown=False)
        refused = await collector.open(sid(), "c2-p03", "CARD-2", meter_start="0")
        assert (refused.opened, refused.error) == (False, NO_SUCH_PILE)
        assert (await collector.open(sid(), "c1-p01", "CARD-2", meter_start="0")).opened
