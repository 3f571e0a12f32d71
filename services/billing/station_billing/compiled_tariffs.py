"""Frozen tariffs compiled once each: a session's tariff is priced every few seconds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from station_billing.pricing import CompiledTariff, compile_tariff
from station_protocol.ocpi import Tariff

CACHE_LIMIT = 256


@dataclass
class CompiledTariffs:
    """Frozen tariffs compiled once each (a session's tariff is priced every few seconds)."""

    _compiled: dict[str, CompiledTariff] = field(default_factory=dict)

    def compiled(self, frozen_json: str) -> CompiledTariff:
        key = hashlib.sha256(frozen_json.encode()).hexdigest()
        found = self._compiled.get(key)
        if found is None:
            if len(self._compiled) >= CACHE_LIMIT:
                self._compiled.clear()
            found = self._compiled[key] = compile_tariff(Tariff.model_validate_json(frozen_json))
        return found
