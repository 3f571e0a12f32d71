"""Tariff assignments: station, charger, pile (most specific wins), validity windows, freezing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any


def energy_tariff(price: str) -> dict[str, Any]:
    return {
        "currency": "CNY",
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 0}]}],
    }


async def put_tariff(billing: Any, tariff_id: str, price: str) -> dict[str, Any]:
    answer = await billing.http.put(
        f"/api/v1/tariffs/{tariff_id}", content=json.dumps(energy_tariff(price))
    )
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


async def assign(billing: Any, tariff_id: str, **where: Any) -> dict[str, Any]:
    answer = await billing.http.post(
        "/api/v1/tariff-assignments", json={"tariff_id": tariff_id, **where}
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def in_effect(billing: Any, pile: str, at: Any = None) -> dict[str, Any]:
    params = {"at": at.isoformat()} if at is not None else {}
    answer = await billing.http.get(f"/api/v1/piles/{pile}/tariff", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_most_specific_wins_pile_over_charger_over_station(
    billing: Any, new_pile: Any
) -> None:
    pile, neighbour = new_pile(), new_pile()
    other_charger_pile = "c999-p01"
    charger = pile.split("-")[0]
    for name, price in (("station-wide", "1.00"), ("cabinet", "1.10"), ("this-pile", "1.20")):
        await put_tariff(billing, name, price)
    assert (await in_effect(billing, pile))["tariff_id"] == "default"

    await assign(billing, "this-pile", pile_id=pile)
    await assign(billing, "station-wide")
    await assign(billing, "cabinet", charger_id=charger)

    assert (await in_effect(billing, pile))["tariff_id"] == "this-pile"
    if neighbour.split("-")[0] == charger:
        assert (await in_effect(billing, neighbour))["tariff_id"] == "cabinet"
    assert (await in_effect(billing, other_charger_pile))["tariff_id"] == "station-wide"
    found = await in_effect(billing, pile)
    assert found["assignment"]["scope"] == "pile" and found["assignment"]["target"] == pile
    assert found["version"] == 1


async def test_validity_windows_start_inclusive_end_exclusive(billing: Any, new_pile: Any) -> None:
    pile = new_pile()
    now = billing.clock.now
    await put_tariff(billing, "summer", "0.90")
    await assign(
        billing,
        "summer",
        pile_id=pile,
        valid_from=(now + timedelta(hours=1)).isoformat(),
        valid_until=(now + timedelta(hours=2)).isoformat(),
    )
    assert (await in_effect(billing, pile))["tariff_id"] == "default"
    assert (await in_effect(billing, pile, now + timedelta(hours=1)))["tariff_id"] == "summer"
    inside = now + timedelta(hours=2) - timedelta(microseconds=1)
    assert (await in_effect(billing, pile, inside))["tariff_id"] == "summer"
    assert (await in_effect(billing, pile, now + timedelta(hours=2)))["tariff_id"] == "default"


async def test_a_scheduled_assignment_takes_over_a_standing_one_when_it_starts(
    billing: Any, new_pile: Any
) -> None:
    pile = new_pile()
    now = billing.clock.now
    await put_tariff(billing, "standing", "1.00")
    await put_tariff(billing, "new-year", "1.30")
    await assign(billing, "standing", pile_id=pile)
    await assign(
        billing, "new-year", pile_id=pile, valid_from=(now + timedelta(days=1)).isoformat()
    )
    assert (await in_effect(billing, pile))["tariff_id"] == "standing"
    assert (await in_effect(billing, pile, now + timedelta(days=2)))["tariff_id"] == "new-year"


async def test_removing_an_assignment_falls_back_to_the_next(billing: Any, new_pile: Any) -> None:
    pile = new_pile()
    await put_tariff(billing, "fallback-station", "1.00")
    await put_tariff(billing, "fallback-pile", "2.00")
    await assign(billing, "fallback-station")
    made = await assign(billing, "fallback-pile", pile_id=pile)
    assert (await in_effect(billing, pile))["tariff_id"] == "fallback-pile"
    removed = await billing.http.delete(f"/api/v1/tariff-assignments/{made['id']}")
    assert removed.status_code == 204
    assert (await in_effect(billing, pile))["tariff_id"] == "fallback-station"
    again = await billing.http.delete(f"/api/v1/tariff-assignments/{made['id']}")
    assert again.status_code == 404
    listed = (await billing.http.get("/api/v1/tariff-assignments")).json()
    assert made["id"] not in [row["id"] for row in listed]


async def test_bad_assignments_are_422_naming_the_field(billing: Any) -> None:
    await put_tariff(billing, "exists", "1.00")
    now = billing.clock.now

    async def refused(body: dict[str, Any]) -> list[dict[str, Any]]:
        answer = await billing.http.post("/api/v1/tariff-assignments", json=body)
        assert answer.status_code == 422, answer.text
        detail: list[dict[str, Any]] = answer.json()["detail"]
        return detail

    unknown = await refused({"tariff_id": "missing"})
    assert unknown[0]["loc"] == ["body", "tariff_id"] and "missing" in unknown[0]["msg"]
    both = await refused({"tariff_id": "exists", "pile_id": "c1-p01", "charger_id": "c1"})
    assert "not both" in both[0]["msg"]
    backwards = await refused(
        {
            "tariff_id": "exists",
            "valid_from": now.isoformat(),
            "valid_until": (now - timedelta(hours=1)).isoformat(),
        }
    )
    assert "valid_until" in backwards[0]["msg"]
    bad_pile = await refused({"tariff_id": "exists", "pile_id": "pile-7"})
    assert bad_pile[0]["loc"] == ["body", "pile_id"]
    naive = await refused({"tariff_id": "exists", "valid_from": "2026-12-01T00:00:00"})
    assert naive[0]["loc"] == ["body", "valid_from"]


async def test_a_session_freezes_the_assigned_tariff_and_a_change_during_it_changes_nothing(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session, later = new_pile(), str(uuid.uuid4()), str(uuid.uuid4())
    await put_tariff(billing, "frozen", "1.50")
    await assign(billing, "frozen", pile_id=pile)
    assert (await collector.open(session, pile, "CARD-F", meter_start="100")).opened

    billing.clock.advance(minutes=10)
    changed = await put_tariff(billing, "frozen", "3.00")
    assert changed["version"] == 2
    billing.clock.advance(minutes=10)
    reply = await collector.checkout(session, pile, meter_stop="110")

    assert reply.receipt is not None
    assert reply.receipt.total_cost.incl_vat == Decimal("15.00")  # 10 kWh at version 1
    record = await billing.session(session)
    assert (record["tariff_id"], record["tariff_version"]) == ("frozen", 1)
    cdr = (await billing.http.get(f"/api/v1/sessions/{session}/cdr")).json()
    assert cdr["tariffs"][0]["elements"][0]["price_components"][0]["price"] == "1.50"

    await collector.open(later, pile, "CARD-F", meter_start="110")
    await collector.checkout(later, pile, meter_stop="120")
    assert (await billing.session(later))["total_cost"]["incl_vat"] == "30.00"
    assert (await billing.session(later))["tariff_version"] == 2
