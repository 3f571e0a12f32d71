"""The fault catalogue: what each fault code means to the people who fix the station.

The catalogue is data (``catalogue.yaml`` beside this module), not code, so that an operator
or a pile vendor can improve a remedy without touching a service. It is validated when it
is loaded: an entry without a cause or a remedy in both languages, or a fault code of the
station (:class:`~station_protocol.faults.FaultCode`, every pile error code) without an
entry, refuses to load. A bulletin must never reach an operator with nothing to do.

Bulletins, alert rules, the fault board and ``FAULTS.md`` are all generated from it.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from station_protocol.faults import PILE_ERROR_CODES, FaultCode

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

FaultCodeText = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]

KNOWN_CODES: tuple[str, ...] = (*FaultCode, *PILE_ERROR_CODES.values())
"""Every code a station service raises; each must have a catalogue entry."""


class CatalogueError(ValueError):
    """The catalogue file is missing, is not YAML, or breaks a rule of the catalogue."""


class Language(StrEnum):
    """The languages every text of the catalogue is written in (the station is in China)."""

    ZH = "zh"
    EN = "en"


class Severity(StrEnum):
    """How urgently a fault needs a person, which also decides who is told (alert routes)."""

    CRITICAL = "critical"
    """Safety, or a whole charger or the station out of service: page someone now."""
    MAJOR = "major"
    """A pile out of service or billing at risk: the operator on duty, within the hour."""
    MINOR = "minor"
    """Degraded but working: the next working day."""
    WARNING = "warning"
    """Likely to become a fault if left alone: the daily digest."""

    @property
    def rank(self) -> int:
        """0 for the most urgent, so that sorting by rank puts critical first."""
        return list(Severity).index(self)


class Scope(StrEnum):
    """What a fault is about, and so what its ``source`` names."""

    PILE = "pile"
    """``source`` is a pile id."""
    COLLECTOR = "collector"
    """``source`` is a charger id: the collector, its Zigbee2MQTT or its link."""
    STATION = "station"
    """``source`` is a service name: the broker, the sync to central."""


class Text(BaseModel):
    """One text in every language of the station."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zh: Sentence
    en: Sentence

    def in_language(self, language: Language) -> str:
        return self.zh if language is Language.ZH else self.en


class CatalogueEntry(BaseModel):
    """One fault code: how bad it is, what it means, why it happens, what to do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: FaultCodeText
    severity: Severity
    scope: Scope
    title: Text
    text: Text
    """What is wrong, in a sentence or two an operator understands without the code."""
    causes: tuple[Text, ...] = Field(min_length=1)
    """Likely causes, the most likely first."""
    remedies: tuple[Text, ...] = Field(min_length=1)
    """What to do, in the order to do it."""
    station_action: Text
    """What the station does by itself meanwhile, so the operator knows what is safe."""
    unreachable: bool = False
    """While active, the station cannot reach the piles the source covers (pile up = 0)."""
    alert_after: int = Field(default=0, ge=0, le=86400)
    """Seconds a fault must stay active before Prometheus alerts (the bulletin is at once)."""


class Catalogue(BaseModel):
    """Every entry, in the order of the file (the order of ``FAULTS.md`` and the board)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: tuple[CatalogueEntry, ...]

    @model_validator(mode="after")
    def _one_entry_per_known_code(self) -> Catalogue:
        codes = [entry.code for entry in self.entries]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"codes with more than one entry: {', '.join(duplicates)}")
        missing = [code for code in KNOWN_CODES if code not in codes]
        if missing:
            raise ValueError(f"fault codes without an entry: {', '.join(missing)}")
        return self

    def get(self, code: str) -> CatalogueEntry | None:
        for entry in self.entries:
            if entry.code == code:
                return entry
        return None

    def __getitem__(self, code: str) -> CatalogueEntry:
        entry = self.get(code)
        if entry is None:
            raise KeyError(code)
        return entry

    def codes(self) -> list[str]:
        return [entry.code for entry in self.entries]

    def unreachable_codes(self) -> frozenset[str]:
        return frozenset(entry.code for entry in self.entries if entry.unreachable)


def catalogue_path() -> Path:
    """The catalogue that ships inside this package."""
    return Path(str(resources.files("station_protocol") / "catalogue.yaml"))


def parse_catalogue(document: Any) -> Catalogue:
    """Validate an already-parsed YAML document (``{"faults": [...]}``)."""
    if not isinstance(document, dict) or not isinstance(document.get("faults"), list):
        raise CatalogueError("the catalogue must be a mapping with a 'faults' list")
    try:
        return Catalogue(entries=tuple(document["faults"]))
    except ValidationError as exc:
        raise CatalogueError(f"invalid fault catalogue: {exc}") from exc


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load and validate the catalogue; the packaged one unless ``path`` is given."""
    source = path or catalogue_path()
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the fault catalogue {source}: {exc}") from exc
    return parse_catalogue(document)
