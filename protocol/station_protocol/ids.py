"""Charger and pile identifiers.

Outside parties (real piles, test rigs, the kiosk) rely on these exact forms: chargers are
``c1``..``cN`` and piles ``c<i>-p<jj>``, which are also the piles' Zigbee2MQTT friendly names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import StringConstraints

CHARGER_PATTERN = r"^c[1-9][0-9]{0,2}$"
PILE_PATTERN = r"^c[1-9][0-9]{0,2}-p[0-9]{2}$"

ChargerId = Annotated[str, StringConstraints(pattern=CHARGER_PATTERN)]
PileId = Annotated[str, StringConstraints(pattern=PILE_PATTERN)]

STATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
StationId = Annotated[str, StringConstraints(pattern=STATION_PATTERN)]
"""A station as the central server knows it (``station-1``); it is part of central's URLs."""

_PILE_RE = re.compile(r"^(c[1-9][0-9]{0,2})-p([0-9]{2})$")
_LAYOUT_RE = re.compile(r"^([1-9][0-9]{0,2})x([1-9][0-9]?)$")


def charger_id(index: int) -> str:
    """The id of charger ``index`` (1-based)."""
    if index < 1:
        raise ValueError(f"charger index must be 1 or more, got {index}")
    return f"c{index}"


def pile_id(charger: int, pile: int) -> str:
    """The id of pile ``pile`` (1-based, at most 99) on charger ``charger``."""
    if not 1 <= pile <= 99:
        raise ValueError(f"pile index must be 1..99, got {pile}")
    return f"{charger_id(charger)}-p{pile:02d}"


def is_pile_id(text: str) -> bool:
    return _PILE_RE.match(text) is not None


def charger_of(pile: str) -> str:
    """The charger a pile belongs to; raises ``ValueError`` for a malformed pile id."""
    match = _PILE_RE.match(pile)
    if match is None:
        raise ValueError(f"not a pile id: {pile!r}")
    return match.group(1)


@dataclass(frozen=True)
class Layout:
    """A station of ``chargers`` chargers with ``piles_per_charger`` piles each."""

    chargers: int
    piles_per_charger: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        """Parse ``NxM`` as written on the command line (``4x12``)."""
        match = _LAYOUT_RE.match(text.strip())
        if match is None:
            raise ValueError(f"layout must be NxM (for example 4x12), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.chargers}x{self.piles_per_charger}"

    def charger_ids(self) -> list[str]:
        return [charger_id(i) for i in range(1, self.chargers + 1)]

    def piles_of(self, charger: str) -> list[str]:
        index = int(charger[1:])
        return [pile_id(index, j) for j in range(1, self.piles_per_charger + 1)]

    def pile_ids(self) -> list[str]:
        return [p for c in self.charger_ids() for p in self.piles_of(c)]

    def has_pile(self, pile: str) -> bool:
        """Is ``pile`` one of this station's (``c<i>-p<jj>`` within the layout)?"""
        match = re.fullmatch(r"c(\d+)-p(\d+)", pile)
        if match is None:
            return False
        charger, number = int(match.group(1)), int(match.group(2))
        return 1 <= charger <= self.chargers and 1 <= number <= self.piles_per_charger
