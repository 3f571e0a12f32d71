"""The board page in a real browser (the system's Chromium, driven by Playwright).

The console runs in this process against a real mosquitto and is served over real HTTP
(uvicorn on a free port); the tests play the owners on the bus as in ``test_board`` and
read what the page shows through its ``data-*`` attributes. faults and billing are not
running: their REST answers to the console's operator actions are played at the console's
HTTP client of that owner, which records what the console asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect

from station_console.core.config import Settings
from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import load_catalogue
from station_protocol.ids import Layout
from station_protocol.messages import (
    PileBoardState,
    PileMaintenance,
    PileSession,
    SessionStatus,
)
from station_protocol.ocpi import Price
from station_tools.browser import CHROMIUM, CHROMIUM_ARGS
from station_tools.mosquitto import Mosquitto
from station_tools.simulator import Simulator, SimulatorOptions

from .conftest import billing_answering

WALL = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
LIVE = 1000
"""Milliseconds within which a change on the bus shows on the page."""
REPO = Path(__file__).resolve().parents[3]

Console = Owners = Any
"""The ``console`` and ``owners`` fixtures (see conftest)."""


def now() -> datetime:
    return datetime.now(UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    """The console over real HTTP, which a test may take down and bring back on one port."""

    console: Console
    port: int = field(default_factory=free_port)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            self.console.app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[listener]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not self.server.started:
            assert not self.task.done(), "the console's HTTP server did not start"
            assert loop.time() < deadline, "the console's HTTP server did not start in 10 s"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Down at once: open streams are cut, as when the console's host goes away."""
        server, task = self.server, self.task
        if server is None or task is None:
            return
        server.should_exit = server.force_exit = True
        for connection in list(server.server_state.connections):
            connection.transport.close()  # type: ignore[attr-defined]
        with suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        self.server = self.task = None


@dataclass
class FakeOwner:
    """An owner's REST API as the console's HTTP client to it sees it: each request is
    recorded and answered by ``reply``."""

    reply: Callable[[str, str, Any], Awaitable[httpx.Response]]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        body = kwargs.get("json")
        self.requests.append((method, str(url), body))
        return await self.reply(method, str(url), body)


def playing(console: Console, owner: str, monkeypatch: pytest.MonkeyPatch, fake: FakeOwner) -> None:
    client = getattr(console.state.owners, owner).client
    monkeypatch.setattr(client, "request", fake.request)


def bulletin(pile_id: str, code: str, bulletin_id: str = "b-1", **fields: Any) -> Bulletin:
    catalogue = load_catalogue(None)
    at = now()
    expanded = Bulletin.expand(
        catalogue[code],
        id=bulletin_id,
        source=pile_id,
        charger=pile_id.split("-")[0],
        pile_id=pile_id,
        since=at,
        detected_at=at,
        raised_at=at,
    )
    return expanded.model_copy(update=fields) if fields else expanded


async def announce(owners: Owners, shown: Bulletin) -> None:
    """As faults does: the bulletin retained on its topic."""
    topic = channels.FAULT_BULLETIN.topic(source=shown.source, code=shown.code)
    await owners.raw(topic, shown.model_dump_json().encode())


async def retained(broker: Mosquitto, topic: str) -> PileMaintenance:
    """What a collector connecting now reads on ``topic``."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return PileMaintenance.model_validate_json(message.payload)
    raise AssertionError(f"nothing retained on {topic}")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def station_name() -> str:
    return "Riverside"


@pytest.fixture
def settings(own_mosquitto: Mosquitto, tmp_path: Path, station_name: str) -> Settings:
    """The reference station: 4 chargers of 12 piles."""
    return Settings(
        broker=own_mosquitto.url,
        data_dir=tmp_path / "console",
        client_id=f"console-page-{uuid.uuid4().hex[:8]}",
        layout=Layout(4, 12),
        station_name=station_name,
        link_bucket=60.0,
    )


@pytest.fixture
async def served(console: Console) -> AsyncIterator[Served]:
    running = Served(console)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Screen:
    """A fresh browser context (own storage) at one viewport, with the page's errors."""

    browser: Browser
    url: str
    errors: list[str] = field(default_factory=list)

    async def open(self, viewport: dict[str, int] = WALL) -> Page:
        context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        await page.goto(self.url)
        await expect(
            page.locator('body[data-ready="true"][data-connected="true"]')
        ).to_be_attached()
        return page


@pytest.fixture
async def screen(browser: Browser, served: Served) -> AsyncIterator[Screen]:
    shown = Screen(browser, served.url)
    yield shown
    assert shown.errors == [], f"the page threw: {shown.errors}"


def tile(page: Page, pile_id: str) -> Any:
    return page.locator(f'.tile[data-pile="{pile_id}"]')


async def no_sideways_scroll(page: Page) -> dict[str, int]:
    sizes: dict[str, int] = await page.evaluate(
        """() => ({
            scrollWidth: document.documentElement.scrollWidth,
            scrollHeight: document.documentElement.scrollHeight,
            width: window.innerWidth,
            height: window.innerHeight,
        })"""
    )
    assert sizes["scrollWidth"] <= sizes["width"], sizes
    return sizes


async def a_busy_station(owners: Owners) -> None:
    """Piles in every state, a bulletin, a completed session: what a screenshot shows."""
    states = [
        PileBoardState.AVAILABLE,
        PileBoardState.CHARGING,
        PileBoardState.AVAILABLE,
        PileBoardState.PLUGGED,
        PileBoardState.CHARGING,
        PileBoardState.FINISHING,
    ]
    for charger in range(1, 5):
        for number in range(1, 13):
            pile_id = f"c{charger}-p{number:02d}"
            if (charger, number) == (4, 12):
                continue  # never heard: offline
            state = states[(charger + number) % len(states)]
            if (charger, number) == (2, 7):
                state = PileBoardState.FAULTED
            if (charger, number) == (3, 3):
                word = PileMaintenance(
                    pile_id=pile_id, active=True, reason="new cable", since=now()
                )
                await owners.send(channels.PILE_MAINTENANCE, word, pile=pile_id)
            if state in (PileBoardState.CHARGING, PileBoardState.FINISHING):
                await owners.status(
                    pile_id,
                    state,
                    power=Decimal("7.2") if state is PileBoardState.CHARGING else Decimal("0.4"),
                    energy=Decimal("1520.3"),
                    session_energy=Decimal(f"{number}.{charger}5"),
                    linkquality=160,
                    session_id=f"s-{pile_id}",
                )
            else:
                await owners.status(pile_id, state, linkquality=120, energy=Decimal("88.0"))
    await announce(owners, bulletin("c2-p07", "pile_ground_failure", "b-ground"))
    session = PileSession(
        session_id="s-done",
        pile_id="c1-p01",
        card_uid="CARD",
        status=SessionStatus.COMPLETED,
        started_at=now() - timedelta(hours=1),
        stopped_at=now(),
        total_cost=Price(excl_vat=Decimal("10.62"), incl_vat=Decimal("12.60")),
        total_energy=Decimal("10.5"),
    )
    await owners.send(channels.PILE_SESSION, session, pile="c1-p01")


# -- the tests --------------------------------------------------------------------------------


async def test_every_pile_of_the_4x12_station_is_a_labelled_tile(screen: Screen) -> None:
    page = await screen.open()
    tiles = page.locator(".tile[data-pile]")
    await expect(tiles).to_have_count(48)
    expected = [f"c{c}-p{p:02d}" for c in range(1, 5) for p in range(1, 13)]
    assert await page.locator('.tile [data-field="id"]').all_text_contents() == expected
    assert await tiles.evaluate_all("tiles => tiles.map(t => t.dataset.pile)") == expected
    assert set(await tiles.evaluate_all("ts => ts.map(t => t.dataset.state)")) == {"offline"}
    for charger in ("c1", "c2", "c3", "c4"):
        await expect(page.locator(f'[data-charger="{charger}"] .tile')).to_have_count(12)
    await expect(page.locator("[data-station]")).to_have_text("Riverside")
    legend = page.locator("[data-legend-state]")
    assert await legend.evaluate_all("items => items.map(i => i.dataset.legendState)") == [
        "available", "plugged", "charging", "finishing", "faulted", "maintenance", "offline",
    ]  # fmt: skip
    assert all(text.strip() for text in await legend.all_text_contents())


async def test_a_charging_pile_shows_its_power_and_energy_live_and_goes_back_to_available(
    screen: Screen, owners: Owners
) -> None:
    page = await screen.open()
    await owners.status("c3-p05", PileBoardState.AVAILABLE)
    await expect(tile(page, "c3-p05")).to_have_attribute("data-state", "available")

    await owners.status(
        "c3-p05",
        PileBoardState.CHARGING,
        power=Decimal("7.2"),
        energy=Decimal("1234.5"),
        session_energy=Decimal("3.25"),
        session_id="s-1",
    )
    charging = tile(page, "c3-p05")
    await expect(charging).to_have_attribute("data-state", "charging", timeout=LIVE)
    await expect(charging.locator('[data-field="power"]')).to_have_text("7.2 kW", timeout=LIVE)
    await expect(charging.locator('[data-field="session-energy"]')).to_have_text("3.25 kWh")
    await expect(charging.locator('[data-field="state"]')).to_contain_text("充电中")
    await expect(page.locator('[data-total="charging"]')).to_have_text("1", timeout=LIVE)

    await owners.status("c3-p05", PileBoardState.AVAILABLE)
    await expect(charging).to_have_attribute("data-state", "available", timeout=LIVE)
    await expect(charging.locator('[data-field="power"]')).to_have_count(0)


async def test_a_bulletin_shows_its_causes_and_remedies_and_its_pile_turns_faulted(
    screen: Screen, owners: Owners
) -> None:
    page = await screen.open()
    await expect(page.locator("[data-bulletins-empty]")).to_be_visible()
    ground = bulletin("c2-p03", "pile_ground_failure", "b-ground")
    await owners.status("c2-p03", PileBoardState.FAULTED, faults=["pile_ground_failure"])
    await announce(owners, ground)

    item = page.locator('[data-bulletin="b-ground"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await expect(item).to_have_attribute("data-severity", ground.severity.value)
    await expect(item.locator('[data-field="pile"]')).to_have_text("c2-p03")
    await expect(item.locator('[data-field="title"]')).to_have_text(ground.title.zh)
    remedies = [remedy.zh for remedy in ground.remedies]
    await expect(item.locator('[data-field="remedies"] li')).to_have_text(remedies)
    causes = [cause.zh for cause in ground.causes]
    await expect(item.locator('[data-field="causes"] li')).to_have_text(causes)
    faulted = tile(page, "c2-p03")
    await expect(faulted).to_have_attribute("data-state", "faulted", timeout=LIVE)
    await expect(faulted).to_have_attribute("data-fault", "pile_ground_failure")
    await expect(page.locator("[data-bulletins-empty]")).to_be_hidden()

    await owners.raw(channels.FAULT_BULLETIN.topic(source="c2-p03", code=ground.code), b"")
    await expect(item).to_have_count(0, timeout=LIVE)
    await expect(faulted).to_have_attribute("data-fault", "")


async def test_acknowledging_a_bulletin_asks_faults_and_shows_who_took_it_on(
    screen: Screen, console: Console, owners: Owners, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = bulletin("c1-p04", "pile_ground_failure", "b-ack")

    async def faults(method: str, url: str, body: Any) -> httpx.Response:
        # As faults does: the bulletin republished with who acknowledged it, then the answer.
        acked = shown.model_copy(update={"acked_by": body["who"], "acked_at": now()})
        await announce(owners, acked)
        return httpx.Response(200, json={"id": shown.id, "acked_by": body["who"]})

    fake = FakeOwner(faults)
    playing(console, "faults", monkeypatch, fake)
    page = await screen.open()
    await announce(owners, shown)
    item = page.locator('[data-bulletin="b-ack"]')
    await expect(item).to_have_attribute("data-acked", "false", timeout=LIVE)

    await item.locator('[data-action="ack"]').click()
    await expect(item).to_have_attribute("data-acked", "true", timeout=LIVE)
    await expect(item.locator('[data-field="acked"]')).to_contain_text("operator")
    await expect(item.locator('[data-action="ack"]')).to_have_count(0)
    assert fake.requests == [("POST", "/api/v1/faults/b-ack/ack", {"who": "operator"})]


async def test_the_stop_button_stops_the_pile_s_running_session_through_billing(
    screen: Screen, console: Console, owners: Owners, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def billing(method: str, url: str, body: Any) -> httpx.Response:
        return httpx.Response(202, json={"id": "s-42", "status": "active"})

    fake = FakeOwner(billing)
    playing(console, "billing", monkeypatch, fake)
    page = await screen.open()
    await owners.status("c1-p02", PileBoardState.CHARGING, power=Decimal("11"), session_id="s-42")
    await expect(tile(page, "c1-p02")).to_have_attribute("data-state", "charging", timeout=LIVE)

    await tile(page, "c1-p02").click()
    detail = page.locator("[data-detail]")
    await expect(detail).to_be_visible()
    await expect(detail.locator('[data-fact="session"] dd')).to_have_text("s-42")
    stop = detail.locator('[data-action="stop"]')
    await stop.click()  # the first click only asks to confirm
    await expect(stop).to_have_attribute("data-confirming", "true")
    assert fake.requests == []
    await stop.click()
    await expect(detail.locator("[data-message]")).to_have_text("停止指令已发送")
    assert fake.requests == [("POST", "/api/v1/sessions/s-42/stop", None)]

    await owners.status("c1-p03", PileBoardState.AVAILABLE)
    await detail.locator('[data-action="close"]').click()
    await tile(page, "c1-p03").click()
    await expect(detail.locator('[data-action="stop"]')).to_be_disabled()  # nothing to stop


async def test_maintenance_from_the_page_publishes_the_retained_word_for_the_collector(
    screen: Screen, owners: Owners, own_mosquitto: Mosquitto
) -> None:
    page = await screen.open()
    await owners.status("c4-p09", PileBoardState.AVAILABLE)
    pile = tile(page, "c4-p09")
    await expect(pile).to_have_attribute("data-state", "available", timeout=LIVE)
    await pile.click()
    detail = page.locator("[data-detail]")
    await detail.locator('[data-action="maintenance-on"]').click()
    await expect(detail.locator("[data-message]")).to_have_text("请填写维护原因")  # no reason

    await detail.locator("[data-reason]").fill("new cable")
    await detail.locator('[data-action="maintenance-on"]').click()
    await expect(pile).to_have_attribute("data-state", "maintenance", timeout=LIVE)
    await expect(detail.locator('[data-fact="maintenance"] dd')).to_contain_text("new cable")
    topic = channels.PILE_MAINTENANCE.topic(pile="c4-p09")
    word = await retained(own_mosquitto, topic)
    assert (word.pile_id, word.active, word.reason) == ("c4-p09", True, "new cable")

    await detail.locator('[data-action="maintenance-off"]').click()
    await expect(pile).to_have_attribute("data-state", "available", timeout=LIVE)
    word = await retained(own_mosquitto, topic)
    assert (word.pile_id, word.active) == ("c4-p09", False)


async def test_the_language_switch_changes_every_text_and_is_kept_across_a_reload(
    screen: Screen, owners: Owners
) -> None:
    page = await screen.open()
    await owners.status("c1-p01", PileBoardState.AVAILABLE)
    await expect(tile(page, "c1-p01").locator('[data-field="state"]')).to_contain_text("空闲")
    await expect(page.locator("#bulletins-title")).to_have_text("告警")
    assert await page.evaluate("document.documentElement.lang") == "zh"

    await page.locator('[data-lang="en"]').click()
    await expect(page.locator("#bulletins-title")).to_have_text("Active bulletins")
    await expect(tile(page, "c1-p01").locator('[data-field="state"]')).to_contain_text("Available")
    await expect(page.locator('[data-charger="c1"] h2')).to_have_text("Charger c1")
    await expect(page.locator('[data-legend-state="charging"]')).to_have_text("⚡Charging")
    untranslated = await page.locator("[data-i18n]").evaluate_all(
        "nodes => nodes.filter(n => !n.textContent.trim()).map(n => n.dataset.i18n)"
    )
    assert untranslated == []

    await page.reload()
    await expect(page.locator('body[data-ready="true"]')).to_be_attached()
    await expect(page.locator("#bulletins-title")).to_have_text("Active bulletins")
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.evaluate("localStorage.getItem('station-board.language')") == "en"

    await page.locator('[data-lang="zh"]').click()
    await expect(page.locator("#bulletins-title")).to_have_text("告警")


async def test_a_wall_display_shows_all_48_piles_without_scrolling(
    screen: Screen, owners: Owners, tmp_path: Path
) -> None:
    page = await screen.open(WALL)
    await page.locator('[data-lang="en"]').click()
    await a_busy_station(owners)
    await expect(page.locator('[data-bulletin="b-ground"]')).to_be_visible(timeout=LIVE)
    await expect(tile(page, "c2-p07")).to_have_attribute("data-state", "faulted")
    await expect(tile(page, "c3-p03")).to_have_attribute("data-state", "maintenance")
    await expect(tile(page, "c3-p03").locator('[data-field="reason"]')).to_have_text("new cable")
    await expect(page.locator('[data-total="sessions"]')).to_have_text("1", timeout=5000)
    await expect(page.locator('[data-total="revenue"]')).to_have_text("12.60 CNY")

    sizes = await no_sideways_scroll(page)
    assert sizes["scrollHeight"] <= sizes["height"], sizes
    for box in [await t.bounding_box() for t in await page.locator(".tile").all()]:
        assert box is not None
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= WALL["width"]
        assert box["y"] + box["height"] <= WALL["height"]
        assert box["width"] >= 80 and box["height"] >= 60  # readable across a room
    await page.screenshot(path=tmp_path / "board-1080p.png")
    if os.environ.get("STATION_UPDATE_SCREENSHOTS") == "1":  # the README's picture
        shutil.copyfile(tmp_path / "board-1080p.png", REPO / "docs" / "images" / "board.png")


async def test_a_phone_shows_the_station_stacked_without_sideways_scrolling(
    screen: Screen, owners: Owners, tmp_path: Path
) -> None:
    await a_busy_station(owners)
    page = await screen.open(PHONE)
    await expect(tile(page, "c2-p07")).to_have_attribute("data-state", "faulted", timeout=LIVE)
    await no_sideways_scroll(page)
    blocks = [await b.bounding_box() for b in await page.locator("[data-charger]").all()]
    assert all(box is not None for box in blocks)
    lefts = {round(box["x"]) for box in blocks if box}
    tops = [box["y"] for box in blocks if box]
    assert len(lefts) == 1 and tops == sorted(tops)  # one above the other
    for box in [await t.bounding_box() for t in await page.locator(".tile").all()]:
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["width"] >= 44 and box["height"] >= 44  # big enough for a finger
    await page.screenshot(path=tmp_path / "board-phone.png", full_page=True)

    await tile(page, "c1-p02").click()
    detail = page.locator("[data-detail]")
    await expect(detail).to_be_visible()
    box = await detail.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await no_sideways_scroll(page)
    await page.screenshot(path=tmp_path / "board-phone-detail.png")


async def test_a_pile_s_detail_shows_it_now_and_charts_its_history(
    screen: Screen, owners: Owners, console: Console, eventually: Any
) -> None:
    await owners.status("c1-p06", PileBoardState.AVAILABLE, linkquality=90)
    await owners.status(
        "c1-p06",
        PileBoardState.CHARGING,
        power=Decimal("6.6"),
        energy=Decimal("500.25"),
        session_energy=Decimal("1.5"),
        linkquality=200,
        session_id="s-9",
    )
    session = PileSession(
        session_id="s-8",
        pile_id="c1-p06",
        card_uid="CARD",
        status=SessionStatus.COMPLETED,
        started_at=now() - timedelta(hours=2),
        stopped_at=now() - timedelta(hours=1),
        total_cost=Price(excl_vat=Decimal("4"), incl_vat=Decimal("4.80")),
        total_energy=Decimal("4.25"),
    )
    await owners.send(channels.PILE_SESSION, session, pile="c1-p06")

    async def remembered() -> bool:
        history = (await console.pile("c1-p06"))["history"]
        return bool(history["sessions"] and len(history["states"]) >= 2 and history["link"])

    await eventually(remembered, what="the pile's history written")
    page = await screen.open()
    await tile(page, "c1-p06").click()
    detail = page.locator("[data-detail]")
    await expect(detail).to_have_attribute("data-state", "charging")
    facts = {
        "state": "充电中",
        "power": "6.6 kW",
        "session_energy": "1.5 kWh",
        "energy": "500.25 kWh",
        "linkquality": "200 / 255",
        "session": "s-9",
        "fault": "—",
        "maintenance": "否",
    }
    for fact, text in facts.items():
        await expect(detail.locator(f'[data-fact="{fact}"] dd')).to_have_text(text)
    await expect(detail.locator('[data-fact="last_seen"] dd')).not_to_have_text("—")
    await expect(detail.locator('[data-chart="states"] svg rect')).to_have_count(2)
    await expect(detail.locator('[data-chart="link"] svg polyline')).to_have_count(1)
    await expect(detail.locator('[data-chart="energy"] svg rect')).to_have_count(1)
    await expect(detail.locator('[data-chart="sessions"] li')).to_contain_text(["s-8 · 4.25 kWh"])

    await owners.status("c1-p06", PileBoardState.FINISHING, power=Decimal("0.2"))
    await expect(detail).to_have_attribute("data-state", "finishing", timeout=LIVE)
    await expect(detail.locator('[data-fact="power"] dd')).to_have_text("0.2 kW")


@pytest.mark.parametrize("station_name", ['<img src=x onerror="window.pwned=1">'])
async def test_text_from_the_bus_is_shown_as_text_never_as_markup(
    screen: Screen, owners: Owners
) -> None:
    page = await screen.open()
    evil = '<img src=x onerror="window.pwned=2"><b>bold</b>'
    await owners.status("c1-p01", PileBoardState.CHARGING, session_id="<script>x</script>")
    marked = bulletin("c1-p01", "pile_ground_failure", "b-evil")
    marked = marked.model_copy(
        update={
            "title": marked.title.model_copy(update={"zh": evil}),
            "remedies": (marked.remedies[0].model_copy(update={"zh": evil}),),
        }
    )
    await announce(owners, marked)
    item = page.locator('[data-bulletin="b-evil"]')
    await expect(item.locator('[data-field="title"]')).to_have_text(evil, timeout=LIVE)
    await expect(item.locator('[data-field="remedies"] li')).to_have_text([evil])
    await expect(page.locator("[data-station]")).to_have_text(
        '<img src=x onerror="window.pwned=1">'
    )
    await tile(page, "c1-p01").click()
    await expect(page.locator('[data-fact="session"] dd')).to_have_text("<script>x</script>")
    assert await page.locator("img, b, main script, dialog script").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_a_pile_id_with_markup_is_shown_as_text(browser: Browser, served: Served) -> None:
    """The bus refuses such ids; the page must not trust that. Its snapshot is played here."""
    board = (await served.console.http.get("/api/v1/board")).json()
    evil = '<img src=x onerror="window.pwned=3">'
    board["chargers"] = {"c1": [evil, "c1-p02"]}
    board["piles"] = [dict(board["piles"][0], id=evil), board["piles"][1]]
    stream = f"event: snapshot\ndata: {json.dumps(board)}\n\n"
    context = await browser.new_context(viewport=WALL)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.route(
        "**/api/v1/events",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=stream
        ),
    )
    await page.goto(served.url)
    await expect(page.locator(".tile")).to_have_count(2)
    await expect(page.locator('.tile [data-field="id"]').first).to_have_text(evil)
    assert await page.locator(".tile").first.get_attribute("data-pile") == evil
    assert await page.locator("img").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_a_lost_connection_shows_a_banner_and_comes_back_with_a_fresh_snapshot(
    screen: Screen, served: Served, owners: Owners
) -> None:
    page = await screen.open()
    banner = page.locator('[data-banner="connection"]')
    await expect(banner).to_be_hidden()

    await served.stop()
    await expect(banner).to_be_visible(timeout=5000)
    await expect(banner).to_have_text("连接中断，正在重新连接…")
    await owners.status("c2-p11", PileBoardState.PLUGGED)  # while the page hears nothing
    await asyncio.sleep(0.3)
    await expect(tile(page, "c2-p11")).to_have_attribute("data-state", "offline")

    await served.start()
    await expect(banner).to_be_hidden(timeout=10000)
    await expect(tile(page, "c2-p11")).to_have_attribute("data-state", "plugged")
    await owners.status("c2-p11", PileBoardState.AVAILABLE)  # and it follows again
    await expect(tile(page, "c2-p11")).to_have_attribute("data-state", "available", timeout=LIVE)


async def test_a_new_pile_is_registered_and_decommissioned_from_the_page(
    screen: Screen, own_mosquitto: Mosquitto
) -> None:
    """Joining opened on c1, the device that joins approved as c1-p13 (drawn at once), then
    decommissioned from its detail (billing says no session runs there)."""
    options = SimulatorOptions(qos=1)
    async with (
        Simulator(own_mosquitto.url, Layout(1, 1), options) as simulator,
        billing_answering(own_mosquitto, {}),
    ):
        page = await screen.open()
        await page.locator("[data-join-charger]").select_option("c1")
        await page.locator('[data-action="permit-join"]').click()
        await expect(page.locator("[data-toast]")).to_contain_text("c1")
        assert simulator.joining_open("c1")

        device = (await simulator.new_device("c1")).pile_id
        item = page.locator(f'[data-registration="{device}"]')
        await expect(item).to_be_visible(timeout=LIVE * 5)
        await expect(item.locator('[data-field="pile-id"]')).to_have_value("c1-p13")
        await item.locator('[data-action="approve"]').click()

        await expect(tile(page, "c1-p13")).to_be_visible(timeout=LIVE * 5)
        await expect(item).to_have_count(0)
        await expect(page.locator("[data-registrations-empty]")).to_be_visible()
        assert simulator.has_pile("c1-p13")

        await tile(page, "c1-p05").click()
        decommission = page.locator('[data-action="decommission"]')
        await decommission.click()
        await decommission.click()
        await expect(tile(page, "c1-p05")).to_have_count(0, timeout=LIVE * 5)
        await expect(page.locator("[data-detail]")).not_to_be_visible()
        await expect(tile(page, "c1-p04")).to_be_visible()
