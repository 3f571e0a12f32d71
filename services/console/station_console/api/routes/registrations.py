"""Pile registration: open joining on a charger, list the devices that joined, approve one
as a pile or reject it. Each change is confirmed by the charger's Zigbee2MQTT before the
answer (see :mod:`station_console.registrations`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from station_console.api.deps import StateDep
from station_console.api.problems import Problem
from station_console.bridge_client import BridgeRefused, BridgeSilent
from station_console.pile_registry import PileTaken
from station_console.registrations import (
    NoSuchRegistration,
    RegistrationView,
    WrongCharger,
)
from station_protocol.ids import PileId
from station_protocol.zigbee import PERMIT_JOIN_MAX

router = APIRouter(tags=["registration"])


class JoinWindow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: int = Field(ge=0, le=PERMIT_JOIN_MAX)
    """How long the charger's Zigbee network accepts new devices; 0 closes it now."""


class JoinOpened(BaseModel):
    charger: str
    seconds: int
    until: datetime | None
    """When joining closes again (``None``: it was closed)."""


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pile_id: PileId
    """A free pile id of the device's charger (``c1-p13``), also beyond the configured count."""


class Approved(BaseModel):
    ieee_address: str
    charger: str
    pile_id: str
    revision: int
    """The revision of the station's pile set that has the new pile."""


class Rejected(BaseModel):
    ieee_address: str
    charger: str


@contextmanager
def answered_by_the_bridge() -> Iterator[None]:
    """The bridge's silence and refusals as the caller's errors (nothing changed in either)."""
    try:
        yield
    except BridgeSilent as silent:
        raise Problem(504, str(silent), reason="bridge_silent") from silent
    except BridgeRefused as refused:
        raise Problem(502, str(refused), reason="bridge_refused") from refused
    except NoSuchRegistration as missing:
        raise Problem(404, f"no device {missing} waits for approval") from missing


@router.post("/chargers/{charger}/permit-join")
async def permit_join(state: StateDep, charger: str, body: JoinWindow) -> JoinOpened:
    """Open (or with 0 close) joining on the charger's Zigbee2MQTT, once it confirmed."""
    if charger not in state.registrations.zigbee:
        raise Problem(404, f"no charger {charger} at this station")
    with answered_by_the_bridge():
        await state.registrations.permit_join(charger, body.seconds)
    until = state.clock() + timedelta(seconds=body.seconds) if body.seconds else None
    state.metrics.actions.labels("permit_join", "done").inc()
    return JoinOpened(charger=charger, seconds=body.seconds, until=until)


@router.get("/registrations")
async def list_registrations(state: StateDep) -> list[RegistrationView]:
    """The devices that joined and were interviewed, waiting for an operator, oldest first."""
    return state.registrations.views()


@router.post("/registrations/{ieee_address}/approve")
async def approve(state: StateDep, ieee_address: str, body: Approval) -> Approved:
    """Name the device a pile: Zigbee2MQTT renames it, then the station's set has it."""
    with answered_by_the_bridge():
        try:
            view = await state.registrations.approve(ieee_address, body.pile_id)
        except WrongCharger as wrong:
            raise Problem(422, str(wrong), reason="wrong_charger") from wrong
        except PileTaken as taken:
            raise Problem(409, f"{taken} is a pile of the station already", "pile_taken") from taken
    state.metrics.actions.labels("approve", "done").inc()
    return Approved(
        ieee_address=view.ieee_address,
        charger=view.charger,
        pile_id=body.pile_id,
        revision=state.piles.word.revision,
    )


@router.post("/registrations/{ieee_address}/reject")
async def reject(state: StateDep, ieee_address: str) -> Rejected:
    """Zigbee2MQTT removes the device from its network; it is no longer listed."""
    with answered_by_the_bridge():
        view = await state.registrations.reject(ieee_address)
    state.metrics.actions.labels("reject", "done").inc()
    return Rejected(ieee_address=view.ieee_address, charger=view.charger)
