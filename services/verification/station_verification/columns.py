"""Column types that keep money exact on every database the station runs on.

SQLite has no exact decimal type: a ``NUMERIC`` column stores ``0.1`` as a binary float,
and ``SUM`` adds floats. A ledger whose balance is the ``SUM`` of its entries must not
drift, so an amount is stored as a whole number of ten-thousandths (``BIGINT``), which both
SQLite and PostgreSQL add exactly, and turned back into a ``Decimal`` on the way out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.types import TypeDecorator

from station_verification.money import from_units, to_units


class Money(TypeDecorator[Decimal]):
    """A ``Decimal`` stored as an integer count of ten-thousandths."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_units(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # PostgreSQL's SUM(bigint) is NUMERIC (a Decimal); SQLite's is an int.
        return from_units(int(value))
