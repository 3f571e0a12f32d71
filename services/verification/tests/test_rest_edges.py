"""The OpenAPI schema says what the handlers accept, and the handlers accept exactly that.

A client (a kiosk, an operator's script, a schema-driven fuzzer) builds its requests from
``/openapi.json``: a value the schema allows must not be refused, and one it refuses must
not be booked. Money is the sharp case: a JSON number is refused (it went through a float),
so the schema must not offer one; a zero top-up means nothing, so the schema must not allow
it either.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

AMOUNTS: list[Any] = [
    0.0,
    5,
    12.5,
    "0",
    "0.00",
    "-0",
    "-1",
    "0.0001",
    "0.00001",
    "0.01",
    "12.50",
    "1.50000",
    "007",
    "1e3",
    " 1",
    "12345678901234",
    "123456789012345",
    "12345678901234.9999",
]


def allows(schema: dict[str, Any], value: Any) -> bool:
    """What a JSON Schema validator says, for the keywords these schemas use."""
    if "anyOf" in schema:
        return any(allows(option, value) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return False
        return "pattern" not in schema or re.search(schema["pattern"], value) is not None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if "exclusiveMinimum" in schema and not value > schema["exclusiveMinimum"]:
            return False
        return "minimum" not in schema or value >= schema["minimum"]
    raise AssertionError(f"no such schema in this API: {schema}")


async def body_schema(service: Any, model: str, field: str) -> dict[str, Any]:
    spec = (await service.http.get("/openapi.json")).json()
    schema: dict[str, Any] = spec["components"]["schemas"][model]["properties"][field]
    return schema


@pytest.mark.parametrize("amount", AMOUNTS)
async def test_a_top_up_is_booked_exactly_when_its_schema_allows_it(
    service: Any, amount: Any
) -> None:
    schema = await body_schema(service, "TopUp", "amount")
    await service.issue("agree", balance="1.00")

    answer = await service.http.post("/api/v1/cards/agree/top-ups", json={"amount": amount})

    assert answer.status_code in (201, 422), answer.text
    assert (answer.status_code == 201) == allows(schema, amount), (amount, answer.text)


async def test_a_zero_top_up_is_refused_by_the_schema_and_the_handler(service: Any) -> None:
    schema = await body_schema(service, "TopUp", "amount")
    await service.issue("zero", balance="1.00")
    for zero in (0.0, 0, "0", "0.00"):
        assert not allows(schema, zero), zero
        answer = await service.http.post("/api/v1/cards/zero/top-ups", json={"amount": zero})
        assert answer.status_code == 422, answer.text
    assert (await service.http.get("/api/v1/cards/zero")).json()["balance"] == "1.00"


@pytest.mark.parametrize("balance", AMOUNTS)
async def test_an_opening_balance_is_taken_exactly_when_its_schema_allows_it(
    service: Any, balance: Any
) -> None:
    schema = await body_schema(service, "CardCreate", "balance")
    body = {"uid": "opening", "holder": "Ada", "balance": balance}

    answer = await service.http.post("/api/v1/cards", json=body)

    assert answer.status_code in (201, 422), answer.text
    assert (answer.status_code == 201) == allows(schema, balance), (balance, answer.text)


@pytest.mark.parametrize(
    "expires_at", [0.5, 1893456000, "1893456000", "2030-01-01 00:00:00Z", "2030-01-01"]
)
async def test_an_expiry_is_an_rfc3339_date_time_never_a_unix_time(
    service: Any, expires_at: Any
) -> None:
    """``AwareDatetime`` alone reads a number as Unix time, although the schema says
    ``format: date-time``: a card must not expire in 1970 because a client sent ``0.5``."""
    issued = await service.http.post(
        "/api/v1/cards", json={"uid": "dated", "holder": "Ada", "expires_at": expires_at}
    )
    assert issued.status_code == 422, issued.text
    await service.issue("dated", balance="1.00")
    changed = await service.http.patch("/api/v1/cards/dated", json={"expires_at": expires_at})
    assert changed.status_code == 422, changed.text
    fine = await service.http.patch(
        "/api/v1/cards/dated", json={"expires_at": "2030-01-01T08:00:00+08:00"}
    )
    assert fine.status_code == 200 and fine.json()["expires_at"] == "2030-01-01T00:00:00Z"
