"""The board's read model: every pile of the station, as its owners' retained words say."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiomqtt

from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import load_catalogue
from station_protocol.messages import PileBoardState, PileMaintenance, PileSession, SessionStatus
from station_protocol.ocpi import Price
from station_tools.mosquitto import Mosquitto

Console = Owners = Any
"""The ``console`` and ``owners`` fixtures (see conftest)."""


def now() -> datetime:
    return datetime.now(UTC)


def bulletin(pile_id: str, code: str, bulletin_id: str = "b-1") -> Bulletin:
    catalogue = load_catalogue(None)
    at = now()
    return Bulletin.expand(
        catalogue[code],
        id=bulletin_id,
        source=pile_id,
        charger=pile_id.split("-")[0],
        pile_id=pile_id,
        since=at,
        detected_at=at,
        raised_at=at,
    )


async def test_every_pile_of_the_station_is_listed_in_order_and_offline_until_heard(
    console: Console,
) -> None:
    response = await console.http.get("/api/v1/piles")
    assert response.status_code == 200
    piles = response.json()
    assert [pile["id"] for pile in piles] == [
        "c1-p01", "c1-p02", "c1-p03", "c2-p01", "c2-p02", "c2-p03",
    ]  # fmt: skip
    assert {pile["state"] for pile in piles} == {"offline"}
    expected = {
        "id", "charger", "state", "power_kw", "energy_kwh", "linkquality", "last_seen",
        "session_id", "fault",
    }  # fmt: skip
    assert expected <= set(piles[0])


async def test_a_charging_pile_shows_its_power_energy_and_session(
    console: Console, owners: Owners, eventually: Any
) -> None:
    await owners.status(
        "c1-p02",
        PileBoardState.CHARGING,
        power=Decimal("7.2"),
        energy=Decimal("1234.5"),
        session_energy=Decimal("3.25"),
        linkquality=180,
        session_id="s-1",
    )

    async def charging() -> dict[str, Any] | None:
        pile = (await console.piles())["c1-p02"]
        return pile if pile["state"] == "charging" else None

    pile = await eventually(charging)
    assert (pile["charger"], pile["session_id"], pile["linkquality"]) == ("c1", "s-1", 180)
    assert Decimal(pile["power_kw"]) == Decimal("7.2")
    assert Decimal(pile["energy_kwh"]) == Decimal("1234.5")
    assert Decimal(pile["session_energy_kwh"]) == Decimal("3.25")
    assert pile["fault"] is None and pile["last_seen"] is not None


async def test_an_offline_collector_takes_all_its_piles_offline_and_back(
    console: Console, owners: Owners, eventually: Any
) -> None:
    for pile_id in ("c1-p01", "c2-p01"):
        await owners.status(pile_id, PileBoardState.AVAILABLE)
    await eventually(
        lambda: all(console.state.board.view(p).state == "available" for p in ("c1-p01", "c2-p01"))
    )
    await owners.collector("c1", online=False)
    await eventually(lambda: console.state.board.view("c1-p01").state == "offline")
    assert console.state.board.view("c2-p01").state == "available"
    await owners.collector("c1", online=True)
    await eventually(lambda: console.state.board.view("c1-p01").state == "available")


async def test_a_pile_with_bulletins_names_the_most_urgent_until_withdrawn(
    console: Console, owners: Owners, eventually: Any
) -> None:
    await owners.status("c2-p03", PileBoardState.FAULTED, faults=["pile_ground_failure"])
    weak = bulletin("c2-p03", "weak_zigbee_link", "b-weak")
    ground = bulletin("c2-p03", "pile_ground_failure", "b-ground")
    for shown in (weak, ground):
        topic = channels.FAULT_BULLETIN.topic(source=shown.source, code=shown.code)
        await owners.raw(topic, shown.model_dump_json().encode())

    async def fault() -> Any:
        return (await console.pile("c2-p03"))["fault"]

    assert await eventually(lambda: _equals(fault(), "pile_ground_failure"))
    listed = (await console.http.get("/api/v1/bulletins")).json()
    assert [b["code"] for b in listed] == ["pile_ground_failure", "weak_zigbee_link"]
    assert listed[0]["remedies"][0]["en"]  # the remedy, to show on the board
    await owners.raw(
        channels.FAULT_BULLETIN.topic(source="c2-p03", code="pile_ground_failure"), b""
    )
    assert await eventually(lambda: _equals(fault(), "weak_zigbee_link"))
    history = (await console.pile("c2-p03"))["history"]
    ground_episode = next(f for f in history["faults"] if f["id"] == "b-ground")
    assert ground_episode["cleared_at"] is not None


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_messages_about_no_pile_of_the_station_are_not_shown_but_counted(
    console: Console, owners: Owners, eventually: Any
) -> None:
    await owners.status("c9-p01", PileBoardState.CHARGING)  # beyond the 2x3 layout
    forged = (await owners.status("c1-p01", PileBoardState.CHARGING)).model_dump_json()
    await owners.raw(channels.PILE_STATUS.topic(pile="c1-p03"), forged.encode())  # wrong topic
    await owners.raw(channels.PILE_STATUS.topic(pile="c1-p02"), b"{not json")

    async def counted() -> bool:
        text = (await console.http.get("/metrics")).text
        return text.count('station_console_refused_messages_total{kind="pile_status"') >= 3

    assert await eventually(counted)
    piles = await console.piles()
    assert "c9-p01" not in piles
    assert piles["c1-p03"]["state"] == "offline"
    assert piles["c1-p02"]["state"] == "offline"


async def test_maintenance_is_published_for_the_collector_and_shown(
    console: Console, owners: Owners, own_mosquitto: Mosquitto
) -> None:
    await owners.status("c1-p01", PileBoardState.AVAILABLE)
    response = await console.http.put(
        "/api/v1/piles/c1-p01/maintenance", json={"active": True, "reason": "new cable"}
    )
    assert response.status_code == 200, response.text
    view = await console.pile("c1-p01")
    assert (view["state"], view["maintenance"], view["maintenance_reason"]) == (
        "maintenance", True, "new cable",
    )  # fmt: skip
    word = await retained(own_mosquitto, channels.PILE_MAINTENANCE.topic(pile="c1-p01"))
    assert (word.active, word.reason) == (True, "new cable")  # what the collector reads

    back = await console.http.put("/api/v1/piles/c1-p01/maintenance", json={"active": False})
    assert back.status_code == 200
    assert (await console.pile("c1-p01"))["state"] == "available"
    word = await retained(own_mosquitto, channels.PILE_MAINTENANCE.topic(pile="c1-p01"))
    assert word.active is False
    unknown = await console.http.put("/api/v1/piles/c5-p01/maintenance", json={"active": True})
    assert unknown.status_code == 404


async def retained(broker: Mosquitto, topic: str) -> PileMaintenance:
    """What a collector connecting now reads on ``topic``."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return PileMaintenance.model_validate_json(message.payload)
    raise AssertionError(f"nothing retained on {topic}")


async def test_completed_sessions_make_the_days_totals_and_the_piles_energy_per_day(
    console: Console, owners: Owners, eventually: Any
) -> None:
    for number, (energy, cost) in enumerate([("10.5", "12.60"), ("4.25", "5.10")], start=1):
        session = PileSession(
            session_id=f"s-{number}",
            pile_id="c2-p02",
            card_uid="CARD",
            status=SessionStatus.COMPLETED,
            started_at=now(),
            stopped_at=now(),
            total_cost=Price(excl_vat=Decimal(cost), incl_vat=Decimal(cost)),
            total_energy=Decimal(energy),
        )
        await owners.send(channels.PILE_SESSION, session, pile="c2-p02")

    async def totals() -> dict[str, Any] | None:
        body: dict[str, Any] = (await console.http.get("/api/v1/totals")).json()
        return body if body["sessions"] == 2 else None

    body = await eventually(totals)
    assert Decimal(body["energy_kwh"]) == Decimal("14.75")
    assert Decimal(body["revenue"]) == Decimal("17.70")
    history = (await console.pile("c2-p02"))["history"]
    assert [Decimal(day["energy_kwh"]) for day in history["energy_per_day"]] == [Decimal("14.75")]
    assert {s["session_id"] for s in history["sessions"]} == {"s-1", "s-2"}


async def test_unknown_pile_is_a_problem_document(console: Console) -> None:
    response = await console.http.get("/api/v1/piles/c7-p77")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["title"]) == (404, "Not Found")
    assert "c7-p77" in body["detail"]


async def test_the_board_snapshot_names_the_station_its_language_and_currency(
    console: Console,
) -> None:
    body = (await console.http.get("/api/v1/board")).json()
    assert (body["station"], body["language"], body["currency"]) == ("station", "zh", "CNY")
    assert body["chargers"] == {
        "c1": ["c1-p01", "c1-p02", "c1-p03"],
        "c2": ["c2-p01", "c2-p02", "c2-p03"],
    }
    assert isinstance(body["totals"]["revenue"], str)  # money as the API's exact string


async def test_the_board_page_and_its_assets_are_served(console: Console) -> None:
    page = await console.http.get("/")
    assert page.status_code == 200
    assert "/static/board.js" in page.text and "/static/board.css" in page.text
    for asset, kind in (("board.js", "javascript"), ("board.css", "text/css")):
        response = await console.http.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
