"""Parameter types every service's REST API shares, so that each says its bounds once.

A path or query integer that names a row must fit the column it is looked up in: SQLite
and PostgreSQL keep integers in 64 bits, and a larger number reaching the driver is an
``OverflowError`` (a 500) instead of the 422 the caller's mistake deserves. The bound is in
the OpenAPI schema too (``maximum``), so a client can see it before it sends.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from station_protocol.times import Instant

MAX_ROW_ID = 2**63 - 1
"""The largest integer a 64-bit signed column holds (SQLite INTEGER, PostgreSQL BIGINT)."""

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A row's id or version number: 1 up to what a 64-bit column holds."""

__all__ = ["MAX_ROW_ID", "Instant", "RowId"]
