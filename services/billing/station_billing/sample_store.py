"""The meter samples kept for each session, in billing's database.

Blocking calls: the bus handlers run them in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from station_billing.metering import MeterSample
from station_billing.models import MeterSampleRow


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
