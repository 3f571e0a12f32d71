"""Operator actions, each through its owner's contract.

Maintenance is the console's own word, published retained on the bus for the pile's
collector; a bulletin's acknowledgement belongs to faults and an operator stop to billing,
so those go to their REST APIs and come back with the owner's answer.
"""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import quote

from station_console.owners import Answer, OwnerAway
from station_console.pile_registry import NoSuchPile
from station_console.state import ConsoleState
from station_protocol import channels
from station_protocol.messages import PileMaintenance, SessionQuery, SessionStatus, StationPiles
from station_runtime.bus import BusUnavailable

log = logging.getLogger("station.console.actions")


async def set_maintenance(
    state: ConsoleState, pile_id: str, active: bool, reason: str, who: str
) -> PileMaintenance:
    """Publish the pile's maintenance (retained: its collector reads it again after a
    restart). Raises ``BusUnavailable`` when the broker cannot take it."""
    word = PileMaintenance(pile_id=pile_id, active=active, reason=reason, since=state.clock())
    await state.bus.send(channels.PILE_MAINTENANCE, word, pile=pile_id)
    state.board.put_maintenance(pile_id, word)
    log.info(
        "pile into maintenance" if active else "pile back from maintenance",
        extra={"pile_id": pile_id, "reason": reason, "who": who},
    )
    state.metrics.actions.labels("maintenance" if active else "in_service", "done").inc()
    return word


async def acknowledge(state: ConsoleState, bulletin_id: str, who: str) -> Answer:
    answer = await state.owners.faults.call(
        "POST", f"/api/v1/faults/{quote(bulletin_id, safe='')}/ack", json={"who": who}
    )
    state.metrics.actions.labels("acknowledge", str(answer.status)).inc()
    return answer


async def stop_session(state: ConsoleState, session_id: str) -> Answer:
    answer = await state.owners.billing.call(
        "POST", f"/api/v1/sessions/{quote(session_id, safe='')}/stop"
    )
    state.metrics.actions.labels("stop", str(answer.status)).inc()
    log.info("operator stop", extra={"session_id": session_id, "status": answer.status})
    return answer


class SessionRunning(Exception):
    """A pile cannot leave the station while a session runs on it."""

    def __init__(self, pile_id: str, session_id: str) -> None:
        super().__init__(f"session {session_id} is running on {pile_id}; stop it first")
        self.session_id = session_id


async def decommission(state: ConsoleState, pile_id: str, who: str) -> StationPiles:
    """Take ``pile_id`` out of the station's pile set; its history stays.

    Billing's word decides whether a session runs (raises :class:`SessionRunning`; no answer
    raises ``OwnerAway``); the set's lock keeps an approval from interleaving. A session
    that opens in the moment between billing's answer and the collector hearing the new set
    is not lost: the collector serves a removed pile until its running session checks out.
    """
    async with state.piles.lock:
        if not state.piles.has_pile(pile_id):
            raise NoSuchPile(pile_id)
        answer = await state.bus.ask(
            channels.SESSION_QUERY,
            SessionQuery(pile_id=pile_id),
            timeout=state.settings.owner_timeout,
            answers=lambda answer: answer.session is None or answer.session.pile_id == pile_id,
        )
        if answer is None:
            raise OwnerAway("billing", "no answer to the session query")
        session = answer.session
        if session is not None and session.status is SessionStatus.ACTIVE:
            raise SessionRunning(pile_id, session.session_id)
        word = await state.piles.remove(pile_id, state.clock())
    with contextlib.suppress(BusUnavailable):
        # A later pile under the same id starts in service.
        await state.bus.clear(channels.PILE_MAINTENANCE, pile=pile_id)
    log.info("pile decommissioned", extra={"pile_id": pile_id, "who": who})
    state.metrics.actions.labels("decommission", "done").inc()
    return word
