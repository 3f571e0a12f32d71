"""The bulletins that are up on the broker now, as every replica sees them.

Fed by the retained bulletin topics (and by this service's own publishes, so its metrics
never lag its announcements), it is what the Prometheus gauges and the reconciliation
read. Reading the broker rather than the local process means two replicas export the same
state, whichever of them raised a bulletin.

Bulletins arrive decoded by their channel; the bus drops and counts one it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from station_faults.metrics import DropRefusal, MessageKind
from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_runtime.bus import Bus
from station_runtime.deliveries import Cleared, Delivery

FaultKey = tuple[str, str]
"""``(source, code)``: one fault on one source; at most one bulletin each."""


@dataclass
class ActiveBulletins:
    _shown: dict[FaultKey, Bulletin] = field(default_factory=dict)

    def put(self, bulletin: Bulletin) -> None:
        self._shown[(bulletin.source, bulletin.code)] = bulletin

    def remove(self, source: str, code: str) -> None:
        self._shown.pop((source, code), None)

    def get(self, source: str, code: str) -> Bulletin | None:
        return self._shown.get((source, code))

    def snapshot(self) -> dict[FaultKey, Bulletin]:
        return dict(self._shown)


@dataclass(frozen=True)
class BoardFeed:
    """Keeps :class:`ActiveBulletins` in step with the retained bulletin topics."""

    bus: Bus
    board: ActiveBulletins

    def register(self) -> None:
        self.bus.subscribe(
            channels.FAULT_BULLETIN,
            self.on_bulletin,
            kind=MessageKind.BULLETIN,
            on_clear=self.on_withdrawn,
        )

    async def on_bulletin(self, delivery: Delivery[Bulletin]) -> None:
        bulletin = delivery.body
        if (bulletin.source, bulletin.code) != (delivery.params["source"], delivery.params["code"]):
            self.bus.drop(delivery, DropRefusal.TOPIC_MISMATCH, MessageKind.BULLETIN)
            return
        self.board.put(bulletin)

    async def on_withdrawn(self, cleared: Cleared) -> None:
        self.board.remove(cleared.params["source"], cleared.params["code"])
