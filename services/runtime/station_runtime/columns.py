"""Column types that keep money and time exact in every database a service runs on.

Shared here because tables that cross a service boundary (billing's outbox, which sync
reads) must decode the same way on both sides. SQLite has no decimal type (SQLAlchemy's
``Numeric`` goes through a binary float there), so a decimal is its exact text on SQLite and
``NUMERIC`` on PostgreSQL. SQLite also drops the time zone of a datetime, so times are stored
as naive UTC there and come back timezone-aware; PostgreSQL keeps ``timestamptz``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

DECIMAL_TEXT_LENGTH = 40


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` that comes back exactly as it went in."""

    impl = String(DECIMAL_TEXT_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(DECIMAL_TEXT_LENGTH))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        if dialect.name == "postgresql":
            return value
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC; a naive one is refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime refused: {value!r}")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
