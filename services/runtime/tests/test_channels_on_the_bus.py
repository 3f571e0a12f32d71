"""Typed channels on a real broker: handlers get models, bad messages are dropped in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from station_protocol import channels
from station_protocol.messages import (
    PileSession,
    SessionStatus,
    VerificationReply,
    VerificationRequest,
    VerificationResult,
)
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Cleared, Delivery, Dropped, Incoming
from station_tools.mosquitto import Mosquitto


def options(broker: Mosquitto, name: str) -> BusOptions:
    return BusOptions(broker=BrokerAddress.parse(broker.url), client_id=name, service=name)


def session(pile: str) -> PileSession:
    return PileSession(
        session_id="s-1",
        pile_id=pile,
        card_uid="CARD",
        status=SessionStatus.ACTIVE,
        started_at=datetime(2026, 12, 4, 8, tzinfo=UTC),
    )


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_handler_gets_models_and_every_bad_message_is_counted(
    own_mosquitto: Mosquitto,
) -> None:
    """On a broker of its own: no other test's retained sessions to read."""
    mosquitto = own_mosquitto
    drops: list[Dropped] = []
    got: list[tuple[str, PileSession]] = []
    cleared: list[str] = []
    bus = Bus(options(mosquitto, "typed-reader"), on_drop=drops.append)

    async def on_session(delivery: Delivery[PileSession]) -> None:
        got.append((delivery.params["pile"], delivery.body))

    async def on_clear(gone: Cleared) -> None:
        cleared.append(gone.params["pile"])

    bus.subscribe(channels.PILE_SESSION, on_session, on_clear=on_clear, kind="pile_session")
    async with bus, Bus(options(mosquitto, "typed-writer")) as writer:
        await bus.wait_connected(5)
        await writer.wait_connected(5)
        await asyncio.sleep(0.1)
        await writer.send(channels.PILE_SESSION, session("c1-p01"), pile="c1-p01")
        await writer.publish("station/v1/sessions/c1-p02", b"{not json")
        await writer.publish("station/v1/sessions/c1-p03", b'{"v": "v1", "status": 7}')
        await writer.publish("station/v1/sessions/not-a-pile", session("c1-p04"))
        await writer.clear(channels.PILE_SESSION, pile="c1-p01")
        await until(lambda: len(drops) == 3 and bool(cleared))
    assert got == [("c1-p01", session("c1-p01"))]
    assert cleared == ["c1-p01"]
    assert sorted((drop.topic.rsplit("/", 1)[1], drop.reason) for drop in drops) == [
        ("c1-p02", "bad_json"),
        ("c1-p03", "invalid"),
        ("not-a-pile", "bad_topic"),
    ]
    assert {drop.kind for drop in drops} == {"pile_session"}


async def test_ask_and_serve_carry_typed_requests_and_replies(mosquitto: Mosquitto) -> None:
    server = Bus(options(mosquitto, "typed-server"))

    async def verify(delivery: Delivery[VerificationRequest]) -> VerificationReply | None:
        request = delivery.body
        if request.card_uid == "SILENT":
            return None
        return VerificationReply(
            session_id=request.session_id,
            card_uid=request.card_uid,
            result=VerificationResult.ACCEPTED,
        )

    server.serve(channels.VERIFICATION, verify, share="typed")
    async with server, Bus(options(mosquitto, "typed-client")) as client:
        await server.wait_connected(5)
        await client.wait_connected(5)
        await asyncio.sleep(0.1)
        ask = VerificationRequest(session_id="s-9", pile_id="c1-p01", card_uid="CARD")
        reply = await client.ask(channels.VERIFICATION, ask, timeout=5)
        silent = VerificationRequest(session_id="s-8", pile_id="c1-p01", card_uid="SILENT")
        unanswered = await client.ask(channels.VERIFICATION, silent, timeout=0.5)
    assert reply == VerificationReply(session_id="s-9", card_uid="CARD", result="accepted")
    assert unanswered is None


async def test_an_unreadable_reply_is_none_and_counted(mosquitto: Mosquitto) -> None:
    drops: list[Dropped] = []
    server = Bus(options(mosquitto, "garbling-server"))

    @server.route(channels.VERIFICATION.topic())
    async def garble(message: Incoming) -> None:
        await server.reply(message, b'{"result": "maybe"}')

    async with server, Bus(options(mosquitto, "asking"), on_drop=drops.append) as client:
        await server.wait_connected(5)
        await client.wait_connected(5)
        await asyncio.sleep(0.1)
        ask = VerificationRequest(session_id="s-7", pile_id="c1-p01", card_uid="CARD")
        assert await client.ask(channels.VERIFICATION, ask, timeout=5) is None
    assert [(drop.kind, drop.reason) for drop in drops] == [("request_reply", "invalid")]


async def test_a_forged_or_repeated_reply_counts_once_and_only_for_its_question(
    mosquitto: Mosquitto,
) -> None:
    """Finding 4: a forged ``accepted`` verification reply let an unknown card charge.

    The first answer to a question counts; a second one (a forger racing the real server),
    one with correlation data nobody asked with, or one about another session or card is
    dropped as ``unsolicited``."""
    drops: list[Dropped] = []
    server = Bus(options(mosquitto, "forging-server"))

    @server.route(channels.VERIFICATION.topic())
    async def answer_twice_and_wrongly(message: Incoming) -> None:
        request = VerificationRequest.model_validate_json(message.payload)
        wrong = VerificationReply(
            session_id="another-session", card_uid=request.card_uid, result="accepted"
        )
        await server.reply(message, channels.VERIFICATION.encode_reply(wrong))
        await server.reply(message, b'{"session_id": "x", "card_uid": "y", "result": "accepted"}')
        stranger = Incoming(message.topic, b"", False, message.response_topic, b"not-asked")
        await server.reply(stranger, b'{"session_id": "x", "card_uid": "y", "result": "accepted"}')

    async with server, Bus(options(mosquitto, "asking-once"), on_drop=drops.append) as client:
        await server.wait_connected(5)
        await client.wait_connected(5)
        await asyncio.sleep(0.1)
        ask = VerificationRequest(session_id="s-6", pile_id="c1-p01", card_uid="UNKNOWN")
        reply = await client.ask(
            channels.VERIFICATION,
            ask,
            timeout=5,
            answers=lambda reply: (reply.session_id, reply.card_uid) == ("s-6", "UNKNOWN"),
        )
        await until(lambda: len(drops) == 3)
    assert reply is None
    assert sorted((drop.kind, drop.reason) for drop in drops) == [
        ("reply", "unsolicited"),
        ("reply", "unsolicited"),
        ("request_reply", "unsolicited"),
    ]
