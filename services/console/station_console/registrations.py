"""Pile registration: a device joins a charger's Zigbee network, an operator names it a pile.

A charger's Zigbee2MQTT accepts new devices only while an operator has opened joining
(``permit_join``). A device that joins (``device_joined``) and is interviewed successfully
(``device_interview``, ``successful``) is *pending*: listed with its model and vendor until
an operator approves it under a free pile id of its charger (Zigbee2MQTT renames it, and
only once it confirmed is the pile added to the station's set) or rejects it (Zigbee2MQTT
removes it from its network). Until then the device is a stranger to the station: the
collector ignores whatever it says.

Registrations are stored, so that a console that restarts still lists what is pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from station_console.bridge_client import BridgeClient, BridgeRefused
from station_console.models import Registration
from station_console.pile_registry import PileRegistry, PileTaken
from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import charger_of, is_pile_id
from station_protocol.zigbee import (
    BridgeEvent,
    BridgeEventType,
    DeviceRemoveRequest,
    DeviceRenameRequest,
    InterviewStatus,
    PermitJoinRequest,
)
from station_runtime.clock import Clock
from station_runtime.deliveries import Delivery

log = logging.getLogger("station.console.registrations")


class RegistrationStatus(StrEnum):
    JOINING = "joining"
    """Joined; Zigbee2MQTT is still asking it what it is."""
    PENDING = "pending"
    """Interviewed: waiting for an operator."""
    APPROVED = "approved"
    REJECTED = "rejected"
    LEFT = "left"
    """It left the network before anyone decided."""


OPEN = (RegistrationStatus.JOINING, RegistrationStatus.PENDING)


class RegistrationView(BaseModel):
    """A device waiting for an operator, as ``GET /api/v1/registrations`` and the board show it."""

    model_config = ConfigDict(frozen=True)

    ieee_address: str
    charger: str
    model: str | None
    vendor: str | None
    description: str | None
    joined_at: datetime


class NoSuchRegistration(Exception):
    """No device with this IEEE address waits for an operator."""


class WrongCharger(Exception):
    """The pile id is not one of the device's charger."""


# -- storage (run in a worker thread) --------------------------------------------------------


def load_pending(engine: Engine) -> list[Registration]:
    with Session(engine) as db:
        query = select(Registration).where(col(Registration.status) == RegistrationStatus.PENDING)
        return list(db.exec(query).all())


def store(engine: Engine, registration: Registration) -> None:
    with Session(engine) as db:
        db.merge(registration)
        db.commit()


def stored(engine: Engine, ieee_address: str) -> Registration | None:
    with Session(engine) as db:
        return db.get(Registration, ieee_address)


def view_of(registration: Registration) -> RegistrationView:
    return RegistrationView(
        ieee_address=registration.ieee_address,
        charger=registration.charger,
        model=registration.model,
        vendor=registration.vendor,
        description=registration.description,
        joined_at=registration.joined_at,
    )


# -- the desk ---------------------------------------------------------------------------------

Changed = Callable[[], None]


@dataclass
class RegistrationDesk:
    engine: Engine
    clock: Clock
    zigbee: dict[str, ZigbeeChannels]
    bridge: BridgeClient
    piles: PileRegistry
    pending: dict[str, RegistrationView] = field(default_factory=dict)
    listeners: list[Changed] = field(default_factory=list)
    _joins: dict[str, Registration] = field(default_factory=dict)
    """Devices that joined and are being interviewed, by IEEE address."""

    async def load(self) -> None:
        for registration in await asyncio.to_thread(load_pending, self.engine):
            self.pending[registration.ieee_address] = view_of(registration)

    def register(self, subscribe: Callable[..., None]) -> None:
        """``subscribe`` is the bus's: every charger's bridge events."""
        for charger, zigbee in self.zigbee.items():
            subscribe(zigbee.bridge_event, self._events_of(charger))

    def views(self) -> list[RegistrationView]:
        return sorted(self.pending.values(), key=lambda view: (view.joined_at, view.ieee_address))

    # -- what the bridges say ------------------------------------------------------------------

    def _events_of(self, charger: str) -> Callable[[Delivery[BridgeEvent]], Awaitable[None]]:
        async def on_event(delivery: Delivery[BridgeEvent]) -> None:
            await self.on_event(charger, delivery.body)

        return on_event

    async def on_event(self, charger: str, event: BridgeEvent) -> None:
        device = event.data
        if is_pile_id(device.friendly_name):
            return  # a device already named: a pile of the station (or a leftover name)
        if event.type is BridgeEventType.DEVICE_JOINED:
            await self._joined(charger, device.ieee_address)
        elif event.type is BridgeEventType.DEVICE_INTERVIEW:
            if device.status is InterviewStatus.SUCCESSFUL:
                definition = device.definition
                await self._interviewed(
                    charger,
                    device.ieee_address,
                    definition.model if definition else None,
                    definition.vendor if definition else None,
                    definition.description if definition else None,
                )
        elif event.type is BridgeEventType.DEVICE_LEAVE:
            await self._left(device.ieee_address)

    async def _joined(self, charger: str, ieee_address: str) -> None:
        registration = Registration(
            ieee_address=ieee_address,
            charger=charger,
            status=RegistrationStatus.JOINING,
            joined_at=self.clock(),
        )
        self._joins[ieee_address] = registration
        log.info("device joined", extra={"charger": charger, "ieee_address": ieee_address})

    async def _interviewed(
        self,
        charger: str,
        ieee_address: str,
        model: str | None,
        vendor: str | None,
        description: str | None,
    ) -> None:
        joined = self._joins.pop(ieee_address, None)
        registration = Registration(
            ieee_address=ieee_address,
            charger=charger,
            status=RegistrationStatus.PENDING,
            joined_at=joined.joined_at if joined else self.clock(),
            model=_short(model, 64),
            vendor=_short(vendor, 64),
            description=_short(description, 200),
        )
        await asyncio.to_thread(store, self.engine, registration)
        self.pending[ieee_address] = view_of(registration)
        log.info(
            "device waits for approval",
            extra={"charger": charger, "ieee_address": ieee_address, "model": model},
        )
        self._changed()

    async def _left(self, ieee_address: str) -> None:
        self._joins.pop(ieee_address, None)
        if self.pending.pop(ieee_address, None) is None:
            return
        await self._decide(ieee_address, RegistrationStatus.LEFT, None)
        log.info("pending device left", extra={"ieee_address": ieee_address})

    # -- what an operator decides ----------------------------------------------------------------

    async def permit_join(self, charger: str, seconds: int) -> None:
        """Raises ``BridgeSilent``/``BridgeRefused`` (nothing opened) or ``BusUnavailable``."""
        await self.bridge.call(
            charger, self.zigbee[charger].permit_join, PermitJoinRequest(time=seconds)
        )
        log.info("joining opened", extra={"charger": charger, "seconds": seconds})

    async def approve(self, ieee_address: str, pile_id: str) -> RegistrationView:
        """Rename the device ``pile_id`` and add the pile to the station's set.

        Raises :class:`NoSuchRegistration`, :class:`WrongCharger`, ``PileTaken``,
        ``BridgeSilent`` or ``BridgeRefused`` (each with nothing changed).
        """
        view = self._pending(ieee_address)
        if charger_of(pile_id) != view.charger:
            raise WrongCharger(f"{pile_id} is not a pile of {view.charger}")
        async with self.piles.lock:
            if self.piles.has_pile(pile_id):
                raise PileTaken(pile_id)
            rename = DeviceRenameRequest(from_=ieee_address, to=pile_id)
            await self.bridge.call(view.charger, self.zigbee[view.charger].device_rename, rename)
            await self.piles.add(pile_id, ieee_address, self.clock())
            self.pending.pop(ieee_address, None)
            await self._decide(ieee_address, RegistrationStatus.APPROVED, pile_id)
        log.info(
            "device approved",
            extra={"charger": view.charger, "ieee_address": ieee_address, "pile_id": pile_id},
        )
        return view

    async def reject(self, ieee_address: str) -> RegistrationView:
        """Make Zigbee2MQTT remove the device; raises as :meth:`approve` does."""
        view = self._pending(ieee_address)
        call = self.zigbee[view.charger].device_remove
        try:
            await self.bridge.call(view.charger, call, DeviceRemoveRequest(id=ieee_address))
        except BridgeRefused as refused:
            # A device that does not answer its leave request (switched off again) is
            # forgotten by Zigbee2MQTT all the same.
            log.info("device did not leave; forcing", extra={"error": refused.error})
            await self.bridge.call(
                view.charger, call, DeviceRemoveRequest(id=ieee_address, force=True)
            )
        self.pending.pop(ieee_address, None)
        await self._decide(ieee_address, RegistrationStatus.REJECTED, None)
        log.info("device rejected", extra={"charger": view.charger, "ieee_address": ieee_address})
        return view

    def _pending(self, ieee_address: str) -> RegistrationView:
        view = self.pending.get(ieee_address)
        if view is None:
            raise NoSuchRegistration(ieee_address)
        return view

    async def _decide(
        self, ieee_address: str, status: RegistrationStatus, pile_id: str | None
    ) -> None:
        registration = await asyncio.to_thread(stored, self.engine, ieee_address)
        if registration is not None:
            registration.status, registration.pile_id = status, pile_id
            registration.decided_at = self.clock()
            await asyncio.to_thread(store, self.engine, registration)
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()


def _short(text: str | None, length: int) -> str | None:
    return None if text is None else text[:length]
