"""``GET /api/v1/piles``: what this collector knows of each of its piles right now."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from station_collector.api.deps import CollectorDep
from station_collector.collector import Collector, Pile

router = APIRouter(tags=["piles"])


class PileView(BaseModel):
    pile_id: str
    up: bool
    """Answers breath frames (and its Zigbee2MQTT bridge is online)."""
    seen: bool
    """Has answered since the collector started; until then it is "not yet seen": not up
    (no charge starts on it) and reported only once the start-up grace is over."""
    faults: list[str]
    retiring: bool
    """Removed from the station's pile set while a session runs on it: it refuses new starts
    and is served until that session checks out, then forgotten."""
    phase: str
    gun: str | None
    charging: bool | None
    energy: Decimal | None
    error_code: str | None
    linkquality: int | None
    session_id: str | None
    card_uid: str | None


def _view(collector: Collector, pile: Pile) -> PileView:
    readings, flow = pile.readings, pile.flow
    return PileView(
        pile_id=flow.pile_id,
        up=collector.watch.is_up(flow.pile_id),
        seen=collector.watch.seen(flow.pile_id),
        faults=sorted(collector.board.active_codes(flow.pile_id)),
        retiring=flow.pile_id in collector.retiring,
        phase=flow.phase.value,
        gun=readings.gun,
        charging=readings.charging,
        energy=readings.energy,
        error_code=readings.error_code,
        linkquality=readings.linkquality,
        session_id=flow.session_id,
        card_uid=flow.card_uid,
    )


@router.get("/piles")
async def list_piles(collector: CollectorDep) -> list[PileView]:
    return [_view(collector, pile) for pile in list(collector.piles.values())]


@router.get("/piles/{pile_id}")
async def get_pile(pile_id: str, collector: CollectorDep) -> PileView:
    pile = collector.piles.get(pile_id)
    if pile is None:
        raise HTTPException(404, f"no pile {pile_id} on charger {collector.charger}")
    return _view(collector, pile)
