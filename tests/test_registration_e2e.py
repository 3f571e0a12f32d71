"""Pile registration end to end (issue 12): every service a real process, the piles and
their Zigbee2MQTT bridges simulated as Zigbee2MQTT 2.x answers.

An operator opens joining on c1, a new pile joins and waits, is approved as ``c1-p13``
(beyond the configured four), is breathed to and charges a car, shows on the board in
Chromium and in ``GET /api/v1/piles``, and still does after every service restarted. A
decommissioned pile is no longer breathed to and raises no bulletin when it goes silent. A
device nobody approved swipes a valid card: nothing starts, and its collector counts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiomqtt
import httpx
import pytest
from playwright.async_api import async_playwright, expect

from station_protocol.channels import ZigbeeChannels
from station_tools.browser import CHROMIUM, CHROMIUM_ARGS
from station_tools.mosquitto import Mosquitto
from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import (
    billed_exactly,
    charge_and_stop,
    eventually,
    metric,
    new_card,
    sessions,
    start_charge,
)

pytestmark = pytest.mark.slow
"""End to end on real processes and a real browser; skipped by ``-m 'not slow'``."""

PRICE = Decimal("1.20")
NEW_PILE = "c1-p13"
RETIRED = "c2-p04"


@pytest.fixture(scope="module")
async def console(station: StationRig) -> AsyncIterator[httpx.AsyncClient]:
    """Async: the simulated bridges answer the console in this test's event loop."""
    async with httpx.AsyncClient(base_url=station.url("console"), timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
async def approved(console: httpx.AsyncClient, piles: Simulator) -> AsyncIterator[str]:
    """A device joined c1 and was approved as ``c1-p13``: its IEEE address."""
    address = await joined(console, piles, "c1")
    answer = await console.post(
        f"/api/v1/registrations/{address}/approve", json={"pile_id": NEW_PILE}
    )
    assert answer.status_code == 200, answer.text
    yield address


async def joined(console: httpx.AsyncClient, piles: Simulator, charger: str) -> str:
    """Joining opened on ``charger`` from the console, a new pile joined: pending there."""
    opened = await console.post(f"/api/v1/chargers/{charger}/permit-join", json={"seconds": 120})
    assert opened.status_code == 200, opened.text
    address = (await piles.new_device(charger)).pile_id
    listed: list[dict[str, Any]] = []
    for _ in range(200):
        listed = (await console.get("/api/v1/registrations")).json()
        if any(item["ieee_address"] == address for item in listed):
            return address
        await asyncio.sleep(0.05)
    raise AssertionError(f"{address} not listed as pending: {listed}")


async def charges_and_is_billed(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, pile: str
) -> None:
    """A driver with a fresh card charges on ``pile``, stops, and is billed exactly."""
    card = new_card(verification)
    await start_charge(piles, billing, pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


def collector_piles(station: StationRig, charger: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{station.collector_url(charger)}/api/v1/piles", timeout=5)
    return {pile["pile_id"]: pile for pile in answer.json()}


async def test_an_approved_pile_is_breathed_to_charges_and_shows_on_the_board(
    approved: str,
    piles: Simulator,
    console: httpx.AsyncClient,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
) -> None:
    assert piles.has_pile(NEW_PILE), "Zigbee2MQTT renamed the device"
    await eventually(lambda: collector_piles(station, "c1").get(NEW_PILE, {}).get("up"), 15)

    await charges_and_is_billed(piles, verification, billing, NEW_PILE)

    listed = {view["id"]: view for view in (await console.get("/api/v1/piles")).json()}
    assert listed[NEW_PILE]["charger"] == "c1"
    assert (await console.get("/api/v1/board")).json()["chargers"]["c1"][-1] == NEW_PILE
    assert (await console.get("/api/v1/registrations")).json() == []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(station.url("console"))
            tile = page.locator(f'.tile[data-pile="{NEW_PILE}"]')
            await expect(tile).to_be_visible()
            await expect(tile).to_have_attribute("data-state", "available")
        finally:
            await browser.close()


async def test_the_new_pile_charges_after_every_service_restarted(
    approved: str,
    piles: Simulator,
    console: httpx.AsyncClient,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
) -> None:
    for service in station:
        service.kill()
    await asyncio.to_thread(station.start, 90)
    await eventually(lambda: collector_piles(station, "c1").get(NEW_PILE, {}).get("up"), 30)

    await charges_and_is_billed(piles, verification, billing, NEW_PILE)
    assert NEW_PILE in {view["id"] for view in (await console.get("/api/v1/piles")).json()}


async def test_a_decommissioned_pile_is_not_breathed_to_and_raises_no_bulletin(
    piles: Simulator,
    console: httpx.AsyncClient,
    station: StationRig,
    station_broker: Mosquitto,
) -> None:
    gone = await console.delete(f"/api/v1/piles/{RETIRED}")
    assert gone.status_code == 200, gone.text
    await eventually(lambda: RETIRED not in collector_piles(station, "c2"), 10)

    commands = ZigbeeChannels.for_charger("c2").pile_set.topic(pile=RETIRED)
    async with aiomqtt.Client("127.0.0.1", station_broker.port) as client:
        await client.subscribe(commands, qos=1)
        await piles.silence(RETIRED)
        heard: list[bytes] = []
        with contextlib_suppress_timeout():
            async with asyncio.timeout(5):  # five breath periods (T1 = 1 s)
                async for message in client.messages:
                    heard.append(bytes(message.payload))  # type: ignore[arg-type]
    assert heard == [], f"breathed to after decommissioning: {heard[:3]}"

    faults = httpx.get(f"{station.url('faults')}/api/v1/faults", timeout=5).json()
    assert not [fault for fault in faults if fault.get("pile_id") == RETIRED]
    assert RETIRED not in {view["id"] for view in (await console.get("/api/v1/piles")).json()}
    again = await console.delete(f"/api/v1/piles/{RETIRED}")
    assert again.status_code == 404


async def test_a_device_nobody_approved_starts_nothing_and_is_counted(
    piles: Simulator,
    console: httpx.AsyncClient,
    verification: httpx.Client,
    billing: httpx.Client,
    station: StationRig,
) -> None:
    address = await joined(console, piles, "c2")
    card = new_card(verification)
    metrics = f"{station.collector_url('c2')}/metrics"
    before = metric(httpx.get(metrics, timeout=5).text, STRANGERS, charger="c2")

    await piles.plug(address)
    await piles.swipe(address, card)
    await eventually(
        lambda: metric(httpx.get(metrics, timeout=5).text, STRANGERS, charger="c2") > before, 10
    )
    await asyncio.sleep(2)  # what a start would take, several times over
    assert sessions(billing, card_uid=card) == []
    assert not piles.pile(address).charging
    card_view = verification.get(f"/api/v1/cards/{card}").json()
    assert Decimal(card_view["balance"]) == Decimal("100.00")
    faults = httpx.get(f"{station.url('faults')}/api/v1/faults", timeout=5).json()
    assert not [fault for fault in faults if address in str(fault)]


STRANGERS = "station_collector_stranger_messages_total"


class contextlib_suppress_timeout:
    """``with contextlib_suppress_timeout():`` ends a listening window quietly."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is TimeoutError
