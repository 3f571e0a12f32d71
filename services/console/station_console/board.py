"""The read model: the station as the bus tells it, one entry per pile of the station.

Every piece comes from a retained topic of its owner (a pile's status from its collector,
its session and price from billing, bulletins from faults, maintenance from this service),
so a console that restarts has the whole station back as soon as it subscribes. Nothing
here is decided by the console except how the pieces combine into what a person sees
(:meth:`StationBoard.view`): a collector that is offline makes all its piles ``offline``,
whatever their last retained status says (Home Assistant's availability idea).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import Severity
from station_protocol.ids import charger_of
from station_protocol.messages import (
    PileBoardState,
    PileMaintenance,
    PileSession,
    PileStatus,
    SessionStatus,
    StationPiles,
    TariffDisplay,
)
from station_runtime.pile_set import pile_order

SEVERITY_ORDER = {
    Severity.CRITICAL: 0,
    Severity.MAJOR: 1,
    Severity.MINOR: 2,
    Severity.WARNING: 3,
}
"""The most urgent bulletin names a pile's fault on the board."""
SHOWN_THROUGH_MAINTENANCE = {PileBoardState.CHARGING, PileBoardState.FINISHING}
"""A session running when the pile went into maintenance still shows as such."""


class PileView(BaseModel):
    """One pile as ``GET /api/v1/piles`` and the board show it."""

    model_config = ConfigDict(frozen=True)

    id: str
    charger: str
    state: PileBoardState
    power_kw: Decimal | None
    energy_kwh: Decimal | None
    """The pile's meter register."""
    session_energy_kwh: Decimal | None
    """kWh delivered in the running session so far."""
    linkquality: int | None
    last_seen: datetime | None
    session_id: str | None
    fault: str | None
    """The code of the pile's most urgent active bulletin, if any."""
    maintenance: bool
    maintenance_reason: str | None
    price: list[str]
    """The price lines in effect at the pile now (billing's display lines)."""


@dataclass
class PileEntry:
    status: PileStatus | None = None
    session: PileSession | None = None
    tariff: TariffDisplay | None = None
    maintenance: PileMaintenance | None = None


Listener = Callable[[str], None]
"""Told the id of what changed: a pile id, or ``bulletins``."""
BULLETINS = "bulletins"
PILES = "piles"
"""A pile left the station: the page draws the station again."""


@dataclass
class StationBoard:
    chargers: list[str]
    """The station's chargers, in order, each drawn even when it has no pile."""
    piles: dict[str, PileEntry] = field(default_factory=dict)
    collectors: dict[str, bool] = field(default_factory=dict)
    """Each collector's last retained status: online or not (unknown counts as online
    until it says otherwise; its piles' own statuses say ``offline`` until seen)."""
    bulletins: dict[tuple[str, str], Bulletin] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    @classmethod
    def of(cls, chargers: list[str], word: StationPiles) -> StationBoard:
        board = cls(list(chargers))
        board.follow(word)
        return board

    def follow(self, word: StationPiles) -> None:
        """The station's pile set changed: draw the piles added, forget the piles removed."""
        wanted = set(word.pile_ids())
        added, removed = wanted - set(self.piles), set(self.piles) - wanted
        for pile_id in removed:
            del self.piles[pile_id]
        for pile_id in added:
            self.piles[pile_id] = PileEntry()
            self._changed(pile_id)
        if added or removed:
            self._changed(PILES)

    def layout(self) -> dict[str, list[str]]:
        """Each charger's piles, in order: how the board draws the station."""
        drawn: dict[str, list[str]] = {charger: [] for charger in self.chargers}
        for pile_id in sorted(self.piles, key=pile_order):
            drawn.setdefault(charger_of(pile_id), []).append(pile_id)
        return drawn

    # -- what the bus says -----------------------------------------------------------------

    def has_pile(self, pile_id: str) -> bool:
        return pile_id in self.piles

    def put_status(self, status: PileStatus) -> None:
        self._entry(status.pile_id).status = status
        self._changed(status.pile_id)

    def put_session(self, session: PileSession) -> None:
        self._entry(session.pile_id).session = session
        self._changed(session.pile_id)

    def put_tariff(self, tariff: TariffDisplay) -> None:
        self._entry(tariff.pile_id).tariff = tariff
        self._changed(tariff.pile_id)

    def put_maintenance(self, pile_id: str, maintenance: PileMaintenance | None) -> None:
        self._entry(pile_id).maintenance = maintenance
        self._changed(pile_id)

    def put_collector(self, charger: str, online: bool) -> None:
        if self.collectors.get(charger, True) == online:
            self.collectors[charger] = online
            return
        self.collectors[charger] = online
        for pile_id in self.piles:
            if charger_of(pile_id) == charger:
                self._changed(pile_id)

    def put_bulletin(self, bulletin: Bulletin) -> None:
        self.bulletins[(bulletin.source, bulletin.code)] = bulletin
        self._bulletin_changed(bulletin.pile_id)

    def remove_bulletin(self, source: str, code: str) -> Bulletin | None:
        gone = self.bulletins.pop((source, code), None)
        if gone is not None:
            self._bulletin_changed(gone.pile_id)
        return gone

    # -- what people see -------------------------------------------------------------------

    def view(self, pile_id: str) -> PileView:
        entry = self.piles[pile_id]
        status, maintenance = entry.status, entry.maintenance
        in_maintenance = maintenance is not None and maintenance.active
        return PileView(
            id=pile_id,
            charger=charger_of(pile_id),
            state=self._state(pile_id, entry, in_maintenance),
            power_kw=status.power if status else None,
            energy_kwh=status.energy if status else None,
            session_energy_kwh=status.session_energy if status else None,
            linkquality=status.linkquality if status else None,
            last_seen=status.last_seen if status else None,
            session_id=self._session_id(entry),
            fault=self.fault_of(pile_id),
            maintenance=in_maintenance,
            maintenance_reason=maintenance.reason if maintenance and in_maintenance else None,
            price=list(entry.tariff.lines) if entry.tariff else [],
        )

    def views(self) -> list[PileView]:
        return [self.view(pile_id) for pile_id in sorted(self.piles, key=pile_order)]

    def fault_of(self, pile_id: str) -> str | None:
        shown = self.bulletins_of(pile_id)
        return shown[0].code if shown else None

    def bulletins_of(self, pile_id: str) -> list[Bulletin]:
        mine = [b for b in self.bulletins.values() if b.pile_id == pile_id]
        return sorted(mine, key=lambda b: (SEVERITY_ORDER.get(b.severity, 9), b.raised_at))

    def active_bulletins(self) -> list[Bulletin]:
        return sorted(
            self.bulletins.values(),
            key=lambda b: (SEVERITY_ORDER.get(b.severity, 9), b.raised_at),
        )

    def in_maintenance(self, pile_id: str) -> bool:
        maintenance = self.piles[pile_id].maintenance
        return maintenance is not None and maintenance.active

    # -- inside ----------------------------------------------------------------------------

    def _state(self, pile_id: str, entry: PileEntry, in_maintenance: bool) -> PileBoardState:
        status = entry.status
        shown = status.state if status is not None else PileBoardState.OFFLINE
        if in_maintenance and shown not in SHOWN_THROUGH_MAINTENANCE:
            return PileBoardState.MAINTENANCE
        if not self.collectors.get(charger_of(pile_id), True):
            return PileBoardState.OFFLINE
        return shown

    @staticmethod
    def _session_id(entry: PileEntry) -> str | None:
        if entry.status is not None and entry.status.session_id is not None:
            return entry.status.session_id
        session = entry.session
        if session is not None and session.status is SessionStatus.ACTIVE:
            return session.session_id
        return None

    def _entry(self, pile_id: str) -> PileEntry:
        return self.piles.setdefault(pile_id, PileEntry())

    def _bulletin_changed(self, pile_id: str | None) -> None:
        self._changed(BULLETINS)
        if pile_id is not None and pile_id in self.piles:
            self._changed(pile_id)

    def _changed(self, what: str) -> None:
        for listener in self.listeners:
            listener(what)
