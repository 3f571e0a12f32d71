"""Live changes for open boards: each watcher learns *what* changed, never a backlog.

A watcher keeps the set of things that changed since it last looked (pile ids,
``bulletins``, ``totals``) and an event to wake on. A burst of 48 piles reporting every
second is at most one entry per pile per look, however slow the browser: the page gets the
state now, not a queue of states it has already missed. No queue can grow without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

TOTALS = "totals"
REGISTRATIONS = "registrations"
"""The devices waiting for an operator changed."""


@dataclass(eq=False)
class Watcher:
    pending: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def changes(self, timeout: float) -> set[str]:
        """What changed since the last call; empty after ``timeout`` seconds of quiet."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            return set()
        self.wake.clear()
        taken, self.pending = self.pending, set()
        return taken


@dataclass
class BoardFeed:
    watchers: set[Watcher] = field(default_factory=set)

    def notify(self, what: str) -> None:
        for watcher in self.watchers:
            watcher.pending.add(what)
            watcher.wake.set()

    @contextmanager
    def watch(self) -> Iterator[Watcher]:
        watcher = Watcher()
        self.watchers.add(watcher)
        try:
            yield watcher
        finally:
            self.watchers.discard(watcher)
