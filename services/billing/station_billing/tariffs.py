"""The station's tariffs: OCPI 2.2.1 Tariff objects, versioned, never edited in place.

A PUT of a tariff that differs from its latest version stores the next version; the same
tariff again stores nothing (PUT is idempotent). Sessions freeze the version in effect when
they open, so a change reaches only sessions that open after it.

Rule 10 of ``docs/pricing.md``, Chinese time of use: the electricity price and
the service fee per kWh are one ENERGY price per band (OCPI lets only one ENERGY component
be active at a time), so a peak / flat / valley tariff is one element per band with an
ENERGY component of electricity plus service fee, restricted to the band's hours
(:func:`time_of_use_tariff`). A European tariff (per kWh, per hour charging, parking after
charging) is the same Tariff with ENERGY, TIME and PARKING_TIME components.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from station_billing.core.config import Settings
from station_billing.models import TariffVersion
from station_protocol.ocpi import (
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)


@dataclass(frozen=True)
class StoredTariff:
    tariff: Tariff
    version: int | None
    """``None`` for the station's configured default tariff (not stored)."""
    created_at: datetime | None = None


def default_tariff(settings: Settings, last_updated: datetime) -> Tariff:
    """One ENERGY price per kWh: what the station charges where no tariff is assigned."""
    return Tariff(
        id=settings.default_tariff_id,
        currency=settings.currency,
        elements=[
            TariffElement(
                price_components=[
                    PriceComponent(
                        type=TariffDimensionType.ENERGY,
                        price=settings.price_per_kwh,
                        vat=settings.vat_percent,
                    )
                ]
            )
        ],
        last_updated=last_updated,
    )


@dataclass(frozen=True)
class Band:
    """A Chinese time-of-use band: local hours and the electricity price per kWh in it."""

    start: time
    end: time
    electricity: Decimal


def time_of_use_tariff(
    tariff_id: str,
    currency: str,
    bands: Sequence[Band],
    service_fee: Decimal,
    last_updated: datetime,
    vat: Decimal | None = None,
    parking_per_hour: Decimal | None = None,
) -> Tariff:
    """Peak / flat / valley bands plus a service fee per kWh, as one OCPI tariff (rule 10)."""
    elements = [
        TariffElement(
            price_components=[
                PriceComponent(
                    type=TariffDimensionType.ENERGY, price=band.electricity + service_fee, vat=vat
                )
            ],
            restrictions=TariffRestrictions(start_time=band.start, end_time=band.end),
        )
        for band in bands
    ]
    if parking_per_hour is not None:
        elements.append(
            TariffElement(
                price_components=[
                    PriceComponent(
                        type=TariffDimensionType.PARKING_TIME, price=parking_per_hour, vat=vat
                    )
                ]
            )
        )
    return Tariff(id=tariff_id, currency=currency, elements=elements, last_updated=last_updated)


def tariff_json(tariff: Tariff) -> dict[str, Any]:
    """The tariff as OCPI JSON: money as exact strings, times ``HH:MM`` as OCPI writes them."""
    data: dict[str, Any] = tariff.model_dump(mode="json", exclude_none=True)
    for element in data["elements"]:
        restrictions = element.get("restrictions")
        for name in ("start_time", "end_time"):
            if restrictions is not None and name in restrictions:
                restrictions[name] = restrictions[name][:5]
    return data


def _content(tariff: Tariff) -> str:
    """What makes two versions the same tariff (everything but ``last_updated``)."""
    return json.dumps(tariff.model_dump(mode="json", exclude={"last_updated"}), sort_keys=True)


@dataclass(frozen=True)
class TariffBook:
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
