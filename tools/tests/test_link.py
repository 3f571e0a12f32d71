"""The cuttable link to central: what passes when it is up, cut, or losing replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from station_tools.link import Link


@pytest.fixture
async def answers() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that records every line it gets and answers ``ok <line>``."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line.strip())
            writer.write(b"ok " + line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, received


async def ask(link: Link, line: bytes, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    try:
        writer.write(line + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), timeout)).strip()
    finally:
        writer.close()


async def test_an_up_link_passes_both_ways(answers: tuple[int, list[bytes]]) -> None:
    port, received = answers
    async with Link(port) as link:
        assert await ask(link, b"record-1") == b"ok record-1"
    assert received == [b"record-1"]


async def test_a_cut_link_answers_nothing_and_delivers_nothing(
    answers: tuple[int, list[bytes]],
) -> None:
    port, received = answers
    async with Link(port) as link:
        link.cut()
        with pytest.raises(TimeoutError):
            await ask(link, b"record-1", timeout=0.5)
        assert received == []
        link.restore()
        assert await ask(link, b"record-2") == b"ok record-2"


async def test_a_link_losing_replies_delivers_the_request_but_not_the_answer(
    answers: tuple[int, list[bytes]],
) -> None:
    port, received = answers
    async with Link(port) as link:
        link.lose_replies()
        with pytest.raises(TimeoutError):
            await ask(link, b"record-1", timeout=0.5)
        assert received == [b"record-1"]


async def test_a_link_to_a_dead_server_closes_the_connection() -> None:
    async with Link(upstream_port=1) as link:
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        writer.write(b"record-1\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
