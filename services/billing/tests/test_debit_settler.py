"""Each record is debited from the card's ledger exactly once, whatever fails and when."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any


def sid() -> str:
    return str(uuid.uuid4())


async def debits(billing: Any, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    answer = await billing.http.get("/api/v1/debits", params=params)
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


async def until(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_the_receipt_shows_the_balance_after_the_debit_booked_once(
    billing: Any, collector: Any, ledger: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    ledger.balances["CARD-D"] = Decimal("50.00")
    await collector.open(session, pile, "CARD-D", meter_start="0")
    first = await collector.checkout_raw(session, pile, meter_stop="10")
    again = await collector.checkout_raw(session, pile, meter_stop="10")

    assert first == again
    assert ledger.booked == {session: Decimal("12.00")}
    assert ledger.balances["CARD-D"] == Decimal("38.00")
    receipt = (await billing.http.get(f"/api/v1/sessions/{session}/receipt")).json()
    assert receipt["lines"][-1] == "Balance 38.00 CNY"
    [debit] = await debits(billing)
    assert (debit["session_id"], debit["amount"], debit["status"], debit["balance_after"]) == (
        session,
        "12.00",
        "settled",
        "38.00",
    )


async def test_verification_down_at_checkout_the_record_is_stored_and_the_debit_retried(
    billing: Any, collector: Any, ledger: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    ledger.silent = True
    await collector.open(session, pile, "CARD-D", meter_start="0")
    reply = await collector.checkout(session, pile, meter_stop="5")

    assert reply.ok and reply.receipt is not None
    assert reply.receipt.lines[-1] == "Balance pending"
    assert (await billing.session(session))["status"] == "completed"
    assert [d["status"] for d in await debits(billing)] == ["pending"]

    ledger.silent = False

    async def settled() -> bool:
        return [d["status"] for d in await debits(billing)] == ["settled"]

    await until(settled)
    assert ledger.booked == {session: Decimal("6.00")}
    # the receipt the driver saw does not change after the fact
    stored = (await billing.http.get(f"/api/v1/sessions/{session}/receipt")).json()
    assert stored["lines"][-1] == "Balance pending"
    assert (await collector.checkout(session, pile, meter_stop="5")) == reply


async def test_a_debit_pending_when_billing_stops_is_settled_after_it_restarts(
    settings: Any, clock: Any, start_billing: Any, collector: Any, ledger: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    ledger.silent = True
    async with start_billing(settings, clock) as billing:
        await collector.open(session, pile, "CARD-R", meter_start="0")
        await collector.checkout(session, pile, meter_stop="2.5")
        assert [d["status"] for d in await debits(billing)] == ["pending"]
    ledger.silent = False
    async with start_billing(settings, clock) as billing:

        async def settled() -> bool:
            return [d["status"] for d in await debits(billing, "settled")] == ["settled"]

        await until(settled)
    assert ledger.booked == {session: Decimal("3.00")}
    assert len([r for r in ledger.requests if r.session_id == session]) >= 2


async def test_concurrent_checkouts_and_redeliveries_debit_each_session_once(
    billing: Any, collector: Any, ledger: Any, new_pile: Any
) -> None:
    sessions = [(new_pile(), sid()) for _ in range(8)]
    for pile, session in sessions:
        await collector.open(session, pile, "CARD-MANY", meter_start="0")
    replies = await asyncio.gather(
        *(
            collector.checkout(session, pile, meter_stop=str(n + 1))
            for n, (pile, session) in enumerate(sessions)
            for _ in range(3)
        )
    )
    assert all(reply.ok for reply in replies)
    assert sorted(ledger.booked) == sorted(session for _, session in sessions)
    total = sum(ledger.booked.values(), Decimal(0))
    assert total == sum((Decimal("1.20") * (n + 1) for n in range(8)), Decimal(0))
    assert ledger.balances["CARD-MANY"] == Decimal("100.00") - total
    assert {d["status"] for d in await debits(billing)} == {"settled"}


async def test_a_booked_reply_for_another_amount_does_not_settle_the_debit(
    billing: Any, collector: Any, ledger: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    ledger.stranger = True
    await collector.open(session, pile, "CARD-F", meter_start="0")
    reply = await collector.checkout(session, pile, meter_stop="5")

    assert reply.ok and reply.receipt is not None
    assert reply.receipt.lines[-1] == "Balance pending"
    [debit] = await debits(billing)
    assert debit["status"] == "pending"
    assert "booked" in (debit["last_error"] or "")
    await billing.settled("station_billing_debits_total", 1, 'result="mismatched"')

    ledger.stranger = False

    async def settled() -> bool:
        return [d["status"] for d in await debits(billing)] == ["settled"]

    await until(settled)
    assert ledger.booked == {session: Decimal("6.00")}
    assert ledger.balances["CARD-F"] == Decimal("94.00")
