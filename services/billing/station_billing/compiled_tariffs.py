"""Frozen tariffs compiled once each: a session's tariff is priced every few seconds.

A compiled tariff is found by what names its content, never by reading or hashing its JSON:

* a stored tariff version never changes (a changed tariff is the next version, see
  :mod:`station_billing.tariff_store`), so ``(tariff id, version)`` names it, and a session
  carries both (``tariff_id``, ``tariff_version``) beside its frozen copy;
* the station's configured default tariff is not stored and has no version. Billing builds
  it from its settings at each start, under the same id, so the default a session froze may
  be another start's (the price was changed in between) or another replica's: its key is
  the id with that default's own content (the frozen OCPI JSON, prices and all), and two
  defaults are never taken for one another. The default of this start is the same object
  for every session it opens and for the displays, so its JSON is written once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from station_billing.models import ChargingSession
from station_billing.pricing import CompiledTariff, compile_tariff
from station_billing.tariff_store import StoredTariff
from station_protocol.ocpi import Tariff

CACHE_LIMIT = 256

StoredKey = tuple[str, int]
"""A stored version: ``(tariff id, version)``."""
DefaultKey = tuple[str, None, str]
"""A configured default: ``(tariff id, None, its frozen OCPI JSON)``."""
TariffKey = StoredKey | DefaultKey


@dataclass
class CompiledTariffs:
    default: StoredTariff
    """This start's configured default tariff (version ``None``)."""
    _compiled: dict[TariffKey, CompiledTariff] = field(default_factory=dict)
    _default_json: str = field(init=False)

    def __post_init__(self) -> None:
        # Exactly the JSON each session opened on the default freezes (SessionStore.open).
        self._default_json = self.default.tariff.model_dump_json()

    def of_session(self, session: ChargingSession) -> CompiledTariff:
        """The tariff frozen into ``session`` when it opened, compiled."""
        if session.tariff_version is not None:
            key: TariffKey = (session.tariff_id, session.tariff_version)
        else:
            key = (session.tariff_id, None, session.tariff)
        return self._get(key, lambda: Tariff.model_validate_json(session.tariff))

    def of_stored(self, stored: StoredTariff) -> CompiledTariff:
        """A tariff in effect (a stored version, or the configured default), compiled."""
        tariff = stored.tariff
        if stored.version is not None:
            key: TariffKey = (tariff.id, stored.version)
        elif stored is self.default:
            key = (tariff.id, None, self._default_json)
        else:
            key = (tariff.id, None, tariff.model_dump_json())
        return self._get(key, lambda: tariff)

    def _get(self, key: TariffKey, tariff: Callable[[], Tariff]) -> CompiledTariff:
        found = self._compiled.get(key)
        if found is None:
            if len(self._compiled) >= CACHE_LIMIT:
                self._compiled.clear()
            found = self._compiled[key] = compile_tariff(tariff())
        return found
