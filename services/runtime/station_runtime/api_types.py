"""Parameter types every service's REST API shares, so that each says its bounds once.

A path or query integer that names a row must fit the column it is looked up in: SQLite
and PostgreSQL keep integers in 64 bits, and a larger number reaching the driver is an
``OverflowError`` (a 500) instead of the 422 the caller's mistake deserves. The bound is in
the OpenAPI schema too (``maximum``), so a client can see it before it sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from station_protocol.times import Instant

MAX_ROW_ID = 2**63 - 1
"""The largest integer a 64-bit signed column holds (SQLite INTEGER, PostgreSQL BIGINT)."""

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A row's id or version number: 1 up to what a 64-bit column holds."""


def money_patterns(places: int, whole: int) -> tuple[str, str]:
    """The patterns of an amount of zero or more, and of one above zero, with up to
    ``places`` decimal places (zeros after them change nothing) and ``whole`` digits
    before the point."""
    fraction = f"\\.[0-9]{{1,{places}}}0*"
    non_negative = rf"^0*[0-9]{{1,{whole}}}({fraction})?$"
    positive = (
        rf"^(0*[1-9][0-9]{{0,{whole - 1}}}({fraction})?"
        rf"|0+\.[0-9]{{0,{places - 1}}}[1-9]0*)$"
    )
    return non_negative, positive


@dataclass(frozen=True)
class Money:
    """A money field of a request body: a decimal string that the schema and the handler
    check with one pattern:
    ``Annotated[Decimal, rule.check, rule.digits, rule.schema]``.

    ``type: string`` with the pattern, not the "number or string" pydantic writes for a
    Decimal: a JSON number is refused, since a client that sends one has already passed the
    amount through a float, and a string the pattern refuses (``"0"`` where the amount must
    be above zero, too many places, a sign) is what the handler refuses too, so the OpenAPI
    schema says exactly what is accepted.
    """

    places: int
    whole: int
    positive: bool

    @property
    def pattern(self) -> str:
        non_negative, above_zero = money_patterns(self.places, self.whole)
        return above_zero if self.positive else non_negative

    @property
    def what(self) -> str:
        return "an amount above zero" if self.positive else "an amount of zero or more"

    @property
    def check(self) -> BeforeValidator:
        matcher, what = re.compile(self.pattern), self.what

        def check(value: Any) -> Any:
            if not isinstance(value, str):
                raise ValueError(f'money must be a decimal string such as "12.50" ({what})')
            if not matcher.match(value):
                raise ValueError(f'money must be {what} such as "12.50", got {value!r}')
            return value

        return BeforeValidator(check)

    @property
    def digits(self) -> Any:
        return Field(
            max_digits=self.whole + self.places, decimal_places=self.places, allow_inf_nan=False
        )

    @property
    def schema(self) -> WithJsonSchema:
        return WithJsonSchema(
            {
                "type": "string",
                "pattern": self.pattern,
                "description": f"{self.what}, as a decimal string, at most {self.places} places",
                "examples": ["12.50"],
            }
        )


__all__ = ["MAX_ROW_ID", "Instant", "Money", "RowId", "money_patterns"]
