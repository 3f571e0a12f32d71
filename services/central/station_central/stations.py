"""Stations and their tokens in central's database.

Blocking SQLAlchemy calls: the routes are plain ``def`` (FastAPI's thread pool).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_central.models import CentralStation
from station_central.tokens import new_token, token_hash
from station_protocol.central import Station, StationCredentials, StationRegistration
from station_runtime.clock import Clock


@dataclass(frozen=True)
class StationStore:
    engine: Engine
    clock: Clock

    def create(self, registration: StationRegistration) -> StationCredentials | None:
        """The new station's token, or ``None`` if the station exists already."""
        token = new_token()
        now = self.clock()
        row = CentralStation(
            station_id=registration.station_id,
            name=registration.name,
            token_hash=token_hash(token),
            created_at=now,
            token_issued_at=now,
        )
        try:
            with Session(self.engine) as db:
                db.add(row)
                db.commit()
        except IntegrityError:
            return None
        return StationCredentials(station_id=registration.station_id, token=token)

    def rotate(self, station_id: str) -> StationCredentials | None:
        """A new token for the station (the old one stops working), or ``None`` if unknown."""
        token = new_token()
        statement = (
            update(CentralStation)
            .where(col(CentralStation.station_id) == station_id)
            .values(token_hash=token_hash(token), token_issued_at=self.clock())
        )
        with Session(self.engine) as db:
            changed = db.exec(statement).rowcount
            db.commit()
        return StationCredentials(station_id=station_id, token=token) if changed else None

    def station_of(self, token: str) -> str | None:
        """The station a token belongs to, if any."""
        statement = select(CentralStation.station_id).where(
            col(CentralStation.token_hash) == token_hash(token)
        )
        with Session(self.engine) as db:
            return db.exec(statement).first()

    def all(self) -> list[Station]:
        statement = select(CentralStation).order_by(col(CentralStation.station_id))
        with Session(self.engine) as db:
            return [
                Station(station_id=row.station_id, name=row.name, created_at=row.created_at)
                for row in db.exec(statement).all()
            ]
