"""The bulletins that are up on the broker now, as every replica sees them.

Fed by the retained bulletin topics (and by this service's own publishes, so its metrics
never lag its announcements), it is what the Prometheus gauges and the reconciliation
read. Reading the broker rather than the local process means two replicas export the same
state, whichever of them raised a bulletin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import ValidationError

from station_faults.metrics import FaultMetrics, MessageKind
from station_protocol.bulletins import Bulletin
from station_protocol.topics import StationTopics
from station_runtime.deliveries import Incoming

log = logging.getLogger("station.faults.board")

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

    board: ActiveBulletins
    metrics: FaultMetrics

    async def on_bulletin(self, message: Incoming) -> None:
        key = StationTopics.bulletin_of_topic(message.topic)
        if key is None:
            return
        if not message.payload:
            self.board.remove(*key)
            return
        try:
            bulletin = Bulletin.model_validate_json(message.payload)
        except ValidationError as exc:
            self.metrics.dropped(MessageKind.BULLETIN, "malformed")
            log.warning(
                "unreadable bulletin ignored",
                extra={"topic": message.topic, "error": str(exc)[:300]},
            )
            return
        if (bulletin.source, bulletin.code) != key:
            self.metrics.dropped(MessageKind.BULLETIN, "topic_mismatch")
            return
        self.board.put(bulletin)
