"""Restarts mid-session lose nothing (issue 3): the collector and billing killed with -9.

Its own module, hence its own station: these tests kill services.
"""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal

import httpx
import pytest

from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import (
    REPEAT_WINDOW,
    billed_exactly,
    charge_and_stop,
    completed,
    eventually,
    new_card,
    sessions,
    shown,
    start_charge,
)

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

PRICE = Decimal("1.20")
OPERATOR_STOP_WAIT = 3.0


@pytest.fixture(scope="module")
def station_env() -> dict[str, dict[str, str]]:
    """The usual test station; billing waits a short while for a collector's checkout."""
    collector = {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"}
    return {"collector": collector, "billing": {"operator_stop_wait": str(OPERATOR_STOP_WAIT)}}


async def restart(station: StationRig, name: str) -> None:
    """kill -9, then start again and wait until it is ready (in a thread: piles keep going)."""
    service = station[name]
    service.kill()
    await asyncio.to_thread(service.start, 60)


async def test_a_collector_restarted_mid_session_still_stops_and_bills_it(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    card, pile = new_card(verification), "c1-p01"
    session = await start_charge(piles, billing, pile, card)
    await restart(station, "collector-c1")
    collector = f"{station.collector_url('c1')}/api/v1/piles/{pile}"
    await eventually(lambda: httpx.get(collector, timeout=5).json()["phase"] == "charging")
    record = await charge_and_stop(piles, billing, pile, card)
    assert record["id"] == session["id"]
    assert record["stop_reason"] == "local"
    billed_exactly(record, PRICE)
    assert len(sessions(billing, card_uid=card)) == 1
    await piles.unplug(pile)


async def test_billing_restarted_mid_session_loses_nothing(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    card, pile = new_card(verification), "c1-p02"
    session = await start_charge(piles, billing, pile, card)
    await restart(station, "billing")
    assert sessions(billing, card_uid=card)[0]["status"] == "active"
    record = await charge_and_stop(piles, billing, pile, card)
    assert record["id"] == session["id"]
    billed_exactly(record, PRICE)
    await piles.unplug(pile)


async def test_a_checkout_while_billing_is_down_is_billed_once_it_is_back(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    card, pile = new_card(verification), "c2-p01"
    session = await start_charge(piles, billing, pile, card)
    await asyncio.sleep(REPEAT_WINDOW)
    station["billing"].kill()
    await piles.swipe(pile, card)
    await eventually(lambda: not piles.pile(pile).charging)
    await asyncio.sleep(2)  # the collector keeps asking; billing is not there
    await asyncio.to_thread(station["billing"].start, 60)
    record = await completed(billing, pile, card, timeout=30)
    assert record["id"] == session["id"]
    assert Decimal(record["meter_stop"]) == piles.pile(pile).energy
    billed_exactly(record, PRICE)
    assert len(sessions(billing, card_uid=card)) == 1
    await piles.unplug(pile)


async def test_a_session_billing_opens_after_the_collector_gave_up_is_withdrawn(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    """Billing stores the session but answers too late (frozen here; killed or cut off by a
    broker restart in the chaos test): the session ends with no energy instead of holding
    the pile busy for ever, and the pile charges again."""
    card, pile = new_card(verification), "c2-p02"
    await piles.plug(pile)
    station["billing"].signal(signal.SIGSTOP)
    try:
        await piles.swipe(pile, card)
        await eventually(lambda: "Billing unavailable" in shown(piles, pile), timeout=15)
    finally:
        station["billing"].signal(signal.SIGCONT)
    record = await completed(billing, pile, card, timeout=30)
    assert record["stop_reason"] == "start_failed"
    assert Decimal(record["total_energy"]) == 0
    assert not piles.pile(pile).charging
    assert len(sessions(billing, card_uid=card)) == 1
    await piles.unplug(pile)
    next_card = new_card(verification)
    await start_charge(piles, billing, pile, next_card)
    billed_exactly(await charge_and_stop(piles, billing, pile, next_card), PRICE)
    await piles.unplug(pile)


async def test_an_operator_stop_while_the_collector_is_down_ends_the_session(
    piles: Simulator, verification: httpx.Client, billing: httpx.Client, station: StationRig
) -> None:
    """Issue 10, point 2: an operator stop always ends a session, whatever state the
    collector is in. Billing closes it alone at its last believed reading; the collector,
    back, stops the pile billing closed instead of resuming it."""
    card, pile = new_card(verification), "c2-p04"
    session = await start_charge(piles, billing, pile, card)
    await asyncio.sleep(REPEAT_WINDOW)
    collector = station["collector-c2"]
    await asyncio.to_thread(collector.stop)
    try:
        response = await asyncio.to_thread(
            billing.post, f"/api/v1/sessions/{session['id']}/stop", timeout=30
        )
        assert response.status_code == 200, response.text
        record = response.json()
        assert (record["status"], record["stop_reason"]) == ("completed", "operator")
        assert record["anomaly"] == "closed_without_pile"
        billed_exactly(record, PRICE)  # up to the last reading billing believed
        assert piles.pile(pile).charging  # nobody could tell the pile yet
    finally:
        await asyncio.to_thread(collector.start, 60)
    await eventually(lambda: not piles.pile(pile).charging, timeout=20)
    await asyncio.sleep(1)
    [stored] = sessions(billing, card_uid=card)
    assert stored["status"] == "completed"
    assert stored["total_cost"] == record["total_cost"]  # billed once, as the stop said
    again = billing.post(f"/api/v1/sessions/{session['id']}/stop")
    assert again.json()["total_cost"] == record["total_cost"]
    await piles.unplug(pile)
    await asyncio.sleep(1)
    # The card and the pile are free for the next charge.
    await start_charge(piles, billing, pile, card)
    billed_exactly(await charge_and_stop(piles, billing, pile, card), PRICE)
    await piles.unplug(pile)
