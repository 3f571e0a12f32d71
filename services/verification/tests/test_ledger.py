"""The prepaid ledger: debits over the bus (exactly once), refunds and the ledger over REST."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from alembic import command
from alembic.config import Config

from station_protocol import channels
from station_protocol.messages import (
    BalanceReply,
    BalanceRequest,
    DebitResult,
)
from station_runtime.bus import Bus
from station_runtime.migrations import make_engine, migrate
from station_verification.main import SPEC


async def ledger_of(service: Any, card: str) -> dict[str, Any]:
    answer = await service.http.get(f"/api/v1/cards/{quote(card, safe='')}/ledger")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ledger_sum(body: dict[str, Any]) -> Decimal:
    return sum((Decimal(entry["amount"]) for entry in body["entries"]), Decimal(0))


async def test_a_session_is_debited_once_however_often_it_is_asked(
    service: Any, collector: Bus, billing: Any
) -> None:
    await service.issue("debit-me", balance="50.00")
    first = await billing.debit("debit-me", "14.81", "s-once")
    again = await billing.debit("debit-me", "14.81", "s-once")
    third = await billing.debit("debit-me", "14.81", "s-once")

    assert (first.result, first.amount, first.balance) == (
        DebitResult.BOOKED,
        Decimal("14.81"),
        Decimal("35.19"),
    )
    assert first.settled and again.settled and third.settled
    assert (again.result, again.balance) == (DebitResult.ALREADY_BOOKED, Decimal("35.19"))
    body = await ledger_of(service, "debit-me")
    assert [(e["kind"], e["amount"], e["session_id"]) for e in body["entries"]] == [
        ("opening", "50.00", None),
        ("session_debit", "-14.81", "s-once"),
    ]
    assert body["balance"] == "35.19" == str(ledger_sum(body))
    booked = await service.metric("station_verification_debits_total", result="booked")
    repeated = await service.metric("station_verification_debits_total", result="already_booked")
    assert (booked, repeated) == (1, 2)


async def test_a_debit_may_take_the_balance_below_zero(
    service: Any, collector: Bus, billing: Any
) -> None:
    """The energy was delivered; the card is then refused its next charge (min balance)."""
    await service.issue("thin", balance="1.00")
    reply = await billing.debit("thin", "3.50")
    assert (reply.result, reply.balance) == (DebitResult.BOOKED, Decimal("-2.50"))
    assert (await service.http.get("/api/v1/cards/thin")).json()["balance"] == "-2.50"


async def test_unknown_cards_bad_amounts_and_conflicts_are_refused(
    service: Any, collector: Bus, billing: Any
) -> None:
    await service.issue("strict", balance="20.00")
    unknown = await billing.debit("nobody-has-this", "1.00")
    too_fine = await billing.debit("strict", "1.00001")
    await billing.debit("strict", "2.00", "s-conflict")
    other_amount = await billing.debit("strict", "3.00", "s-conflict")

    assert unknown.result == DebitResult.UNKNOWN_CARD and not unknown.settled
    assert too_fine.result == DebitResult.INVALID and not too_fine.settled
    assert other_amount.result == DebitResult.CONFLICT and not other_amount.settled
    assert other_amount.amount == Decimal("2.00")
    body = await ledger_of(service, "strict")
    assert body["balance"] == "18.00"
    assert len(body["entries"]) == 2


async def test_money_moves_only_for_a_session_billing_billed(service: Any, billing: Any) -> None:
    """Finding 4: a forged debit of 100000 for a session billing never billed was booked."""
    await service.issue("forged-at", balance="20.00")
    never_billed = await billing.debit("forged-at", "100000", billed=None)
    above_record = await billing.debit("forged-at", "100000", billed="3.00")
    billing.bill("s-other-card", "someone-else", "5.00")
    other_card = await billing.debit("forged-at", "5.00", "s-other-card")
    billing.silent = True
    unconfirmed = await billing.debit("forged-at", "1.00")
    billing.silent = False

    for reply in (never_billed, above_record, other_card, unconfirmed):
        assert reply.result == DebitResult.NOT_BILLED and not reply.settled, reply
    assert never_billed.error == "billing has no such session"
    assert other_card.error == "the session was billed to another card or pile"
    assert unconfirmed.error == "billing did not confirm the session"
    body = await ledger_of(service, "forged-at")
    assert body["balance"] == "20.00" and len(body["entries"]) == 1
    # The record's own amount, or less, is booked.
    assert (await billing.debit("forged-at", "2.50", billed="3.00")).result == DebitResult.BOOKED


async def test_two_replicas_debit_concurrent_redelivered_sessions_once_each(
    start_service: Any, collector: Bus, billing: Any
) -> None:
    async with start_service() as first, start_service() as second:
        await first.issue("busy-card", balance="1000.00")
        sessions = [f"s-busy-{n}" for n in range(15)]
        amounts = {session: Decimal(f"{n + 1}.{n:02d}") for n, session in enumerate(sessions)}
        replies = await asyncio.gather(
            *(
                billing.debit("busy-card", str(amounts[session]), session)
                for session in sessions
                for _ in range(3)
            )
        )
        assert all(reply.settled for reply in replies)
        body = await ledger_of(second, "busy-card")
        debits = [e for e in body["entries"] if e["kind"] == "session_debit"]
        assert sorted(e["session_id"] for e in debits) == sorted(sessions)
        assert Decimal(body["balance"]) == ledger_sum(body)
        assert Decimal(body["balance"]) == Decimal("1000.00") - sum(amounts.values())
        for replica in (first, second):
            answered = await replica.metric(
                "station_verification_debits_total", result="already_booked"
            ) + await replica.metric("station_verification_debits_total", result="booked")
            assert answered > 0, "the broker gave one replica all the debits"


async def test_balance_requests_answer_the_ledger_sum(
    service: Any, collector: Bus, billing: Any
) -> None:
    await service.issue("asked", balance="12.50")
    await billing.debit("asked", "2.25")

    async def ask(card: str) -> BalanceReply:
        answer = await collector.request(
            channels.BALANCE.topic(), BalanceRequest(card_uid=card), timeout=5
        )
        return BalanceReply.model_validate_json(answer)

    known = BalanceReply(card_uid="asked", known=True, balance=Decimal("10.25"))
    assert await ask("asked") == known
    assert await ask("not-issued") == BalanceReply(card_uid="not-issued", known=False)


async def test_an_operator_refund_is_a_ledger_entry_with_its_reason(
    service: Any, collector: Bus, billing: Any
) -> None:
    await service.issue("refund-me", balance="30.00")
    await billing.debit("refund-me", "12.00", "s-refunded")

    answer = await service.http.post(
        "/api/v1/cards/refund-me/refunds",
        json={"amount": "4.50", "reason": "pile stopped early", "session_id": "s-refunded"},
    )
    assert answer.status_code == 201, answer.text
    refund = answer.json()
    assert refund["balance"] == "22.50"
    assert refund["entry"]["kind"] == "refund"
    assert refund["entry"]["amount"] == "4.50"
    assert refund["entry"]["reason"] == "pile stopped early"
    assert refund["entry"]["session_id"] == "s-refunded"

    body = await ledger_of(service, "refund-me")
    assert [e["kind"] for e in body["entries"]] == ["opening", "session_debit", "refund"]
    assert body["balance"] == "22.50" == str(ledger_sum(body))
    assert (await service.http.get("/api/v1/cards/refund-me")).json()["balance"] == "22.50"


async def test_a_session_is_never_refunded_more_than_its_debit(
    service: Any, collector: Bus, billing: Any
) -> None:
    await service.issue("capped", balance="30.00")
    await billing.debit("capped", "5.00", "s-capped")
    path = "/api/v1/cards/capped/refunds"

    ok = await service.http.post(
        path, json={"amount": "3.00", "reason": "part", "session_id": "s-capped"}
    )
    over = await service.http.post(
        path, json={"amount": "2.01", "reason": "too much", "session_id": "s-capped"}
    )
    rest = await service.http.post(
        path, json={"amount": "2.00", "reason": "the rest", "session_id": "s-capped"}
    )
    other = await service.http.post(
        path, json={"amount": "1.00", "reason": "x", "session_id": "s-never-here"}
    )

    assert ok.status_code == 201 and rest.status_code == 201
    assert over.status_code == 409 and "5.00" in over.json()["detail"]
    assert other.status_code == 409 and "never debited" in other.json()["detail"]
    assert (await ledger_of(service, "capped"))["balance"] == "30.00"


async def test_a_retried_refund_with_its_reference_is_booked_once(service: Any) -> None:
    await service.issue("goodwill", balance="0")
    body = {"amount": "5.00", "reason": "goodwill", "reference": "ticket-42"}
    for _ in range(3):
        answer = await service.http.post("/api/v1/cards/goodwill/refunds", json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["balance"] == "5.00"
    clash = await service.http.post(
        "/api/v1/cards/goodwill/refunds", json={**body, "amount": "6.00"}
    )
    assert clash.status_code == 409
    assert len((await ledger_of(service, "goodwill"))["entries"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-1.00", "reason": "x"}, "amount"),
        ({"amount": "0", "reason": "x"}, "amount"),
        ({"amount": 1.5, "reason": "x"}, "amount"),
        ({"amount": "1.00"}, "reason"),
        ({"amount": "1.00", "reason": "   "}, "reason"),
        ({"amount": "1.00", "reason": "x", "why": "typo"}, "why"),
    ],
)
async def test_bad_refunds_are_422_naming_the_field(
    service: Any, body: dict[str, Any], field: str
) -> None:
    await service.issue("refund-checks", balance="10.00")
    answer = await service.http.post("/api/v1/cards/refund-checks/refunds", json=body)
    assert answer.status_code == 422, answer.text
    assert any(field in error["loc"] for error in answer.json()["detail"])
    assert (await ledger_of(service, "refund-checks"))["balance"] == "10.00"


async def test_ledger_and_refunds_of_an_unknown_card_are_404(service: Any) -> None:
    assert (await service.http.get("/api/v1/cards/ghost/ledger")).status_code == 404
    refund = await service.http.post(
        "/api/v1/cards/ghost/refunds", json={"amount": "1.00", "reason": "x"}
    )
    assert refund.status_code == 404


async def test_a_uid_with_a_slash_has_its_ledger_too(service: Any) -> None:
    await service.issue("04/AB", balance="7.00")
    body = await ledger_of(service, "04/AB")
    assert body["card_uid"] == "04/AB" and body["balance"] == "7.00"


def test_upgrading_a_0001_database_keeps_every_entry_and_one_debit_per_session(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'verification.db'}")
    config = Config()
    config.set_main_option("script_location", str(SPEC.migrations))
    config.set_main_option("version_table", SPEC.version_table)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql(
            "INSERT INTO cards VALUES ('old', 'Ada', 'active', NULL, '2026-01-01 00:00:00')"
        )
        for kind, amount, session in (("opening", 100000, None), ("session_debit", -7350, "s1")):
            connection.exec_driver_sql(
                "INSERT INTO ledger_entries (card_uid, kind, amount, session_id, created_at) "
                "VALUES ('old', ?, ?, ?, '2026-01-01 00:00:00')",
                (kind, amount, session),
            )
    migrate(engine, SPEC.migrations, SPEC.version_table)
    engine.dispose()

    with sqlite3.connect(tmp_path / "verification.db") as raw:
        insert = (
            "INSERT INTO ledger_entries (card_uid, kind, amount, session_id, reason, created_at) "
            "VALUES ('old', ?, ?, 's1', 'x', '2026-01-02 00:00:00')"
        )
        raw.execute(insert, ("refund", 1000))
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(insert, ("session_debit", -7350))
        rows = raw.execute("SELECT kind, amount FROM ledger_entries ORDER BY id").fetchall()
    assert rows == [("opening", 100000), ("session_debit", -7350), ("refund", 1000)]
