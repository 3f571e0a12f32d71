"""The display board in a real Chromium, on a whole 4 x 12 station.

Every service is a real process, as `station up` runs them; the piles are simulated
Zigbee2MQTT devices. The test is the operator at the station screen and a driver at a
pile: what the driver does at the pile shows on the board within a second, a fault turns
its pile red with its remedies, and the operator's buttons reach the owners. Screenshots
are saved in the test's output folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from station_protocol.ids import Layout
from station_tools.browser import CHROMIUM, CHROMIUM_ARGS
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import eventually, new_card, sessions

pytestmark = pytest.mark.slow
"""End to end on real processes and a real browser; skipped by ``-m 'not slow'``."""

LAYOUT = Layout(4, 12)
SPEEDUP = Decimal(100)
RATED_POWER = Decimal(7) * SPEEDUP * 2
LIVE = 1000
"""Milliseconds within which what happens at a pile shows on the board."""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(data_dir=tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture(scope="module")
def station(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StationRig]:
    rig = StationRig(
        broker_url=broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("station")),
        ports=Ports.free(LAYOUT.chargers),
        t2=1.0,
        rated_power=RATED_POWER,
        env={"collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}},
    )
    try:
        yield rig.start()
    finally:
        rig.stop()


@pytest.fixture(scope="module")
async def piles(station: StationRig, broker: Mosquitto) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=0.1, speedup=SPEEDUP)
    async with Simulator(broker.url, LAYOUT, options) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def verification(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("verification"), timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def billing(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("billing"), timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield launched
        await launched.close()


@pytest.fixture
async def page(
    browser: Browser, station: StationRig, piles: Simulator, tmp_path: Path
) -> AsyncIterator[Page]:
    """The board on a 1080p station screen, in English, once every pile shows up."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    board = await context.new_page()
    board.on("pageerror", lambda error: errors.append(str(error)))
    await board.goto(station.url("console") + "/")
    await expect(board.locator('body[data-ready="true"][data-connected="true"]')).to_be_attached(
        timeout=15_000
    )
    await board.locator('[data-lang="en"]').click()
    await expect(board.locator('.tile[data-state="offline"]')).to_have_count(0, timeout=30_000)
    yield board
    await board.screenshot(path=str(tmp_path / "board-end.png"))
    await context.close()
    assert errors == [], f"the page threw: {errors}"


def tile(page: Page, pile: str) -> Any:
    return page.locator(f'.tile[data-pile="{pile}"]')


async def test_the_board_shows_every_pile_of_the_station_labelled(
    page: Page, tmp_path: Path
) -> None:
    tiles = page.locator(".tile[data-pile]")
    await expect(tiles).to_have_count(48)
    labels = await page.locator('.tile [data-field="id"]').all_text_contents()
    assert labels == LAYOUT.pile_ids()
    for charger in LAYOUT.charger_ids():
        await expect(page.locator(f'[data-charger="{charger}"] .tile')).to_have_count(12)
    await expect(page.locator('.tile[data-state="available"]')).to_have_count(48)
    await page.screenshot(path=str(tmp_path / "board-1080p.png"))
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(tmp_path / "board-phone.png"), full_page=True)


async def test_a_charge_at_a_pile_shows_on_the_board_within_a_second(
    page: Page, piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c3-p05"
    await piles.plug(pile)
    await expect(tile(page, pile)).to_have_attribute("data-state", "plugged", timeout=LIVE)
    await piles.swipe(pile, card)
    await eventually(lambda: piles.pile(pile).charging)
    await expect(tile(page, pile)).to_have_attribute("data-state", "charging", timeout=LIVE)
    await expect(tile(page, pile).locator('[data-field="power"]')).to_contain_text("kW")
    await expect(tile(page, pile).locator('[data-field="session-energy"]')).to_contain_text(
        "kWh", timeout=LIVE
    )

    await asyncio.sleep(1.0)
    await piles.swipe(pile, card)
    await eventually(lambda: not piles.pile(pile).charging)
    await piles.unplug(pile)
    await expect(tile(page, pile)).to_have_attribute("data-state", "available", timeout=3 * LIVE)
    await eventually(lambda: sessions(billing, pile_id=pile, card_uid=card, status="completed"))
    await expect(page.locator('[data-total="sessions"]')).not_to_have_text("0", timeout=LIVE)


async def test_a_faulty_pile_turns_red_with_its_remedies_on_the_board(
    page: Page, piles: Simulator
) -> None:
    pile = "c2-p07"
    await piles.set_error(pile, "GroundFailure")
    await expect(tile(page, pile)).to_have_attribute("data-state", "faulted", timeout=3 * LIVE)
    color = await tile(page, pile).evaluate("node => getComputedStyle(node).backgroundColor")
    red, green, blue = (int(part) for part in color[color.index("(") + 1 : -1].split(",")[:3])
    assert red > 150 and green < 100 and blue < 100, color
    bulletin = page.locator("[data-bulletin]").filter(has_text=pile)
    await expect(bulletin).to_have_count(1)
    await expect(bulletin.locator('[data-field="remedies"] li').first).to_contain_text("RCD")
    await piles.set_error(pile, "NoError")
    await expect(tile(page, pile)).to_have_attribute("data-state", "available", timeout=5 * LIVE)


async def test_the_operator_stops_a_session_and_puts_a_pile_into_maintenance_from_the_board(
    page: Page, piles: Simulator, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c4-p02"
    await piles.plug(pile)
    await piles.swipe(pile, card)
    await expect(tile(page, pile)).to_have_attribute("data-state", "charging", timeout=5 * LIVE)

    await tile(page, pile).click()
    detail = page.locator("[data-detail]")
    stop = detail.locator('[data-action="stop"]')
    await stop.click()
    await stop.click()  # confirmed
    await eventually(lambda: not piles.pile(pile).charging)
    [record] = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="completed")
    )
    assert record["stop_reason"] == "operator"
    await piles.unplug(pile)
    await expect(tile(page, pile)).to_have_attribute("data-state", "available", timeout=5 * LIVE)

    await detail.locator("[data-reason]").fill("new cable")
    await detail.locator('[data-action="maintenance-on"]').click()
    await expect(tile(page, pile)).to_have_attribute("data-state", "maintenance", timeout=LIVE)
    await piles.plug(pile)
    await piles.swipe(pile, card)
    await asyncio.sleep(1.5)
    assert not piles.pile(pile).charging
    assert "maintenance" in "\n".join(piles.pile(pile).displays[-1].lines).lower()

    await detail.locator('[data-action="maintenance-off"]').click()
    await expect(tile(page, pile)).to_have_attribute("data-state", "plugged", timeout=LIVE)
    await piles.unplug(pile)


async def test_the_language_switch_changes_the_board_and_is_kept(page: Page) -> None:
    await expect(page.locator("#bulletins-title")).to_have_text("Active bulletins")
    await expect(tile(page, "c1-p01").locator('[data-field="state"]')).to_contain_text("Available")
    await page.locator('[data-lang="zh"]').click()
    await expect(page.locator("#bulletins-title")).to_have_text("告警")
    await expect(tile(page, "c1-p01").locator('[data-field="state"]')).to_contain_text("空闲")
    await page.reload()
    await expect(page.locator("#bulletins-title")).to_have_text("告警")
