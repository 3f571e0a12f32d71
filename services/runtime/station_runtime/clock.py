"""The service's own clock: every timestamp that money or a fault depends on comes from here.

A pile's or a message's clock is never trusted; tests hand a service a clock they can move.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""


def utc_now() -> datetime:
    return datetime.now(UTC)
