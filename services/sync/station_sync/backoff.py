"""Exponential backoff with jitter between failed sends.

Doubling spares a central that is struggling; the jitter (a random share between half and
all of the current step) keeps a hundred stations that lost central at the same moment
from all coming back in the same second, also once every one of them is at the maximum.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    minimum: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.minimum

    def delay(self) -> float:
        """The wait before the next attempt; each call after a failure doubles the base."""
        base = self._next
        self._next = min(self._next * 2, self.maximum)
        return base * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.minimum
