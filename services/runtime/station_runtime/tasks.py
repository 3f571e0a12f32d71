"""Background work that ends for sure when a service stops.

On Python 3.11 ``asyncio.wait_for`` (inside aiomqtt, for one) returns its result instead of
raising when a cancellation meets that result in the same instant: the cancellation is
swallowed while the task stays marked as cancelling. A loop that survives its round's errors
would then go round for ever, and a service that waits for its tasks when it stops would wait
with it. So a stopping service cancels each task again until it is done, and a long loop
looks once a round whether it was asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("station.tasks")

RECANCEL_AFTER = 0.5
"""Seconds to wait for cancelled tasks before cancelling the ones still running again."""


async def cancel_until_done(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again as needed."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=RECANCEL_AFTER)
    await asyncio.gather(*tasks, return_exceptions=True)


def stop_if_cancelled() -> None:
    """Raise the cancellation of the current task if one is pending (one a ``wait_for`` ate)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class RoundTrips:
    """The round trips a bus handler started (a handler never awaits a reply itself: the
    replies come through its own loop), ended for sure when the service stops."""

    name: str
    """Who runs them, for the log line of one that failed."""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def close(self) -> None:
        await cancel_until_done(self._tasks)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s task failed", self.name, exc_info=task.exception())
