"""The console as its users meet it on a running station: the board's data, the operator's
actions and the card kiosk, over its REST API, with every other service a real process.

What each test checks is what the person would: the balance the kiosk shows after a
top-up, the record an operator stop leaves, the bulletin an acknowledgement marks, the
maintenance word the piles hear.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import aiomqtt
import httpx
import pytest

from station_protocol import channels
from station_protocol.messages import PileMaintenance
from station_tools.mosquitto import Mosquitto
from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import charge_and_stop, eventually, new_card, sessions, start_charge

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def console(station: StationRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url("console") + "/api/v1", timeout=20) as client:
        yield client


@pytest.fixture
async def bus(station_broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", station_broker.port, identifier=f"test-{uuid.uuid4().hex[:8]}"
    ) as client:
        yield client


def board_pile(console: httpx.Client, pile: str) -> dict[str, Any]:
    answer = console.get(f"/piles/{pile}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def refused(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["detail"]
    return body


# -- the board's data ---------------------------------------------------------------------


async def test_the_board_draws_every_pile_of_the_station(
    piles: Simulator, console: httpx.Client, station: StationRig
) -> None:
    board = console.get("/board").json()
    layout = station.layout
    assert board["chargers"] == {c: layout.piles_of(c) for c in layout.charger_ids()}
    assert sorted(p["id"] for p in board["piles"]) == sorted(layout.pile_ids())
    assert board["station"] == station.station_id
    refused(console.get("/piles/c9-p01"), 404)


async def test_a_charge_shows_in_todays_totals_and_the_piles_history(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    before = console.get("/totals").json()
    card, pile = new_card(verification), "c1-p03"
    await start_charge(piles, billing, pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    await piles.unplug(pile)

    def counted() -> dict[str, Any] | None:
        totals: dict[str, Any] = console.get("/totals").json()
        return totals if totals["sessions"] == before["sessions"] + 1 else None

    totals = await eventually(counted)
    energy = Decimal(totals["energy_kwh"]) - Decimal(before["energy_kwh"])
    revenue = Decimal(totals["revenue"]) - Decimal(before["revenue"])
    assert energy == Decimal(record["total_energy"])
    assert revenue == Decimal(record["total_cost"]["incl_vat"])

    def in_history() -> list[dict[str, Any]]:
        history = board_pile(console, pile)["history"]
        return [s for s in history["sessions"] if s["session_id"] == record["id"]]

    [seen] = await eventually(in_history)
    assert Decimal(seen["energy_kwh"]) == Decimal(record["total_energy"])
    assert Decimal(seen["cost"]) == Decimal(record["total_cost"]["incl_vat"])


# -- operator actions -----------------------------------------------------------------------


async def test_an_operator_stops_a_session_from_the_console_and_it_is_billed(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p03"
    session = await start_charge(piles, billing, pile, card)
    await eventually(lambda: board_pile(console, pile)["session_id"] == session["id"])

    answer = console.post(f"/sessions/{session['id']}/stop")

    assert answer.status_code in (200, 202), answer.text
    await eventually(lambda: not piles.pile(pile).charging)
    [record] = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="completed")
    )
    assert record["id"] == session["id"]
    assert record["stop_reason"] == "operator"
    await piles.unplug(pile)
    refused(console.post(f"/sessions/{uuid.uuid4()}/stop"), 404)


async def test_an_operator_acknowledges_a_bulletin_on_the_console(
    piles: Simulator, console: httpx.Client
) -> None:
    pile = "c1-p04"
    await piles.set_error(pile, "GroundFailure")

    def shown() -> list[dict[str, Any]]:
        return [b for b in console.get("/bulletins").json() if b["pile_id"] == pile]

    [bulletin] = await eventually(shown)
    assert bulletin["code"] == "pile_ground_failure"
    assert bulletin["remedies"]
    assert board_pile(console, pile)["fault"] == "pile_ground_failure"

    answer = console.post(f"/bulletins/{bulletin['id']}/ack", json={"who": "duty engineer"})

    assert answer.status_code == 200, answer.text
    await eventually(lambda: shown() and shown()[0].get("acked_by") == "duty engineer")
    refused(console.post("/bulletins/no-such-bulletin/ack", json={"who": "x"}), 404)
    await piles.set_error(pile, "NoError")
    await eventually(lambda: not shown())


async def test_maintenance_is_a_retained_word_to_the_piles_collector(
    piles: Simulator, console: httpx.Client, bus: aiomqtt.Client
) -> None:
    pile = "c2-p04"
    answer = console.put(
        f"/piles/{pile}/maintenance", json={"active": True, "reason": "new cable", "who": "li"}
    )
    assert answer.status_code == 200, answer.text

    await bus.subscribe(channels.PILE_MAINTENANCE.topic(pile=pile))
    message = await asyncio.wait_for(anext(aiter(bus.messages)), 5)
    assert message.retain
    word = PileMaintenance.model_validate_json(bytes(message.payload))  # type: ignore[arg-type]
    assert (word.pile_id, word.active, word.reason) == (pile, True, "new cable")
    await eventually(lambda: board_pile(console, pile)["maintenance"])
    assert board_pile(console, pile)["maintenance_reason"] == "new cable"

    back = console.put(f"/piles/{pile}/maintenance", json={"active": False, "who": "li"})
    assert back.status_code == 200, back.text
    await eventually(lambda: not board_pile(console, pile)["maintenance"])
    refused(console.put("/piles/c9-p01/maintenance", json={"active": True}), 404)
    refused(console.put(f"/piles/{pile}/maintenance", json={"active": "perhaps"}), 422)


# -- the card kiosk -------------------------------------------------------------------------


async def test_the_kiosk_shows_a_cards_balance_and_tops_it_up_once_per_payment(
    console: httpx.Client, verification: httpx.Client
) -> None:
    card = new_card(verification, balance="20.00")
    shown = console.get(f"/kiosk/cards/{card}").json()
    assert Decimal(shown["balance"]) == Decimal("20.00")

    payment = {"amount": "50.00", "reference": f"pay-{uuid.uuid4().hex[:8]}"}
    first = console.post(f"/kiosk/cards/{card}/top-ups", json=payment)
    again = console.post(f"/kiosk/cards/{card}/top-ups", json=payment)

    assert first.status_code == 201, first.text
    assert again.status_code in (200, 201), again.text
    assert Decimal(console.get(f"/kiosk/cards/{card}").json()["balance"]) == Decimal("70.00")
    assert Decimal(verification.get(f"/api/v1/cards/{card}").json()["balance"]) == Decimal("70.00")


@pytest.mark.parametrize(
    "payment",
    [
        {"amount": "0", "reference": "r1"},
        {"amount": "-5.00", "reference": "r2"},
        {"amount": "1.005", "reference": "r3"},
        {"amount": "NaN", "reference": "r4"},
        {"amount": 10.5, "reference": "r6"},
        {"amount": "10.00"},
        {"amount": "10.00", "reference": "   "},
        {"amount": "10.00", "reference": "r5", "bonus": "1"},
    ],
)
async def test_the_kiosk_refuses_a_top_up_that_cannot_be_right(
    console: httpx.Client, verification: httpx.Client, payment: dict[str, object]
) -> None:
    card = new_card(verification, balance="5.00")
    body = refused(console.post(f"/kiosk/cards/{card}/top-ups", json=payment), 422)
    assert body["detail"]
    assert Decimal(verification.get(f"/api/v1/cards/{card}").json()["balance"]) == Decimal("5.00")


async def test_the_kiosk_says_unknown_for_a_card_the_station_does_not_know(
    console: httpx.Client,
) -> None:
    body = refused(console.get("/kiosk/cards/NOBODY-123"), 404)
    assert body["reason"] == "unknown"
    payment = {"amount": "10.00", "reference": "pay-unknown"}
    body = refused(console.post("/kiosk/cards/NOBODY-123/top-ups", json=payment), 404)
    assert body["reason"] == "unknown"
    # a uid that is no printable text is refused before any owner is asked
    refused(console.get("/kiosk/cards/%E2%98%83"), 422)


async def test_the_kiosk_shows_a_blocked_card_as_blocked(
    console: httpx.Client, verification: httpx.Client
) -> None:
    card = new_card(verification, status="blocked")
    shown = console.get(f"/kiosk/cards/{card}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "blocked"


async def test_the_kiosk_prints_the_receipt_the_pile_showed(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c1-p02"
    await start_charge(piles, billing, pile, card)
    record = await charge_and_stop(piles, billing, pile, card)
    await piles.unplug(pile)

    receipt = console.get(f"/kiosk/sessions/{record['id']}/receipt")

    assert receipt.status_code == 200, receipt.text
    # the same as billing's (whose balance line may still change from "pending" meanwhile)
    path = f"/sessions/{record['id']}/receipt"
    await eventually(
        lambda: console.get(f"/kiosk{path}").json() == billing.get(f"/api/v1{path}").json()
    )
    assert record["total_cost"]["incl_vat"] in json.dumps(receipt.json())
    cards_view = console.get(f"/kiosk/cards/{card}").json()
    assert record["id"] in [s["id"] for s in cards_view["sessions"]]
    refused(console.get(f"/kiosk/sessions/{uuid.uuid4()}/receipt"), 404)


async def test_the_kiosk_shows_the_price_in_effect_at_a_pile(
    piles: Simulator, console: httpx.Client
) -> None:
    def priced() -> dict[str, Any] | None:
        answer = console.get("/kiosk/piles/c2-p02/price")
        return answer.json() if answer.status_code == 200 else None

    price = await eventually(priced)
    assert price["pile_id"] == "c2-p02"
    assert price["lines"]
    refused(console.get("/kiosk/piles/c9-p01/price"), 404)


# -- the board follows the piles, the kiosk drives them -------------------------------------


def state_of(console: httpx.Client, pile: str) -> str:
    return str(board_pile(console, pile)["state"])


async def test_the_board_follows_a_charge_from_plug_to_available(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c2-p01"
    await eventually(lambda: state_of(console, pile) == "available")
    await piles.plug(pile)
    await eventually(lambda: state_of(console, pile) == "plugged")
    await piles.swipe(pile, card)
    session = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="active")
    )

    def charging() -> dict[str, Any] | None:
        view = board_pile(console, pile)
        flowing = view["state"] == "charging" and Decimal(view["session_energy_kwh"] or 0) > 0
        return view if flowing else None

    view = await eventually(charging)
    assert view["session_id"] == session[0]["id"]
    assert Decimal(view["power_kw"]) > 0
    await charge_and_stop(piles, billing, pile, card)
    await piles.unplug(pile)
    await eventually(lambda: state_of(console, pile) == "available")
    states = [point["state"] for point in board_pile(console, pile)["history"]["states"]]
    assert {"plugged", "charging", "available"} <= set(states)


async def test_a_card_at_the_kiosk_starts_and_stops_a_charge(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c1-p01"
    await piles.plug(pile)

    started = console.post(f"/kiosk/piles/{pile}/start", json={"card_uid": card})

    assert started.status_code == 200, started.text
    reply = started.json()
    assert reply["outcome"] == "started" and reply["session_id"]
    await eventually(lambda: piles.pile(pile).charging)
    await eventually(lambda: board_pile(console, pile)["session_id"] == reply["session_id"])
    await asyncio.sleep(1.0)

    stopped = console.post(f"/kiosk/piles/{pile}/stop", json={"card_uid": card})

    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["outcome"] == "stopping"
    await eventually(lambda: not piles.pile(pile).charging)
    [record] = await eventually(
        lambda: sessions(billing, pile_id=pile, card_uid=card, status="completed")
    )
    assert record["id"] == reply["session_id"]
    receipt = await eventually(
        lambda: console.get(f"/kiosk/sessions/{record['id']}/receipt").status_code == 200
    )
    assert receipt
    await piles.unplug(pile)


async def test_the_kiosk_refuses_what_the_pile_would_refuse(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    pile = "c2-p02"
    await piles.plug(pile)
    body = refused(console.post(f"/kiosk/piles/{pile}/start", json={"card_uid": "NOBODY"}), 409)
    assert body["reason"] == "unknown"
    blocked = new_card(verification, status="blocked")
    body = refused(console.post(f"/kiosk/piles/{pile}/start", json={"card_uid": blocked}), 409)
    assert body["reason"] == "blocked"
    owner, other = new_card(verification), new_card(verification)
    body = refused(console.post(f"/kiosk/piles/{pile}/stop", json={"card_uid": owner}), 409)
    assert body["reason"] == "no_session"

    await piles.swipe(pile, owner)
    await eventually(lambda: sessions(billing, pile_id=pile, card_uid=owner, status="active"))
    body = refused(console.post(f"/kiosk/piles/{pile}/start", json={"card_uid": other}), 409)
    assert body["reason"] == "busy"
    body = refused(console.post(f"/kiosk/piles/{pile}/stop", json={"card_uid": other}), 409)
    assert body["reason"] == "busy"
    await charge_and_stop(piles, billing, pile, owner)
    await piles.unplug(pile)
    # the refused card is not held: it charges at once elsewhere
    await start_charge(piles, billing, "c2-p04", other)
    await charge_and_stop(piles, billing, "c2-p04", other)
    await piles.unplug("c2-p04")
    refused(console.post("/kiosk/piles/c9-p01/start", json={"card_uid": owner}), 404)
    refused(console.post(f"/kiosk/piles/{pile}/start", json={}), 422)


async def test_a_pile_in_maintenance_refuses_the_card_at_the_pile_and_the_kiosk(
    piles: Simulator, console: httpx.Client, verification: httpx.Client, billing: httpx.Client
) -> None:
    card, pile = new_card(verification), "c1-p04"
    answer = console.put(f"/piles/{pile}/maintenance", json={"active": True, "reason": "RCD test"})
    assert answer.status_code == 200, answer.text
    await eventually(lambda: state_of(console, pile) == "maintenance")
    await piles.plug(pile)

    body = refused(console.post(f"/kiosk/piles/{pile}/start", json={"card_uid": card}), 409)
    assert body["reason"] == "maintenance"
    await piles.swipe(pile, card)
    await asyncio.sleep(1.0)
    assert not piles.pile(pile).charging
    assert not sessions(billing, pile_id=pile, card_uid=card)

    back = console.put(f"/piles/{pile}/maintenance", json={"active": False})
    assert back.status_code == 200, back.text
    await eventually(lambda: state_of(console, pile) == "plugged")
    await asyncio.sleep(1.0)
    await piles.swipe(pile, card)
    await charge_and_stop(piles, billing, pile, card)
    await piles.unplug(pile)
