"""Verification over the real broker: every answer a collector can get, and why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

from station_protocol import channels
from station_protocol.messages import (
    AuthorizationWithdrawal,
    SessionStatus,
    VerificationRequest,
    VerificationResult,
)
from station_runtime.bus import Bus, RequestTimeout
from station_verification.models import Authorization

REQUESTS = channels.VERIFICATION.topic()


def authorizations_of(service: Any, card_uid: str) -> list[Authorization]:
    with Session(service.engine) as db:
        return list(db.exec(select(Authorization).where(Authorization.card_uid == card_uid)))


async def test_a_good_card_is_accepted_with_its_balance(service: Any, verify: Any) -> None:
    await service.issue("good", balance="20.00")
    reply = await verify("good", pile_id="c2-p07", session_id="s-good")
    assert reply.result == VerificationResult.ACCEPTED
    assert (reply.session_id, reply.card_uid) == ("s-good", "good")
    assert reply.balance == Decimal("20.00")
    [row] = authorizations_of(service, "good")
    assert (row.session_id, row.pile_id, row.ended_at) == ("s-good", "c2-p07", None)
    assert await service.metric("station_verification_verifications_total", result="accepted") == 1


async def test_an_unknown_card_is_refused_without_a_balance(service: Any, verify: Any) -> None:
    reply = await verify("stranger")
    assert reply.result == VerificationResult.UNKNOWN
    assert reply.balance is None


async def test_a_blocked_card_is_refused(service: Any, verify: Any) -> None:
    await service.issue("stolen", balance="50.00", status="blocked")
    assert (await verify("stolen")).result == VerificationResult.BLOCKED
    await service.http.patch("/api/v1/cards/stolen", json={"status": "active"})
    assert (await verify("stolen")).result == VerificationResult.ACCEPTED


async def test_an_expired_card_is_refused(service: Any, verify: Any) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await service.issue("old", balance="50.00", expires_at=past)
    reply = await verify("old")
    assert reply.result == VerificationResult.EXPIRED
    assert reply.balance == Decimal("50.00")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    await service.http.patch("/api/v1/cards/old", json={"expires_at": future})
    assert (await verify("old")).result == VerificationResult.ACCEPTED


async def test_a_card_below_the_minimum_balance_is_refused(service: Any, verify: Any) -> None:
    await service.issue("empty", balance="0.00")
    await service.issue("last-cent", balance="0.01")
    empty = await verify("empty", pile_id="c1-p01")
    assert empty.result == VerificationResult.INSUFFICIENT_BALANCE
    assert empty.balance == Decimal("0.00")
    assert authorizations_of(service, "empty") == []
    assert (await verify("last-cent", pile_id="c1-p02")).result == VerificationResult.ACCEPTED
    await service.http.post("/api/v1/cards/empty/top-ups", json={"amount": "5"})
    assert (await verify("empty", pile_id="c1-p01")).result == VerificationResult.ACCEPTED


async def test_the_minimum_balance_is_a_setting(start_service: Any, verify: Any) -> None:
    async with start_service(min_balance=Decimal("5.00")) as service:
        await service.issue("thin", balance="4.99")
        assert (await verify("thin")).result == VerificationResult.INSUFFICIENT_BALANCE


async def test_refusals_come_in_the_order_a_driver_can_act_on(service: Any, verify: Any) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await service.issue("all-wrong", balance="0", status="blocked", expires_at=past)
    await service.issue("old-and-empty", balance="0", expires_at=past)
    assert (await verify("all-wrong")).result == VerificationResult.BLOCKED
    assert (await verify("old-and-empty")).result == VerificationResult.EXPIRED


async def test_a_card_charging_on_one_pile_is_refused_on_another(
    service: Any, verify: Any, announce: Any, poll: Any
) -> None:
    await service.issue("busy", balance="20.00")
    assert (await verify("busy", "c1-p01", "s-first")).result == VerificationResult.ACCEPTED
    await announce("s-first", "c1-p01", "busy", SessionStatus.ACTIVE)
    second = await verify("busy", "c1-p02", "s-second")
    assert second.result == VerificationResult.ALREADY_CHARGING

    await announce("s-first", "c1-p01", "busy", SessionStatus.COMPLETED)

    async def released() -> bool:
        [row] = [r for r in authorizations_of(service, "busy") if r.session_id == "s-first"]
        return row.ended_at is not None

    await poll(released)
    assert (await verify("busy", "c1-p02", "s-third")).result == VerificationResult.ACCEPTED


async def test_a_session_completed_while_the_service_was_away_is_learnt_from_retained(
    start_service: Any, verify: Any, announce: Any, poll: Any
) -> None:
    async with start_service() as service:
        await service.issue("away", balance="20.00")
        assert (await verify("away", "c3-p01", "s-away")).result == VerificationResult.ACCEPTED
        assert (await verify("away", "c3-p02")).result == VerificationResult.ALREADY_CHARGING

    await announce("s-away", "c3-p01", "away", SessionStatus.COMPLETED)

    async with start_service() as service:  # same data dir: same cards, same authorizations

        async def released() -> bool:
            [row] = authorizations_of(service, "away")
            return row.ended_at is not None

        await poll(released)
        assert (await verify("away", "c3-p02")).result == VerificationResult.ACCEPTED


async def test_a_redelivered_request_gets_the_same_answer_once_recorded(
    service: Any, verify: Any
) -> None:
    await service.issue("twice", balance="20.00")
    first = await verify("twice", "c1-p05", "s-redelivered")
    again = await verify("twice", "c1-p05", "s-redelivered")
    assert first == again
    assert first.result == VerificationResult.ACCEPTED
    assert len(authorizations_of(service, "twice")) == 1
    assert (await verify("twice", "c1-p06")).result == VerificationResult.ALREADY_CHARGING


async def test_an_authorization_whose_charge_never_started_lapses(
    start_service: Any, verify: Any, announce: Any
) -> None:
    async with start_service(authorization_ttl=0.3) as service:
        await service.issue("walked-away", balance="20.00")
        await service.issue("charging", balance="20.00")
        assert (await verify("walked-away", "c4-p01", "s-never")).result == "accepted"
        assert (await verify("charging", "c4-p02", "s-real")).result == "accepted"
        await announce("s-real", "c4-p02", "charging", SessionStatus.ACTIVE)
        assert (await verify("walked-away", "c4-p03")).result == "already_charging"

        await asyncio.sleep(0.4)

        assert (await verify("walked-away", "c4-p03")).result == "accepted"
        assert (await verify("charging", "c4-p04")).result == "already_charging"
        [lapsed] = [
            r for r in authorizations_of(service, "walked-away") if r.session_id == "s-never"
        ]
        assert lapsed.end_reason == "lapsed"


async def test_a_start_given_up_frees_the_card_at_once_unless_billing_has_it_active(
    service: Any, verify: Any, collector: Bus, billing: Any, poll: Any
) -> None:
    """Finding 3/4: each failed start locked the card for the whole TTL (120 s)."""
    await service.issue("given-up", balance="20.00")
    await service.issue("still-on", balance="20.00")
    assert (await verify("given-up", "c5-p01", "s-given-up")).result == "accepted"
    assert (await verify("still-on", "c5-p02", "s-still-on")).result == "accepted"
    billing.bill("s-still-on", "still-on", "0")
    billing.billed["s-still-on"] = billing.billed["s-still-on"].model_copy(
        update={"status": SessionStatus.ACTIVE, "total_cost": None}
    )

    for session, card, pile in (
        ("s-given-up", "given-up", "c5-p01"),
        ("s-still-on", "still-on", "c5-p02"),
    ):
        withdrawal = AuthorizationWithdrawal(session_id=session, pile_id=pile, card_uid=card)
        await collector.send(channels.WITHDRAWAL, withdrawal)

    async def freed() -> bool:
        return (await verify("given-up", "c5-p03")).result == "accepted"

    await poll(freed)
    [row] = [r for r in authorizations_of(service, "given-up") if r.session_id == "s-given-up"]
    assert row.end_reason == "withdrawn"
    # Billing says the other one charges: its card stays held.
    assert (await verify("still-on", "c5-p04")).result == "already_charging"


async def test_a_malformed_request_is_dropped_and_counted(
    service: Any, collector: Bus, verify: Any
) -> None:
    for payload in (b"not json", b'{"session_id": "s", "pile_id": "pile 1", "card_uid": "x"}'):
        with pytest.raises(RequestTimeout):
            await collector.request(REQUESTS, payload, timeout=0.5)
    dropped = await service.metric(
        "station_verification_dropped_messages_total", kind="malformed_request"
    )
    assert dropped == 2
    await service.issue("after", balance="1.00")
    assert (await verify("after")).result == VerificationResult.ACCEPTED


async def test_a_request_nobody_can_hear_the_answer_to_authorizes_nothing(
    service: Any, collector: Bus, poll: Any
) -> None:
    await service.issue("deaf", balance="20.00")
    request = VerificationRequest(session_id="s-deaf", pile_id="c1-p01", card_uid="deaf")
    await collector.publish(REQUESTS, request)

    async def counted() -> bool:
        dropped = await service.metric(
            "station_verification_dropped_messages_total", kind="no_response_topic"
        )
        return bool(dropped == 1)

    await poll(counted)
    assert authorizations_of(service, "deaf") == []


async def test_a_session_id_reused_for_another_card_is_dropped(
    service: Any, collector: Bus, verify: Any
) -> None:
    await service.issue("first", balance="20.00")
    await service.issue("second", balance="20.00")
    assert (await verify("first", session_id="s-shared")).result == VerificationResult.ACCEPTED
    with pytest.raises(RequestTimeout):
        request = VerificationRequest(session_id="s-shared", pile_id="c1-p02", card_uid="second")
        await collector.request(REQUESTS, request, timeout=0.5)
    assert (
        await service.metric("station_verification_dropped_messages_total", kind="session_conflict")
        == 1
    )
    assert authorizations_of(service, "second") == []


async def test_malformed_pile_sessions_are_dropped_and_counted(
    service: Any, collector: Bus, poll: Any
) -> None:
    topic = channels.PILE_SESSION.topic(pile="c9-p09")
    await collector.publish(topic, b'{"session_id": "s", "status": "sideways"}')

    async def counted() -> bool:
        dropped = await service.metric(
            "station_verification_dropped_messages_total", kind="malformed_pile_session"
        )
        return bool(dropped == 1)

    await poll(counted)


async def test_two_replicas_racing_for_one_card_accept_it_once(
    start_service: Any, verify: Any
) -> None:
    """Requests split over two replicas on one database; the card still charges only once."""
    async with start_service() as first, start_service() as second:
        await first.issue("rush", balance="20.00")
        replies = await asyncio.gather(
            *(verify("rush", f"c5-p{n:02d}", f"s-rush-{n}") for n in range(1, 21))
        )
        results = [reply.result for reply in replies]
        assert results.count(VerificationResult.ACCEPTED) == 1, results
        assert results.count(VerificationResult.ALREADY_CHARGING) == 19
        assert len(authorizations_of(first, "rush")) == 1
        for replica in (first, second):
            answered = await replica.metric(
                "station_verification_verifications_total", result="already_charging"
            )
            assert answered > 0, "the broker gave one replica all the work"
