"""The piles billing has heard of, in billing's database (blocking calls, run in a thread).

A pile is remembered the first time a session opens or a reading arrives on it, so that its
display gets the tariff (:mod:`station_billing.tariff_displays`) even without a layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from station_billing.models import KnownPile


@dataclass(frozen=True)
class PileStore:
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
