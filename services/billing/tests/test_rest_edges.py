"""Billing's REST edges: an integer too big for its column, a moment that is not an RFC 3339
date-time, each answered 422 as the OpenAPI schema says, never a 500 or a guess."""

from __future__ import annotations

from typing import Any

import pytest

TOO_BIG = 2**63
"""One more than a 64-bit column holds: SQLite raised ``OverflowError`` on it (a 500)."""
LARGEST = 2**63 - 1

NOT_RFC3339 = ["0.5", "1700000000", "2025-01-01", "2025-01-01 08:00:00Z", "2025-01-01T08:00:00"]
"""What ``AwareDatetime`` alone reads (the first two as Unix times) or refuses unclearly."""


async def test_a_tariff_assignment_id_too_big_for_its_column_is_422(billing: Any) -> None:
    too_big = await billing.http.delete(f"/api/v1/tariff-assignments/{TOO_BIG}")
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["detail"][0]["loc"] == ["path", "assignment_id"]
    for unknown in (LARGEST, 1):
        answer = await billing.http.delete(f"/api/v1/tariff-assignments/{unknown}")
        assert answer.status_code == 404, answer.text
    for below in (0, -1):
        answer = await billing.http.delete(f"/api/v1/tariff-assignments/{below}")
        assert answer.status_code == 422, answer.text


async def test_a_tariff_version_too_big_for_its_column_is_422(billing: Any) -> None:
    too_big = await billing.http.get("/api/v1/tariffs/default", params={"version": str(TOO_BIG)})
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["detail"][0]["loc"] == ["query", "version"]
    largest = await billing.http.get("/api/v1/tariffs/default", params={"version": str(LARGEST)})
    assert largest.status_code == 404, largest.text


async def test_every_integer_parameter_says_its_bounds(billing: Any) -> None:
    """Every integer a path or query takes has a maximum a 64-bit column holds, so a
    schema-driven client never sends one the handler cannot look up."""
    spec = (await billing.http.get("/openapi.json")).json()
    integers = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                for option in schema.get("anyOf", [schema]):
                    if option.get("type") == "integer":
                        integers.append((method, path, parameter["name"], option))
    assert {(m, p, n) for m, p, n, _ in integers} >= {
        ("delete", "/api/v1/tariff-assignments/{assignment_id}", "assignment_id"),
        ("get", "/api/v1/tariffs/{tariff_id}", "version"),
    }
    for method, path, name, schema in integers:
        assert schema.get("minimum", -TOO_BIG) >= 1, (method, path, name)
        assert schema.get("maximum", TOO_BIG) <= LARGEST, (method, path, name)


@pytest.mark.parametrize("at", NOT_RFC3339)
async def test_the_tariff_in_effect_at_a_moment_takes_only_an_rfc3339_date_time(
    billing: Any, at: str
) -> None:
    answer = await billing.http.get("/api/v1/piles/c1-p01/tariff", params={"at": at})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", "at"]


async def test_the_tariff_in_effect_at_an_rfc3339_moment_is_answered(billing: Any) -> None:
    for at, shown in [
        ("2025-01-01T08:00:00+08:00", "2025-01-01T08:00:00+08:00"),
        ("2025-01-01t00:00:00.5z", "2025-01-01T00:00:00.500000Z"),
    ]:
        answer = await billing.http.get("/api/v1/piles/c1-p01/tariff", params={"at": at})
        assert answer.status_code == 200, answer.text
        assert answer.json()["at"] == shown
    spec = (await billing.http.get("/openapi.json")).json()
    (parameter,) = spec["paths"]["/api/v1/piles/{pile_id}/tariff"]["get"]["parameters"][1:]
    assert {"type": "string", "format": "date-time"} in parameter["schema"]["anyOf"]


@pytest.mark.parametrize("moment", [0.5, 1700000000, *NOT_RFC3339])
async def test_an_assignment_window_takes_only_rfc3339_date_times(
    billing: Any, moment: Any
) -> None:
    await billing.http.put(
        "/api/v1/tariffs/windowed",
        json={
            "currency": "CNY",
            "elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}]}],
        },
    )
    for field in ("valid_from", "valid_until"):
        answer = await billing.http.post(
            "/api/v1/tariff-assignments", json={"tariff_id": "windowed", field: moment}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", field]
    assert (await billing.http.get("/api/v1/tariff-assignments")).json() == []
