"""When central has been out of reach too long: the ``central_sync_backlog`` decision.

Pure state, no I/O, so the rule can be read (and tested) on its own:

* raised when sends have failed without a success for ``threshold`` or longer;
* cleared once nothing is overdue any more (the backlog has drained), which after an
  outage means central took everything that waited;
* otherwise unchanged: a raised fault stays up while central catches up, and a fault
  left retained by an earlier life of sync is neither repeated nor cleared before the
  backlog says which it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class CentralWatch:
    threshold: timedelta
    failing_since: datetime | None = None
    """The first failed send since the last successful one."""
    last_error: str | None = None

    def failed(self, now: datetime, error: str) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    def succeeded(self) -> None:
        self.failing_since = None
        self.last_error = None

    def unreachable_for(self, now: datetime) -> float:
        if self.failing_since is None:
            return 0.0
        return (now - self.failing_since).total_seconds()

    def fault(self, now: datetime, overdue: int) -> bool | None:
        """True: raise; False: clear; None: leave the fault as it is."""
        if self.failing_since is not None and now - self.failing_since >= self.threshold:
            return True
        if overdue == 0:
            return False
        return None
