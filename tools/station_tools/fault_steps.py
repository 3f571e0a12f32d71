"""What a fault test looks at on a running station, in the station's words.

The bulletin (with the catalogue's causes and remedies), the faults REST API, which piles
their collectors have out of service, and a driver charging elsewhere who should notice
nothing. Shared by the end-to-end fault modules (the broker restart has its own module).
Every look is async, so that waiting never stalls simulated piles in the same event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import Catalogue, Language, load_catalogue
from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import billed_exactly, charge_and_stop, new_card, sessions, start_charge

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Poll an async ``check`` until it returns something truthy; fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {value!r}")
        await asyncio.sleep(0.1)


# -- the faults service -----------------------------------------------------------------------


async def active_faults(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/faults", params=params)
    assert response.status_code == 200, response.text
    views: list[dict[str, Any]] = response.json()
    return views


async def fault_history(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/faults/history", params=params)
    assert response.status_code == 200, response.text
    episodes: list[dict[str, Any]] = response.json()
    return episodes


async def past_hold_down(api: httpx.AsyncClient, hold_down: float) -> None:
    """Wait until no fault is active and the last one cleared longer ago than ``hold_down``.

    A fault back within the hold-down continues its earlier episode, so a test that wants
    a fresh one waits out the episodes before it (the start-up's, when the collectors began
    before the piles answered).
    """

    async def quiet() -> bool:
        return await active_faults(api) == []

    await until(quiet, timeout=20)
    cleared = [
        datetime.fromisoformat(episode["cleared_at"])
        for episode in await fault_history(api, limit="1000")
        if episode["cleared_at"]
    ]
    if cleared:
        ago = (datetime.now(UTC) - max(cleared)).total_seconds()
        await asyncio.sleep(max(0.0, hold_down - ago + 0.2))


def assert_catalogued(
    bulletin: Bulletin | None,
    code: str,
    source: str,
    *,
    charger: str,
    pile_id: str | None,
    catalogue: Catalogue | None = None,
) -> Bulletin:
    """The bulletin names the fault and where it is, with the catalogue's causes and remedies."""
    assert bulletin is not None
    entry = (catalogue or load_catalogue())[code]
    assert (bulletin.code, bulletin.source) == (code, source)
    assert (bulletin.charger, bulletin.pile_id) == (charger, pile_id)
    assert bulletin.causes and bulletin.remedies
    assert bulletin.causes == entry.causes
    assert bulletin.remedies == entry.remedies
    for text in (*bulletin.causes, *bulletin.remedies, bulletin.title):
        assert text.en.strip() and text.zh.strip() and text.en != text.zh
    assert bulletin.since <= bulletin.detected_at <= bulletin.raised_at
    return bulletin


async def assert_the_only_fault(
    api: httpx.AsyncClient, bulletin: Bulletin, catalogue: Catalogue | None = None
) -> None:
    """The REST API shows this fault, and no other, in English and in Chinese."""
    entry = (catalogue or load_catalogue())[bulletin.code]
    for language in Language:
        views = await active_faults(api, lang=language.value)
        assert [(view["source"], view["code"]) for view in views] == [
            (bulletin.source, bulletin.code)
        ]
        view = views[0]
        assert view["id"] == bulletin.id
        assert view["active"] and view["cleared_at"] is None
        assert (view["charger"], view["pile_id"]) == (bulletin.charger, bulletin.pile_id)
        assert view["causes"] == [cause.in_language(language) for cause in entry.causes]
        assert view["remedies"] == [step.in_language(language) for step in entry.remedies]
        assert all(view["causes"]) and all(view["remedies"])


async def assert_cleared_in_history(api: httpx.AsyncClient, bulletin: Bulletin) -> dict[str, Any]:
    """The episode is in the history, cleared, with how long it lasted."""
    [episode] = await fault_history(api, source=bulletin.source, code=bulletin.code, limit="1")
    assert episode["id"] == bulletin.id
    assert not episode["active"]
    assert episode["cleared_at"] is not None
    assert episode["duration_seconds"] is not None and episode["duration_seconds"] > 0
    assert episode["causes"] and episode["remedies"]
    return episode


# -- the collectors -----------------------------------------------------------------------------


async def piles_down(station: StationRig, *chargers: str) -> set[str]:
    """The piles their collectors say are not up (out of service)."""
    down: set[str] = set()
    async with httpx.AsyncClient(timeout=5) as client:
        for charger in chargers or station.layout.charger_ids():
            response = await client.get(f"{station.collector_url(charger)}/api/v1/piles")
            assert response.status_code == 200, response.text
            down |= {pile["pile_id"] for pile in response.json() if not pile["up"]}
    return down


async def every_pile_back(station: StationRig, timeout: float = 10.0) -> None:
    async def back() -> bool:
        return await piles_down(station) == set()

    await until(back, timeout)


# -- a driver who should notice nothing ---------------------------------------------------------


@dataclass(frozen=True)
class Bystander:
    """A car charging on a pile that has nothing to do with the fault."""

    pile: str
    card: str
    session: dict[str, Any]


async def bystander(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, pile: str
) -> Bystander:
    card = new_card(verification)
    return Bystander(pile, card, await start_charge(piles, billing, pile, card))


async def assert_undisturbed(
    piles: Simulator, billing: httpx.Client, driver: Bystander, price: Decimal
) -> None:
    """It charged all along in the same session, and is billed exactly when its driver stops."""
    pile = piles.pile(driver.pile)
    assert pile.charging
    assert pile.session_id == driver.session["id"]
    assert pile.energy > Decimal(driver.session["meter_start"])
    active = sessions(billing, pile_id=driver.pile, status="active")
    assert [session["id"] for session in active] == [driver.session["id"]]
    record = await charge_and_stop(piles, billing, driver.pile, driver.card)
    assert record["id"] == driver.session["id"]
    assert record["stop_reason"] == "local"
    billed_exactly(record, price)
    await piles.unplug(driver.pile)
