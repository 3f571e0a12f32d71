"""Billing's background loops end for sure when the service stops.

On Python 3.11 ``asyncio.wait_for`` (under the bus's publish and request, and inside
aiomqtt) returns its result instead of raising when a cancellation meets that result in the
same instant: the cancellation is swallowed while the task stays marked as cancelling. A loop
that survives its round's errors would then go round for ever, and the service, which waits
for its tasks when it stops, with it. Each loop therefore looks once a round.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise the cancellation of the current task if one is pending (one a ``wait_for`` ate)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
