"""The cards REST API as a kiosk or an operator uses it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import Session, select

from station_verification import ledger
from station_verification.models import LedgerEntry, LedgerKind


def card_path(uid: str) -> str:
    """The uid fully percent-encoded, dots too: clients collapse ``.``/``..`` segments."""
    return f"/api/v1/cards/{quote(uid, safe='').replace('.', '%2E')}"


async def test_an_issued_card_reads_back_with_its_opening_balance(service: Any) -> None:
    expires = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    created = await service.issue("04A2B3C4", balance="12.5", expires_at=expires.isoformat())

    assert created["uid"] == "04A2B3C4"
    assert created["holder"] == "Ada"
    assert created["status"] == "active"
    assert created["balance"] == "12.50"
    assert datetime.fromisoformat(created["expires_at"]) == expires
    created_at = datetime.fromisoformat(created["created_at"])
    assert created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)

    read = await service.http.get("/api/v1/cards/04A2B3C4")
    assert read.status_code == 200
    assert read.json() == created


async def test_a_card_without_balance_or_expiry_starts_empty_and_active(service: Any) -> None:
    answer = await service.http.post("/api/v1/cards", json={"uid": "plain", "holder": "Bo"})
    assert answer.status_code == 201
    assert answer.json()["balance"] == "0.00"
    assert answer.json()["expires_at"] is None
    assert answer.json()["status"] == "active"


async def test_an_unknown_card_is_404(service: Any) -> None:
    answer = await service.http.get("/api/v1/cards/nobody")
    assert answer.status_code == 404
    assert "nobody" in answer.json()["detail"]
    patched = await service.http.patch("/api/v1/cards/nobody", json={"status": "blocked"})
    assert patched.status_code == 404
    topped = await service.http.post("/api/v1/cards/nobody/top-ups", json={"amount": "5"})
    assert topped.status_code == 404


async def test_a_duplicate_uid_is_409_and_the_first_card_is_untouched(service: Any) -> None:
    await service.issue("twin", balance="3.00")
    again = await service.http.post(
        "/api/v1/cards", json={"uid": "twin", "holder": "Eve", "balance": "999"}
    )
    assert again.status_code == 409
    card = (await service.http.get("/api/v1/cards/twin")).json()
    assert (card["holder"], card["balance"]) == ("Ada", "3.00")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uid": "bad\x01uid"}, "uid"),
        ({"uid": "x" * 65}, "uid"),
        ({"uid": ""}, "uid"),
        ({"uid": "caf\u00e9"}, "uid"),
        ({"balance": "-1.00"}, "balance"),
        ({"balance": "ten"}, "balance"),
        ({"balance": "1e3"}, "balance"),
        ({"balance": "NaN"}, "balance"),
        ({"balance": 10.5}, "balance"),
        ({"balance": "1.00001"}, "balance"),
        ({"balance": "123456789012345.00"}, "balance"),
        ({"status": "stolen"}, "status"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"holder": "   "}, "holder"),
        ({"expiry": "2030-01-01T00:00:00Z"}, "expiry"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    service: Any, change: dict[str, Any], field: str
) -> None:
    body = {"uid": "good-uid", "holder": "Ada", "balance": "1.00", **change}
    answer = await service.http.post("/api/v1/cards", json=body)
    assert answer.status_code == 422, answer.text
    assert any(field in error["loc"] for error in answer.json()["detail"])
    assert (await service.http.get("/api/v1/cards/good-uid")).status_code == 404


async def test_a_64_character_uid_is_accepted(service: Any) -> None:
    uid = "A" * 64
    await service.issue(uid)
    assert (await service.http.get(card_path(uid))).json()["uid"] == uid


@pytest.mark.parametrize(
    "uid", ["a/b", "x?y=1", "card 7", "100%/#frag", "/lead", "trail/", "top-ups", "..", "a/../b"]
)
async def test_uids_with_url_characters_work_when_percent_encoded(service: Any, uid: str) -> None:
    await service.issue(uid, balance="1.00")

    read = await service.http.get(card_path(uid))
    assert read.status_code == 200
    assert read.json()["uid"] == uid

    blocked = await service.http.patch(card_path(uid), json={"status": "blocked"})
    assert blocked.status_code == 200
    assert blocked.json()["status"] == "blocked"

    topped = await service.http.post(f"{card_path(uid)}/top-ups", json={"amount": "2.00"})
    assert topped.status_code == 201
    assert (topped.json()["uid"], topped.json()["balance"]) == (uid, "3.00")


async def test_a_slash_in_a_uid_works_unencoded_too(service: Any) -> None:
    await service.issue("dept/7/card", balance="1.00")
    assert (await service.http.get("/api/v1/cards/dept/7/card")).json()["uid"] == "dept/7/card"
    topped = await service.http.post("/api/v1/cards/dept/7/card/top-ups", json={"amount": "1"})
    assert topped.json()["balance"] == "2.00"


async def test_block_unblock_and_expiry(service: Any) -> None:
    await service.issue("c-1")
    path = card_path("c-1")

    blocked = await service.http.patch(path, json={"status": "blocked"})
    assert blocked.json()["status"] == "blocked"
    assert (await service.http.get(path)).json()["status"] == "blocked"

    expiry = "2031-06-30T23:59:59+02:00"
    unblocked = await service.http.patch(path, json={"status": "active", "expires_at": expiry})
    assert unblocked.json()["status"] == "active"
    read_expiry = datetime.fromisoformat(unblocked.json()["expires_at"])
    assert read_expiry == datetime.fromisoformat(expiry)

    only_expiry = await service.http.patch(path, json={"expires_at": None})
    assert only_expiry.json()["expires_at"] is None
    assert only_expiry.json()["status"] == "active"

    untouched = await service.http.patch(path, json={})
    assert untouched.status_code == 200
    assert untouched.json()["balance"] == "20.00"


@pytest.mark.parametrize(
    "body",
    [
        {"status": None},
        {"status": "stolen"},
        {"expires_at": "2030-01-01T00:00:00"},
        {"balance": "100.00"},
    ],
)
async def test_bad_updates_are_422_and_change_nothing(service: Any, body: dict[str, Any]) -> None:
    await service.issue("c-2", balance="5.00")
    answer = await service.http.patch(card_path("c-2"), json=body)
    assert answer.status_code == 422, answer.text
    card = (await service.http.get(card_path("c-2"))).json()
    assert (card["status"], card["balance"], card["expires_at"]) == ("active", "5.00", None)


async def test_top_ups_sum_exactly(service: Any) -> None:
    await service.issue("prepaid", balance="0.1")
    topped = await service.http.post(
        "/api/v1/cards/prepaid/top-ups", json={"amount": "0.2", "reference": "pay-1"}
    )
    assert topped.status_code == 201
    assert topped.json()["balance"] == "0.30"
    for _ in range(7):
        await service.http.post("/api/v1/cards/prepaid/top-ups", json={"amount": "0.1"})
    assert (await service.http.get("/api/v1/cards/prepaid")).json()["balance"] == "1.00"
    with Session(service.engine) as db:
        assert ledger.balance(db, "prepaid") == Decimal("1")


async def test_sub_cent_amounts_are_kept_and_shown(service: Any) -> None:
    await service.issue("fine", balance="0.0001")
    topped = await service.http.post("/api/v1/cards/fine/top-ups", json={"amount": "0.0002"})
    assert topped.json()["balance"] == "0.0003"


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "abc", 5, "1.00001", None])
async def test_a_top_up_must_be_a_positive_decimal_string(service: Any, amount: Any) -> None:
    await service.issue("strict", balance="1.00")
    answer = await service.http.post("/api/v1/cards/strict/top-ups", json={"amount": amount})
    assert answer.status_code == 422, answer.text
    assert (await service.http.get("/api/v1/cards/strict")).json()["balance"] == "1.00"


async def test_a_retried_top_up_with_its_reference_is_booked_once(service: Any) -> None:
    await service.issue("kiosk", balance="0")
    for _ in range(3):
        answer = await service.http.post(
            "/api/v1/cards/kiosk/top-ups", json={"amount": "10.00", "reference": "rcpt-77"}
        )
        assert answer.status_code == 201
        assert answer.json()["balance"] == "10.00"
    clash = await service.http.post(
        "/api/v1/cards/kiosk/top-ups", json={"amount": "50.00", "reference": "rcpt-77"}
    )
    assert clash.status_code == 409
    assert (await service.http.get("/api/v1/cards/kiosk")).json()["balance"] == "10.00"


async def test_the_balance_is_the_sum_of_the_ledger(service: Any) -> None:
    """A debit booked by billing (a later issue) shows at once: nothing is cached."""
    await service.issue("ledgered", balance="20.00")
    with Session(service.engine) as db:
        ledger.book(
            db,
            "ledgered",
            LedgerKind.SESSION_DEBIT,
            Decimal("-7.35"),
            datetime.now(UTC),
            session_id="s-1",
        )
        db.commit()
        kinds = db.exec(select(LedgerEntry.kind).where(LedgerEntry.card_uid == "ledgered")).all()
    assert sorted(kinds) == ["opening", "session_debit"]
    assert (await service.http.get("/api/v1/cards/ledgered")).json()["balance"] == "12.65"


async def test_health_and_readiness(service: Any) -> None:
    assert (await service.http.get("/health")).json() == {"status": "ok", "pid": os.getpid()}
    ready = await service.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "database": True}
