"""Meter samples and known piles in billing's database (blocking calls, run in a thread)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_billing.metering import MeterSample
from station_billing.models import KnownPile, MeterSampleRow


@dataclass(frozen=True)
class SampleStore:
    engine: Engine

    def add(self, session_id: str, sample: MeterSample) -> None:
        row = MeterSampleRow(
            session_id=session_id,
            at=sample.at,
            energy=sample.energy,
            charging=sample.charging,
            current=sample.current,
            power=sample.power,
        )
        with Session(self.engine) as db:
            db.add(row)
            db.commit()

    def of(self, session_id: str) -> list[MeterSample]:
        """The session's samples in the order billing saw them."""
        with Session(self.engine) as db:
            rows = db.exec(
                select(MeterSampleRow)
                .where(col(MeterSampleRow.session_id) == session_id)
                .order_by(col(MeterSampleRow.at), col(MeterSampleRow.id))
            ).all()
        return [
            MeterSample(
                at=row.at,
                energy=row.energy,
                charging=row.charging,
                current=row.current,
                power=row.power,
            )
            for row in rows
        ]


@dataclass(frozen=True)
class PileBook:
    """Piles billing has heard of (opens, readings), so their displays get the tariff."""

    engine: Engine

    def remember(self, pile_id: str, now: datetime) -> None:
        try:
            with Session(self.engine) as db:
                if db.get(KnownPile, pile_id) is None:
                    db.add(KnownPile(pile_id=pile_id, first_seen=now))
                    db.commit()
        except IntegrityError:
            pass  # another replica remembered it at the same moment

    def all(self) -> list[str]:
        with Session(self.engine) as db:
            return list(db.exec(select(KnownPile.pile_id)).all())
