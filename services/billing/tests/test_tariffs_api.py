"""Tariffs over REST: OCPI JSON in, versions out, and invalid ones refused by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

ENERGY_TARIFF: dict[str, Any] = {
    "currency": "CNY",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 1.45, "vat": 13, "step_size": 1}]}
    ],
}


async def put(billing: Any, tariff_id: str, body: Any) -> Any:
    return await billing.http.put(
        f"/api/v1/tariffs/{tariff_id}",
        content=json.dumps(body) if not isinstance(body, str) else body,
        headers={"content-type": "application/json"},
    )


async def test_a_tariff_is_stored_as_version_1_and_read_back_as_ocpi(billing: Any) -> None:
    answer = await put(billing, "peak", ENERGY_TARIFF)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["id"], body["version"]) == ("peak", 1)
    tariff = body["tariff"]
    assert tariff["id"] == "peak"
    assert tariff["country_code"] == "CN" and tariff["party_id"] == "STN"
    assert tariff["elements"][0]["price_components"][0] == {
        "type": "ENERGY",
        "price": "1.45",
        "vat": "13",
        "step_size": 1,
    }
    assert tariff["last_updated"] == billing.clock.now.isoformat().replace("+00:00", "Z")
    read = await billing.http.get("/api/v1/tariffs/peak")
    assert read.status_code == 200 and read.json() == body


async def test_putting_the_same_tariff_again_changes_nothing(billing: Any) -> None:
    first = await put(billing, "same", ENERGY_TARIFF)
    billing.clock.advance(minutes=5)
    again = await put(billing, "same", ENERGY_TARIFF)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len((await billing.http.get("/api/v1/tariffs/same/versions")).json()) == 1


async def test_a_changed_tariff_is_a_new_version_never_an_edit(billing: Any) -> None:
    await put(billing, "evolving", ENERGY_TARIFF)
    dearer = json.loads(json.dumps(ENERGY_TARIFF))
    dearer["elements"][0]["price_components"][0]["price"] = 1.65
    billing.clock.advance(days=1)
    second = await put(billing, "evolving", dearer)
    assert second.status_code == 201
    assert second.json()["version"] == 2

    versions = (await billing.http.get("/api/v1/tariffs/evolving/versions")).json()
    prices = [v["tariff"]["elements"][0]["price_components"][0]["price"] for v in versions]
    assert [v["version"] for v in versions] == [1, 2] and prices == ["1.45", "1.65"]
    first = await billing.http.get("/api/v1/tariffs/evolving", params={"version": "1"})
    assert first.json()["tariff"]["elements"][0]["price_components"][0]["price"] == "1.45"
    listed = {t["id"]: t["version"] for t in (await billing.http.get("/api/v1/tariffs")).json()}
    assert listed["evolving"] == 2


async def test_prices_are_read_from_their_json_text_exactly(billing: Any) -> None:
    body = (
        '{"currency": "CNY", "elements": [{"price_components": '
        '[{"type": "ENERGY", "price": 1.0000000000000001, "step_size": 0}]}]}'
    )
    answer = await put(billing, "precise", body)
    assert answer.status_code == 201, answer.text
    component = answer.json()["tariff"]["elements"][0]["price_components"][0]
    assert component["price"] == "1.0000000000000001"


async def test_times_are_given_back_as_ocpi_hh_mm(billing: Any) -> None:
    banded = {
        "currency": "CNY",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 0}],
                "restrictions": {"start_time": "23:00", "end_time": "07:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 1.1, "step_size": 0}]},
        ],
    }
    answer = await put(billing, "banded", banded)
    assert answer.json()["tariff"]["elements"][0]["restrictions"] == {
        "start_time": "23:00",
        "end_time": "07:00",
    }


def _with(change: dict[str, Any], where: tuple[Any, ...] = ()) -> dict[str, Any]:
    body = json.loads(json.dumps(ENERGY_TARIFF))
    target = body
    for key in where:
        target = target[key]
    target.update(change)
    return body


@pytest.mark.parametrize(
    ("body", "loc", "why"),
    [
        (
            _with({"price": -1}, ("elements", 0, "price_components", 0)),
            ["body", "elements", 0, "price_components", 0, "price"],
            "greater than or equal to 0",
        ),
        (
            _with({"type": "ENERGIE"}, ("elements", 0, "price_components", 0)),
            ["body", "elements", 0, "price_components", 0, "type"],
            "ENERGY",
        ),
        (
            _with({"vat": 113}, ("elements", 0, "price_components", 0)),
            ["body", "elements", 0, "price_components", 0, "vat"],
            "at most 100",
        ),
        (
            _with({"restrictions": {"min_kwh": 20, "max_kwh": 10}}, ("elements", 0)),
            ["body", "elements", 0, "restrictions", "max_kwh"],
            "greater than min_kwh",
        ),
        (
            _with({"restrictions": {"start_time": "08:00", "end_time": "08:00"}}, ("elements", 0)),
            ["body", "elements", 0, "restrictions", "end_time"],
            "equals start_time",
        ),
        (
            _with({"restrictions": {"start_time": "25:00"}}, ("elements", 0)),
            ["body", "elements", 0, "restrictions", "start_time"],
            "time",
        ),
        (_with({"elements": []}), ["body", "elements"], "at least 1"),
        (_with({"currency": "EUR"}), ["body", "currency"], "station's currency"),
        (_with({"id": "other"}), ["body", "id"], "the id in the path"),
        (
            _with({"max_price": {"excl_vat": "5.00", "incl_vat": "4.00"}}),
            ["body", "max_price", "incl_vat"],
            "not be less than excl_vat",
        ),
    ],
)
async def test_an_invalid_tariff_is_422_naming_the_field_and_why(
    billing: Any, body: dict[str, Any], loc: list[Any], why: str
) -> None:
    answer = await put(billing, "broken", body)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["detail"]
    assert any(error["loc"] == loc and why in error["msg"] for error in errors), errors
    assert (await billing.http.get("/api/v1/tariffs/broken")).status_code == 404


async def test_a_body_that_is_not_a_tariff_object_is_422(billing: Any) -> None:
    assert (await put(billing, "junk", "{not json")).status_code == 422
    assert (await put(billing, "junk", "[1, 2]")).status_code == 422


async def test_unknown_tariffs_and_versions_are_404(billing: Any) -> None:
    assert (await billing.http.get("/api/v1/tariffs/nope")).status_code == 404
    await put(billing, "once", ENERGY_TARIFF)
    missing = await billing.http.get("/api/v1/tariffs/once", params={"version": "2"})
    assert missing.status_code == 404
