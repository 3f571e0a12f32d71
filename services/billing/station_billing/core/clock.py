"""The service's own clock: every timestamp that money depends on comes from here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware; tests hand in a clock they can move."""


def utc_now() -> datetime:
    return datetime.now(UTC)
