"""The network between the station and central, as a TCP relay a test can cut.

Sync is pointed at the relay instead of at central. While the link is up it passes bytes
both ways; ``cut()`` makes it a black hole, as a pulled uplink cable does: connections are
accepted (or stay open) but nothing gets through in either direction, no reset, no answer,
so the sender's requests hang until its own timeout. ``lose_replies()`` lets requests
through and holds the answers, the worst case for an idempotent protocol: central stores
a batch and the station never hears so. What was held goes through once the link is back,
late, as TCP delivers it after an outage; the sender has long given up on it by then.

Runs in the test's event loop (no thread): a cut never blocks anything but the relayed
connections.
"""

from __future__ import annotations

import asyncio
import contextlib

from station_tools import children
from station_tools.ports import free_port

CHUNK = 65536


class Link(children.Opened):
    """``async with Link(central_port) as link``: relay ``link.port`` -> central."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self._requests_pass = asyncio.Event()
        self._replies_pass = asyncio.Event()
        self._requests_pass.set()
        self._replies_pass.set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.connections = 0
        """Connections the relay accepted so far."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self._requests_pass.is_set() and self._replies_pass.is_set()

    def cut(self) -> None:
        """Nothing passes either way until :meth:`restore`."""
        self._requests_pass.clear()
        self._replies_pass.clear()

    def lose_replies(self) -> None:
        """Requests reach central; its answers are held until :meth:`restore`."""
        self._requests_pass.set()
        self._replies_pass.clear()

    def restore(self) -> None:
        self._requests_pass.set()
        self._replies_pass.set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection made while the link is cut gets no further than a SYN would.
        await self._requests_pass.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            return  # central is not listening: the station sees the connection close
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, self._requests_pass),
                self._pump(up_reader, writer, self._replies_pass),
            )
        finally:
            up_writer.close()

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, passing: asyncio.Event
    ) -> None:
        try:
            while data := await source.read(CHUNK):
                await passing.wait()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                if sink.can_write_eof():
                    sink.write_eof()
