"""Sync's faults on the bus (``central_sync_backlog``, ``central_token_rejected``), retained,
raised and cleared; one announcer per code.

Publishing runs in its own task: a broker that is down must never hold up records on their
way to central. The report wanted last is published as soon as the broker takes it, and
only when it differs from the one published (a retained message says it once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from station_protocol import channels
from station_protocol.faults import FaultCode
from station_protocol.messages import ServiceFaultReport
from station_runtime.bus import Bus, BusUnavailable

log = logging.getLogger("station.sync.faults")

SOURCE = "central"
RETRY_SECONDS = 1.0


@dataclass
class FaultAnnouncer:
    bus: Bus
    service: str
    source: str = SOURCE
    code: FaultCode = FaultCode.CENTRAL_SYNC_BACKLOG
    _wanted: ServiceFaultReport | None = None
    _published: ServiceFaultReport | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> bool:
        return self._wanted is not None and self._wanted.active

    def want(self, active: bool, now: datetime, since: datetime, detail: dict[str, str]) -> None:
        """Raise or clear; saying the same again changes nothing."""
        if self._wanted is not None and self._wanted.active == active:
            return
        self._wanted = ServiceFaultReport(
            service=self.service,
            source=self.source,
            code=self.code.value,
            active=active,
            since=since,
            detected_at=now,
            detail=detail,
        )
        log.log(
            logging.WARNING if active else logging.INFO,
            f"{self.code.value} fault raised" if active else f"{self.code.value} fault cleared",
            extra={"code": self.code.value, **detail},
        )
        self._changed.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), RETRY_SECONDS)
            self._changed.clear()
            wanted = self._wanted
            if wanted is None or wanted is self._published:
                continue
            try:
                await self.bus.send(
                    channels.SERVICE_FAULT,
                    wanted,
                    wait=RETRY_SECONDS,
                    service=self.service,
                    source=self.source,
                    code=self.code.value,
                )
            except BusUnavailable:
                continue
            except Exception:
                log.exception("fault report not published; trying again")
                continue
            self._published = wanted
