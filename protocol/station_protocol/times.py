"""Date-times as they arrive from outside: RFC 3339 strings with a zone, nothing else.

Pydantic's ``AwareDatetime`` also takes a number (``0.5``) or a numeric string
(``"1700000000"``) as Unix time, and a space for the ``T``, although every schema it writes
says ``format: date-time``. A client that sends ``?at=0.5`` has made a mistake the station
should point out (422), not answer a question about 1970. :data:`Instant` accepts exactly
what its schema says: an RFC 3339 ``date-time`` string with seconds and a zone (``Z`` or
``+08:00``). In Python (billing building a record) it still takes a zone-aware ``datetime``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a date-time must be an RFC 3339 string such as 2025-01-31T08:00:00+08:00")
    if not _RFC3339.match(value):
        raise ValueError(
            f"not an RFC 3339 date-time with a zone (2025-01-31T08:00:00+08:00): {value!r}"
        )
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A moment from outside the station: an RFC 3339 date-time string with its zone."""
