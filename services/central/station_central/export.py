"""Charging records as CSV, for the people who book them (``GET /api/v1/records.csv``).

An accountant opens the file in a spreadsheet, so every cell is written for that reader:
money and energy as the exact decimals the station sent (never a float, never ``1E+1``),
times in ISO 8601 with their offset, and no cell a spreadsheet would run as a formula. A
card uid or a tariff id is the station's (or a card's) text, and ``=HYPERLINK(...)`` on a
card would otherwise be a live link in the operator's books (CSV injection).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from station_protocol.central import CentralRecord

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""
NEGATIVE_NUMBER = re.compile(r"-[0-9]+(\.[0-9]+)?")
"""A genuine negative number, which a spreadsheet reads as a number and no formula."""


def _decimal(value: Decimal | None) -> str:
    """Exact, in positional notation (``format(..., "f")``: ``Decimal("1E+1")`` is ``10``)."""
    return "" if value is None else format(value, "f")


def _instant(value: datetime) -> str:
    return value.isoformat()


Column = tuple[str, Callable[[CentralRecord], str]]

COLUMNS: tuple[Column, ...] = (
    ("record_id", lambda r: r.record_id),
    ("station_id", lambda r: r.station_id),
    ("session_id", lambda r: r.session_id),
    ("pile_id", lambda r: r.pile_id),
    ("card_uid", lambda r: r.card_uid),
    ("started_at", lambda r: _instant(r.started_at)),
    ("stopped_at", lambda r: _instant(r.stopped_at)),
    ("stop_reason", lambda r: r.stop_reason.value),
    ("meter_start_kwh", lambda r: _decimal(r.meter_start)),
    ("meter_stop_kwh", lambda r: _decimal(r.meter_stop)),
    ("energy_kwh", lambda r: _decimal(r.total_energy)),
    ("cost_excl_vat", lambda r: _decimal(r.total_cost.excl_vat)),
    ("vat", lambda r: _decimal(r.total_cost.incl_vat - r.total_cost.excl_vat)),
    ("cost_incl_vat", lambda r: _decimal(r.total_cost.incl_vat)),
    ("currency", lambda r: r.currency),
    ("tariff_id", lambda r: r.tariff_id),
    ("anomaly", lambda r: r.anomaly.value if r.anomaly is not None else ""),
    ("received_at", lambda r: _instant(r.received_at)),
)
"""The export's columns, in order: who charged where and when, how much, at what price."""

HEADER = tuple(name for name, _ in COLUMNS)


def safe_cell(value: str) -> str:
    """``value``, with a leading apostrophe if a spreadsheet would run it as a formula.

    A negative number is left as it is: it is a number to the spreadsheet, and an
    apostrophe would turn an amount into text that no sum adds up.
    """
    if value.startswith(FORMULA_STARTS) and not NEGATIVE_NUMBER.fullmatch(value):
        return "'" + value
    return value


def row(record: CentralRecord) -> list[str]:
    return [safe_cell(cell(record)) for _, cell in COLUMNS]


def _lines(rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def csv_chunks(pages: Iterable[list[CentralRecord]]) -> Iterator[str]:
    """The header, then one chunk of CSV per page: RFC 4180 (``\\r\\n``, quoted as needed)."""
    yield _lines([HEADER])
    for page in pages:
        yield _lines(row(record) for record in page)
