"""Fault episodes and collector links in the faults service's database.

**Hold-down.** A flapping link (a pile at the edge of Zigbee range, a loose cable) raises
and clears the same fault over and over. Each raise that comes within ``hold_down`` seconds
of the previous clear continues that episode: the same bulletin id, the same ``raised_at``,
``flaps`` one higher, no new count in ``station_bulletins_raised_total``, no new pager
alert. The clear itself is never delayed: a bulletin disappears when its fault clears
(invariant 4 of ``docs/invariants.md``), it only comes back under the same id. A raise after
the hold-down opens a new episode.

Every write is idempotent by (source, code), because reports are retained and redelivered
and a second replica sees the same ones: raising an open fault changes nothing, clearing a
cleared one changes nothing. The database decides races (a partial unique index and
conditional UPDATEs), not a lock in this process.

Blocking SQLAlchemy calls: the callers run them in a worker thread.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_faults.models import CollectorLink, FaultEpisode


class RaiseOutcome(StrEnum):
    OPENED = "opened"
    """A new episode: a new bulletin."""
    REOPENED = "reopened"
    """The fault came back within the hold-down: the same episode goes on."""
    ALREADY_OPEN = "already_open"
    """A redelivered or repeated raise, or another replica's: nothing changed."""


@dataclass(frozen=True)
class Sighting:
    """A fault as someone reported it, before it is an episode."""

    code: str
    severity: str
    source: str
    charger: str | None
    pile_id: str | None
    since: datetime
    detected_at: datetime
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RaiseResult:
    outcome: RaiseOutcome
    episode: FaultEpisode


@dataclass(frozen=True)
class HistoryFilter:
    code: str | None = None
    source: str | None = None
    charger: str | None = None
    active: bool | None = None
    limit: int = 100


def episode_detail(episode: FaultEpisode) -> dict[str, str]:
    """The stored detail; anything unreadable reads as no detail rather than an error."""
    try:
        loaded = json.loads(episode.detail)
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(key): str(value) for key, value in loaded.items()}


@dataclass(frozen=True)
class EpisodeStore:
    engine: Engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ episodes

    def raise_fault(self, sighting: Sighting, now: datetime, hold_down: timedelta) -> RaiseResult:
        """Open an episode, continue one cleared within ``hold_down``, or find the open one."""
        with self._session() as db:
            current = _open_episode(db, sighting.source, sighting.code)
            if current is not None:
                return RaiseResult(RaiseOutcome.ALREADY_OPEN, current)
            recent = _cleared_since(db, sighting.source, sighting.code, now - hold_down)
            if recent is not None and (reopened := _reopen(db, recent, sighting, now)) is not None:
                return RaiseResult(RaiseOutcome.REOPENED, reopened)
            episode = _new_episode(sighting, now)
            db.add(episode)
            try:
                db.commit()
            except IntegrityError:
                # Another replica opened it between our read and our insert: theirs stands.
                db.rollback()
                current = _open_episode(db, sighting.source, sighting.code)
                if current is None:
                    raise
                return RaiseResult(RaiseOutcome.ALREADY_OPEN, current)
            return RaiseResult(RaiseOutcome.OPENED, episode)

    def clear_fault(
        self, source: str, code: str, now: datetime, *, only_reason: str | None = None
    ) -> FaultEpisode | None:
        """Close the open episode; the closed episode if this call closed it.

        ``only_reason``: close it only if it was raised for that reason (its detail's
        ``reason``), so that one kind of evidence does not clear a fault another kind raised.
        """
        with self._session() as db:
            current = _open_episode(db, source, code)
            if current is None:
                return None
            if only_reason is not None and episode_detail(current).get("reason") != only_reason:
                return None
            result = db.execute(
                update(FaultEpisode)
                .where(col(FaultEpisode.id) == current.id, col(FaultEpisode.cleared_at).is_(None))
                .values(cleared_at=now)
            )
            db.commit()
            if getattr(result, "rowcount", 0) != 1:
                return None
            return db.get(FaultEpisode, current.id, populate_existing=True)

    def acknowledge(self, episode_id: str, who: str, now: datetime) -> FaultEpisode | None:
        """Record who took the fault on; the first acknowledgement stands."""
        with self._session() as db:
            db.execute(
                update(FaultEpisode)
                .where(col(FaultEpisode.id) == episode_id, col(FaultEpisode.acked_by).is_(None))
                .values(acked_by=who, acked_at=now)
            )
            db.commit()
            return db.get(FaultEpisode, episode_id, populate_existing=True)

    def open_episode(self, source: str, code: str) -> FaultEpisode | None:
        with self._session() as db:
            return _open_episode(db, source, code)

    def get(self, episode_id: str) -> FaultEpisode | None:
        with self._session() as db:
            return db.get(FaultEpisode, episode_id)

    def open_episodes(self) -> list[FaultEpisode]:
        with self._session() as db:
            query = (
                select(FaultEpisode)
                .where(col(FaultEpisode.cleared_at).is_(None))
                .order_by(col(FaultEpisode.raised_at))
            )
            return list(db.exec(query).all())

    def history(self, query: HistoryFilter) -> list[FaultEpisode]:
        """Newest first."""
        statement = select(FaultEpisode)
        if query.code is not None:
            statement = statement.where(col(FaultEpisode.code) == query.code)
        if query.source is not None:
            statement = statement.where(col(FaultEpisode.source) == query.source)
        if query.charger is not None:
            statement = statement.where(col(FaultEpisode.charger) == query.charger)
        if query.active is True:
            statement = statement.where(col(FaultEpisode.cleared_at).is_(None))
        elif query.active is False:
            statement = statement.where(col(FaultEpisode.cleared_at).is_not(None))
        statement = statement.order_by(
            col(FaultEpisode.raised_at).desc(), col(FaultEpisode.id)
        ).limit(query.limit)
        with self._session() as db:
            return list(db.exec(statement).all())

    # ------------------------------------------------------------------ collector links

    def record_breath(self, charger: str, seq: int, t1: float, at: datetime) -> None:
        """Keep the newest breath of a collector where every replica sees it."""
        with self._session() as db:
            link = db.get(CollectorLink, charger)
            if link is None:
                db.add(CollectorLink(charger=charger, last_breath_at=at, last_seq=seq, t1=t1))
                try:
                    db.commit()
                    return
                except IntegrityError:
                    db.rollback()
            db.execute(
                update(CollectorLink)
                .where(
                    col(CollectorLink.charger) == charger,
                    col(CollectorLink.last_breath_at) <= at,
                )
                .values(last_breath_at=at, last_seq=seq, t1=t1)
            )
            db.commit()

    def link(self, charger: str) -> CollectorLink | None:
        with self._session() as db:
            return db.get(CollectorLink, charger)

    def links(self) -> list[CollectorLink]:
        with self._session() as db:
            return list(db.exec(select(CollectorLink)).all())


def _open_episode(db: Session, source: str, code: str) -> FaultEpisode | None:
    query = select(FaultEpisode).where(
        col(FaultEpisode.source) == source,
        col(FaultEpisode.code) == code,
        col(FaultEpisode.cleared_at).is_(None),
    )
    return db.exec(query).first()


def _cleared_since(db: Session, source: str, code: str, after: datetime) -> FaultEpisode | None:
    query = (
        select(FaultEpisode)
        .where(
            col(FaultEpisode.source) == source,
            col(FaultEpisode.code) == code,
            col(FaultEpisode.cleared_at) >= after,
        )
        .order_by(col(FaultEpisode.cleared_at).desc())
        .limit(1)
    )
    return db.exec(query).first()


def _reopen(
    db: Session, episode: FaultEpisode, sighting: Sighting, now: datetime
) -> FaultEpisode | None:
    """Continue ``episode``; ``None`` if a racing replica changed it first.

    The episode keeps its id, ``since`` and ``raised_at``, but takes the new sighting's
    detail: the bulletin must say why the fault is back (Zigbee2MQTT's word rather than the
    breath deadline of the last time, the error code the pile reports now), and a clear for
    one reason (the last will) must see the reason that raised it this time.
    """
    try:
        result = db.execute(
            update(FaultEpisode)
            .where(
                col(FaultEpisode.id) == episode.id,
                col(FaultEpisode.cleared_at) == episode.cleared_at,
            )
            .values(
                cleared_at=None,
                flaps=col(FaultEpisode.flaps) + 1,
                last_raised_at=now,
                detail=json.dumps(sighting.detail, sort_keys=True),
            )
        )
        db.commit()
    except IntegrityError:
        db.rollback()
        return None
    if getattr(result, "rowcount", 0) != 1:
        return None
    return db.get(FaultEpisode, episode.id, populate_existing=True)


def _new_episode(sighting: Sighting, now: datetime) -> FaultEpisode:
    return FaultEpisode(
        id=str(uuid.uuid4()),
        code=sighting.code,
        severity=sighting.severity,
        source=sighting.source,
        charger=sighting.charger,
        pile_id=sighting.pile_id,
        since=sighting.since,
        detected_at=sighting.detected_at,
        raised_at=now,
        last_raised_at=now,
        cleared_at=None,
        flaps=0,
        detail=json.dumps(sighting.detail, sort_keys=True),
    )
