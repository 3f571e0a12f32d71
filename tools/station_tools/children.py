"""What the tools start (brokers, databases, services, background tasks), ended one way.

A broker, a database server and a station service are all child processes that a test or
``station up`` stops gracefully (so that they save their state, as in production) and
sometimes kills (to play a crash); the async helpers all run one background task that is
cancelled when they close. Written once here so that every tool ends its children alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

_spawning = 0
_deferred: list[int] = []


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Start a child and record it (``self.process = Popen(...)``) as one step.

    A signal handler that raises (``station up``'s SIGINT/SIGTERM) would otherwise be able to
    interrupt ``Popen`` after the fork, or just before its result is stored: the child would
    run with nobody to stop it. Handlers call :func:`defer` first; a signal deferred so is
    raised again as soon as the block ends, when the child is known.
    """
    global _spawning
    _spawning += 1
    try:
        yield
    finally:
        _spawning -= 1
        if not _spawning:
            pending = list(dict.fromkeys(_deferred))
            _deferred.clear()
            for signum in pending:
                signal.raise_signal(signum)


def defer(signum: int) -> bool:
    """In a signal handler: ``True`` if a child is being started, the signal then kept
    for the end of :func:`spawning` (the handler should return at once)."""
    if _spawning:
        _deferred.append(signum)
        return True
    return False


def terminate(
    process: subprocess.Popen[Any], timeout: float, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Ask ``process`` to stop with ``sig``; kill it if it has not gone within ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill(process: subprocess.Popen[Any]) -> None:
    """kill -9: no goodbye, no last words but the broker's last will."""
    process.kill()
    process.wait()


async def cancel(task: asyncio.Task[Any] | None, *ignored: type[BaseException]) -> None:
    """Cancel ``task`` and wait until it has ended (its own ``ignored`` errors swallowed)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, *ignored):
        await task


class Started:
    """``with thing:`` starts it and closes it; the class supplies ``start`` and ``close``."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Opened:
    """``async with thing:`` opens it and closes it; the class supplies ``open`` and ``aclose``."""

    async def open(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
