"""The station's tariffs in billing's database: OCPI 2.2.1 Tariff objects, versioned.

A tariff is never edited in place. A PUT of a tariff that differs from its latest version
stores the next version; the same tariff again stores nothing (PUT is idempotent). Sessions
freeze the version in effect when they open, so a change reaches only sessions that open
after it, and a version a session was priced with can always be read back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_billing.models import TariffVersion
from station_protocol.ocpi import Tariff


@dataclass(frozen=True)
class StoredTariff:
    tariff: Tariff
    version: int | None
    """``None`` for the station's configured default tariff (not stored)."""
    created_at: datetime | None = None


def _content(tariff: Tariff) -> str:
    """What makes two versions the same tariff (everything but ``last_updated``)."""
    return json.dumps(tariff.model_dump(mode="json", exclude={"last_updated"}), sort_keys=True)


@dataclass(frozen=True)
class TariffStore:
    """The stored tariffs (blocking calls: the API runs them in its thread pool)."""

    engine: Engine

    def put(self, tariff: Tariff, now: datetime) -> tuple[StoredTariff, bool]:
        """Store ``tariff`` as its next version unless it equals the latest; (stored, created)."""
        for _attempt in range(3):
            latest = self.latest(tariff.id)
            if latest is not None and _content(latest.tariff) == _content(tariff):
                return latest, False
            version = 1 if latest is None else (latest.version or 0) + 1
            stamped = tariff.model_copy(update={"last_updated": now})
            row = TariffVersion(
                id=tariff.id,
                version=version,
                currency=tariff.currency,
                body=stamped.model_dump_json(),
                created_at=now,
            )
            try:
                with Session(self.engine) as db:
                    db.add(row)
                    db.commit()
            except IntegrityError:
                continue  # another PUT stored this version first: compare with it
            return StoredTariff(stamped, version, now), True
        raise RuntimeError(f"tariff {tariff.id}: could not store a new version")

    def latest(self, tariff_id: str) -> StoredTariff | None:
        with Session(self.engine) as db:
            row = db.exec(
                select(TariffVersion)
                .where(TariffVersion.id == tariff_id)
                .order_by(col(TariffVersion.version).desc())
                .limit(1)
            ).first()
        return _stored(row) if row is not None else None

    def version(self, tariff_id: str, version: int) -> StoredTariff | None:
        with Session(self.engine) as db:
            row = db.get(TariffVersion, (tariff_id, version))
        return _stored(row) if row is not None else None

    def versions(self, tariff_id: str) -> list[StoredTariff]:
        with Session(self.engine) as db:
            rows = db.exec(
                select(TariffVersion)
                .where(TariffVersion.id == tariff_id)
                .order_by(col(TariffVersion.version))
            ).all()
        return [_stored(row) for row in rows]

    def all_latest(self) -> list[StoredTariff]:
        newest = (
            select(TariffVersion.id, func.max(TariffVersion.version).label("version"))
            .group_by(col(TariffVersion.id))
            .subquery()
        )
        with Session(self.engine) as db:
            rows = db.exec(
                select(TariffVersion)
                .join(
                    newest,
                    (col(TariffVersion.id) == newest.c.id)
                    & (col(TariffVersion.version) == newest.c.version),
                )
                .order_by(col(TariffVersion.id))
            ).all()
        return [_stored(row) for row in rows]


def _stored(row: TariffVersion) -> StoredTariff:
    return StoredTariff(Tariff.model_validate_json(row.body), row.version, row.created_at)
